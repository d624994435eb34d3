// Subscriptions (SPEC §3 `subscribe`): replay from the log after `since`, then
// live, with no gap and no duplicate at the seam; filters; slow consumers;
// heartbeats. Events come from a real Core on a temp-file Store.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StatedError } from '../src/errors.ts';
import { Hub, type HubOptions, type Peer } from '../src/hub.ts';
import { makeCore, st, type TestCore } from './helpers/fake.ts';

class FakePeer implements Peer {
  frames: string[] = [];
  closed: [number, string][] = [];
  /** What buffered() reports; a test raises it to play a slow reader. */
  queued = 0;
  send(text: string): void {
    this.frames.push(text);
  }
  buffered(): number {
    return this.queued;
  }
  close(code: number, reason: string): void {
    this.closed.push([code, reason]);
  }
  get parsed(): Record<string, unknown>[] {
    return this.frames.map((f) => JSON.parse(f) as Record<string, unknown>);
  }
  /** seq of every event frame, in order. */
  get seqs(): number[] {
    return this.parsed.filter((f) => f.type === 'event').map((f) => f.seq as number);
  }
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

/** A core with pc1..pc3 and a hub publishing its commits. */
async function setup(opts: Partial<HubOptions> = {}): Promise<{ tc: TestCore; hub: Hub }> {
  const tc = makeCore();
  const hub = new Hub(tc.store, () => tc.core.seq, { maxBuffered: 1 << 20, heartbeatMs: 15_000, replayChunk: 1000, ...opts }, tc.clock.now);
  tc.core.onCommit = (c) => {
    tc.commits.push(c);
    hub.publish(c.events);
  };
  await tc.step((c) => {
    for (const id of ['pc1', 'pc2', 'pc3']) c.addNode(id, { mode: 'NORMALv2', state: 'ISUP' });
  });
  return { tc, hub };
}

const where = new WeakMap<TestCore, Map<string, number>>();
/** Commits the node's next `n` boot states (valid NORMALv2 transitions: one event each), one batch each. */
async function boot(tc: TestCore, node: string, n: number): Promise<void> {
  const cycle = ['SHUTDOWN', 'PXEBOOTING', 'BOOTING', 'TBSETUP', 'ISUP'];
  const at = where.get(tc) ?? new Map<string, number>();
  where.set(tc, at);
  for (let i = 0; i < n; i++) {
    const k = at.get(node) ?? 0;
    at.set(node, k + 1);
    await tc.send(st(node, cycle[k % cycle.length]!));
  }
}

test('replay from since, then live: every seq once, in order, across chunk seams', async () => {
  const { tc, hub } = await setup({ replayChunk: 2 });
  await boot(tc, 'pc1', 5); // seqs 1..5
  const peer = new FakePeer();
  const { sub, start } = hub.subscribe(peer, {}, 1);
  await boot(tc, 'pc2', 1); // 6: committed between the reply and the replay
  assert.deepEqual(peer.seqs, [], 'nothing before start()');
  start(); // replays 2,3 then yields
  assert.deepEqual(peer.seqs, [2, 3]);
  await boot(tc, 'pc3', 2); // 7, 8: committed while replay is between chunks
  for (let i = 0; i < 5; i++) await tick();
  await boot(tc, 'pc2', 2); // 9, 10: live
  assert.deepEqual(peer.seqs, [2, 3, 4, 5, 6, 7, 8, 9, 10]);
  const f = peer.parsed[0]!;
  assert.deepEqual(f, { type: 'event', sub, seq: 2, time: f.time, event: { objtype: 'TBNODESTATE', objname: 'pc1', eventtype: 'PXEBOOTING', mode: 'NORMALv2' } });
  assert.equal(typeof f.time, 'number');
});

test('without since only live events come; since at the head goes live at once', async () => {
  const { tc, hub } = await setup();
  await boot(tc, 'pc1', 3);
  const a = new FakePeer();
  const b = new FakePeer();
  hub.subscribe(a, {}, undefined).start();
  hub.subscribe(b, {}, 3).start();
  await boot(tc, 'pc1', 2);
  assert.deepEqual(a.seqs, [4, 5]);
  assert.deepEqual(b.seqs, [4, 5]);
});

// §3: a resume below what retention kept is refused, not silently gapped.
test('since below trimmed_through: E_HISTORY_COMPACTED; at it: accepted', async () => {
  const { tc, hub } = await setup();
  await boot(tc, 'pc1', 5);
  tc.store.trim(3, 100, tc.core.seq);
  assert.equal(tc.store.getMeta('trimmed_through'), '3');
  assert.throws(() => hub.subscribe(new FakePeer(), {}, 2), (err: unknown) =>
    err instanceof StatedError && err.code === 'E_HISTORY_COMPACTED' && /3/.test(err.message));
  assert.equal(hub.size, 0, 'a refused subscription leaves nothing behind');
  const peer = new FakePeer();
  hub.subscribe(peer, {}, 3).start();
  assert.deepEqual(peer.seqs, [4, 5]);
});

// §3: retention that overtakes a replay in progress (a trim committed between
// chunks, or between subscribe and the first read) closes it, never skips.
test('a trim that overtakes a replay ends that subscription with E_HISTORY_COMPACTED instead of skipping', async () => {
  const { tc, hub } = await setup({ replayChunk: 2 });
  await boot(tc, 'pc1', 6);
  const peer = new FakePeer();
  hub.subscribe(peer, {}, 0).start(); // sends 1, 2; the next chunk comes later
  assert.deepEqual(peer.seqs, [1, 2]);
  tc.store.trim(4, 100, tc.core.seq); // 1..4 go: 3 and 4 were never sent
  for (let i = 0; i < 3; i++) await tick();
  assert.deepEqual(peer.seqs, [1, 2], 'nothing past the hole');
  assert.deepEqual(peer.parsed.at(-1), { type: 'ended', sub: peer.parsed[0]!.sub, error: { code: 'E_HISTORY_COMPACTED', message: 'events after seq 2 were trimmed during the replay; subscribe again' } });
  assert.deepEqual(peer.closed, [], 'the connection stays');
  assert.equal(hub.size, 0);

  // A trim of everything after the cursor leaves no row to show the hole: still caught.
  const { tc: tc2, hub: hub2 } = await setup({ replayChunk: 2 });
  await boot(tc2, 'pc1', 6);
  const p2 = new FakePeer();
  hub2.subscribe(p2, {}, 0).start();
  tc2.store.trim(6, 100, tc2.core.seq);
  for (let i = 0; i < 3; i++) await tick();
  await boot(tc2, 'pc1', 1); // 7, live
  assert.deepEqual(p2.seqs, [1, 2]);
  assert.equal(p2.parsed.at(-1)!.type, 'ended');
});

// §3 filter: each of objtype, objname, eventtype a list, absent = any; the same in replay and live.
test('filters apply to replayed and live events alike, and so does allow', async () => {
  const { tc, hub } = await setup();
  const filtered = (filter: Parameters<Hub['subscribe']>[1], allow?: Parameters<Hub['subscribe']>[3]): FakePeer => {
    const p = new FakePeer();
    hub.subscribe(p, filter, 0, allow).start();
    return p;
  };
  await boot(tc, 'pc1', 3); // 1 SHUTDOWN, 2 PXEBOOTING, 3 BOOTING
  await tc.send(st('pc2', 'TBSETUP')); // 4, plus 5 NOTIFY INVALID_TRANSITION
  const byName = filtered({ objname: ['pc2'] });
  const byType = filtered({ objtype: ['NOTIFY'] });
  const byEvent = filtered({ eventtype: ['SHUTDOWN', 'BOOTING'], objtype: ['TBNODESTATE'] });
  const allowed = filtered({}, (e) => e.objname !== 'pc1');
  assert.deepEqual([byName.seqs, byType.seqs, byEvent.seqs, allowed.seqs], [[4, 5], [5], [1, 3], [4, 5]]);
  await boot(tc, 'pc3', 1); // 6 SHUTDOWN pc3
  await tc.send(st('pc2', 'SHUTDOWN')); // 7
  assert.deepEqual([byName.seqs, byType.seqs, byEvent.seqs, allowed.seqs], [[4, 5, 7], [5], [1, 3, 6, 7], [4, 5, 6, 7]]);
});

test('unsubscribe stops pushes and only the owner may unsubscribe; dropPeer forgets a closed connection', async () => {
  const { tc, hub } = await setup();
  const a = new FakePeer();
  const b = new FakePeer();
  const { sub } = hub.subscribe(a, { objname: ['pc1'] }, undefined);
  hub.subscribe(b, {}, undefined);
  assert.equal(hub.unsubscribe(sub, b), false);
  await boot(tc, 'pc1', 1);
  assert.equal(hub.unsubscribe(sub, a), true);
  assert.equal(hub.unsubscribe(sub, a), false);
  await boot(tc, 'pc1', 1);
  assert.deepEqual(a.seqs, [1]);
  hub.dropPeer(b);
  assert.equal(hub.size, 0);
  await boot(tc, 'pc1', 1);
  assert.deepEqual(b.seqs, [1, 2]);
});

// §3: "A subscriber that stops reading is dropped once its buffer passes a bound, and can resume with since."
test('a slow subscriber is dropped once, told its last seq, and resumes with since', async () => {
  const { tc, hub } = await setup({ maxBuffered: 1000 });
  const slow = new FakePeer();
  hub.subscribe(slow, {}, undefined);
  hub.subscribe(slow, { objname: ['pc1'] }, undefined); // two subs, one connection
  await boot(tc, 'pc1', 2);
  slow.queued = 1001;
  await boot(tc, 'pc1', 3); // 3 goes out, then the bound is passed
  assert.deepEqual(slow.seqs, [1, 1, 2, 2, 3]);
  assert.deepEqual(slow.closed, [[4008, 'E_SLOW_CONSUMER: last seq sent 3']]);
  assert.equal(hub.size, 0);
  const again = new FakePeer();
  hub.subscribe(again, {}, 3).start();
  assert.deepEqual(again.seqs, [4, 5]);
});

test('a slow subscriber is dropped during replay too, and replay stops', async () => {
  const { tc, hub } = await setup({ maxBuffered: 1000 });
  await boot(tc, 'pc1', 5);
  const slow = new FakePeer();
  slow.send = function (text: string) {
    FakePeer.prototype.send.call(this, text);
    if (this.frames.length === 2) this.queued = 5000;
  };
  hub.subscribe(slow, {}, 0).start();
  assert.deepEqual(slow.seqs, [1, 2]);
  assert.equal(slow.closed.length, 1);
  await boot(tc, 'pc1', 1);
  assert.deepEqual(slow.seqs, [1, 2]);
});

// §3 heartbeats let an idle subscriber tell silence from a dead link.
test('heartbeat goes to subscriptions idle for heartbeatMs, with the current seq', async () => {
  const { tc, hub } = await setup({ heartbeatMs: 10_000 });
  const idle = new FakePeer();
  const busy = new FakePeer();
  const { sub } = hub.subscribe(idle, { objname: ['pc3'] }, undefined);
  hub.subscribe(busy, { objname: ['pc1'] }, undefined);
  tc.clock.advance(9_999);
  hub.heartbeat();
  assert.deepEqual([idle.frames, busy.frames], [[], []]);
  await boot(tc, 'pc1', 2);
  tc.clock.advance(1);
  hub.heartbeat();
  assert.deepEqual(idle.parsed, [{ type: 'heartbeat', sub, seq: 2 }]);
  assert.deepEqual(busy.seqs, [1, 2]);
  assert.equal(busy.frames.length, 2, 'a subscription that just got events gets no heartbeat');
  hub.heartbeat();
  assert.equal(idle.frames.length, 1, 'not again before another heartbeatMs');
  tc.clock.advance(10_000);
  hub.heartbeat();
  assert.equal(idle.frames.length, 2);
  assert.equal(busy.frames.length, 3);
});

test('a subscription still replaying is not told a seq it has not been sent', async () => {
  const { tc, hub } = await setup({ heartbeatMs: 10_000, replayChunk: 2 });
  await boot(tc, 'pc1', 5);
  const peer = new FakePeer();
  hub.subscribe(peer, {}, 0).start(); // sends 1, 2; 3..5 wait for the next chunk
  tc.clock.advance(10_000);
  hub.heartbeat();
  const beats = peer.parsed.filter((f) => f.type === 'heartbeat');
  for (const b of beats) assert.ok((b.seq as number) <= 2, `heartbeat seq ${String(b.seq)} is ahead of the replay`);
  for (let i = 0; i < 3; i++) await tick();
  assert.deepEqual(peer.seqs, [1, 2, 3, 4, 5]);
});
