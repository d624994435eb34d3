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
import m007 from '../migrations/007_phase_from.sql';
import m008 from '../migrations/008_stats_index.sql';
import m009 from '../migrations/009_wait_created.sql';
import { sqliteNativeBinding } from './native.ts';
import { OP, type Ops, type Param, WriteApplier } from './writes.ts';
import type { FailureReason, LoggedEvent, MachineDefinition, NodeState, OneShotTrigger, StatedEvent } from './types.ts';
import { NO_REBOOT } from './types.ts';

/** Numbered migrations, applied in order; PRAGMA user_version records the last one. */
export const MIGRATIONS: readonly string[] = [m001, m002, m003, m004, m005, m006, m007, m008, m009];

export interface StoreOptions {
  /** SQLite's synchronous pragma: FULL survives power loss, NORMAL only process crashes. */
  synchronous?: 'FULL' | 'NORMAL';
}

interface NodeRow {
  node_id: string; type: string; project: string | null; op_mode: string; state: string | null;
  since: number; next_mode: string | null; prev_mode: string | null; timeout_at: number | null;
  timeout_action: string | null; timeout_mode: string | null; timeout_state: string | null; reboot: string | null;
  phase_from: string | null;
}
export interface AuditRecord { id: number; time: number; actor: string; role: string; action: string; detail: unknown }
interface EventRow { seq: number; time: number; objtype: string; objname: string; eventtype: string; cid: string | null; extra: string | null }

/** One batch's recorded writes, for the writer thread. */
export interface RecordedBatch {
  ops: Ops;
  /** Client ids the batch logs: answered from memory until it commits. */
  cids: string[];
}

export class Store {
  readonly db: Db;
  private readonly s: Record<string, Statement>;
  /** objname -> its latest seq: where history starts following `prev` (migration 005). */
  private heads = new Map<string, number>();
  private readonly applier: WriteApplier;
  /**
   * Writes since record() (writes.ts ops). Outside recording each write is
   * applied at once on this connection, so reads inside a job see it.
   */
  private ops: Ops = [];
  private recording = false;
  private cids: string[] = [];
  /** Client ids of recorded batches that have not committed yet -> their seq. */
  private readonly pendingCids = new Map<string, number>();

