// StateWait (SPEC §3 "Wait semantics"), unit by unit: the Waits index on a
// migrated SQLite database, fed synthetic (seq, event) pairs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { Store } from '../src/store.ts';
import type { StatedEvent } from '../src/types.ts';
import { Waits } from '../src/waits.ts';
import { T0, tempDir } from './helpers/fake.ts';

const st = (node: string, state: string): StatedEvent => ({ objtype: 'TBNODESTATE', objname: node, eventtype: state });
const failed = (node: string): StatedEvent => ({ objtype: 'TBFAILED', objname: node, eventtype: 'REBOOT', reason: { code: 'X', attempts: 3 } });

function fresh(): { waits: Waits; store: Store } {
  const store = new Store(':memory:');
  return { waits: new Waits(store), store };
}

test('each node must see the states in order, not necessarily consecutively', () => {
  const { waits } = fresh();
  waits.create('w', ['SHUTDOWN', 'BOOTING', 'ISUP'], ['pc1'], 0, 60, T0, null);
  const feed: [string, string | null][] = [
    ['ISUP', null], ['BOOTING', null], ['SHUTDOWN', 'progress'], ['SHUTDOWN', null], ['PXEBOOTING', null],
    ['BOOTING', 'progress'], ['TBSETUP', null], ['ISUP', 'done'], ['SHUTDOWN', null],
  ];
  feed.forEach(([s, push], i) => {
    const out = waits.onEvent(i + 1, st('pc1', s));
    assert.deepEqual(out.map((u) => u.type), push ? [push] : [], `#${i + 1} ${s}`);
  });
  assert.deepEqual(waits.snapshot('w', 9)!.finished, ['pc1']);
});

test('progress carries the remaining states and the seq; done the seq that finished it', () => {
  const { waits } = fresh();
  waits.create('w', ['SHUTDOWN', 'ISUP'], ['pc1', 'pc2'], 10, 60, T0, 'tok1');
  assert.deepEqual(waits.onEvent(11, st('pc1', 'SHUTDOWN')),
    [{ type: 'progress', wait: 'w', node: 'pc1', state: 'SHUTDOWN', remaining: ['ISUP'], seq: 11 }]);
  assert.deepEqual(waits.onEvent(12, st('pc1', 'ISUP')), [{ type: 'done', wait: 'w', node: 'pc1', seq: 12 }]);
  assert.deepEqual(waits.onEvent(13, st('pc3', 'ISUP')), [], 'a node the wait does not hold');
  assert.deepEqual(waits.onEvent(14, { objtype: 'NOTIFY', objname: 'pc2', eventtype: 'ISUP' }), [], 'only TBNODESTATE counts');
  assert.equal(waits.owner('w'), 'tok1');
  const snap = waits.snapshot('w', 14)!;
  assert.deepEqual([snap.finished, snap.remaining], [['pc1'], ['pc2']]);
});

// "only events with seq after the wait's start count".
test('events at or before the start seq do not count', () => {
  const { waits } = fresh();
  waits.create('w', ['ISUP'], ['pc1'], 100, 60, T0, null);
  assert.deepEqual(waits.onEvent(99, st('pc1', 'ISUP')), []);
  assert.deepEqual(waits.onEvent(100, st('pc1', 'ISUP')), []);
  assert.deepEqual(waits.onEvent(101, st('pc1', 'ISUP')), [{ type: 'done', wait: 'w', node: 'pc1', seq: 101 }]);
});

test('TBFAILED fails the node in every wait that still holds it, and only there', () => {
  const { waits } = fresh();
  waits.create('a', ['ISUP'], ['pc1', 'pc2'], 0, 60, T0, null);
  waits.create('b', ['SHUTDOWN', 'ISUP'], ['pc1'], 0, 60, T0, null);
  waits.create('c', ['SHUTDOWN'], ['pc1'], 0, 60, T0, null);
  waits.onEvent(1, st('pc1', 'SHUTDOWN')); // finishes c, moves b
  const out = waits.onEvent(2, failed('pc1'));
  assert.deepEqual(out.map((u) => `${u.type} ${u.wait}`).sort(), ['failed a', 'failed b']);
  assert.deepEqual(waits.snapshot('a', 2), {
    wait: 'a', states: ['ISUP'], seq: 2, finished: [], failed: ['pc1'], remaining: ['pc2'], failures: { pc1: { code: 'X', attempts: 3 } },
  });
  assert.deepEqual(waits.snapshot('c', 2)!.finished, ['pc1']);
  assert.deepEqual(waits.onEvent(3, st('pc1', 'ISUP')), [], 'failed stays failed');
  // A TBFAILED without a reason gets one.
  waits.onEvent(4, { objtype: 'TBFAILED', objname: 'pc2', eventtype: 'REBOOT' });
  assert.deepEqual(waits.snapshot('a', 4)!.failures.pc2, { code: 'TBFAILED', message: 'REBOOT failed' });
});

