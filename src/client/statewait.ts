/**
 * StateWait, the client side of the seed's library: call initStateWait
 * *before* starting what you wait for, then waitForState as often as you
 * like. It reconnects and re-attaches by itself, losing nothing: the wait
 * lives in the daemon's database, and attach returns exactly what happened.
 */
import type { FailureReason } from '../types.ts';
import type { Connection, Push } from './connection.ts';

export interface WaitResult {
  finished: string[];
  failed: string[];
  remaining: string[];
  /** Why each failed node failed (TBFAILED's reason). */
  failures: Record<string, FailureReason>;
}

export type WaitProgress =
  | { type: 'progress'; node: string; state: string; remaining: string[]; seq: number }
  | { type: 'done'; node: string; seq: number }
  | { type: 'failed'; node: string; reason: FailureReason; seq: number };

export interface InitOptions {
  /** Seconds the daemon keeps the wait after its last attach (default 86400). */
  ttl?: number;
  /** Issue this command (REBOOT, ...) in the same transaction that registers the wait. */
  command?: string;
  /** Or per node: node -> command, in that same transaction (nodes left out are only waited for). */
  actions?: Record<string, string>;
  force?: boolean;
}

export class StateWait {
  /** Node -> 'done' | 'failed' | 'cancelled', as far as this client has heard. */
  private readonly settled = new Map<string, 'done' | 'failed' | 'cancelled'>();
  private readonly queue: WaitProgress[] = [];
  private wake: (() => void) | null = null;
  private ended = false;
  private readonly unsubs: (() => void)[] = [];

  private constructor(
    private readonly conn: Connection,
    readonly id: string,
    readonly states: string[],
    readonly nodes: string[],
    /** The log position the wait starts after. */
    readonly seq: number,
    /** For init with a command: the daemon's per-node verdicts. */
    readonly command: { seq: number; nodes: Record<string, string>; refusals?: Record<string, string> } | null,
  ) {
    this.unsubs.push(conn.onPush((p) => this.onPush(p)));
    this.unsubs.push(conn.onReconnect(() => void this.reattach()));
  }

  /** Registers a wait for every node to pass `states` in order. */
  static async init(conn: Connection, states: string[], nodes: string[], opts: InitOptions = {}): Promise<StateWait> {
    const r = await conn.request<{ wait: string; seq: number; command?: { seq: number; nodes: Record<string, string>; refusals?: Record<string, string> } }>(
      'initStateWait', { states, nodes, ...opts });
    return new StateWait(conn, r.wait, states, nodes, r.seq, r.command ?? null);
  }

  /** Re-opens an existing wait by id (another process, or after a restart of this one). */
  static async attach(conn: Connection, id: string): Promise<StateWait> {
    const snap = await conn.request<WaitResult & { states: string[]; seq: number }>('attach', { wait: id }, { retry: true });
    const w = new StateWait(conn, id, snap.states, [...snap.finished, ...snap.failed, ...snap.remaining], snap.seq, null);
    w.absorb(snap);
    return w;
  }

  private onPush(p: Push): void {
    if (p.wait !== this.id) return;
    if (p.type === 'done' || p.type === 'failed') {
      const node = p.node as string;
      if (this.settled.has(node)) return;
      this.settled.set(node, p.type);
    }
    if (p.type === 'progress' || p.type === 'done' || p.type === 'failed') {
      const { wait: _w, ...rest } = p;
      this.push(rest as unknown as WaitProgress);
    }
  }

  private push(u: WaitProgress): void {
    this.queue.push(u);
    this.wake?.();
  }

  /** After a reconnect: attach, and emit what happened while away. */
  private async reattach(): Promise<void> {
    if (this.ended) return;
    try {
      const snap = await this.conn.request<WaitResult & { seq: number }>('attach', { wait: this.id }, { retry: true });
      this.absorb(snap);
    } catch {
      // The next reconnect tries again; waitForState reports any lasting error.
    }
  }

  private absorb(snap: WaitResult & { seq: number }): void {
    this.noteCancelled(snap);
    for (const node of snap.finished) {
      if (!this.settled.has(node)) {
        this.settled.set(node, 'done');
        this.push({ type: 'done', node, seq: snap.seq });
      }
    }
    for (const node of snap.failed) {
      if (!this.settled.has(node)) {
        this.settled.set(node, 'failed');
        this.push({ type: 'failed', node, reason: snap.failures[node] ?? { code: 'TBFAILED' }, seq: snap.seq });
      }
    }
  }

  /**
   * Resolves when every node is done or failed, or after `timeout` seconds
   * with the results so far (0 or absent: no timeout). Call it repeatedly.
   */
  async waitForState(opts: { timeout?: number } = {}): Promise<WaitResult> {
    const r = await this.conn.request<WaitResult>('waitForState', { wait: this.id, timeout: opts.timeout ?? 0 }, { retry: true });
    this.noteCancelled(r);
    return { finished: r.finished, failed: r.failed, remaining: r.remaining, failures: r.failures ?? {} };
  }

  /** Stops waiting for one node; returns the nodes still pending. */
  async cancelWait(node: string): Promise<string[]> {
    const r = await this.conn.request<{ remaining: string[] }>('cancelWait', { wait: this.id, node }, { retry: true });
    if (!this.settled.has(node) && !r.remaining.includes(node)) this.cancelled(node);
    return r.remaining;
  }

  /** A node the daemon lists as neither finished, failed nor remaining was cancelled (here or by another client). */
  private noteCancelled(r: { finished: string[]; failed: string[]; remaining: string[] }): void {
    if (this.settled.size >= this.nodes.length) return;
    const known = new Set([...r.finished, ...r.failed, ...r.remaining]);
    for (const node of this.nodes) if (!known.has(node) && !this.settled.has(node)) this.cancelled(node);
  }

  /** Counts towards the end of progress(), which yields nothing for it (SPEC has no cancelled push). */
  private cancelled(node: string): void {
    this.settled.set(node, 'cancelled');
    this.wake?.();
  }

  /** What the daemon has recorded so far (the wait keeps running). */
  async snapshot(): Promise<WaitResult> {
    const r = await this.conn.request<WaitResult>('attach', { wait: this.id }, { retry: true });
    return { finished: r.finished, failed: r.failed, remaining: r.remaining, failures: r.failures ?? {} };
  }

  /** Deletes the wait in the daemon. */
  async endStateWait(): Promise<void> {
    this.ended = true;
    for (const u of this.unsubs) u();
    this.wake?.();
    await this.conn.request('endStateWait', { wait: this.id }, { retry: true });
  }

  /** Progress as it happens: progress, done and failed for each node, until every node is settled or the wait ends. */
  async *progress(): AsyncGenerator<WaitProgress> {
    for (;;) {
      while (this.queue.length > 0) yield this.queue.shift()!;
      if (this.ended || this.settled.size >= this.nodes.length) return;
      await new Promise<void>((r) => { this.wake = r; });
      this.wake = null;
    }
  }
}
