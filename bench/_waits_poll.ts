/**
 * The old way, for comparison: a waiter that reads the whole node table
 * (`GET /v1/nodes`) every `intervalMs` and looks at each node's state. It
 * runs in a worker thread so that parsing a multi-megabyte reply does not
 * delay the main thread's timestamps of the push measurement.
 */
import { performance } from 'node:perf_hooks';
import { Worker, parentPort, workerData } from 'node:worker_threads';
import { BOOT_CYCLE } from './_events.ts';

const KIND = 'stated-bench-waits-poller';
/** State code for a node in a state outside the boot cycle, or absent. */
export const OTHER = 255;

export interface PollOptions {
  url: string;
  token: string;
  nodes: number;
  intervalMs: number;
  /** Epoch ms (performance.timeOrigin + now()) of the first poll. */
  firstAt: number;
}

/** One poll as the poller saw it; times are the main thread's performance.now(). */
export interface PollSample {
  start: number;
  end: number;
  /** The last committed seq the reply reflects. */
  seq: number;
  bytes: number;
  /** Per node index (pc1 = 0), its state's index in BOOT_CYCLE, or OTHER. */
  states: Uint8Array;
}

interface Posted extends Omit<PollSample, 'start' | 'end'> {
  startEpoch: number;
  endEpoch: number;
}

export class Poller {
  readonly samples: PollSample[] = [];
  private readonly worker: Worker;
  private readonly exited: Promise<void>;
  private failure: Error | null = null;

  /** Starts the worker from `entry`, the benchmark's own module (it calls pollerThread when it finds itself in the worker). */
  constructor(entry: URL, o: PollOptions) {
    this.worker = new Worker(entry, { workerData: { kind: KIND, ...o } });
    this.worker.on('message', (m: Posted) => {
      const { startEpoch, endEpoch, ...rest } = m;
      const origin = performance.timeOrigin;
      this.samples.push({ ...rest, start: startEpoch - origin, end: endEpoch - origin });
    });
    this.worker.on('error', (err) => { this.failure ??= err; });
    this.exited = new Promise((resolve) => this.worker.once('exit', () => resolve()));
  }

  /** Polls until a reply reflects `seq` (every event sent), then the worker exits. */
  async finish(seq: number): Promise<void> {
    this.worker.postMessage({ stopAt: seq });
    await this.exited;
    if (this.failure) throw this.failure;
  }

  async kill(): Promise<void> {
    await this.worker.terminate();
  }
}

/** True in the poller's worker thread. */
export function isPollerThread(): boolean {
  return (workerData as { kind?: string } | null)?.kind === KIND;
}

/** The worker's body. */
export async function pollerThread(): Promise<void> {
  const o = workerData as PollOptions;
  const codes = new Map<string, number>(BOOT_CYCLE.map((s, i) => [s, i]));
  const epoch = (): number => performance.timeOrigin + performance.now();
  let stopAt = Infinity;
  parentPort!.on('message', (m: { stopAt: number }) => { stopAt = m.stopAt; });
  parentPort!.unref(); // the thread ends when this function does
  for (let k = 0; ; k++) {
    const wait = o.firstAt + k * o.intervalMs - epoch();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const startEpoch = epoch();
    const res = await fetch(`${o.url}/v1/nodes`, { headers: { authorization: `Bearer ${o.token}` } });
    const text = await res.text();
    if (!res.ok) throw new Error(`GET /v1/nodes: HTTP ${res.status}: ${text.slice(0, 200)}`);
    const body = JSON.parse(text) as { seq: number; nodes: { node: string; state: string | null }[] };
    // The old waiter's check: is the node in the state it waits for?
    const states = new Uint8Array(o.nodes).fill(OTHER);
    for (const n of body.nodes) {
      const j = Number(n.node.slice(2)) - 1;
      if (j >= 0 && j < o.nodes) states[j] = codes.get(n.state ?? '') ?? OTHER;
    }
    const msg: Posted = { startEpoch, endEpoch: epoch(), seq: body.seq, bytes: text.length, states };
    parentPort!.postMessage(msg, [states.buffer]);
    if (body.seq >= stopAt) return;
  }
}
