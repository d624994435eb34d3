/**
 * A batch's writes as data. The store records every write a batch makes as
 * an op — a code followed by its parameters, flat in one array — and an
 * applier runs them against a connection: at once on the daemon's own
 * connection (tests, operator changes), or as one transaction in the writer
 * thread (the event path), so SQLite's work overlaps the next batch's.
 * Plain values only: the array crosses a thread by structured clone.
 */
import type { Database as Db, Statement } from 'better-sqlite3';

export type Param = string | number | null;
export type Ops = Param[];

/** Op codes; an op is its code then ARITY[code] parameters. */
export const OP = {
  event: 0,
  node: 1,
  clearTriggers: 2,
  trigger: 3,
  deleteNode: 4,
  audit: 5,
  meta: 6,
  wait: 7,
  waitNode: 8,
  waitNodeUpdate: 9,
  deleteWait: 10,
  touchWait: 11,
  trim: 12,
} as const;

const SQL: readonly string[] = [
  'INSERT INTO events (seq, time, objtype, objname, eventtype, cid, extra, prev) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
  // Positional: binding 14 named parameters cost more than the row write itself.
  `INSERT INTO nodes (node_id, type, project, op_mode, state, since, next_mode, prev_mode,
      timeout_at, timeout_action, timeout_mode, timeout_state, reboot, phase_from)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT(node_id) DO UPDATE SET type=excluded.type, project=excluded.project, op_mode=excluded.op_mode,
      state=excluded.state, since=excluded.since, next_mode=excluded.next_mode, prev_mode=excluded.prev_mode,
      timeout_at=excluded.timeout_at, timeout_action=excluded.timeout_action, timeout_mode=excluded.timeout_mode,
      timeout_state=excluded.timeout_state, reboot=excluded.reboot, phase_from=excluded.phase_from`,
  'DELETE FROM node_triggers WHERE node_id = ?',
  'INSERT OR REPLACE INTO node_triggers (node_id, op_mode, state, triggers) VALUES (?, ?, ?, ?)',
  'DELETE FROM nodes WHERE node_id = ?',
  'INSERT INTO audit (time, actor, role, action, detail) VALUES (?, ?, ?, ?, ?)',
  'INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value',
  'INSERT INTO waits (wait_id, states, start_seq, ttl, last_attach, owner, created) VALUES (?, ?, ?, ?, ?, ?, ?)',
  "INSERT INTO wait_nodes (wait_id, node, pos, status) VALUES (?, ?, 0, 'pending')",
  'UPDATE wait_nodes SET pos = ?, status = ?, seq = ?, reason = ? WHERE wait_id = ? AND node = ?',
  'DELETE FROM waits WHERE wait_id = ?',
  'UPDATE waits SET last_attach = ? WHERE wait_id = ?',
  // trim(through, limit, head): the oldest events up to `through`, from the low end only, so what
  // remains is one unbroken run; then the mark E_HISTORY_COMPACTED is judged by (see applyTrim).
  'DELETE FROM events WHERE seq IN (SELECT seq FROM events WHERE seq <= ? ORDER BY seq LIMIT ?)',
];

/** Parameters per op code. */
export const ARITY: readonly number[] = [8, 14, 1, 4, 1, 5, 2, 7, 2, 6, 1, 2, 3];

/** Runs recorded ops against one connection (the caller owns the transaction). */
export class WriteApplier {
  private readonly stmts: Statement[];
  private readonly minSeq: Statement;
  private readonly setMeta: Statement;

  constructor(db: Db) {
    this.stmts = SQL.map((sql) => db.prepare(sql));
    this.minSeq = db.prepare('SELECT min(seq) AS seq FROM events');
    this.setMeta = this.stmts[OP.meta]!;
  }

  /** Applies the ops in order; throws on the first that fails. */
  apply(ops: Ops): void {
    const o = ops;
    let i = 0;
    while (i < o.length) {
      const code = o[i] as number;
      const st = this.stmts[code];
      if (st === undefined) throw new Error(`write op ${String(code)} at ${i} is not an op code`);
      // Spelled out by arity: spreading a slice per row would allocate on the hot path.
      switch (code) {
        case OP.event: st.run(o[i + 1], o[i + 2], o[i + 3], o[i + 4], o[i + 5], o[i + 6], o[i + 7], o[i + 8]); break;
        case OP.node: st.run(o[i + 1], o[i + 2], o[i + 3], o[i + 4], o[i + 5], o[i + 6], o[i + 7], o[i + 8], o[i + 9], o[i + 10], o[i + 11], o[i + 12], o[i + 13], o[i + 14]); break;
        case OP.trim: this.applyTrim(o[i + 1] as number, o[i + 2] as number, o[i + 3] as number); break;
        default: st.run(...o.slice(i + 1, i + 1 + ARITY[code]!));
      }
      i += 1 + ARITY[code]!;
    }
  }

  private applyTrim(through: number, limit: number, head: number): void {
    if (this.stmts[OP.trim]!.run(through, limit).changes === 0) return;
    // Everything up to here is gone: a `since` below it gets E_HISTORY_COMPACTED (SPEC §3).
    const low = (this.minSeq.get() as { seq: number | null }).seq;
    this.setMeta.run('trimmed_through', String((low ?? head + 1) - 1));
  }
}
