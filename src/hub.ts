/**
 * Subscriptions (SPEC §3 `subscribe`): replay from the event log after
 * `since`, then live, through one cursor per subscription so the seam has
 * no gap and no duplicate. Subscriptions are indexed by node name, so an
 * event costs only the subscribers that can match it.
 */
import { StatedError } from './errors.ts';
import type { Store } from './store.ts';
import type { LoggedEvent, StatedEvent } from './types.ts';

/** A connection as the hub sees it. */
export interface Peer {
  /** Sends one text frame. */
  send(text: string): void;
  /** Bytes queued but not yet written. */
  buffered(): number;
  close(code: number, reason: string): void;
}

export interface Filter {
  objtype?: string[];
  objname?: string[];
  eventtype?: string[];
}

interface Sub {
  id: string;
  peer: Peer;
  objtype: Set<string> | null;
  objname: Set<string> | null;
  eventtype: Set<string> | null;
  /** Extra gate from authorization (a user's project). */
  allow: (e: StatedEvent) => boolean;
  cursor: number;
  live: boolean;
  lastSent: number;
}

export interface HubOptions {
  /** Bytes a subscriber may have queued before it is dropped. */
  maxBuffered: number;
  /** Idle time after which a subscription gets a heartbeat, ms. */
  heartbeatMs: number;
  /** Events read from the log per replay step. */
  replayChunk: number;
}

const SLOW_CLOSE = 4008;

export class Hub {
  private readonly subs = new Map<string, Sub>();
  private readonly byName = new Map<string, Set<Sub>>();
  private readonly anyName = new Set<Sub>();
  private nextId = 1;

  constructor(
    private readonly store: Store,
    private readonly currentSeq: () => number,
    private readonly opts: HubOptions,
    private readonly clock: () => number = Date.now,
  ) {}

  get size(): number {
    return this.subs.size;
  }

  /** Opens a subscription; replay (if `since` is given) starts right after the reply is sent. */
  subscribe(peer: Peer, filter: Filter, since: number | undefined, allow: (e: StatedEvent) => boolean = () => true): { sub: string; start: () => void } {
    const trimmed = Number(this.store.getMeta('trimmed_through') ?? '0');
    if (since !== undefined && since < trimmed) {
      throw new StatedError('E_HISTORY_COMPACTED', `events up to seq ${trimmed} are no longer retained; resubscribe with since >= ${trimmed} or without since`);
    }
    const now = this.currentSeq();
    const sub: Sub = {
      id: `s${this.nextId++}`,
      peer,
      objtype: filter.objtype ? new Set(filter.objtype) : null,
      objname: filter.objname ? new Set(filter.objname) : null,
      eventtype: filter.eventtype ? new Set(filter.eventtype) : null,
      allow,
      cursor: since === undefined ? now : Math.min(since, now),
      live: since === undefined || since >= now,
      lastSent: this.clock(),
    };
    this.subs.set(sub.id, sub);
    if (sub.objname) {
      for (const name of sub.objname) {
        let set = this.byName.get(name);
        if (!set) this.byName.set(name, (set = new Set()));
        set.add(sub);
      }
    } else this.anyName.add(sub);
    return { sub: sub.id, start: () => { if (!sub.live) this.replay(sub); } };
  }

  unsubscribe(id: string, peer?: Peer): boolean {
    const sub = this.subs.get(id);
    if (!sub || (peer && sub.peer !== peer)) return false;
    this.subs.delete(id);
    if (sub.objname) {
      for (const name of sub.objname) {
        const set = this.byName.get(name);
        set?.delete(sub);
        if (set?.size === 0) this.byName.delete(name);
      }
    } else this.anyName.delete(sub);
    return true;
  }

  /** Forgets every subscription of a closed connection. */
  dropPeer(peer: Peer): void {
    for (const sub of [...this.subs.values()]) if (sub.peer === peer) this.unsubscribe(sub.id);
  }

  /** Pushes committed events to live subscribers. */
  publish(events: LoggedEvent[]): void {
    if (this.subs.size === 0) return;
    for (const le of events) {
      const named = this.byName.get(le.event.objname);
      if (this.anyName.size === 0 && !named) continue;
      let json: string | null = null;
      const deliver = (sub: Sub): void => {
        if (!sub.live || le.seq <= sub.cursor || !this.matches(sub, le.event)) return;
        json ??= JSON.stringify(le.event);
        this.sendEvent(sub, le, json);
      };
      for (const sub of this.anyName) deliver(sub);
      if (named) for (const sub of named) deliver(sub);
    }
  }

  private matches(sub: Sub, e: StatedEvent): boolean {
    return (!sub.objtype || sub.objtype.has(e.objtype))
      && (!sub.objname || sub.objname.has(e.objname))
      && (!sub.eventtype || sub.eventtype.has(e.eventtype))
      && sub.allow(e);
  }

  private sendEvent(sub: Sub, le: LoggedEvent, json: string): void {
    sub.cursor = le.seq;
    sub.lastSent = this.clock();
    sub.peer.send(`{"type":"event","sub":"${sub.id}","seq":${le.seq},"time":${le.time},"event":${json}}`);
    if (sub.peer.buffered() > this.opts.maxBuffered) this.dropSlow(sub);
  }

  private dropSlow(sub: Sub): void {
    // The client resumes with since = the last seq it processed (SPEC §3).
    this.dropPeer(sub.peer);
    sub.peer.close(SLOW_CLOSE, `E_SLOW_CONSUMER: last seq sent ${sub.cursor}`);
  }

  /** Reads the log in chunks until the cursor reaches the head, then goes live. */
  private replay(sub: Sub): void {
    if (!this.subs.has(sub.id)) return;
    if (sub.peer.buffered() > this.opts.maxBuffered / 2) {
      setTimeout(() => this.replay(sub), 20);
      return;
    }
    const rows = this.store.eventsAfter(sub.cursor, this.opts.replayChunk);
    // Retention may have trimmed past the cursor since the subscribe or the last
    // chunk (trims commit on the writer thread meanwhile), even the whole rest of
    // the log. trimmed_through moves in the trim's own transaction, so read after
    // the rows it tells whether they are whole: say so, never skip.
    // Only this subscription ends: the connection may carry waits and other subscriptions.
    if (Number(this.store.getMeta('trimmed_through') ?? '0') > sub.cursor) {
      this.unsubscribe(sub.id);
      const error = { code: 'E_HISTORY_COMPACTED', message: `events after seq ${sub.cursor} were trimmed during the replay; subscribe again` };
      sub.peer.send(JSON.stringify({ type: 'ended', sub: sub.id, error }));
      return;
    }
    for (const le of rows) {
      if (this.matches(sub, le.event)) this.sendEvent(sub, le, JSON.stringify(le.event));
      else sub.cursor = le.seq;
      if (!this.subs.has(sub.id)) return;
    }
    // The read may already see batches whose commit has not been reported yet
    // (writer.ts); publish() skips what the cursor passed, so no duplicate and no gap.
    if (rows.length < this.opts.replayChunk) sub.live = true;
    else setImmediate(() => this.replay(sub));
  }

  /** Tells idle subscribers where the log stands, so they can tell silence from a dead link. */
  heartbeat(): void {
    const now = this.clock();
    const seq = this.currentSeq();
    for (const sub of this.subs.values()) {
      if (now - sub.lastSent < this.opts.heartbeatMs) continue;
      sub.lastSent = now;
      // A replaying subscription has been sent only up to its cursor.
      sub.peer.send(`{"type":"heartbeat","sub":"${sub.id}","seq":${sub.live ? seq : sub.cursor}}`);
    }
  }
}
