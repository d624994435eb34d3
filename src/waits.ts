/**
 * StateWait (SPEC §3): which nodes must pass which states, in order. Open
 * waits are indexed by node so an event costs only the waits that hold its
 * node; rows advance inside the batch transaction of the event that moves them.
 */
import type { Statement } from 'better-sqlite3';
import { REBOOTING } from './gatekeeper.ts';
import { describeFailure } from './reasons.ts';
import type { Store } from './store.ts';
import type { FailureReason, LoggedEvent, StatedEvent } from './types.ts';

export type WaitNodeStatus = 'pending' | 'done' | 'failed' | 'cancelled';

interface WaitNode {
  node: string;
  pos: number;
  status: WaitNodeStatus;
  seq: number | null;
  reason: FailureReason | null;
}

interface Wait {
  id: string;
  states: string[];
  /**
   * Per position, the alternatives of an entry written `A|B` (e.g.
   * `RELOADDONE|RELOADDONEV2`: a reload closes with either); null when no
   * entry has any, so the usual wait costs nothing more per event.
   */
  alts: (ReadonlySet<string> | null)[] | null;
  /** When it was registered (ms; stored since migration 009, older waits show their last attach). */
  created: number;
  startSeq: number;
  ttl: number;
  lastAttach: number;
  owner: string | null;
  nodes: Map<string, WaitNode>;
}

/** A push to a wait's listeners (SPEC §3 progress / done / failed). */
export type WaitUpdate =
  | { type: 'progress'; wait: string; node: string; state: string; remaining: string[]; seq: number }
  | { type: 'done'; wait: string; node: string; seq: number }
  | { type: 'failed'; wait: string; node: string; reason: FailureReason; seq: number };

export interface WaitSnapshot {
  wait: string;
  states: string[];
  seq: number;
  finished: string[];
  failed: string[];
  remaining: string[];
  failures: Record<string, FailureReason>;
}

/** TBFAILED eventtypes that fail every wait holding the node: the commands that bring it up. */
const FAILS_EVERY_WAIT = REBOOTING;

/** One open wait as `stated waits list` and GET /v1/waits show it. */
export interface WaitSummary {
  wait: string;
  states: string[];
  done: string[];
  /** `reason` as one readable line (BRIEF's shape, the dashboard's), `code` its FailureReason code. */
  failed: { node: string; reason: string; code: string }[];
  remaining: string[];
  owner: string | null;
  created: number;
  seq: number;
}

/** The alternatives of each `A|B` entry, or null when the list has none. */
function alternatives(states: readonly string[]): (ReadonlySet<string> | null)[] | null {
  if (!states.some((s) => s.includes('|'))) return null;
  return states.map((s) => (s.includes('|') ? new Set(s.split('|')) : null));
}

/** Is `state` one the wait still expects of a node at entry `pos` (an entry or one of its alternatives)? */
function awaits(w: { states: readonly string[]; alts?: readonly (ReadonlySet<string> | null)[] | null }, pos: number, state: string): boolean {
  for (let i = pos; i < w.states.length; i++) if (w.states[i] === state || w.alts?.[i]?.has(state)) return true;
  return false;
}

/** What onEvent returns for the usual event: no wait holds its node (no allocation per event). */
const NO_UPDATES: readonly WaitUpdate[] = Object.freeze([]);

export class Waits {
  private readonly byId = new Map<string, Wait>();
  /** node -> waits in which it is still pending. */
  private readonly byNode = new Map<string, Set<Wait>>();
  private readonly s: Record<string, Statement>;

  /** Reads its rows from the store's connection; writes through the store (recorded in the batch). */
  constructor(private readonly store: Store) {
    const p = (sql: string): Statement => store.db.prepare(sql);
    this.s = {
      allWaits: p('SELECT * FROM waits'),
      allNodes: p('SELECT * FROM wait_nodes'),
    };
  }

