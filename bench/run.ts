/**
 * The first benchmark: N nodes' state events pushed over one WebSocket at
 * full speed into dist/stated; durable (acknowledged after commit) events/s,
 * against better-sqlite3 writing the same rows with plain prepared statements
 * in the same process with no network, at its best batch size — the practical
 * limit (bench/_limit.ts) — and their ratio. Design target on 2 cores:
 * >= 50,000 events/s and >= 0.5 of the limit. Prints figures, asserts none.
 *
 *   node .build/bench/run.mjs [--nodes 1000] [--events 200000] [--window 5000] [--rounds 3]
 *   (or BENCH_NODES / BENCH_EVENTS / BENCH_WINDOW / BENCH_ROUNDS; STATED_BIN picks the executable)
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type WebSocket from 'ws';
import { type BenchDaemon, cpuMs, repoRoot, startDaemon } from './_daemon.ts';
import { LIMIT_BATCHES, runLimit } from './_limit.ts';
import { addNodes, connect, pushEvents } from './_load.ts';

const DEFAULTS = { nodes: 1000, events: 200_000, window: 5000, rounds: 3 };
type Options = typeof DEFAULTS;

function options(argv: string[]): Options {
  const o = { ...DEFAULTS };
  const set = (key: string, text: string | undefined, from: string): void => {
    if (!(key in o)) usage(`unknown option ${from}`);
    const v = Number(text);
    if (!Number.isInteger(v) || v < 1) usage(`${from}: expected a whole number >= 1, got ${JSON.stringify(text)}`);
    o[key as keyof Options] = v;
  };
  for (const key of Object.keys(o)) {
    const env = process.env[`BENCH_${key.toUpperCase()}`];
    if (env !== undefined) set(key, env, `BENCH_${key.toUpperCase()}`);
  }
  for (let i = 0; i < argv.length; i++) {
    const m = /^--([a-z]+)(?:=(.*))?$/.exec(argv[i]!);
    if (!m) usage(`unexpected argument ${argv[i]}`);
    set(m[1]!, m[2] ?? argv[++i], `--${m[1]}`);
  }
  return o;
}

function usage(why: string): never {
  process.stderr.write(`bench: ${why}\nusage: run.mjs [--nodes N] [--events E] [--window W] [--rounds R]\n`);
  process.exit(64);
}

const int = (n: number): string => Math.round(n).toLocaleString('en-US');

interface Round {
  rate: number;
  meanBatch: number;
  batches: number;
  limitRate: number;
  limitBatch: number;
  perEventRate: number;
  perEventBatch: number;
  rss: number | null;
  daemonCpuMs: number | null;
  clientCpuMs: number;
  logged: number;
}

/** One round: a fresh daemon takes the load, then the limit runs at each batch size right after it. */
async function round(o: Options, bin: string, dir: string, n: number, track: (d: BenchDaemon | undefined, ws: WebSocket | undefined) => void): Promise<Round> {
  const here = path.join(dir, `round-${n}`);
  fs.mkdirSync(here);
  const daemon = await startDaemon(bin, here);
  track(daemon, undefined);
  const ws = await connect(daemon.wsUrl, daemon.token);
  track(daemon, ws);
  await addNodes(ws, o.nodes);
  const before = await daemon.metrics();
  const cpu0 = cpuMs(daemon.pid);
  const load = await pushEvents(ws, o);
  const cpu1 = cpuMs(daemon.pid);
  const after = await daemon.metrics();
  const rss = daemon.peakRss();
  ws.close();
  await daemon.stop();
  track(undefined, undefined);

  const delta = (name: string): number => {
    const a = after.get(name), b = before.get(name);
    if (a === undefined || b === undefined) throw new Error(`GET /metrics has no ${name}`);
    return a - b;
  };
  const logged = delta('stated_events_total');
  const batches = delta('stated_batches_total');
  const meanBatch = logged / Math.max(1, batches);
  const limit = runLimit(here, { ...o, nodeRowPerEvent: false }).best;
  const perEvent = runLimit(here, { ...o, nodeRowPerEvent: true }).best;
  const rate = (ms: number): number => o.events / (ms / 1000);
  return {
    rate: o.events / (load.elapsedMs / 1000), meanBatch, batches,
    limitRate: rate(limit.elapsedMs), limitBatch: limit.batch, perEventRate: rate(perEvent.elapsedMs), perEventBatch: perEvent.batch,
    rss, daemonCpuMs: cpu0 === null || cpu1 === null ? null : cpu1 - cpu0, clientCpuMs: load.clientCpuMs, logged,
  };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

async function main(): Promise<void> {
  const o = options(process.argv.slice(2));
  const bin = process.env.STATED_BIN ?? path.join(repoRoot(), 'dist', 'stated');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stated-bench-'));
  let daemon: BenchDaemon | undefined;
  let ws: WebSocket | undefined;
  const track = (d: BenchDaemon | undefined, w: WebSocket | undefined): void => { daemon = d; ws = w; };
  const cleanup = async (): Promise<void> => {
    ws?.terminate();
    await daemon?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  };
  // Ctrl-C mid-run must not leave a daemon or a database behind.
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      process.stderr.write(`bench: ${sig}: stopping the daemon and removing ${dir}\n`);
      void cleanup().finally(() => process.exit(130));
    });
  }

  try {
    // Rounds pair each daemon run with a limit run right after it, so a slow
    // spell of a shared machine hits both sides of a ratio; medians report.
    const rounds: Round[] = [];
    for (let n = 1; n <= o.rounds; n++) {
      const r = await round(o, bin, dir, n, track);
      rounds.push(r);
      process.stdout.write(`  round ${n}: ${int(r.rate)} events/s, limit ${int(r.limitRate)} (batch ${r.limitBatch}), ratio ${(r.rate / r.limitRate).toFixed(2)}; `
        + `node row/event limit ${int(r.perEventRate)} (batch ${r.perEventBatch}), ratio ${(r.rate / r.perEventRate).toFixed(2)}\n`);
    }
    const m = (f: (r: Round) => number): number => median(rounds.map(f));
    const rss = rounds.map((r) => r.rss).filter((x): x is number => x !== null);
    const cpu = rounds.map((r) => r.daemonCpuMs).filter((x): x is number => x !== null);
    const rows: [string, string][] = [
      ['events', `${int(o.events)} per round, ${o.rounds} rounds (medians below)`],
      ['nodes', int(o.nodes)],
      ['window (in flight)', int(o.window)],
      ['durable events/s', int(m((r) => r.rate))],
      ['mean batch size', `${m((r) => r.meanBatch).toFixed(1)} events/txn`],
      ['limit events/s', `${int(m((r) => r.limitRate))} (better-sqlite3, plain prepared statements, same schema and rows, best of batches ${LIMIT_BATCHES.join('/')}, no network)`],
      ['ratio daemon/limit', m((r) => r.rate / r.limitRate).toFixed(2)],
      ['limit, node row/event', `${int(m((r) => r.perEventRate))} (a node upsert per event, not per batch), ratio ${m((r) => r.rate / r.perEventRate).toFixed(2)}`],
      ['daemon peak RSS', rss.length === 0 ? 'n/a' : `${(Math.max(...rss) / 1048576).toFixed(1)} MiB`],
      ['CPU per round', `daemon ${cpu.length === 0 ? 'n/a' : `${(median(cpu) / 1000).toFixed(2)} s`}, load generator ${(m((r) => r.clientCpuMs) / 1000).toFixed(2)} s`],
    ];
    for (const r of rounds) if (r.logged !== o.events) rows.push(['note', `a round's log grew by ${int(r.logged)} events, not ${int(o.events)}`]);
    const width = Math.max(...rows.map(([k]) => k.length));
    process.stdout.write(`stated bench: state events over one WebSocket (${bin}, ${os.cpus().length} CPUs)\n`);
    for (const [k, v] of rows) process.stdout.write(`  ${k.padEnd(width)}  ${v}\n`);
    process.stdout.write(`  (design target on 2 cores: >= 50,000 events/s and >= 0.5 of the limit)\n`);
  } finally {
    await cleanup();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exitCode = 1;
});
