// The one writer (SPEC §2 seq and ids, §4 timeouts, §3 waits, §5 durability),
// on a fake clock and a temp-file Store; a "restart" is a new Core on the same file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StatedError } from '../src/errors.ts';
import { NO_REBOOT } from '../src/types.ts';
import { FakeClock, T0, makeCore, st, tuples, type TestCore } from './helpers/fake.ts';

const S = 1000;

/** A core with pc1 and pc2 up in NORMALv2. */
async function upNodes(): Promise<TestCore> {
  const tc = makeCore();
  await tc.step((c) => {
    c.addNode('pc1', { mode: 'NORMALv2', state: 'ISUP' });
    c.addNode('pc2', { mode: 'NORMALv2', state: 'ISUP' });
  });
  return tc;
}

const seqsOnDisk = (tc: TestCore): number[] => tc.store.eventsAfter(0, 10_000).map((le) => le.seq);
const rejects = (code: string) => (err: unknown): boolean => err instanceof StatedError && err.code === code;

// §2: seq strictly increasing and gap-free; §4: generated states are logged with their own seq.
test('seq is gap-free and generated events follow their cause', async () => {
  const tc = await upNodes();
  await tc.step((c) => c.updateNode('pc1', { nextMode: 'RELOAD' }));
  const p1 = tc.core.run((c) => c.applyEvent(st('pc1', 'SHUTDOWN')));
  const p2 = tc.core.run((c) => c.applyEvent(st('pc2', 'TBSETUP'))); // invalid from ISUP: a NOTIFY follows
  tc.core.tick();
  assert.deepEqual([await p1, await p2], [{ seq: 1, duplicate: false }, { seq: 3, duplicate: false, valid: false }]);
  const c = tc.commits.at(-1)!;
  assert.equal(tc.commits.length, 3, 'one commit per tick');
  assert.deepEqual(tuples(c), [
    'TBNODESTATE pc1 SHUTDOWN', // the cause, in NORMALv2
    'TBNODESTATE pc1 SHUTDOWN', // mode_transitions NORMALv2/SHUTDOWN -> RELOAD/SHUTDOWN
    'TBNODESTATE pc2 TBSETUP',
    'NOTIFY pc2 INVALID_TRANSITION',
  ]);
  assert.deepEqual(c.events.map((le) => le.seq), [1, 2, 3, 4]);
  assert.deepEqual(c.events.map((le) => [le.event.mode, le.event.valid]), [
    ['NORMALv2', undefined], ['RELOAD', undefined], ['NORMALv2', false], [undefined, undefined]]);
  assert.deepEqual(c.events.map((le) => le.time), [T0, T0, T0, T0]);
  await tc.send(st('pc1', 'PXEBOOTING'));
  assert.deepEqual(seqsOnDisk(tc), [1, 2, 3, 4, 5]);
  assert.equal(tc.core.seq, 5);
  assert.deepEqual(tc.store.eventsAfter(1, 1)[0]!.event, { objtype: 'TBNODESTATE', objname: 'pc1', eventtype: 'SHUTDOWN', mode: 'RELOAD' });
});

// §2: "the same id within the retention window returns the original seq and is not applied twice".
test('a client id makes a resend idempotent, also after a restart', async () => {
  let tc = await upNodes();
  assert.deepEqual(await tc.step((c) => c.applyEvent(st('pc1', 'SHUTDOWN', 'boot-1'))), { seq: 1, duplicate: false });
  await tc.send(st('pc1', 'PXEBOOTING'));
  assert.deepEqual(await tc.step((c) => c.applyEvent(st('pc1', 'SHUTDOWN', 'boot-1'))), { seq: 1, duplicate: true });
  assert.equal(tc.core.nodes.get('pc1')!.state, 'PXEBOOTING', 'not applied again');
  assert.equal(tc.core.seq, 2);
  tc = tc.restart();
  assert.deepEqual(await tc.step((c) => c.applyEvent(st('pc1', 'SHUTDOWN', 'boot-1'))), { seq: 1, duplicate: true });
  assert.deepEqual([tc.core.seq, seqsOnDisk(tc)], [2, [1, 2]]);
});

