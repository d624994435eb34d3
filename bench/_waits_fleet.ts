/**
 * What the wait benchmark knows of its nodes: where each is in NORMALv2's
 * boot cycle, whether an open wait watches it, and until when the stream
 * holds it in the state that completed its wait. The arrays live in shared
 * memory: the stream (main thread) moves nodes, the waiters (a worker) pick
 * nodes for new waits and arm them once the daemon has registered the wait.
 */
import { performance } from 'node:perf_hooks';
import type WebSocket from 'ws';
import { BOOT_CYCLE } from './_events.ts';
import { addNodesIn } from './_load.ts';

const ADD_CHUNK = 10_000; // SPEC §3: a list holds at most 10,000 nodes

/**
 * Watch states. FREE: no wait, no event in flight. BUSY: no wait, an event
 * the daemon has not acknowledged yet. REGISTERING: a wait was asked for (the
 * stream leaves the node alone). ARMED: the wait is open. A wait may only
 * start on a FREE node: an event still in flight on the sender's connection
 * could reach the daemon after the waiter's initStateWait on another
 * connection and count for a wait the stream does not know of. Both threads
 * leave FREE by compareExchange; the stream owns BUSY and ARMED, the waiters
 * REGISTERING.
 */
export const FREE = 0;
export const BUSY = 1;
export const REGISTERING = 2;
export const ARMED = 3;

/** Epoch ms with sub-ms precision, comparable across this process's threads. */
export const epochNow = (): number => performance.timeOrigin + performance.now();

export interface FleetBuffers {
  pos: SharedArrayBuffer;
  watch: SharedArrayBuffer;
  passed: SharedArrayBuffer;
  heldUntil: SharedArrayBuffer;
  /** [0]: waits open right now (written by the waiters). */
  counters: SharedArrayBuffer;
}

export class Fleet {
  /** Index into BOOT_CYCLE of each node's current state (the stream's own). */
  readonly pos: Uint8Array;
  readonly watch: Uint8Array;
  /** For an ARMED node: how many of the wait's states it has passed. */
  readonly passed: Uint8Array;
  /** Epoch ms until which the stream skips the node (0: not held). */
  readonly heldUntil: Float64Array;
  readonly counters: Int32Array;

  private constructor(readonly size: number, readonly buffers: FleetBuffers) {
    this.pos = new Uint8Array(buffers.pos);
    this.watch = new Uint8Array(buffers.watch);
    this.passed = new Uint8Array(buffers.passed);
    this.heldUntil = new Float64Array(buffers.heldUntil);
    this.counters = new Int32Array(buffers.counters);
  }

  /**
   * A fleet of `size` free nodes, node j starting at step j mod 5 of the boot
   * cycle: with all of them in one state the rotation would move them in
   * lockstep, and completions would come in one burst every cycle.
   */
  static create(size: number): Fleet {
    const f = new Fleet(size, {
      pos: new SharedArrayBuffer(size), watch: new SharedArrayBuffer(size), passed: new SharedArrayBuffer(size),
      heldUntil: new SharedArrayBuffer(size * 8), counters: new SharedArrayBuffer(4),
    });
    for (let j = 0; j < size; j++) f.pos[j] = j % BOOT_CYCLE.length;
    return f;
  }

  /** The same fleet, seen from another thread. */
  static attach(size: number, buffers: FleetBuffers): Fleet {
    return new Fleet(size, buffers);
  }

  /** Claims k FREE nodes the stream does not hold (now REGISTERING), or claims none and returns null. */
  claim(k: number): number[] | null {
    const now = epochNow();
    const out: number[] = [];
    const take = (j: number): void => {
      if (this.heldUntil[j]! <= now && Atomics.compareExchange(this.watch, j, FREE, REGISTERING) === FREE) out.push(j);
    };
    // Random probes first, so waits land all over the rotation; a scan when the fleet is crowded.
    for (let tries = 0; out.length < k && tries < 64 * k; tries++) take(Math.floor(Math.random() * this.size));
    for (let j = 0; out.length < k && j < this.size; j++) take(j);
    if (out.length === k) return out;
    for (const j of out) Atomics.store(this.watch, j, FREE);
    return null;
  }
}

export const nodeName = (j: number): string => `pc${j + 1}`;

/** Registers the fleet's nodes in NORMALv2, each in its starting state, through the `admin` op. */
export async function registerFleet(ws: WebSocket, f: Fleet): Promise<void> {
  for (let st = 0; st < BOOT_CYCLE.length; st++) {
    const names: string[] = [];
    for (let j = st; j < f.size; j += BOOT_CYCLE.length) names.push(nodeName(j));
    await addNodesIn(ws, names, BOOT_CYCLE[st]!);
  }
}
