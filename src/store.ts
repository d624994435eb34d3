/**
 * The database: migrations, prepared statements and the batch transaction.
 * SQLite is the truth; the daemon's in-memory indexes are rebuilt from it
 * after any crash. This module knows no sockets and no rules.
 */
import Database from 'better-sqlite3';
import type { Database as Db, Statement } from 'better-sqlite3';
import m001 from '../migrations/001_schema.sql';
import m002 from '../migrations/002_emulab_defaults.sql';
import m003 from '../migrations/003_waits.sql';
import m004 from '../migrations/004_audit.sql';
import m005 from '../migrations/005_event_chain.sql';
import m006 from '../migrations/006_node_indexes.sql';
import { sqliteNativeBinding } from './native.ts';
import type { LoggedEvent, MachineDefinition, NodeState, OneShotTrigger, StatedEvent } from './types.ts';
import { NO_REBOOT } from './types.ts';

/** Numbered migrations, applied in order; PRAGMA user_version records the last one. */
export const MIGRATIONS: readonly string[] = [m001, m002, m003, m004, m005, m006];

export interface StoreOptions {
  /** SQLite's synchronous pragma: FULL survives power loss, NORMAL only process crashes. */
  synchronous?: 'FULL' | 'NORMAL';
}

interface NodeRow {
  node_id: string; type: string; project: string | null; op_mode: string; state: string | null;
  since: number; next_mode: string | null; prev_mode: string | null; timeout_at: number | null;
  timeout_action: string | null; timeout_mode: string | null; timeout_state: string | null; reboot: string | null;
}
export interface AuditRecord { id: number; time: number; actor: string; role: string; action: string; detail: unknown }
interface EventRow { seq: number; time: number; objtype: string; objname: string; eventtype: string; cid: string | null; extra: string | null }

export class Store {
  readonly db: Db;
  private readonly s: Record<string, Statement>;
  /** objname -> its latest seq: where history starts following `prev` (migration 005). */
  private heads = new Map<string, number>();