// §3 POST /v1/events: an array is applied all or nothing; the server checks every node first.
test('an array job that fails validation changes nothing; its batch-mates commit', async () => {
  const tc = await upNodes();
  const bad = tc.core.run((c) => {
    const events = [st('pc1', 'SHUTDOWN'), st('pc9', 'SHUTDOWN')];
    for (const e of events) c.checkEvent(e);
    return events.map((e) => c.applyEvent(e));
  });
  const good = tc.core.run((c) => c.applyEvent(st('pc2', 'SHUTDOWN')));
  tc.core.tick();
  await assert.rejects(bad, rejects('E_UNKNOWN_NODE'));
  assert.deepEqual(await good, { seq: 1, duplicate: false });
  assert.equal(tc.core.nodes.get('pc1')!.state, 'ISUP');
  assert.deepEqual(tuples(tc.commits.at(-1)!), ['TBNODESTATE pc2 SHUTDOWN']);
});

test('a job that fails after applying rolls back memory and disk alike', async () => {
  const tc = await upNodes();
  const bad = tc.step((c) => {
    c.applyEvent(st('pc1', 'SHUTDOWN'));
    throw new StatedError('E_BAD_EVENT', 'found wrong after the first event was applied');
  });
  await assert.rejects(bad, rejects('E_BAD_EVENT'));
  assert.deepEqual([tc.core.seq, seqsOnDisk(tc), tc.core.nodes.get('pc1')!.state], [0, [], 'ISUP']);
  assert.deepEqual(await tc.step((c) => c.applyEvent(st('pc1', 'SHUTDOWN'))), { seq: 1, duplicate: false });
});

// §4.2 + state_timeouts NORMALv2/BOOTING 180 REBOOT (not driven: reported only).
test('a timeout fires via fireDue once the fake clock reaches its deadline', async () => {
  const tc = await upNodes();
  await tc.send(st('pc1', 'SHUTDOWN'));
  await tc.send(st('pc1', 'PXEBOOTING'));
  await tc.send(st('pc1', 'BOOTING'));
  assert.deepEqual(tc.core.nodes.get('pc1')!.timeout, { at: T0 + 180 * S, action: 'REBOOT', mode: 'NORMALv2', state: 'BOOTING' });
  tc.clock.advance(180 * S - 1);
  assert.equal(await tc.fire(), null);
  tc.clock.advance(1);
  const c = await tc.fire();
  assert.deepEqual(tuples(c), ['NOTIFY pc1 TIMEOUT']);
  assert.equal(c!.events[0]!.time, T0 + 180 * S);
  assert.equal(tc.core.nodes.get('pc1')!.timeout, null);
  assert.equal(await tc.fire(), null, 'fires once');
});

test('a timeout counts from the time its event is logged at, however often the clock is read in between', async () => {
  // A clock that moves 1 ms at every reading: two readings per event used to
  // put the deadline before "logged time + timeout" (a retry logged 1 ms early).
  const clock = new FakeClock();
  const ticking = Object.assign(clock, { now: (): number => ++clock.t });
  const tc = makeCore(undefined, ticking);
  await tc.step((c) => c.addNode('pc1', { mode: 'NORMALv2', state: 'ISUP' }));
  const c = await tc.send(st('pc1', 'BOOTING'));
  const booting = c.events.find((le) => le.event.objtype === 'TBNODESTATE' && le.event.eventtype === 'BOOTING')!;
  assert.equal(tc.core.nodes.get('pc1')!.timeout!.at, booting.time + 180 * S);
  assert.equal(tc.core.nodes.get('pc1')!.since, booting.time);
});

test('a replaced deadline does not fire', async () => {
  const tc = await upNodes();
  await tc.send(st('pc1', 'SHUTDOWN'));
  await tc.send(st('pc1', 'PXEBOOTING'));
  await tc.send(st('pc1', 'BOOTING'));
  tc.clock.advance(100 * S);
  await tc.send(st('pc1', 'TBSETUP')); // TBSETUP's 600 s NOTIFY replaces BOOTING's
  tc.clock.advance(100 * S);
  assert.equal(await tc.fire(), null);
  tc.clock.advance(500 * S);
  assert.deepEqual(tuples(await tc.fire()), ['NOTIFY pc1 TIMEOUT']);
});

