/** The wait benchmark's figures: joins what was sent with what came back, per phase, and prints them. */
import os from 'node:os';
import type { IntervalHistogram } from 'node:perf_hooks';
import { BOOT_CYCLE } from './_events.ts';
import { nodeName } from './_waits_fleet.ts';
import type { PollSample } from './_waits_poll.ts';
import type { Stream } from './_waits_stream.ts';
import type { WaitersResult } from './_waits_waiters.ts';
import { type Summary, facts, int, latencyRow, ms, summarize, table } from './_waits_stats.ts';

/** A moment between phases, as the daemon and this process saw it. */
export interface Mark {
  t: number;
  metrics: Map<string, number>;
  daemonCpuMs: number | null;
  selfCpu: NodeJS.CpuUsage;
  /** Whole-machine busy and total CPU time (/proc/stat, ticks of all CPUs), null where absent. */
  machine: { busy: number; total: number } | null;
}

/** monitorEventLoopDelay's resolution in the entry, ms. */
export const LOOP_RESOLUTION_MS = 1;

export interface Phase {
  name: string;
  from: Mark;
  to: Mark;
  /** This process's main-thread event-loop delay during the phase. */
  loop: IntervalHistogram;
  polled: boolean;
}

export interface Run {
  stream: Stream;
  waiters: WaitersResult;
  phases: Phase[];
  openWaits: { t: number; n: number }[];
  polls: PollSample[];
  states: string[];
  /** Waits asked to stay open. */
  waits: number;
}

interface PhaseFigures {
  rate: number;
  push: Summary | null;
  ack: Summary | null;
  /** Replies to events written while a poll was in flight (what the old way costs everyone else). */
  ackInPoll: Summary | null;
  poll: Summary | null;
  missing: number;
  wrongSeq: number;
  pollMissed: number;
}

function figures(r: Run, p: Phase): PhaseFigures {
  const { stream, waiters } = r;
  const a = p.from.t, b = p.to.t;
  const push: number[] = [], ack: number[] = [], ackInPoll: number[] = [], poll: number[] = [];
  let missing = 0, wrongSeq = 0, pollMissed = 0;
  const last = BOOT_CYCLE.indexOf(r.states[r.states.length - 1] as (typeof BOOT_CYCLE)[number]);
  const polls = [...r.polls].sort((x, y) => x.seq - y.seq);
  for (const c of stream.completions) {
    if (c.sentAt < a || c.sentAt >= b) continue;
    const seq = stream.seqOf[c.event]!;
    const d = waiters.dones.get(seq);
    if (!d) missing++;
    else if (d.node !== nodeName(c.node)) wrongSeq++;
    else push.push(d.at - c.sentAt);
    if (!p.polled) continue;
    // The old waiter learns of it from the first reply taken after the event committed.
    const seen = polls.find((s) => s.seq >= seq);
    if (seen && seen.states[c.node] === last) poll.push(seen.end - c.sentAt);
    else pollMissed++;
  }
  let sent = 0;
  const windows = p.polled ? r.polls.map((s) => [s.start, s.end] as const) : [];
  for (let i = 0; i < stream.sent; i++) {
    const t = stream.sentAt[i]!;
    if (t < a || t >= b) continue;
    sent++;
    ack.push(stream.ackAt[i]! - t);
    if (windows.some(([from, to]) => t >= from && t < to)) ackInPoll.push(stream.ackAt[i]! - t);
  }
  return {
    rate: sent / ((b - a) / 1000), push: summarize(push), ack: summarize(ack), ackInPoll: summarize(ackInPoll), poll: summarize(poll),
    missing, wrongSeq, pollMissed,
  };
}

/** What the rest of the machine used meanwhile: the load this run shared the CPUs with. */
function others(p: Phase, oursMs: number, secs: number): string {
  const a = p.from.machine, b = p.to.machine;
  if (!a || !b || b.total <= a.total) return '';
  const cores = os.cpus().length;
  const busyCores = ((b.busy - a.busy) / (b.total - a.total)) * cores;
  const other = busyCores - oursMs / 1000 / secs;
  return `; machine ${busyCores.toFixed(2)} of ${cores} cores busy, other processes ~${int(Math.max(0, other) * 100)}%`;
}

