// The dashboard's model (src/dashboard/browser/fleet.ts, boots.ts): pure, so
// the ordering rules are checked here without a browser. What the page shows
// must never go back to an older state, and nothing may be counted twice.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BootStats } from '../src/dashboard/browser/boots.ts';
import { Fleet } from '../src/dashboard/browser/fleet.ts';
import type { NodeView } from '../src/views.ts';

const view = (node: string, state: string, extra: Partial<NodeView> = {}): NodeView => ({
  node, type: 'pc', project: 'p', mode: 'NORMALv2', state, since: 0, nextMode: null, timeout: null,
  reboot: { command: null, attempts: 0, awaitingShutdown: false, gaveUp: false, inFlight: false, lastError: null, waitingForDriver: false }, triggers: [], ...extra,
});
const st = (node: string, s: string) => ({ objtype: 'TBNODESTATE', objname: node, eventtype: s });

test('events after the snapshot change nodes and counts; replayed ones before it only feed the recent lists', () => {
  const f = new Fleet();
  f.load(10, [view('a', 'ISUP'), view('b', 'ISUP')]);
  f.event(9, 1, st('a', 'SHUTDOWN')); // already in the snapshot
  f.event(8, 1, { objtype: 'TBFAILED', objname: 'b', eventtype: 'REBOOT', reason: { code: 'TIMEOUT_IN_STATE' } });
  assert.equal(f.nodes.get('a')!.state, 'ISUP');
  assert.equal(f.failures[0]?.reason?.code, 'TIMEOUT_IN_STATE');
  assert.equal(f.stale.size, 0, 'nothing to read again for the past');
  f.event(11, 2, { ...st('a', 'SHUTDOWN'), mode: 'RELOAD' });
  assert.equal(f.nodes.get('a')!.state, 'SHUTDOWN');
  assert.equal(f.nodes.get('a')!.mode, 'RELOAD');
  assert.deepEqual([...f.counts].sort(), [['ISUP', 1], ['SHUTDOWN', 1]]);
  assert.deepEqual([...f.stale], ['a'], 'its timeout and reboot fields are read again');
  assert.equal(f.lastSeq, 11);
  f.event(12, 3, { objtype: 'TBCOMMAND', objname: 'a,b', eventtype: 'REBOOT' });
  assert.deepEqual([...f.stale].sort(), ['a', 'b']);
});

test('a status reply read before an event the page already applied does not take the node back', () => {
  const f = new Fleet();
  f.load(1, [view('a', 'ISUP')]);
  f.event(5, 1, st('a', 'SHUTDOWN'));
  f.stale.clear();
  f.status(4, [view('a', 'ISUP', { reboot: { command: 'REBOOT', attempts: 1, awaitingShutdown: true, gaveUp: false, inFlight: true, lastError: null, waitingForDriver: false } })]);
  assert.equal(f.nodes.get('a')!.state, 'SHUTDOWN', 'the newer state stays');
  assert.equal(f.nodes.get('a')!.reboot.command, 'REBOOT', 'the other fields are taken');
  assert.ok(f.rebooting.has('a'));
  assert.ok(f.stale.has('a'), 'and read again');
  f.stale.clear();
  f.status(5, [view('a', 'SHUTDOWN', { timeout: { at: 9, action: 'REBOOT', mode: 'NORMALv2', state: 'SHUTDOWN' } })]);
  assert.ok(f.timed.has('a'));
  assert.ok(!f.rebooting.has('a'));
  assert.equal(f.stale.size, 0);
});

test('a retry is told once per new attempt; removed nodes leave the counts', () => {
  const f = new Fleet();
  const retried: string[] = [];
  f.onRetry = (t) => retried.push(t);
  const r = (attempts: number) => ({ command: 'REBOOT', attempts, awaitingShutdown: true, gaveUp: false, inFlight: true, lastError: null, waitingForDriver: false });
  f.load(1, [view('a', 'ISUP')]);
  f.status(2, [view('a', 'ISUP', { reboot: r(1) })]);
  f.status(3, [view('a', 'ISUP', { reboot: r(2) })]);
  f.status(4, [view('a', 'ISUP', { reboot: r(2) })]);
  f.status(5, [view('a', 'ISUP', { reboot: r(3) })]);
  assert.deepEqual(retried, ['pc', 'pc']);
  f.remove('a');
  assert.equal(f.counts.size, 0);
  assert.equal(f.rebooting.size, 0);
});

test('boot times: live SHUTDOWN->ISUP pairs add to the daemon figures, never counting what they already hold', () => {
  const b = new BootStats();
  b.load({ since: 0, now: 1000, types: [{ type: 'pc', boots: { count: 10, p50: 50, p95: 90, max: 95 }, failures: { TIMEOUT_IN_STATE: 1 }, retries: 2 }] });
  // Replayed after a reconnect: before the figures were read, so already in them.
  b.state('n1', 'pc', 'SHUTDOWN', 900);
  b.state('n1', 'pc', 'ISUP', 990);
  b.failed('pc', 'TIMEOUT_IN_STATE', 999);
  assert.deepEqual(b.rows()[0], { type: 'pc', count: 10, p50: 50, p95: 90, max: 95, last: null, failures: { TIMEOUT_IN_STATE: 1 }, retries: 2 });
  b.state('n1', 'pc', 'SHUTDOWN', 2000);
  b.state('n1', 'pc', 'BOOTING', 2050);
  b.state('n1', 'pc', 'ISUP', 2200);
  b.state('n2', 'pc', 'ISUP', 2300); // no SHUTDOWN seen: not a boot we can time
  b.failed('pc', 'DRIVER_FAILED', 2400);
  b.retried('pc');
  assert.deepEqual(b.rows()[0], { type: 'pc', count: 11, p50: 50, p95: 90, max: 200, last: 200, failures: { TIMEOUT_IN_STATE: 1, DRIVER_FAILED: 1 }, retries: 3 });
  // A daemon without GET /v1/stats: percentiles of what was seen live.
  const live = new BootStats();
  live.load(null);
  for (const [i, ms] of [30, 10, 20, 40].entries()) {
    live.state(`s${i}`, 'sim', 'SHUTDOWN', 100);
    live.state(`s${i}`, 'sim', 'ISUP', 100 + ms);
  }
  assert.deepEqual(live.rows()[0], { type: 'sim', count: 4, p50: 20, p95: 40, max: 40, last: 40, failures: {}, retries: 0 });
});
