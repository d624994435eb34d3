// Migrations (issue 2): numbered SQL files applied in order and recorded in
// PRAGMA user_version, so an old database upgrades in place and keeps its rows.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import Database from 'better-sqlite3';
import { MIGRATIONS, Store } from '../src/store.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stated-store-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

test('a database left at migration 1 upgrades in place, keeping its rows', () => {
  const file = path.join(dir, 'old.db');
  const old = new Database(file);
  old.exec(MIGRATIONS[0]!);
  old.pragma('user_version = 1');
  old.prepare("INSERT INTO nodes (node_id, op_mode, state, since) VALUES ('pc1', 'NORMALv2', 'ISUP', 1)").run();
  old.prepare("INSERT INTO events (seq, time, objtype, objname, eventtype) VALUES (1, 1, 'TBNODESTATE', 'pc1', 'ISUP')").run();
  old.close();

  const store = new Store(file);
  assert.equal(store.db.pragma('user_version', { simple: true }), MIGRATIONS.length);
  assert.deepEqual(store.loadNodes().map((n) => [n.id, n.state]), [['pc1', 'ISUP']]);
  assert.equal(store.maxSeq(), 1);
  // Later migrations did their work: Emulab's rows (002), waits (003), audit (004).
  assert.ok(store.loadDefinition().state_transitions.length > 100);
  store.db.prepare("INSERT INTO waits (wait_id, states, start_seq, ttl, last_attach) VALUES ('w1', '[]', 0, 1, 0)").run();
  store.audit(1, { id: 't1', role: 'admin' }, 'node.add', { nodes: ['pc1'] });
  assert.equal(store.auditList(0, 10)[0]!.action, 'node.add');
  store.close();

  // Opening again applies nothing twice (a re-run of 002 would fail on nothing, but 001 would).
  const again = new Store(file);
  assert.equal(again.db.pragma('user_version', { simple: true }), MIGRATIONS.length);
  assert.equal(again.db.pragma('journal_mode', { simple: true }), 'wal');
  again.close();
});

test('trim deletes only from the low end and never past its bound', () => {
  const store = new Store(path.join(dir, 'trim.db'));
  for (let seq = 1; seq <= 10; seq++) store.insertEvent(seq, seq * 1000, { objtype: 'TBNODESTATE', objname: 'pc1', eventtype: 'ISUP' });
  assert.equal(store.lastSeqBefore(4500), 4);
  assert.equal(store.getMeta('trimmed_through'), null);
  store.trim(4, 2, 10);
  assert.equal(store.minSeq(), 3, 'the chunk limit holds');
  assert.equal(store.getMeta('trimmed_through'), '2', 'the mark follows what was deleted');
  store.trim(4, 100, 10);
  assert.equal(store.minSeq(), 5);
  assert.equal(store.getMeta('trimmed_through'), '4');
  assert.deepEqual(store.eventsAfter(0, 100).map((e) => e.seq), [5, 6, 7, 8, 9, 10]);
  store.trim(4, 100, 10);
  assert.equal(store.getMeta('trimmed_through'), '4', 'nothing deleted: the mark stays');
  store.trim(99, 100, 10);
  assert.equal(store.minSeq(), null);
  assert.equal(store.getMeta('trimmed_through'), '10', 'an empty log: trimmed through the head');
  store.close();
});

test('historyAfter: a node\'s events after a seq, oldest first, without the rest of its history', () => {
  const store = new Store(':memory:');
  const ev = (node: string, state: string) => ({ objtype: 'TBNODESTATE', objname: node, eventtype: state });
  ['SHUTDOWN', 'PXEBOOTING', 'BOOTING', 'TBSETUP'].forEach((s, i) => store.insertEvent(2 * i + 1, 0, ev('pc1', s)));
  ['SHUTDOWN', 'ISUP'].forEach((s, i) => store.insertEvent(2 * i + 2, 0, ev('pc2', s)));
  assert.deepEqual(store.historyAfter('pc1', 3, 100).map((e) => [e.seq, e.event.eventtype]), [[5, 'BOOTING'], [7, 'TBSETUP']]);
  assert.deepEqual(store.historyAfter('pc1', 0, 100).length, 4);
  assert.deepEqual(store.historyAfter('pc1', 7, 100), []);
  assert.deepEqual(store.historyAfter('pc3', 0, 100), []);
  store.close();
});