  constructor(path: string, opts: StoreOptions = {}) {
    this.db = new Database(path, { nativeBinding: sqliteNativeBinding() as never });
    this.db.pragma('journal_mode = WAL');
    this.db.pragma(`synchronous = ${opts.synchronous ?? 'FULL'}`);
    this.db.pragma('foreign_keys = ON');
    this.db.pragma('busy_timeout = 5000');
    this.migrate();
    const p = (sql: string): Statement => this.db.prepare(sql);
    this.s = {
      findCid: p('SELECT seq FROM events WHERE cid = ?'),
      maxSeq: p('SELECT coalesce(max(seq), 0) AS seq FROM events'),
      minSeq: p('SELECT min(seq) AS seq FROM events'),
      eventsAfter: p('SELECT * FROM events WHERE seq > ? ORDER BY seq LIMIT ?'),
      history: p(`WITH RECURSIVE h(seq, n) AS (
          SELECT ?, 1 UNION ALL SELECT e.prev, h.n + 1 FROM h JOIN events e ON e.seq = h.seq WHERE e.prev IS NOT NULL AND h.n < ?)
        SELECT events.* FROM h JOIN events ON events.seq = h.seq ORDER BY events.seq DESC`),
      // The node's chain back to (not past) a seq: a joined reboot's events, without walking all its history.
      historyAfter: p(`WITH RECURSIVE h(seq, n) AS (
          SELECT ?, 1 UNION ALL SELECT e.prev, h.n + 1 FROM h JOIN events e ON e.seq = h.seq WHERE e.prev > ? AND h.n < ?)
        SELECT events.* FROM h JOIN events ON events.seq = h.seq WHERE events.seq > ? ORDER BY events.seq`),
      chainHeads: p("SELECT objname, max(seq) AS seq FROM events WHERE objname NOT LIKE '%,%' GROUP BY objname"),
      allNodes: p('SELECT * FROM nodes'),
      allTriggers: p('SELECT node_id, op_mode, state, triggers FROM node_triggers'),
      getMeta: p('SELECT value FROM meta WHERE key = ?'),
      auditList: p('SELECT * FROM audit WHERE id > ? ORDER BY id DESC LIMIT ?'),
      lastBefore: p('SELECT coalesce(max(seq), 0) AS seq FROM events WHERE time < ?'),
      // The WHERE is migration 008's, word for word: that is what lets SQLite read the partial index alone.
      statsEvents: p(`SELECT * FROM events INDEXED BY events_stats
        WHERE ((objtype = 'TBNODESTATE' AND eventtype IN ('SHUTDOWN', 'ISUP')) OR objtype = 'TBFAILED'
          OR (objtype = 'NOTIFY' AND eventtype = 'REBOOT_RETRY')) ORDER BY seq`),
    };
    this.applier = new WriteApplier(this.db);
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
      this.rolledBack();
      throw err;
    }
  }

  /** Memory that follows the log, re-read after a batch was lost (its rows never landed). */
  rolledBack(): void {
    this.loadChainHeads();
    this.ops = [];
    this.cids = [];
    this.pendingCids.clear();
    this.recording = false;
  }

  /** From now on writes are recorded, not applied: the batch goes to the writer thread. */
  record(): void {
    this.recording = true;
  }

  /** Ends recording; returns what was recorded since record(). */
  takeBatch(): RecordedBatch {
    const batch = { ops: this.ops, cids: this.cids };
    this.ops = [];
    this.cids = [];
    this.recording = false;
    return batch;
  }

  /** A recorded batch committed: its client ids are in the table now. */
  committed(batch: RecordedBatch): void {
    for (const cid of batch.cids) this.pendingCids.delete(cid);
  }

  /** How many ops are recorded; with truncate(), drops a failed job's writes. */
  get mark(): number {
    return this.ops.length;
  }

  truncate(mark: number): void {
    this.ops.length = mark;
  }

  /** Writes are recorded for the writer thread now: a write that must be direct is a bug. */
  get isRecording(): boolean {
    return this.recording;
  }

  private put(...op: Param[]): void {
    for (const v of op) this.ops.push(v);
    this.flush();
  }

  /** Outside recording, applies what was just put, at once. */
  private flush(): void {
    if (this.recording) return;
    const ops = this.ops;
    this.ops = [];
    this.applier.apply(ops);
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
    // Pushed in place, not through put(): this runs once per event.
    this.ops.push(OP.event, seq, time, e.objtype, e.objname, e.eventtype, e.id ?? null, extraOf(e), chained ? this.heads.get(e.objname) ?? null : null);
    if (chained) this.heads.set(e.objname, seq);
    if (e.id !== undefined && this.recording) {
      this.cids.push(e.id);
      this.pendingCids.set(e.id, seq);
    }
    this.flush();
  }

  private loadChainHeads(): void {
    this.heads = new Map();
    for (const r of this.s.chainHeads!.all() as { objname: string; seq: number }[]) this.heads.set(r.objname, r.seq);
  }

  seqForClientId(cid: string): number | null {
    const pending = this.pendingCids.get(cid);
    if (pending !== undefined) return pending;
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

  /** The log's SHUTDOWN, ISUP, TBFAILED and REBOOT_RETRY events, oldest first, read through their partial index (src/stats.ts). */
  *statsEvents(): Iterable<LoggedEvent> {
    for (const r of this.s.statsEvents!.iterate() as Iterable<EventRow>) yield eventOf(r);
  }

  /** The node's events after seq `after`, oldest first (at most `limit`). */
  historyAfter(node: string, after: number, limit: number): LoggedEvent[] {
    const head = this.heads.get(node);
    return head === undefined || head <= after ? [] : (this.s.historyAfter!.all(head, after, limit, after) as EventRow[]).map(eventOf);
  }

  /**
   * Deletes up to `limit` of the oldest events, never past seq `through`
   * and only from the low end, so what remains is always one unbroken run;
   * records where the log now starts (`head`: the last seq, should none remain).
   */
  trim(through: number, limit: number, head: number): void {
    this.put(OP.trim, through, limit, head);
  }

  /** The last seq logged before `time` (0 if none). */
  lastSeqBefore(time: number): number {
    return (this.s.lastBefore!.get(time) as { seq: number }).seq;
  }

  /** Records who did what (inside the batch of the act itself). */
  audit(time: number, actor: { id: string; role: string }, action: string, detail: unknown): void {
    this.put(OP.audit, time, actor.id, actor.role, action, detail === undefined ? null : JSON.stringify(detail));
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
    this.put(OP.meta, key, value);
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
      phaseFrom: r.phase_from,
      timeout: r.timeout_at === null ? null
        : { at: r.timeout_at, action: r.timeout_action ?? '', mode: r.timeout_mode ?? '', state: r.timeout_state ?? '' },
      reboot: r.reboot ? JSON.parse(r.reboot) : NO_REBOOT,
      triggers: triggers.get(r.node_id) ?? [],
    }));
  }

  saveNode(n: NodeState): void {
    const t = n.timeout;
    const idle = n.reboot === NO_REBOOT || (n.reboot.command === null && n.reboot.attempts === 0);
    this.ops.push(OP.node, n.id, n.type, n.project, n.mode, n.state, n.since, n.nextMode, n.prevMode,
      t ? t.at : null, t ? t.action : null, t ? t.mode : null, t ? t.state : null, idle ? null : JSON.stringify(n.reboot), n.phaseFrom);
    this.flush();
  }

  saveTriggers(n: NodeState): void {
    this.put(OP.clearTriggers, n.id);
    for (const t of n.triggers) this.put(OP.trigger, n.id, t.mode, t.state, t.triggers);
  }

  deleteNode(id: string): void {
    this.put(OP.deleteNode, id);
  }

  // --- waits (their memory is waits.ts's) ------------------------------------

  insertWait(id: string, states: string[], startSeq: number, ttl: number, now: number, owner: string | null, nodes: Iterable<string>): void {
    this.put(OP.wait, id, JSON.stringify(states), startSeq, ttl, now, owner, now); // created = the first attach
    for (const node of nodes) this.put(OP.waitNode, id, node);
  }

  updateWaitNode(id: string, node: string, pos: number, status: string, seq: number | null, reason: FailureReason | null): void {
    this.put(OP.waitNodeUpdate, pos, status, seq, reason ? JSON.stringify(reason) : null, id, node);
  }

  deleteWait(id: string): void {
    this.put(OP.deleteWait, id);
  }

  touchWait(id: string, now: number): void {
    this.put(OP.touchWait, now, id);
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

  /** Replaces all four definition tables (call inside a transaction; never while recording). */
  replaceDefinition(d: MachineDefinition): void {
    if (this.recording) throw new Error('replaceDefinition while writes go to the writer thread: run it as an exclusive job');
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
  if (e.valid === undefined && e.message === undefined && e.reason === undefined) {
    if (e.mode === undefined) return null;
    // Most events carry only their mode: one string per op mode, not a JSON.stringify per event.
    let text = MODE_ONLY.get(e.mode);
    if (text === undefined) {
      text = JSON.stringify({ mode: e.mode });
      if (MODE_ONLY.size < 1024) MODE_ONLY.set(e.mode, text);
    }
    return text;
  }
  return JSON.stringify({ mode: e.mode, valid: e.valid, message: e.message, reason: e.reason });
}

const MODE_ONLY = new Map<string, string>();

function eventOf(r: EventRow): LoggedEvent {
  const event: StatedEvent = { objtype: r.objtype, objname: r.objname, eventtype: r.eventtype };
  if (r.cid !== null) event.id = r.cid;
  if (r.extra !== null) Object.assign(event, JSON.parse(r.extra));
  return { seq: r.seq, time: r.time, event };
}
