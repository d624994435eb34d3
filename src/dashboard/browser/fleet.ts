/**
 * What the page knows of the fleet: the nodes (from GET /v1/nodes, then the
 * event stream, then `status` for the fields events do not carry), counts per
 * state, the nodes being rebooted and those with a pending timeout, and the
 * recent TBFAILED and NOTIFY events. No DOM here: the renderer reads the
 * dirty sets once per animation frame, however many events came in between.
 */
import type { FailureReason, StatedEvent } from '../../types.ts';
import type { NodeView } from '../../views.ts';

export interface Failure { seq: number; time: number; node: string; command: string; reason?: FailureReason; message?: string }
export interface Note { seq: number; time: number; node: string; code: string; message: string }

/** Recent TBFAILED and NOTIFY events kept (newest first). */
export const RECENT = 50;

export class Fleet {
  readonly nodes = new Map<string, NodeView>();
  /** Per node, the seq of the last event applied to its state: a `status` reply read before it is older. */
  private readonly eventSeq = new Map<string, number>();
  readonly counts = new Map<string, number>();
  /** Nodes stated is rebooting (a command not given up), and nodes with a pending timeout. */
  readonly rebooting = new Set<string>();
  readonly timed = new Set<string>();
  failures: Failure[] = [];
  notes: Note[] = [];
  /** The seq GET /v1/nodes was read at: events up to it are already in the nodes. */
  snapshotSeq = 0;
  /** The last seq received: where a resumed subscription starts. */
  lastSeq = 0;

  // What changed since the last frame.
  readonly redraw = new Set<string>();
  /** Nodes whose other fields (timeout, reboot) must be read again with `status`. */
  readonly stale = new Set<string>();
  /** Nodes came or went: the grid's order and the filters' choices change. */
  structure = true;
  panels = true;
  lists = true;
  /** Told when a node's reboot goes to its next attempt (a retry), with the node's type. */
  onRetry: (type: string) => void = () => {};

  /** Replaces everything with a snapshot of GET /v1/nodes. */
  load(seq: number, views: readonly NodeView[]): void {
    this.nodes.clear();
    this.eventSeq.clear();
    this.counts.clear();
    this.rebooting.clear();
    this.timed.clear();
    this.stale.clear();
    for (const v of views) this.put(v);
    this.snapshotSeq = seq;
    this.lastSeq = seq;
    this.structure = this.panels = true;
  }

  private count(state: string | null, by: number): void {
    const k = state ?? '-';
    const n = (this.counts.get(k) ?? 0) + by;
    if (n > 0) this.counts.set(k, n);
    else this.counts.delete(k);
  }

  /** Stores a node view, keeping the counts and the reboot and timeout sets in step. */
  private put(v: NodeView): void {
    const old = this.nodes.get(v.node);
    if (old) {
      this.count(old.state, -1);
      if (v.reboot.command !== null && v.reboot.attempts > 1 && v.reboot.attempts > old.reboot.attempts) this.onRetry(v.type);
    } else this.structure = true;
    this.nodes.set(v.node, v);
    this.count(v.state, 1);
    if (v.reboot.command !== null && !v.reboot.gaveUp) this.rebooting.add(v.node);
    else this.rebooting.delete(v.node);
    if (v.timeout) this.timed.add(v.node);
    else this.timed.delete(v.node);
    this.redraw.add(v.node);
    this.panels = true;
  }

  /** Forgets a node that is gone (removed from the inventory). */
  remove(id: string): void {
    const old = this.nodes.get(id);
    if (!old) return;
    this.count(old.state, -1);
    this.nodes.delete(id);
    this.eventSeq.delete(id);
    this.rebooting.delete(id);
    this.timed.delete(id);
    this.stale.delete(id);
    this.structure = this.panels = true;
  }

  /**
   * Applies one event of the subscription; returns the nodes it concerns.
   * Events at or before the snapshot (a replay of the recent past) only feed
   * the TBFAILED and notification lists: the snapshot already holds them.
   */
  event(seq: number, time: number, e: StatedEvent): string[] {
    if (seq > this.lastSeq) this.lastSeq = seq;
    const current = seq > this.snapshotSeq;
    if (e.objtype === 'TBFAILED') {
      this.failures = [{ seq, time, node: e.objname, command: e.eventtype, ...(e.reason ? { reason: e.reason } : {}), ...(e.message ? { message: e.message } : {}) }, ...this.failures.slice(0, RECENT - 1)];
      this.lists = true;
    } else if (e.objtype === 'NOTIFY') {
      this.notes = [{ seq, time, node: e.objname, code: e.eventtype, message: e.message ?? '' }, ...this.notes.slice(0, RECENT - 1)];
      this.lists = true;
    }
    const ids = e.objtype === 'TBCOMMAND' ? e.objname.split(',') : [e.objname];
    if (!current) return ids;
    for (const id of ids) {
      const n = this.nodes.get(id);
      // A node the page has not seen (added since the snapshot): `status` brings it.
      if (!n) {
        this.stale.add(id);
        continue;
      }
      if (e.objtype === 'TBNODESTATE') {
        this.put({ ...n, state: e.eventtype, mode: e.mode ?? n.mode, since: time });
        this.eventSeq.set(id, seq);
      } else if (e.objtype === 'TBNODEOPMODE') {
        this.put({ ...n, mode: e.eventtype });
        this.eventSeq.set(id, seq);
      }
      this.stale.add(id);
    }
    return ids;
  }

  /** Applies a `status` reply read at `seq`. */
  status(seq: number, views: readonly NodeView[]): void {
    for (const v of views) {
      const n = this.nodes.get(v.node);
      const last = this.eventSeq.get(v.node) ?? 0;
      if (n && last > seq) {
        // Read before an event the page already applied: keep that event's state, ask again.
        this.put({ ...v, state: n.state, mode: n.mode, since: n.since });
        this.stale.add(v.node);
      } else this.put(v);
    }
  }

  /** The distinct values of a field, for the filters' choices. */
  values(field: 'project' | 'type' | 'mode' | 'state'): string[] {
    const s = new Set<string>();
    for (const n of this.nodes.values()) s.add(n[field] ?? '-');
    return [...s].sort();
  }
}
