/**
 * The waiters' thread: the WaitPool and its connections run in a worker, so
 * that the sender's 10,000 frames a second in and out do not delay the
 * moment a `done` push is read. Times cross threads as epoch ms (epochNow),
 * one clock within a process.
 */
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { Worker, parentPort, workerData } from 'node:worker_threads';
import { connect } from './_load.ts';
import { Fleet, type FleetBuffers } from './_waits_fleet.ts';
import { type PoolOptions, WaitPool } from './_waits_pool.ts';

const KIND = 'stated-bench-waits-waiters';
const DRAIN_MS = 5000;

export interface WaitersOptions {
  wsUrl: string;
  token: string;
  connections: number;
  nodes: number;
  pool: PoolOptions;
  fleet: FleetBuffers;
}

/** What the waiters saw; `at` in the main thread's performance.now() terms. */
export interface WaitersResult {
  dones: Map<number, { node: string; at: number }>;
  failedPushes: number;
  opened: number;
  ended: number;
  /** Per phase, how late the waiter thread's event loop ran (p99, max), ms. */
  lateness: Map<string, { p99: number; max: number }>;
}

type FromThread =
  | { t: 'ready' }
  | { t: 'error'; message: string }
  | { t: 'result'; dones: [number, string, number][]; failedPushes: number; opened: number; ended: number; lateness: [string, { p99: number; max: number }][] };

type ToThread = { cmd: 'phase'; name: string } | { cmd: 'collect'; expect: number };

export class Waiters {
  private readonly worker: Worker;
  private readonly next: ((m: FromThread) => void)[] = [];
  private failure: Error | null = null;

  /** Starts the thread from `entry`, the benchmark's own module (it calls waitersThread when it finds itself in the worker). */
  constructor(entry: URL, o: WaitersOptions) {
    this.worker = new Worker(entry, { workerData: { kind: KIND, ...o } });
    this.worker.on('message', (m: FromThread) => {
      if (m.t === 'error') this.failure ??= new Error(`waiters: ${m.message}`);
      this.next.shift()?.(m);
    });
    const died = (why: string): void => {
      this.failure ??= new Error(`waiters: ${why}`);
      for (const settle of this.next.splice(0)) settle({ t: 'error', message: why });
    };
    this.worker.on('error', (err) => died(err.message));
    this.worker.on('exit', () => died('thread exited'));
  }

  private reply(): Promise<FromThread> {
    return new Promise((resolve) => this.next.push(resolve));
  }

  /** Resolves once every wait of the first fill is registered. */
  async ready(): Promise<void> {
    const m = await this.reply();
    if (m.t !== 'ready') throw this.failure ?? new Error('waiters: no ready');
  }

  /** Starts measuring the waiter thread's lateness under a new phase name. */
  phase(name: string): void {
    this.worker.postMessage({ cmd: 'phase', name } satisfies ToThread);
  }

  /** Stops replacing waits, waits up to DRAIN_MS for `expect` done pushes in all, and returns what was seen. */
  async collect(expect: number): Promise<WaitersResult> {
    const reply = this.reply();
    this.worker.postMessage({ cmd: 'collect', expect } satisfies ToThread);
    const m = await reply;
    if (m.t !== 'result') throw this.failure ?? new Error('waiters: no result');
    const origin = performance.timeOrigin;
    return {
      dones: new Map(m.dones.map(([seq, node, at]) => [seq, { node, at: at - origin }])),
      failedPushes: m.failedPushes, opened: m.opened, ended: m.ended, lateness: new Map(m.lateness),
    };
  }

  async kill(): Promise<void> {
    await this.worker.terminate();
  }
}

/** True in the waiters' worker thread. */
export function isWaitersThread(): boolean {
  return (workerData as { kind?: string } | null)?.kind === KIND;
}

/** The worker's body. */
export async function waitersThread(): Promise<void> {
  const o = workerData as WaitersOptions;
  const post = (m: FromThread): void => parentPort!.postMessage(m);
  try {
    const sockets = [];
    for (let i = 0; i < o.connections; i++) sockets.push(await connect(o.wsUrl, o.token));
    const pool = new WaitPool(sockets, Fleet.attach(o.nodes, o.fleet), o.pool);
    await pool.fill();
    const lateness: [string, { p99: number; max: number }][] = [];
    let loop: { name: string; h: ReturnType<typeof monitorEventLoopDelay> } | null = null;
    const endPhase = (): void => {
      if (!loop) return;
      loop.h.disable();
      // The histogram records whole 1 ms intervals: lateness is what lies beyond.
      lateness.push([loop.name, { p99: Math.max(0, loop.h.percentile(99) / 1e6 - 1), max: Math.max(0, loop.h.max / 1e6 - 1) }]);
      loop = null;
    };
    const collected = new Promise<number>((resolve) => {
      parentPort!.on('message', (m: ToThread) => {
        if (m.cmd === 'phase') {
          endPhase();
          loop = { name: m.name, h: monitorEventLoopDelay({ resolution: 1 }) };
          loop.h.enable();
        } else resolve(m.expect);
      });
    });
    post({ t: 'ready' });
    const expect = await collected;
    endPhase();
    pool.stop();
    const until = performance.now() + DRAIN_MS;
    while (pool.dones.size < expect && performance.now() < until) await new Promise((r) => setTimeout(r, 20));
    if (pool.error) throw pool.error;
    for (const ws of sockets) ws.terminate();
    post({
      t: 'result', dones: [...pool.dones].map(([seq, d]) => [seq, d.node, d.at]),
      failedPushes: pool.failedPushes, opened: pool.opened, ended: pool.ended, lateness,
    });
  } catch (err) {
    post({ t: 'error', message: err instanceof Error ? err.message : String(err) });
  } finally {
    parentPort!.unref();
  }
}
