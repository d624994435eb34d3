/**
 * The wait benchmark: N nodes, W open StateWaits, TBNODESTATE events paced
 * at R/s over one WebSocket; for every event that completes a waited-for
 * node, the time from writing it to the socket to the `done` push reaching
 * its waiter (other connections, in a worker thread of the same process, on
 * the same clock). Then the same workload while a waiter polls
 * `GET /v1/nodes` every 5 s, the old way, and when that poll first shows
 * each completion. A node whose wait completed stays in that state for one
 * poll interval + 2 s (the old way could only see long-lived states); the
 * rotation covers the others. Design target on 2 cores: push p99 <= 5 ms.
 * Prints figures, asserts none.
 *
 *   node .build/bench/waits.mjs [--nodes 10000] [--waits 1000] [--rate 10000] [--seconds 15]
 *     [--per-wait 2] [--states SHUTDOWN,ISUP] [--waiters 4] [--warmup 3]
 *     [--poll-seconds 15] [--poll-interval 5] [--dump FILE]      (STATED_BIN picks the executable)
 *   --dump writes every completion as a JSON line {sent (epoch ms), push ms, ack ms, seq}, for
 *   lining them up with a daemon-side trace.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import type WebSocket from 'ws';
import { type BenchDaemon, cpuMs, repoRoot, startDaemon } from './_daemon.ts';
import { BOOT_CYCLE } from './_events.ts';
import { connect } from './_load.ts';
import { Fleet, registerFleet } from './_waits_fleet.ts';
import { Poller, isPollerThread, pollerThread } from './_waits_poll.ts';
import { LOOP_RESOLUTION_MS, type Mark, type Phase, report } from './_waits_report.ts';
import { Stream } from './_waits_stream.ts';
import { type WaitersResult, Waiters, isWaitersThread, waitersThread } from './_waits_waiters.ts';

const DEFAULTS = {
  nodes: 10_000, waits: 1000, rate: 10_000, seconds: 15, perWait: 2, waiters: 4,
  warmup: 3, pollSeconds: 15, pollInterval: 5, states: 'SHUTDOWN,ISUP', dump: '',
};
type Options = typeof DEFAULTS;
/** Extra time a completed node stays in its state beyond one poll interval: the slowest poll must still see it, ms. */
const HOLD_SLACK_MS = 2000;

function options(argv: string[]): Options {
  const o = { ...DEFAULTS };
  const min: Partial<Record<keyof Options, number>> = { warmup: 0, pollSeconds: 0 };
  for (let i = 0; i < argv.length; i++) {
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(argv[i]!);
    if (!m) usage(`unexpected argument ${argv[i]}`);
    const key = m[1]!.replace(/-(\w)/g, (_, c: string) => c.toUpperCase()) as keyof Options;
    const text = m[2] ?? argv[++i];
    if (!(key in o)) usage(`unknown option --${m[1]}`);
    if (key === 'states') {
      const states = (text ?? '').split(',');
      if (!states.every((s) => (BOOT_CYCLE as readonly string[]).includes(s))) usage(`--states: expected states of ${BOOT_CYCLE.join(',')}, got ${JSON.stringify(text)}`);
      o.states = text!;
      continue;
    }
    if (key === 'dump') {
      o.dump = text ?? usage('--dump: expected a file name');
      continue;
    }
    const v = Number(text);
    const lo = min[key] ?? 1;
    if (!Number.isInteger(v) || v < lo) usage(`--${m[1]}: expected a whole number >= ${lo}, got ${JSON.stringify(text)}`);
    (o as Record<string, unknown>)[key] = v;
  }
  if (o.waits * o.perWait > o.nodes / 2) usage(`--waits x --per-wait (${o.waits * o.perWait}) must be at most half of --nodes (${o.nodes})`);
  return o;
}

function usage(why: string): never {
  process.stderr.write(`bench: ${why}\nusage: waits.mjs [--nodes N] [--waits W] [--rate R] [--seconds S] [--per-wait K] [--states A,B]\n`
    + '         [--waiters C] [--warmup S] [--poll-seconds S (0: no poll phase)] [--poll-interval S] [--dump FILE]\n');
  process.exit(64);
}

/** One JSON line per completion: when it was sent (epoch ms), its push and reply latencies (ms), its seq. */
function dumpLines(stream: Stream, waiters: WaitersResult): string {
  return stream.completions.map((c) => {
    const seq = stream.seqOf[c.event]!;
    const d = waiters.dones.get(seq);
    const ack = stream.ackAt[c.event]! - c.sentAt;
    return `${JSON.stringify({ sent: performance.timeOrigin + c.sentAt, push: d ? d.at - c.sentAt : null, ack, seq })}\n`;
  }).join('');
}

/** All CPUs' busy and total ticks from /proc/stat; null where it is absent. */
function machineCpu(): { busy: number; total: number } | null {
  try {
    const f = fs.readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).slice(1).map(Number);
    const idle = (f[3] ?? 0) + (f[4] ?? 0); // idle + iowait
    const total = f.slice(0, 8).reduce((x, y) => x + y, 0); // user..steal; guest is counted inside user
    return { busy: total - idle, total };
  } catch {
    return null;
  }
}

/** Set by SIGINT/SIGTERM: what fails after it is the interruption, not worth a stack. */
let interrupted = false;

/** Unref'd: the sockets keep a run alive; after a failure a pending boundary must not. */
const sleepUntil = (t: number): Promise<void> => new Promise((r) => setTimeout(r, Math.max(0, t - performance.now())).unref());