  constructor(path: string, opts: StoreOptions = {}) {
    const binding = sqliteNativeBinding();
    this.db = binding ? new Database(path, { nativeBinding: binding as never }) : new Database(path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma(`synchronous = ${opts.synchronous ?? 'FULL'}`);
    this.db.pragma('foreign_keys = ON');
    this.db.pragma('busy_timeout = 5000');
    this.migrate();
    const p = (sql: string): Statement => this.db.prepare(sql);
    this.s = {
      insertEvent: p('INSERT INTO events (seq, time, objtype, objname, eventtype, cid, extra, prev) VALUES (?, ?, ?, ?, ?, ?, ?, ?)'),
      findCid: p('SELECT seq FROM events WHERE cid = ?'),
      maxSeq: p('SELECT coalesce(max(seq), 0) AS seq FROM events'),
      minSeq: p('SELECT min(seq) AS seq FROM events'),
      eventsAfter: p('SELECT * FROM events WHERE seq > ? ORDER BY seq LIMIT ?'),
      history: p(`WITH RECURSIVE h(seq, n) AS (
          SELECT ?, 1 UNION ALL SELECT e.prev, h.n + 1 FROM h JOIN events e ON e.seq = h.seq WHERE e.prev IS NOT NULL AND h.n < ?)
        SELECT events.* FROM h JOIN events ON events.seq = h.seq ORDER BY events.seq DESC`),
      chainHeads: p("SELECT objname, max(seq) AS seq FROM events WHERE objname NOT LIKE '%,%' GROUP BY objname"),
      // Positional: binding 13 named parameters cost more than the row write itself.
      upsertNode: p(`INSERT INTO nodes (node_id, type, project, op_mode, state, since, next_mode, prev_mode,
          timeout_at, timeout_action, timeout_mode, timeout_state, reboot)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT(node_id) DO UPDATE SET type=excluded.type, project=excluded.project, op_mode=excluded.op_mode,
          state=excluded.state, since=excluded.since, next_mode=excluded.next_mode, prev_mode=excluded.prev_mode,
          timeout_at=excluded.timeout_at, timeout_action=excluded.timeout_action, timeout_mode=excluded.timeout_mode,
          timeout_state=excluded.timeout_state, reboot=excluded.reboot`),
      deleteNode: p('DELETE FROM nodes WHERE node_id = ?'),
      allNodes: p('SELECT * FROM nodes'),
      allTriggers: p('SELECT node_id, op_mode, state, triggers FROM node_triggers'),
      clearTriggers: p('DELETE FROM node_triggers WHERE node_id = ?'),
      insertTrigger: p('INSERT OR REPLACE INTO node_triggers (node_id, op_mode, state, triggers) VALUES (?, ?, ?, ?)'),
      getMeta: p('SELECT value FROM meta WHERE key = ?'),
      setMeta: p('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value'),
      audit: p('INSERT INTO audit (time, actor, role, action, detail) VALUES (?, ?, ?, ?, ?)'),
      auditList: p('SELECT * FROM audit WHERE id > ? ORDER BY id DESC LIMIT ?'),
      trimBefore: p('DELETE FROM events WHERE seq IN (SELECT seq FROM events WHERE seq <= ? ORDER BY seq LIMIT ?)'),
      lastBefore: p('SELECT coalesce(max(seq), 0) AS seq FROM events WHERE time < ?'),
    };
    this.loadChainHeads();
  }

  private migrate(): void {
    const have = this.db.pragma('user_version', { simple: true }) as number;
    for (let v = have; v < MIGRATIONS.length; v++) {
      // Each migration and its version bump commit together, so a crash mid-way re-runs it whole.
      this.db.transaction(() => {
        this.db.exec(MIGRATIONS[v]!);
        this.db.pragma(`user_version = ${v + 1}`);
      })();
    }
  }

  /** Runs fn in one transaction (the batch); better-sqlite3 transactions are synchronous. */
  transaction<T>(fn: () => T): T {
    try {
      return this.db.transaction(fn)();
    } catch (err) {
      this.loadChainHeads(); // rolled back: heads the batch moved point at rows that are gone
      throw err;
    }
  }

  close(): void {
    this.db.close();
  }

  // --- events ---------------------------------------------------------------

  maxSeq(): number {
    return (this.s.maxSeq!.get() as { seq: number }).seq;
  }

  /** The lowest seq still retained, or null for an empty log. */
  minSeq(): number | null {
    return (this.s.minSeq!.get() as { seq: number | null }).seq;
  }

  insertEvent(seq: number, time: number, e: StatedEvent): void {
    // A multi-node command ("pc1,pc2") is nobody's history: no chain, no head to keep.
    const chained = !e.objname.includes(',');
    this.s.insertEvent!.run(seq, time, e.objtype, e.objname, e.eventtype, e.id ?? null, extraOf(e), chained ? this.heads.get(e.objname) ?? null : null);
    if (chained) this.heads.set(e.objname, seq);
  }

  private loadChainHeads(): void {
    this.heads = new Map();
    for (const r of this.s.chainHeads!.all() as { objname: string; seq: number }[]) this.heads.set(r.objname, r.seq);
  }

  seqForClientId(cid: string): number | null {
    const row = this.s.findCid!.get(cid) as { seq: number } | undefined;
    return row ? row.seq : null;
  }

  eventsAfter(seq: number, limit: number): LoggedEvent[] {
    return (this.s.eventsAfter!.all(seq, limit) as EventRow[]).map(eventOf);
  }

  history(node: string, limit: number): LoggedEvent[] {
    const head = this.heads.get(node);
    return head === undefined ? [] : (this.s.history!.all(head, limit) as EventRow[]).map(eventOf);
  }

  /**
   * Deletes up to `limit` of the oldest events, never past seq `through`
   * and only from the low end, so what remains is always one unbroken run.
   */
  trim(through: number, limit: number): number {
    return this.s.trimBefore!.run(through, limit).changes;
  }

  /** The last seq logged before `time` (0 if none). */
  lastSeqBefore(time: number): number {
    return (this.s.lastBefore!.get(time) as { seq: number }).seq;
  }

  /** Records who did what (inside the batch of the act itself). */
  audit(time: number, actor: { id: string; role: string }, action: string, detail: unknown): void {
    this.s.audit!.run(time, actor.id, actor.role, action, detail === undefined ? null : JSON.stringify(detail));
  }

  /** The newest audit records after id `after`, newest first. */
  auditList(after: number, limit: number): AuditRecord[] {
    return (this.s.auditList!.all(after, limit) as (Omit<AuditRecord, 'detail'> & { detail: string | null })[])
      .map((r) => ({ ...r, detail: r.detail === null ? null : JSON.parse(r.detail) }));
  }

  getMeta(key: string): string | null {
    const row = this.s.getMeta!.get(key) as { value: string } | undefined;
    return row ? row.value : null;
  }

  setMeta(key: string, value: string): void {
    this.s.setMeta!.run(key, value);
  }

  // --- nodes ----------------------------------------------------------------

  loadNodes(): NodeState[] {
    const triggers = new Map<string, OneShotTrigger[]>();
    for (const t of this.s.allTriggers!.all() as { node_id: string; op_mode: string; state: string; triggers: string }[]) {
      const list = triggers.get(t.node_id) ?? [];
      list.push({ mode: t.op_mode, state: t.state, triggers: t.triggers });
      triggers.set(t.node_id, list);
    }
    return (this.s.allNodes!.all() as NodeRow[]).map((r) => ({
      id: r.node_id,
      type: r.type,
      project: r.project,
      mode: r.op_mode,
      state: r.state,
      since: r.since,
      nextMode: r.next_mode,
      prevMode: r.prev_mode,
      timeout: r.timeout_at === null ? null
        : { at: r.timeout_at, action: r.timeout_action ?? '', mode: r.timeout_mode ?? '', state: r.timeout_state ?? '' },
      reboot: r.reboot ? JSON.parse(r.reboot) : NO_REBOOT,
      triggers: triggers.get(r.node_id) ?? [],
    }));
  }

  saveNode(n: NodeState): void {
    const t = n.timeout;
    const idle = n.reboot === NO_REBOOT || (n.reboot.command === null && n.reboot.attempts === 0);
    this.s.upsertNode!.run(n.id, n.type, n.project, n.mode, n.state, n.since, n.nextMode, n.prevMode,
      t ? t.at : null, t ? t.action : null, t ? t.mode : null, t ? t.state : null, idle ? null : JSON.stringify(n.reboot));
  }

  saveTriggers(n: NodeState): void {
    this.s.clearTriggers!.run(n.id);
    for (const t of n.triggers) this.s.insertTrigger!.run(n.id, t.mode, t.state, t.triggers);
  }

  deleteNode(id: string): void {
    this.s.deleteNode!.run(id);
  }

  // --- definitions ----------------------------------------------------------

  loadDefinition(): MachineDefinition {
    const all = (sql: string): never[] => this.db.prepare(sql).all() as never[];
    return {
      state_transitions: all('SELECT op_mode, state1, state2, label FROM state_transitions'),
      state_timeouts: all('SELECT op_mode, state, timeout, action FROM state_timeouts'),
      state_triggers: all('SELECT node_id, op_mode, state, triggers FROM state_triggers'),
      mode_transitions: all('SELECT op_mode1, state1, op_mode2, state2, label FROM mode_transitions'),
    };
  }

  /** Replaces all four definition tables (call inside a transaction). */
  replaceDefinition(d: MachineDefinition): void {
    for (const t of ['state_transitions', 'state_timeouts', 'state_triggers', 'mode_transitions']) this.db.exec(`DELETE FROM ${t}`);
    const ins = (sql: string, rows: object[]): void => {
      const st = this.db.prepare(sql);
      for (const r of rows) st.run(r);
    };
    ins('INSERT INTO state_transitions VALUES (@op_mode, @state1, @state2, @label)', d.state_transitions);
    ins('INSERT INTO state_timeouts VALUES (@op_mode, @state, @timeout, @action)', d.state_timeouts);
    ins('INSERT INTO state_triggers VALUES (@node_id, @op_mode, @state, @triggers)', d.state_triggers);
    ins('INSERT INTO mode_transitions VALUES (@op_mode1, @state1, @op_mode2, @state2, @label)', d.mode_transitions);
  }
}

function extraOf(e: StatedEvent): string | null {
  if (e.mode === undefined && e.valid === undefined && e.message === undefined && e.reason === undefined) return null;
  return JSON.stringify({ mode: e.mode, valid: e.valid, message: e.message, reason: e.reason });
}

function eventOf(r: EventRow): LoggedEvent {
  const event: StatedEvent = { objtype: r.objtype, objname: r.objname, eventtype: r.eventtype };
  if (r.cid !== null) event.id = r.cid;
  if (r.extra !== null) Object.assign(event, JSON.parse(r.extra));
  return { seq: r.seq, time: r.time, event };
}
