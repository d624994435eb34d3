// The deadline heap behind pending timeouts (SPEC §5: timeouts are absolute deadlines).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Timers, type Deadline } from '../src/timers.ts';

const all = () => true;

test('popDue returns due entries in deadline order, whatever the insertion order', () => {
  const t = new Timers();
  // A fixed shuffle, so the heap has to sift in both directions.
  const ats = [50, 10, 90, 30, 70, 20, 80, 40, 60, 100, 5, 55];
  ats.forEach((at, i) => t.add(`n${i}`, at));
  assert.equal(t.size, 12);
  assert.equal(t.peek(), 5);
  const due = t.popDue(60, all);
  assert.deepEqual(due.map((d) => d.at), [5, 10, 20, 30, 40, 50, 55, 60]);
  assert.deepEqual(due.map((d) => d.node), ['n10', 'n1', 'n5', 'n3', 'n7', 'n0', 'n11', 'n8']);
  assert.equal(t.size, 4);
  assert.equal(t.peek(), 70);
  assert.deepEqual(t.popDue(1000, all).map((d) => d.at), [70, 80, 90, 100]);
  assert.equal(t.peek(), null);
});

test('a deadline equal to now is due; one a millisecond later is not', () => {
  const t = new Timers();
  t.add('a', 1000);
  t.add('b', 1001);
  assert.deepEqual(t.popDue(1000, all), [{ at: 1000, node: 'a' }]);
  assert.deepEqual(t.popDue(1000, all), []);
  assert.equal(t.size, 1);
});

test('many random deadlines come out sorted', () => {
  const t = new Timers();
  let x = 12345; // a fixed LCG: reproducible
  const ats: number[] = [];
  for (let i = 0; i < 500; i++) {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    ats.push(x % 10_000);
    t.add(`n${i}`, ats[i]!);
  }
  const out = t.popDue(Infinity, all).map((d) => d.at);
  assert.deepEqual(out, [...ats].sort((a, b) => a - b));
});

test('stale entries (rescheduled or cleared nodes) are popped and skipped', () => {
  const t = new Timers();
  const live = new Map<string, number>([['a', 30], ['b', 20]]); // what the nodes hold now
  t.add('a', 10); // replaced by 30 below: stale
  t.add('b', 20);
  t.add('a', 30);
  t.add('c', 15); // node c's timeout was cleared: stale
  const isLive = (d: Deadline) => live.get(d.node) === d.at;
  assert.deepEqual(t.popDue(25, isLive), [{ at: 20, node: 'b' }]);
  assert.equal(t.size, 1, 'stale entries are gone, not kept');
  assert.deepEqual(t.popDue(30, isLive), [{ at: 30, node: 'a' }]);
});

test('compact rebuilds from the live deadlines only', () => {
  const t = new Timers();
  for (let i = 0; i < 100; i++) t.add('a', 1000 - i); // 99 of them stale
  t.add('b', 500);
  assert.equal(t.size, 101);
  t.compact([{ at: 901, node: 'a' }, { at: 500, node: 'b' }]);
  assert.equal(t.size, 2);
  assert.equal(t.peek(), 500);
  assert.deepEqual(t.popDue(10_000, all), [{ at: 500, node: 'b' }, { at: 901, node: 'a' }]);
});