async function main(): Promise<void> {
  const o = options(process.argv.slice(2));
  const states = o.states.split(',');
  const bin = process.env.STATED_BIN ?? path.join(repoRoot(), 'dist', 'stated');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stated-bench-waits-'));
  const load0 = os.loadavg();
  let daemon: BenchDaemon | undefined;
  let poller: Poller | undefined;
  let waiters: Waiters | undefined;
  let sender: WebSocket | undefined;
  const timers: NodeJS.Timeout[] = [];
  const cleanup = async (): Promise<void> => {
    for (const t of timers) clearTimeout(t); // clears intervals too; left armed they would keep the process alive
    sender?.terminate();
    await waiters?.kill();
    await poller?.kill();
    await daemon?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  };
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      interrupted = true;
      process.stderr.write(`bench: ${sig}: stopping the daemon and removing ${dir}\n`);
      void cleanup().finally(() => process.exit(130));
    });
  }

  try {
    daemon = await startDaemon(bin, dir);
    const d = daemon;
    sender = await connect(d.wsUrl, d.token);
    const fleet = Fleet.create(o.nodes);
    await registerFleet(sender, fleet);
    const w = waiters = new Waiters(new URL(import.meta.url), {
      wsUrl: d.wsUrl, token: d.token, connections: o.waiters, nodes: o.nodes, fleet: fleet.buffers,
      pool: { waits: o.waits, perWait: o.perWait, states },
    });
    await w.ready();

    const mark = async (): Promise<Mark> => {
      const t = performance.now(), daemonCpuMs = cpuMs(d.pid), selfCpu = process.cpuUsage(), machine = machineCpu();
      return { t, daemonCpuMs, selfCpu, machine, metrics: await d.metrics() };
    };
    const pollMs = o.pollInterval * 1000;
    const stream = new Stream(sender, fleet, {
      rate: o.rate, durationMs: (o.warmup + o.seconds + o.pollSeconds) * 1000, holdMs: pollMs + HOLD_SLACK_MS, states,
    });
    const streaming = stream.run();
    streaming.catch(() => {}); // awaited below; an interrupt must not turn it into an unhandled rejection
    // Waiting for a phase boundary ends early if the stream fails (the daemon died, say).
    const until = (t: number): Promise<void> => Promise.race([sleepUntil(t), streaming.then(() => sleepUntil(t))]);
    const openWaits: { t: number; n: number }[] = [];
    const sampler = setInterval(() => openWaits.push({ t: performance.now(), n: Atomics.load(fleet.counters, 0) }), 100);
    timers.push(sampler);
    const t0 = stream.startedAt;
    const t1 = t0 + o.warmup * 1000, t2 = t1 + o.seconds * 1000, t3 = t2 + o.pollSeconds * 1000;
    const phases: Phase[] = [];
    const phase = async (name: string, end: number, polled: boolean): Promise<void> => {
      const loop = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
      const from = await mark();
      w.phase(name);
      loop.enable();
      await (end === t3 ? streaming : until(end));
      loop.disable();
      phases.push({ name, from, to: await mark(), loop, polled });
    };

    // The poller's thread starts a second early; its first poll is at the phase's start.
    const startPoller = setTimeout(() => {
      if (o.pollSeconds === 0) return;
      poller = new Poller(new URL(import.meta.url), {
        url: d.url, token: d.token, nodes: o.nodes, intervalMs: pollMs, firstAt: performance.timeOrigin + t2,
      });
    }, Math.max(0, t2 - 1000 - performance.now()));
    timers.push(startPoller);
    await until(t1);
    await phase('push', t2, false);
    if (o.pollSeconds > 0) {
      await phase('polled', t3, true);
    } else {
      await streaming;
    }
    clearInterval(sampler);
    clearTimeout(startPoller);
    // Every completion's push, then (the old way) one poll that reflects the last event.
    const seen = await w.collect(stream.completions.length);
    let lastSeq = 0;
    for (let i = 0; i < stream.sent; i++) lastSeq = Math.max(lastSeq, stream.seqOf[i]!);
    await poller?.finish(lastSeq);
    const load1 = os.loadavg();

    const la = (l: number[]): string => l.map((x) => x.toFixed(2)).join(' ');
    const header = `stated bench: wait latency (${bin}, ${os.cpus().length} CPUs, load average ${la(load0)} before, ${la(load1)} after)\n`
      + `  ${o.nodes.toLocaleString('en-US')} nodes; ${o.waits.toLocaleString('en-US')} waits of ${o.perWait} node(s) on ${states.join(',')}, `
      + `over ${o.waiters} waiter connection(s), each replaced when done; events paced at ${o.rate.toLocaleString('en-US')}/s `
      + `(${o.warmup} s warm-up not counted)\n`
      + `  latency = event written to the sender's socket -> frame read by its waiter (a worker thread), one process, one clock;\n`
      + `  it includes the daemon's group commit (one SQLite transaction per batch, WAL, synchronous FULL: an fsync per commit)\n`;
    process.stdout.write(report({ stream, waiters: seen, phases, openWaits, polls: poller?.samples ?? [], states, waits: o.waits }, header));
    process.stdout.write(`  (design target on 2 cores: push p99 <= 5 ms; the poll detects within ~0-${o.pollInterval} s plus the request)\n`);
    if (o.dump) fs.writeFileSync(o.dump, dumpLines(stream, seen));
  } finally {
    await cleanup();
  }
}

if (isPollerThread()) {
  void pollerThread();
} else if (isWaitersThread()) {
  void waitersThread();
} else {
  main().catch((err: unknown) => {
    if (interrupted) return;
    process.stderr.write(`bench: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    process.exitCode = 1;
  });
}
