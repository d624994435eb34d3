/**
 * The waiters of the wait benchmark: keeps `waits` StateWaits open over a few
 * WebSocket connections (none of them the sender's), records when each `done`
 * push arrives, and replaces a wait by a new one on other nodes once all its
 * nodes are done, so the number of open waits stays where it was set. Runs in
 * its own thread (_waits_waiters.ts), as a real waiter is not the sender.
 */
import type WebSocket from 'ws';
import { ARMED, FREE, type Fleet, epochNow, nodeName } from './_waits_fleet.ts';

/** How often waits that found no free nodes are tried again, ms. */
const RETRY_MS = 50;

export interface PoolOptions {
  waits: number;
  perWait: number;
  states: string[];
}

/** A `done` push as received. */
export interface DonePush {
  node: string;
  /** Epoch ms (epochNow) when its frame reached the waiter thread's message handler. */
  at: number;
}

interface Slot {
  nodes: number[];
  remaining: number;
  conn: Waiter;
}

interface Waiter {
  ws: WebSocket;
  pending: Map<number, (m: Reply) => void>;
}

interface Reply {
  re?: unknown;
  type?: string;
  ok?: boolean;
  wait?: string;
  node?: string;
  seq?: number;
  error?: unknown;
}

export class WaitPool {
  /** The seq a done push carries (the completing event's) -> the push. */
  readonly dones = new Map<number, DonePush>();
  failedPushes = 0;
  opened = 0;
  ended = 0;
  /** Waits asked for but not yet granted (no free nodes); retried every RETRY_MS. */
  private short = 0;
  private readonly retry: NodeJS.Timeout;
  private readonly slots = new Map<string, Slot>();
  private readonly conns: Waiter[];
  private nextConn = 0;
  private nextId = 1;
  private running = true;
  private failure: Error | null = null;

  constructor(sockets: WebSocket[], private readonly fleet: Fleet, private readonly o: PoolOptions) {
    this.retry = setInterval(() => this.topUp(0), RETRY_MS);
    this.conns = sockets.map((ws) => ({ ws, pending: new Map() }));
    for (const c of this.conns) {
      c.ws.on('message', (data) => this.onMessage(c, data));
      c.ws.on('close', (code: number) => {
        this.fail(new Error(`a waiter connection closed (${code})`));
        for (const settle of c.pending.values()) settle({ ok: false, error: { code: 'CLOSED' } });
        c.pending.clear();
      });
    }
  }

  /** The first error a waiter hit (refused request, closed connection), if any. */
  get error(): Error | null {
    return this.failure;
  }

  /** Opens the first `waits` waits; resolves once every one is registered. */
  async fill(): Promise<void> {
    const all: Promise<void>[] = [];
    for (let i = 0; i < this.o.waits; i++) {
      const nodes = this.fleet.claim(this.o.perWait);
      if (!nodes) throw new Error(`not enough nodes for ${this.o.waits} waits of ${this.o.perWait}`);
      all.push(this.register(nodes));
    }
    await Promise.all(all);
    if (this.failure) throw this.failure;
  }

  /** No more replacements from now on. */
  stop(): void {
    this.running = false;
    clearInterval(this.retry);
  }

  /** Opens `extra` waits plus those that found no free nodes before; stops at the first that finds none. */
  private topUp(extra: number): void {
    if (!this.running) return;
    const n = extra + this.short;
    this.short = 0;
    for (let i = 0; i < n; i++) {
      const nodes = this.fleet.claim(this.o.perWait);
      if (!nodes) {
        this.short = n - i;
        return;
      }
      void this.register(nodes);
    }
  }

  private fail(err: Error): void {
    if (this.running) this.failure ??= err;
  }

  private request(c: Waiter, body: object): Promise<Reply> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      c.pending.set(id, resolve);
      c.ws.send(JSON.stringify({ ...body, id }));
    });
  }

  /** Opens a wait on nodes claimed (REGISTERING) for it. */
  private async register(nodes: number[]): Promise<void> {
    const f = this.fleet;
    const conn = this.conns[this.nextConn++ % this.conns.length]!;
    const r = await this.request(conn, { op: 'initStateWait', states: this.o.states, nodes: nodes.map(nodeName) });
    if (r.ok !== true || typeof r.wait !== 'string') {
      for (const j of nodes) Atomics.store(f.watch, j, FREE);
      return this.fail(new Error(`initStateWait refused: ${JSON.stringify(r.error)}`));
    }
    // From here on every event the stream sends these nodes has a seq after the wait's start.
    for (const j of nodes) {
      f.passed[j] = 0;
      Atomics.store(f.watch, j, ARMED);
    }
    this.slots.set(r.wait, { nodes, remaining: nodes.length, conn });
    Atomics.store(f.counters, 0, this.slots.size);
    this.opened++;
  }

  private onMessage(c: Waiter, data: WebSocket.RawData): void {
    const at = epochNow();
    const m = JSON.parse(String(data)) as Reply;
    if (typeof m.re === 'number') {
      const done = c.pending.get(m.re);
      c.pending.delete(m.re);
      done?.(m);
      return;
    }
    if ((m.type !== 'done' && m.type !== 'failed') || typeof m.wait !== 'string') return; // progress: not measured
    if (m.type === 'done') this.dones.set(m.seq ?? -1, { node: m.node ?? '', at });
    else this.failedPushes++; // nothing here fails a node; counted, not measured
    const slot = this.slots.get(m.wait);
    if (!slot || --slot.remaining > 0) return;
    this.slots.delete(m.wait);
    Atomics.store(this.fleet.counters, 0, this.slots.size);
    void this.request(slot.conn, { op: 'endStateWait', wait: m.wait }).then((r) => {
      if (r.ok !== true) this.fail(new Error(`endStateWait refused: ${JSON.stringify(r.error)}`));
      this.ended++;
    });
    this.topUp(1);
  }
}