/** The histogram samples a 1 ms timer and records the whole interval: what is beyond it is lateness. */
const late = (ns: number): number => Math.max(0, ns / 1e6 - LOOP_RESOLUTION_MS);

/** The printed report: one latency table, then per-phase facts. */
export function report(r: Run, header: string): string {
  const rows: string[][] = [];
  const notes: [string, string][] = [];
  for (const p of r.phases) {
    const f = figures(r, p);
    const secs = (p.to.t - p.from.t) / 1000;
    rows.push(latencyRow(`${p.name}: event -> done push`, f.push));
    if (p.polled) rows.push(latencyRow(`${p.name}: event -> seen by a poll`, f.poll));
    rows.push(latencyRow(`${p.name}: event -> its reply (all)`, f.ack));
    if (p.polled) rows.push(latencyRow(`${p.name}: ... sent while a poll ran`, f.ackInPoll));
    const delta = (name: string): number => (p.to.metrics.get(name) ?? NaN) - (p.from.metrics.get(name) ?? NaN);
    const batches = delta('stated_batches_total'), logged = delta('stated_events_total');
    const dCpu = p.to.daemonCpuMs !== null && p.from.daemonCpuMs !== null ? p.to.daemonCpuMs - p.from.daemonCpuMs : null;
    const self = (p.to.selfCpu.user + p.to.selfCpu.system - p.from.selfCpu.user - p.from.selfCpu.system) / 1000;
    const wl = r.waiters.lateness.get(p.name);
    const open = r.openWaits.filter((s) => s.t >= p.from.t && s.t < p.to.t).map((s) => s.n);
    const lines = [
      `${secs.toFixed(1)} s, ${int(f.rate)} events/s sent, ${int(logged)} logged in ${int(batches)} commits (${(logged / batches).toFixed(1)} events/commit, ${int(batches / secs)} commits/s)`,
      `open waits ${open.length ? `${int(Math.min(...open))}..${int(Math.max(...open))}, mean ${int(open.reduce((x, y) => x + y, 0) / open.length)}` : 'n/a'}`,
      `CPU: daemon ${dCpu === null ? 'n/a' : `${int((dCpu / 1000 / secs) * 100)}%`}, bench process ${int((self / 1000 / secs) * 100)}% (of one core)`
        + `${others(p, (dCpu ?? 0) + self, secs)}`,
      `event loops late by: sender p99 ${ms(late(p.loop.percentile(99)))}, max ${ms(late(p.loop.max))}; `
        + `waiters ${wl ? `p99 ${ms(wl.p99)}, max ${ms(wl.max)}` : 'n/a'}`,
    ];
    if (open.length && Math.min(...open) < 0.9 * r.waits) {
      lines.push(`fewer waits open than asked (${int(r.waits)}): too few nodes free for them, the held ones (one poll interval + 2 s each) and the rotation; try more --nodes`);
    }
    if (f.missing || f.wrongSeq) lines.push(`${int(f.missing)} completions without a done push, ${int(f.wrongSeq)} done pushes for another node than the completing event's`);
    if (p.polled) {
      const mine = r.polls.filter((s) => s.end >= p.from.t);
      const took = summarize(mine.map((s) => s.end - s.start));
      lines.push(`${mine.length} polls of ${int((mine[0]?.bytes ?? 0) / 1024)} KiB, each ${took ? `${ms(took.p50)} (max ${ms(took.max)})` : 'n/a'} to fetch and parse${f.pollMissed ? `; ${int(f.pollMissed)} completions missed` : ''}`);
    }
    notes.push([p.name, lines.join('\n    ')]);
  }
  const s = r.stream, w = r.waiters;
  const known = new Set(s.completions.map((c) => s.seqOf[c.event]));
  const stray = [...w.dones.keys()].filter((seq) => !known.has(seq)).length;
  notes.push(['stream', `max ${int(s.maxInFlight)} events unacknowledged, ${int(s.slips)} schedule slips, ${int(s.idle)} idle slots; `
    + `waits opened ${int(w.opened)}, ended ${int(w.ended)}; failed pushes ${int(w.failedPushes)}, done pushes for no known completion ${int(stray)}`]);
  return `${header}\n${table(['latency', 'n', 'p50', 'p90', 'p99', 'max'], rows)}\n${facts(notes)}`;
}