  /** Rebuilds the in-memory index from SQLite (on start and after a failed batch). */
  load(): void {
    this.byId.clear();
    this.byNode.clear();
    for (const r of this.s.allWaits!.all() as { wait_id: string; states: string; start_seq: number; ttl: number; last_attach: number; owner: string | null; created: number | null }[]) {
      const states: string[] = JSON.parse(r.states);
      this.byId.set(r.wait_id, {
        id: r.wait_id, states, alts: alternatives(states), created: r.created ?? r.last_attach, startSeq: r.start_seq, ttl: r.ttl,
        lastAttach: r.last_attach, owner: r.owner, nodes: new Map(),
      });
    }
    for (const r of this.s.allNodes!.all() as { wait_id: string; node: string; pos: number; status: WaitNodeStatus; seq: number | null; reason: string | null }[]) {
      const w = this.byId.get(r.wait_id);
      if (!w) continue;
      w.nodes.set(r.node, { node: r.node, pos: r.pos, status: r.status, seq: r.seq, reason: r.reason ? JSON.parse(r.reason) : null });
      if (r.status === 'pending') this.index(w, r.node);
    }
  }

  get size(): number {
    return this.byId.size;
  }

  has(id: string): boolean {
    return this.byId.has(id);
  }

  owner(id: string): string | null | undefined {
    return this.byId.get(id)?.owner;
  }

  private index(w: Wait, node: string): void {
    let set = this.byNode.get(node);
    if (!set) this.byNode.set(node, (set = new Set()));
    set.add(w);
  }

  private unindex(w: Wait, node: string): void {
    const set = this.byNode.get(node);
    if (!set) return;
    set.delete(w);
    if (set.size === 0) this.byNode.delete(node);
  }

  /** Opens a wait that counts events after startSeq (inside the batch). */
  create(id: string, states: string[], nodes: string[], startSeq: number, ttl: number, now: number, owner: string | null): void {
    const w: Wait = { id, states, alts: alternatives(states), created: now, startSeq, ttl, lastAttach: now, owner, nodes: new Map() };
    for (const node of nodes) {
      if (w.nodes.has(node)) continue;
      w.nodes.set(node, { node, pos: 0, status: 'pending', seq: null, reason: null });
      this.index(w, node);
    }
    this.store.insertWait(id, states, startSeq, ttl, now, owner, w.nodes.keys());
    this.byId.set(id, w);
  }

  /** Advances every wait holding the event's node; returns the pushes to make after commit. */
  onEvent(seq: number, e: StatedEvent): readonly WaitUpdate[] {
    if (e.objtype !== 'TBNODESTATE' && e.objtype !== 'TBFAILED') return NO_UPDATES;
    const set = this.byNode.get(e.objname);
    if (!set) return NO_UPDATES;
    const out: WaitUpdate[] = [];
    // No copy: settling a node deletes only the wait at hand from this set, which iteration allows.
    for (const w of set) {
      if (seq <= w.startSeq) continue;
      this.advance(w, w.nodes.get(e.objname)!, seq, e, out);
    }
    return out;
  }

  /**
   * Feeds one node's earlier events (oldest first) into a wait, as if it had
   * started before them: a wait that joined a reboot in progress counts from
   * the reboot's start (SPEC §3).
   */
  replay(id: string, node: string, events: readonly LoggedEvent[]): WaitUpdate[] {
    const w = this.byId.get(id);
    const wn = w?.nodes.get(node);
    const out: WaitUpdate[] = [];
    if (!w || !wn) return out;
    for (const le of events) {
      if (wn.status !== 'pending') break;
      if (le.event.objtype === 'TBNODESTATE' || le.event.objtype === 'TBFAILED') this.advance(w, wn, le.seq, le.event, out);
    }
    return out;
  }