// §5: "overdue timeouts fire at once on start ... a reboot in flight keeps its attempt count".
test('overdue deadlines fire after a restart; a driven reboot keeps its attempt count', async () => {
  let tc = await upNodes();
  await tc.send(st('pc2', 'SHUTDOWN'));
  await tc.send(st('pc2', 'PXEBOOTING'));
  await tc.send(st('pc2', 'BOOTING'));
  const cmd = await tc.step((c) => c.applyEvent({ objtype: 'TBCOMMAND', objname: 'pc1', eventtype: 'REBOOT' }));
  assert.deepEqual(cmd.nodes, { pc1: 'accepted' });
  assert.deepEqual(tc.commits.at(-1)!.effects, [{ t: 'action', node: 'pc1', command: 'REBOOT', attempt: 1, started: T0 }]);
  await tc.step((c) => c.applyInput('pc1', { kind: 'actionResult', command: 'REBOOT', attempt: 1, ok: true }));
  assert.equal(tc.core.nodes.get('pc1')!.timeout!.at, T0 + 75 * S); // TBCOMMAND/REBOOT 75 CMDRETRY

  tc = tc.restart(new FakeClock(T0 + 3600 * S));
  const c = await tc.fire();
  assert.deepEqual(c!.effects, [{ t: 'action', node: 'pc1', command: 'REBOOT', attempt: 2, started: T0 + 3600 * S, retry: 'COMMAND_TIMEOUT' }]);
  assert.deepEqual(tuples(c), ['NOTIFY pc1 REBOOT_RETRY', 'NOTIFY pc2 TIMEOUT']);
  assert.equal(tc.core.nodes.get('pc1')!.reboot.attempts, 2);
  assert.equal(await tc.fire(), null);
});

// §5: "a reboot in flight keeps its attempt count": an action never reported is re-run after a restart.
test('actions started but never reported are in flight after a restart, same attempt', async () => {
  let tc = await upNodes();
  const r = await tc.step((c) => c.applyEvent({ objtype: 'TBCOMMAND', objname: 'pc1,pc2', eventtype: 'POWERCYCLE' }));
  assert.deepEqual(r.nodes, { pc1: 'accepted', pc2: 'accepted' });
  await tc.step((c) => c.applyInput('pc2', { kind: 'actionResult', command: 'POWERCYCLE', attempt: 1, ok: true }));
  tc = tc.restart();
  assert.deepEqual(tc.core.inFlightActions(), [{ t: 'action', node: 'pc1', command: 'POWERCYCLE', attempt: 1, started: T0 }], 'the same action: its start kept');
  assert.equal(tc.core.nodes.get('pc2')!.state, 'SHUTDOWN', 'stated said SHUTDOWN for the power-cycled node');
});

/** Opens a wait for `states` on `nodes`, starting after the current seq. */
const openWait = (tc: TestCore, id: string, states: string[], nodes: string[]) =>
  tc.step((c) => c.waits.create(id, states, nodes, c.seq, 86_400, c.now(), null));

// §3 wait semantics: in order, not necessarily consecutive; pushes come with the commit that moved them.
test('waits advance in the commit of the event that moves them', async () => {
  const tc = await upNodes();
  await openWait(tc, 'w1', ['SHUTDOWN', 'ISUP'], ['pc1', 'pc2']);
  const down = await tc.send(st('pc1', 'SHUTDOWN'));
  assert.deepEqual(down.waits, [{ type: 'progress', wait: 'w1', node: 'pc1', state: 'SHUTDOWN', remaining: ['ISUP'], seq: 1 }]);
  for (const s of ['PXEBOOTING', 'BOOTING', 'TBSETUP']) assert.deepEqual((await tc.send(st('pc1', s))).waits, []);
  const up = await tc.send(st('pc1', 'ISUP'));
  assert.deepEqual(up.waits, [{ type: 'done', wait: 'w1', node: 'pc1', seq: 5 }]);
  assert.deepEqual(tc.core.waits.snapshot('w1', tc.core.seq), {
    wait: 'w1', states: ['SHUTDOWN', 'ISUP'], seq: 5, finished: ['pc1'], failed: [], remaining: ['pc2'], failures: {},
  });
});

test('an ISUP before SHUTDOWN does not count for SHUTDOWN,ISUP', async () => {
  const tc = await upNodes();
  await tc.send(st('pc1', 'TBSETUP'));
  await openWait(tc, 'w1', ['SHUTDOWN', 'ISUP'], ['pc1']);
  assert.deepEqual((await tc.send(st('pc1', 'ISUP'))).waits, []);
  assert.deepEqual(tc.core.waits.snapshot('w1', 0)!.remaining, ['pc1']);
  assert.equal((await tc.send(st('pc1', 'SHUTDOWN'))).waits[0]!.type, 'progress');
  assert.equal((await tc.send(st('pc1', 'ISUP'))).waits[0]!.type, 'done');
});

