/**
 * The practical limit: better-sqlite3 in this process writing the rows the
 * daemon writes for the same events — no network, no parsing, no engine.
 * It goes through the project's own Store and WriteApplier (same file format,
 * pragmas, migrations and prepared statements), so a schema change moves both
 * sides: each batch's writes are recorded and then run in one transaction,
 * just as the daemon's writer thread runs them, without the thread.
 */
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Machine } from '../src/machine.ts';
import { Store } from '../src/store.ts';
import type { NodeState } from '../src/types.ts';
import { type Ops, WriteApplier } from '../src/writes.ts';
import { NO_REBOOT } from '../src/types.ts';
import { eventAt, nodeNames } from './_events.ts';

export interface LimitResult {
  elapsedMs: number;
  transactions: number;
}

/**
 * Writes `events` events in transactions of `batch`: per event one row of the
 * log; per transaction one upsert per node it touched, as the daemon's core
 * writes each dirty node once per batch — or, with `nodeRowPerEvent`, one
 * node upsert per event (the wording of the limit).
 */
export function runLimit(dir: string, o: { nodes: number; events: number; batch: number; nodeRowPerEvent: boolean }): LimitResult {
  const { nodes, events, batch } = o;
  const file = path.join(dir, o.nodeRowPerEvent ? 'limit-per-event.db' : 'limit.db');
  const store = new Store(file); // WAL, synchronous FULL: the daemon's defaults
  try {
    const machine = new Machine(store.loadDefinition());
    const t = Date.now();
    const states: NodeState[] = nodeNames(nodes).map((id) => ({
      id, type: 'pc', project: null, mode: 'NORMALv2', state: 'ISUP', since: t, nextMode: null, prevMode: null, phaseFrom: null,
      timeout: null, reboot: NO_REBOOT, triggers: [],
    }));
    store.transaction(() => { for (const n of states) store.saveNode(n); });

    const applier = new WriteApplier(store.db);
    const commit = store.db.transaction((ops: Ops) => applier.apply(ops));
    const dirty = new Set<NodeState>();
    let seq = 0;
    let transactions = 0;
    const t0 = performance.now();
    for (let start = 0; start < events; start += batch) {
      const end = Math.min(events, start + batch);
      store.record();
      for (let i = start; i < end; i++) {
        const { node, state } = eventAt(i, nodes);
        const n = states[node]!;
        const now = Date.now();
        // What the engine leaves in the row: the state, since, and the state's timeout (SPEC §4.2).
        const to = machine.timeout(n.mode, state);
        n.state = state;
        n.since = now;
        n.timeout = to ? { at: now + to.seconds * 1000, action: to.action, mode: n.mode, state } : null;
        store.insertEvent(++seq, now, { objtype: 'TBNODESTATE', objname: n.id, eventtype: state, mode: n.mode });
        if (o.nodeRowPerEvent) store.saveNode(n);
        else dirty.add(n);
      }
      for (const n of dirty) store.saveNode(n);
      dirty.clear();
      commit(store.takeBatch().ops);
      transactions++;
    }
    return { elapsedMs: performance.now() - t0, transactions };
  } finally {
    store.close();
  }
}