  /** One event for one pending node of one wait (SPEC §3 wait semantics). */
  private advance(w: Wait, wn: WaitNode, seq: number, e: StatedEvent, out: WaitUpdate[]): void {
    const expected = w.states[wn.pos];
    if (e.objtype === 'TBFAILED') {
      // Only a failure of what brings the node up, or of a state still awaited, ends the wait
      // for it: a failed POWEROFF says nothing about an ISUP wait (StateWait.pm's subscription).
      if (!FAILS_EVERY_WAIT.has(e.eventtype) && !awaits(w, wn.pos, e.eventtype)) return;
      const reason: FailureReason = e.reason ?? { code: 'TBFAILED', message: e.message ?? `${e.eventtype} failed` };
      this.fail(w, wn, seq, reason, out);
      return;
    }
    if (expected !== e.eventtype && !w.alts?.[wn.pos]?.has(e.eventtype)) {
      // The node itself says it failed to boot (NORMALv2 TBSETUP -> TBFAILED, "BootFail"):
      // no wait holding it will see its states come.
      if (e.eventtype === 'TBFAILED') {
        this.fail(w, wn, seq, { code: 'NODE_TBFAILED', ...(e.mode === undefined ? {} : { mode: e.mode }), state: 'TBFAILED' }, out);
      }
      return;
    }
    wn.pos++;
    if (wn.pos === w.states.length) {
      this.settle(w, wn, 'done', seq, null);
      out.push({ type: 'done', wait: w.id, node: wn.node, seq });
    } else {
      this.store.updateWaitNode(w.id, wn.node, wn.pos, 'pending', null, null);
      out.push({ type: 'progress', wait: w.id, node: wn.node, state: e.eventtype, remaining: w.states.slice(wn.pos), seq });
    }
  }

  private fail(w: Wait, wn: WaitNode, seq: number, reason: FailureReason, out: WaitUpdate[]): void {
    this.settle(w, wn, 'failed', seq, reason);
    out.push({ type: 'failed', wait: w.id, node: wn.node, reason, seq });
  }

  private settle(w: Wait, wn: WaitNode, status: WaitNodeStatus, seq: number | null, reason: FailureReason | null): void {
    wn.status = status;
    wn.seq = seq;
    wn.reason = reason;
    this.store.updateWaitNode(w.id, wn.node, wn.pos, status, seq, reason);
    this.unindex(w, wn.node);
  }

  /** Stops waiting for one node; returns the nodes still pending. */
  cancel(id: string, node: string): string[] | null {
    const w = this.byId.get(id);
    if (!w) return null;
    const wn = w.nodes.get(node);
    if (wn && wn.status === 'pending') this.settle(w, wn, 'cancelled', null, null);
    return this.snapshot(id, 0)!.remaining;
  }

  /** Deletes a wait. */
  end(id: string): boolean {
    const w = this.byId.get(id);
    if (!w) return false;
    for (const node of w.nodes.keys()) this.unindex(w, node);
    this.byId.delete(id);
    this.store.deleteWait(id);
    return true;
  }

  /** Records an attach (restarting the ttl). */
  touch(id: string, now: number): void {
    const w = this.byId.get(id);
    if (!w) return;
    w.lastAttach = now;
    this.store.touchWait(id, now);
  }

  snapshot(id: string, seq: number): WaitSnapshot | null {
    const w = this.byId.get(id);
    if (!w) return null;
    const snap: WaitSnapshot = { wait: id, states: w.states, seq, finished: [], failed: [], remaining: [], failures: {} };
    for (const wn of w.nodes.values()) {
      if (wn.status === 'done') snap.finished.push(wn.node);
      else if (wn.status === 'failed') {
        snap.failed.push(wn.node);
        if (wn.reason) snap.failures[wn.node] = wn.reason;
      } else if (wn.status === 'pending') snap.remaining.push(wn.node);
    }
    return snap;
  }

  /** Every open wait that `visible` accepts (given the wait's nodes), oldest first. */
  list(visible: (nodes: Iterable<string>) => boolean = () => true): WaitSummary[] {
    const out: WaitSummary[] = [];
    for (const w of this.byId.values()) {
      if (!visible(w.nodes.keys())) continue;
      const s: WaitSummary = { wait: w.id, states: w.states, done: [], failed: [], remaining: [], owner: w.owner, created: w.created, seq: w.startSeq };
      for (const wn of w.nodes.values()) {
        if (wn.status === 'done') s.done.push(wn.node);
        else if (wn.status === 'failed') s.failed.push({ node: wn.node, reason: describeFailure(wn.reason), code: wn.reason?.code ?? 'TBFAILED' });
        else if (wn.status === 'pending') s.remaining.push(wn.node);
      }
      out.push(s);
    }
    return out.sort((a, b) => a.created - b.created || a.seq - b.seq);
  }

  /** Waits whose ttl ran out (checked by a periodic sweep, never per event). */
  expired(now: number): string[] {
    const out: string[] = [];
    for (const w of this.byId.values()) if (now - w.lastAttach > w.ttl * 1000) out.push(w.id);
    return out;
  }
}
