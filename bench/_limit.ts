/**
 * The practical limit: the best better-sqlite3 can do writing the rows the
 * daemon writes for the same events — no network, no parsing, no engine, and
 * none of the project's write path. The schema comes from the project's
 * migrations (so a schema change moves both sides); the rows are written with
 * plain prepared statements on a fresh connection with the daemon's pragmas
 * (WAL, synchronous FULL), one transaction per batch, and the batch size is
 * swept: the limit is the fastest of them.
 */
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import Database from 'better-sqlite3';
import { Machine } from '../src/machine.ts';
import { sqliteNativeBinding } from '../src/native.ts';
import { Store } from '../src/store.ts';
import { eventAt, nodeNames } from './_events.ts';

const PXE = 'PXEKERNEL';

/** Batch sizes tried (the limit keeps the best); the daemon bounds its own batches at MAX_BATCH (3,000) jobs. */
export const LIMIT_BATCHES = [100, 300, 1000, 3000, 10000] as const;

export interface LimitRun {
  batch: number;
  elapsedMs: number;
}

export interface LimitResult {
  /** The fastest run. */
  best: LimitRun;
  runs: LimitRun[];
}

interface Row {
  id: string;
  mode: string;
  state: string;
  since: number;
  timeoutAt: number | null;
  timeoutAction: string | null;
  timeoutState: string | null;
}

/**
 * Writes `events` events in transactions of `batch`: per event one log row
 * (with its node's previous seq, as the daemon's log chains them); per
 * transaction one node upsert per node it touched, as the daemon writes each
 * dirty node once per batch — or, with `nodeRowPerEvent`, one per event.
 */
function runOnce(file: string, o: { nodes: number; events: number; batch: number; nodeRowPerEvent: boolean }): number {
  // The project's migrations lay the schema and give the timeout table; then the Store is closed.
  const store = new Store(file);
  const machine = new Machine(store.loadDefinition());
  store.close();
  const db = new Database(file, { nativeBinding: sqliteNativeBinding() as never });
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.pragma('foreign_keys = ON');
    const insertEvent = db.prepare('INSERT INTO events (seq, time, objtype, objname, eventtype, cid, extra, prev) VALUES (?, ?, ?, ?, ?, ?, ?, ?)');
    // The daemon's own upsert shape (every column), so both sides write the same row.
    const upsertNode = db.prepare(`INSERT INTO nodes (node_id, type, project, op_mode, state, since, next_mode, prev_mode,
        timeout_at, timeout_action, timeout_mode, timeout_state, reboot, phase_from)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT(node_id) DO UPDATE SET type=excluded.type, project=excluded.project, op_mode=excluded.op_mode,
        state=excluded.state, since=excluded.since, next_mode=excluded.next_mode, prev_mode=excluded.prev_mode,
        timeout_at=excluded.timeout_at, timeout_action=excluded.timeout_action, timeout_mode=excluded.timeout_mode,
        timeout_state=excluded.timeout_state, reboot=excluded.reboot, phase_from=excluded.phase_from`);
    const extra = new Map(['NORMALv2', PXE].map((m) => [m, JSON.stringify({ mode: m })]));
    const t = Date.now();
    const rows: Row[] = nodeNames(o.nodes).map((id) => ({ id, mode: 'NORMALv2', state: 'ISUP', since: t, timeoutAt: null, timeoutAction: null, timeoutState: null }));
    const save = (r: Row): void => {
      upsertNode.run(r.id, 'pc', null, r.mode, r.state, r.since, null, null,
        r.timeoutAt, r.timeoutAction, r.timeoutState === null ? null : r.mode, r.timeoutState, null, r.mode === PXE ? 'NORMALv2' : null);
    };
    db.transaction(() => { for (const r of rows) save(r); })();
    const prev = new Array<number | null>(o.nodes).fill(null);
    const dirty = new Set<Row>();
    let seq = 0;
    const batchTxn = db.transaction((start: number, end: number) => {
      for (let i = start; i < end; i++) {
        const { node, state } = eventAt(i, o.nodes);
        const r = rows[node]!;
        const now = Date.now();
        // The log row carries the mode the event found the node in.
        const logged = extra.get(r.mode)!;
        // What the engine leaves in the row: the mode (PXEBOOTING enters Emulab's PXE phase, BOOTING
        // leaves it: SPEC §4.6), the state, since, and the state's timeout (SPEC §4.2).
        if (state === 'PXEBOOTING') r.mode = PXE;
        else if (state === 'BOOTING') r.mode = 'NORMALv2';
        const to = machine.timeout(r.mode, state);
        r.state = state;
        r.since = now;
        r.timeoutAt = to ? now + to.seconds * 1000 : null;
        r.timeoutAction = to ? to.action : null;
        r.timeoutState = to ? state : null;
        insertEvent.run(++seq, now, 'TBNODESTATE', r.id, state, null, logged, prev[node]);
        prev[node] = seq;
        if (o.nodeRowPerEvent) save(r);
        else dirty.add(r);
      }
      for (const r of dirty) save(r);
      dirty.clear();
    });
    const t0 = performance.now();
    for (let start = 0; start < o.events; start += o.batch) batchTxn(start, Math.min(o.events, start + o.batch));
    return performance.now() - t0;
  } finally {
    db.close();
  }
}

/** Runs the workload at each batch size on a fresh database; the fastest is the limit. */
export function runLimit(dir: string, o: { nodes: number; events: number; nodeRowPerEvent: boolean }, batches: readonly number[] = LIMIT_BATCHES): LimitResult {
  const runs: LimitRun[] = [];
  for (const batch of batches) {
    const file = path.join(dir, `limit-${o.nodeRowPerEvent ? 'row' : 'batch'}-${batch}.db`);
    runs.push({ batch, elapsedMs: runOnce(file, { ...o, batch }) });
  }
  const best = runs.reduce((a, b) => (b.elapsedMs < a.elapsedMs ? b : a));
  return { best, runs };
}