// §3: "a TBFAILED for a node marks it failed in every wait that holds it".
test('TBFAILED fails the node in every wait holding it, with the reason', async () => {
  const tc = await upNodes();
  await openWait(tc, 'w1', ['ISUP'], ['pc1']);
  await openWait(tc, 'w2', ['SHUTDOWN', 'ISUP'], ['pc1', 'pc2']);
  const reason = { code: 'LOST', message: 'cable cut' };
  const c = await tc.send({ objtype: 'TBFAILED', objname: 'pc1', eventtype: 'REBOOT', reason });
  assert.deepEqual(c.waits.map((u) => [u.type, u.wait, u.node]).sort(), [['failed', 'w1', 'pc1'], ['failed', 'w2', 'pc1']]);
  assert.deepEqual(c.waits.map((u) => (u.type === 'failed' ? u.reason : null)), [reason, reason]);
  assert.deepEqual(tc.core.waits.snapshot('w2', 0)!.remaining, ['pc2']);
  assert.deepEqual(tc.core.waits.snapshot('w2', 0)!.failures, { pc1: reason });
  // A failed node stays failed: later states do not move it.
  assert.deepEqual((await tc.send(st('pc1', 'SHUTDOWN'))).waits, []);
});

// §4 + §3: the TBFAILED stated emits after the last CMDRETRY reaches the waits in the same commit.
test('a reboot that gives up fails the wait in the commit that gives up', async () => {
  const tc = await upNodes();
  await openWait(tc, 'w1', ['SHUTDOWN'], ['pc1']);
  await tc.step((c) => c.applyEvent({ objtype: 'TBCOMMAND', objname: 'pc1', eventtype: 'REBOOT' }));
  let last = null;
  for (let attempt = 1; attempt <= 3; attempt++) {
    await tc.step((c) => c.applyInput('pc1', { kind: 'actionResult', command: 'REBOOT', attempt, ok: true }));
    tc.clock.advance(75 * S);
    last = await tc.fire();
  }
  assert.deepEqual(tuples(last), ['TBFAILED pc1 REBOOT']);
  assert.deepEqual(last!.waits, [{ type: 'failed', wait: 'w1', node: 'pc1', seq: last!.events[0]!.seq,
    reason: { code: 'COMMAND_TIMEOUT', mode: 'TBCOMMAND', state: 'REBOOT', attempts: 3 } }]);
  assert.equal(tc.core.nodes.get('pc1')!.reboot.gaveUp, true);
  await tc.send(st('pc1', 'SHUTDOWN'));
  await tc.send(st('pc1', 'PXEBOOTING'));
  await tc.send(st('pc1', 'BOOTING'));
  await tc.send(st('pc1', 'TBSETUP'));
  await tc.send(st('pc1', 'ISUP'));
  assert.deepEqual(tc.core.nodes.get('pc1')!.reboot, NO_REBOOT, 'ISUP ends the failed drive');
});

// §3/§5: "A wait lives in SQLite: it keeps advancing ... across server restarts".
test('waits survive a restart and keep advancing', async () => {
  let tc = await upNodes();
  await openWait(tc, 'w1', ['SHUTDOWN', 'ISUP'], ['pc1', 'pc2']);
  await tc.send(st('pc1', 'SHUTDOWN'));
  await tc.send({ objtype: 'TBFAILED', objname: 'pc2', eventtype: 'REBOOT' });
  const before = tc.core.waits.snapshot('w1', 0);
  tc = tc.restart();
  assert.deepEqual(tc.core.waits.snapshot('w1', 0), before);
  assert.deepEqual(before!.failures, { pc2: { code: 'TBFAILED', message: 'REBOOT failed' } });
  for (const s of ['PXEBOOTING', 'BOOTING', 'TBSETUP']) await tc.send(st('pc1', s));
  assert.deepEqual((await tc.send(st('pc1', 'ISUP'))).waits, [{ type: 'done', wait: 'w1', node: 'pc1', seq: 6 }]);
});