test('cancel and end: a cancelled node is neither finished nor remaining; an ended wait is gone', () => {
  const { waits } = fresh();
  waits.create('w', ['ISUP'], ['pc1', 'pc2', 'pc1'], 0, 60, T0, null);
  assert.deepEqual(waits.snapshot('w', 0)!.remaining, ['pc1', 'pc2'], 'duplicates folded');
  assert.deepEqual(waits.cancel('w', 'pc1'), ['pc2']);
  assert.deepEqual(waits.onEvent(1, st('pc1', 'ISUP')), []);
  assert.deepEqual(waits.snapshot('w', 1), { wait: 'w', states: ['ISUP'], seq: 1, finished: [], failed: [], remaining: ['pc2'], failures: {} });
  assert.equal(waits.cancel('nope', 'pc1'), null);
  assert.equal(waits.end('w'), true);
  assert.equal(waits.end('w'), false);
  assert.deepEqual([waits.has('w'), waits.size, waits.snapshot('w', 1)], [false, 0, null]);
  assert.deepEqual(waits.onEvent(2, st('pc2', 'ISUP')), []);
});

// "A wait that nobody ends is deleted ttl seconds after its last attach."
test('expired() lists waits past ttl since their last attach; touch restarts the ttl', () => {
  const { waits } = fresh();
  waits.create('short', ['ISUP'], ['pc1'], 0, 60, T0, null);
  waits.create('long', ['ISUP'], ['pc1'], 0, 3600, T0, null);
  assert.deepEqual(waits.expired(T0 + 60_000), []);
  assert.deepEqual(waits.expired(T0 + 60_001), ['short']);
  waits.touch('short', T0 + 60_000);
  assert.deepEqual(waits.expired(T0 + 120_000), []);
  assert.deepEqual(waits.expired(T0 + 3_600_001), ['short', 'long']);
});

// §5: waits are in SQLite; every step is written as it happens.
test('load() on a reopened database restores every wait exactly', () => {
  const file = path.join(tempDir(), 'w.db');
  let store = new Store(file);
  let waits = new Waits(store);
  store.transaction(() => {
    waits.create('w', ['SHUTDOWN', 'ISUP'], ['pc1', 'pc2', 'pc3', 'pc4'], 5, 600, T0, 'tok');
    waits.onEvent(6, st('pc1', 'SHUTDOWN'));
    waits.onEvent(7, st('pc2', 'SHUTDOWN'));
    waits.onEvent(8, st('pc2', 'ISUP'));
    waits.onEvent(9, failed('pc3'));
  });
  const before = waits.snapshot('w', 9);
  store.close();
  store = new Store(file);
  waits = new Waits(store);
  waits.load();
  assert.deepEqual(waits.snapshot('w', 9), before);
  assert.deepEqual([before!.finished, before!.failed, before!.remaining], [['pc2'], ['pc3'], ['pc1', 'pc4']]);
  assert.equal(waits.owner('w'), 'tok');
  // pc1 resumes at its position: ISUP now finishes it; pc3 stays failed.
  assert.deepEqual(waits.onEvent(10, st('pc1', 'ISUP')), [{ type: 'done', wait: 'w', node: 'pc1', seq: 10 }]);
  assert.deepEqual(waits.onEvent(11, st('pc3', 'SHUTDOWN')), []);
  assert.deepEqual(waits.expired(T0 + 600_001), ['w']);
  store.close();
});

// SPEC §3 (issue 9): a TBFAILED event fails a wait only for REBOOT, POWERCYCLE,
// POWERON or a state the wait still expects; a node reporting the TBFAILED state fails every wait.
test('TBFAILED events by eventtype; the TBFAILED state fails every wait holding the node', () => {
  const { waits } = fresh();
  waits.create('up', ['SHUTDOWN', 'ISUP'], ['pc1', 'pc2', 'pc3', 'pc4'], 0, 60, T0, null);
  const ev = (node: string, eventtype: string): StatedEvent => ({ objtype: 'TBFAILED', objname: node, eventtype });
  assert.deepEqual(waits.onEvent(1, ev('pc1', 'POWEROFF')), [], 'a failed POWEROFF says nothing about ISUP');
  assert.deepEqual(waits.onEvent(2, ev('pc1', 'SHUTDOWN')).map((u) => u.type), ['failed'], 'a state still expected');
  waits.onEvent(3, st('pc2', 'SHUTDOWN'));
  assert.deepEqual(waits.onEvent(4, ev('pc2', 'SHUTDOWN')), [], 'SHUTDOWN is no longer expected');
  assert.deepEqual(waits.onEvent(5, ev('pc2', 'POWERON')).map((u) => u.type), ['failed']);
  assert.deepEqual(waits.onEvent(6, ev('pc3', 'POWERCYCLE')).map((u) => u.type), ['failed']);
  const own = waits.onEvent(7, { ...st('pc4', 'TBFAILED'), mode: 'NORMALv2' });
  assert.deepEqual(own, [{ type: 'failed', wait: 'up', node: 'pc4', reason: { code: 'NODE_TBFAILED', mode: 'NORMALv2', state: 'TBFAILED' }, seq: 7 }]);
  // A wait for the TBFAILED state itself sees it as progress.
  waits.create('tbf', ['TBFAILED'], ['pc5'], 7, 60, T0, null);
  assert.deepEqual(waits.onEvent(8, st('pc5', 'TBFAILED')).map((u) => u.type), ['done']);
});

// SPEC §3 (issue 9): a wait registered by a REBOOT that joined a reboot in progress counts from its start.
test('replay feeds a node\'s earlier events into a wait as if it had started before them', () => {
  const { waits } = fresh();
  waits.create('w', ['SHUTDOWN', 'ISUP'], ['pc1', 'pc2'], 20, 60, T0, null);
  const out = waits.replay('w', 'pc1', [
    { seq: 11, time: T0, event: { objtype: 'TBCOMMAND', objname: 'pc1', eventtype: 'REBOOT' } },
    { seq: 12, time: T0, event: st('pc1', 'SHUTDOWN') },
    { seq: 13, time: T0, event: st('pc1', 'PXEBOOTING') },
  ]);
  assert.deepEqual(out, [{ type: 'progress', wait: 'w', node: 'pc1', state: 'SHUTDOWN', remaining: ['ISUP'], seq: 12 }]);
  assert.deepEqual(waits.onEvent(21, st('pc1', 'ISUP')), [{ type: 'done', wait: 'w', node: 'pc1', seq: 21 }]);
  assert.deepEqual(waits.snapshot('w', 21)!.remaining, ['pc2'], 'only the replayed node moved');
  assert.deepEqual(waits.replay('nope', 'pc1', []), []);
});

// Issue 11: a reload closes with RELOADDONE or RELOADDONEV2 (Emulab's
// RELOAD rows have both), so os_load waits for either.
test('an entry A|B is passed by either alternative; the alternatives survive a reload from SQLite', () => {
  const file = path.join(tempDir(), 'alt.db');
  let store = new Store(file);
  let waits = new Waits(store);
  store.transaction(() => {
    waits.create('w', ['RELOADDONE|RELOADDONEV2', 'ISUP'], ['pc1', 'pc2', 'pc3'], 0, 600, T0, null);
    assert.deepEqual(waits.onEvent(1, st('pc1', 'RELOADDONEV2')).map((u) => u.type), ['progress']);
    assert.deepEqual(waits.onEvent(2, st('pc2', 'RELOADDONE')).map((u) => u.type), ['progress']);
    assert.deepEqual(waits.onEvent(3, st('pc3', 'RELOADDONEV3')), [], 'only the alternatives listed');
    assert.deepEqual(waits.onEvent(4, st('pc3', 'ISUP')), [], 'in order: the first entry first');
  });
  store.close();
  store = new Store(file);
  waits = new Waits(store);
  waits.load();
  assert.deepEqual(waits.onEvent(5, st('pc3', 'RELOADDONEV2')).map((u) => u.type), ['progress']);
  assert.deepEqual(waits.onEvent(6, st('pc1', 'ISUP')), [{ type: 'done', wait: 'w', node: 'pc1', seq: 6 }]);
  assert.deepEqual(waits.snapshot('w', 6)!.states, ['RELOADDONE|RELOADDONEV2', 'ISUP']);
  store.close();
});

test('list(): each open wait with done, failed (with the reason), remaining, owner, created and start seq; filtered by visibility (GET /v1/waits)', () => {
  const { waits } = fresh();
  waits.create('a', ['ISUP'], ['pc1', 'pc2', 'pc3', 'pc4'], 7, 60, T0 + 5, 'tok1');
  waits.create('b', ['SHUTDOWN'], ['pc9'], 8, 60, T0, null);
  waits.onEvent(9, st('pc1', 'ISUP'));
  waits.onEvent(10, failed('pc2'));
  waits.cancel('a', 'pc4');
  assert.deepEqual(waits.list(), [
    { wait: 'b', states: ['SHUTDOWN'], done: [], failed: [], remaining: ['pc9'], owner: null, created: T0, seq: 8 },
    {
      wait: 'a', states: ['ISUP'], done: ['pc1'], failed: [{ node: 'pc2', reason: 'X after 3 attempt(s)', code: 'X' }],
      remaining: ['pc3'], owner: 'tok1', created: T0 + 5, seq: 7,
    },
  ]);
  assert.deepEqual(waits.list((nodes) => [...nodes].every((n) => n !== 'pc9')).map((w) => w.wait), ['a']);
  waits.end('b');
  assert.deepEqual(waits.list().map((w) => w.wait), ['a']);
});
