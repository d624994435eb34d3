// StateWait over the WebSocket (SPEC §3 initStateWait / waitForState /
// cancelWait / endStateWait / attach), against the built dist/stated: the
// seed's rules (states in order, not necessarily consecutive; only events
// after the wait's start count; TBFAILED fails the node in every wait), and
// the durability promise (a wait advances while its client is away and
// across a kill -9, and attach returns exactly what happened).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { type Daemon, type WsClient, connectWs, http, startDaemon, tempDir } from './helpers/daemon.ts';

const SD_ISUP = ['SHUTDOWN', 'ISUP'];

async function daemonWithNodes(t: { after: (fn: () => unknown) => void }, nodes: string[]): Promise<{ d: Daemon; c: WsClient }> {
  const d = await startDaemon();
  t.after(() => d.stop());
  const c = await ws(t, d);
  const r = await c.request('admin', { action: 'node.add', args: { nodes } });
  assert.equal(r.ok, true, JSON.stringify(r));
  return { d, c };
}

async function ws(t: { after: (fn: () => unknown) => void }, d: Daemon): Promise<WsClient> {
  const c = await connectWs(d);
  t.after(() => c.close());
  return c;
}

/** One event over HTTP with the admin token; resolves with its seq. */
async function send(d: Daemon, objname: string, eventtype: string, objtype = 'TBNODESTATE'): Promise<number> {
  const r = await http(d, 'POST', '/v1/events', { objtype, objname, eventtype });
  assert.equal(r.status, 200, r.text);
  return r.json.accepted[0].seq;
}

const fail = (d: Daemon, node: string): Promise<number> => send(d, node, 'REBOOT', 'TBFAILED');

async function init(c: WsClient, nodes: string[], states = SD_ISUP, extra: Record<string, unknown> = {}): Promise<{ wait: string; seq: number }> {
  const r = await c.request('initStateWait', { states, nodes, ...extra });
  assert.equal(r.ok, true, JSON.stringify(r));
  assert.match(r.wait, /^[A-Za-z0-9_./-]{1,64}$/, 'a wait id is a name');
  return r;
}

/** The reply of a request, without the envelope. */
async function ok(c: WsClient, op: string, fields: Record<string, unknown>): Promise<any> {
  const r = await c.request(op, fields);
  assert.equal(r.ok, true, `${op}: ${JSON.stringify(r)}`);
  const { re: _re, ok: _ok, ...rest } = r;
  return rest;
}

async function errorCode(c: WsClient, op: string, fields: Record<string, unknown>): Promise<string> {
  const r = await c.request(op, fields);
  assert.equal(r.ok, false, `${op} should fail: ${JSON.stringify(r)}`);
  return r.error.code;
}

const pushesOf = (c: WsClient, wait: string): any[] => c.pushes.filter((p) => p.wait === wait);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function metric(d: Daemon, name: string): Promise<number> {
  const r = await http(d, 'GET', '/metrics');
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(r.text);
  assert.ok(m, `no ${name} in /metrics:\n${r.text}`);
  return Number(m[1]);
}

test('SHUTDOWN,ISUP on five nodes: order counts, earlier events do not, TBFAILED fails, the silent one stays remaining (SPEC §3)', async (t) => {
  // early: ISUP before SHUTDOWN (must not count), then a full boot.
  // pre:   SHUTDOWN before the wait exists, ISUP after (must not count).
  // gone:  SHUTDOWN, then TBFAILED from the admin.
  // quick: its whole boot before the wait (must not count), then SHUTDOWN, ISUP.
  // mute:  never answers.
  const nodes = ['early', 'pre', 'gone', 'quick', 'mute'];
  const { d, c } = await daemonWithNodes(t, nodes);
  await send(d, 'pre', 'SHUTDOWN');
  await send(d, 'quick', 'SHUTDOWN');
  const isup = await send(d, 'quick', 'ISUP');
  const head = (await http(d, 'GET', '/healthz', undefined, null)).json.seq;
  assert.ok(head >= isup, `healthz seq ${head} covers ${isup} (and any NOTIFY for the invalid SHUTDOWN→ISUP)`);

  const { wait, seq: start } = await init(c, nodes);
  assert.equal(start, head, 'the wait starts after the last logged event');
  // A second wait holding `gone`: TBFAILED must fail it there too.
  const other = await init(c, ['gone'], ['ISUP']);

  const seqs: Record<string, number> = {};
  const step = async (node: string, state: string): Promise<void> => { seqs[`${node}:${state}`] = await send(d, node, state); };
  await step('early', 'ISUP');
  await step('pre', 'ISUP');
  await step('early', 'SHUTDOWN');
  for (const s of ['PXEBOOTING', 'BOOTING', 'TBSETUP']) await step('early', s);
  await step('gone', 'SHUTDOWN');
  seqs['gone:TBFAILED'] = await fail(d, 'gone');
  await step('early', 'ISUP');
  await step('quick', 'SHUTDOWN');
  await step('quick', 'ISUP');

  await c.push((p) => p.wait === wait && p.type === 'done' && p.node === 'quick');
  assert.deepEqual(pushesOf(c, wait), [
    { type: 'progress', wait, node: 'early', state: 'SHUTDOWN', remaining: ['ISUP'], seq: seqs['early:SHUTDOWN'] },
    { type: 'progress', wait, node: 'gone', state: 'SHUTDOWN', remaining: ['ISUP'], seq: seqs['gone:SHUTDOWN'] },
    { type: 'failed', wait, node: 'gone', reason: { code: 'TBFAILED', message: 'REBOOT failed' }, seq: seqs['gone:TBFAILED'] },
    { type: 'done', wait, node: 'early', seq: seqs['early:ISUP'] },
    { type: 'progress', wait, node: 'quick', state: 'SHUTDOWN', remaining: ['ISUP'], seq: seqs['quick:SHUTDOWN'] },
    { type: 'done', wait, node: 'quick', seq: seqs['quick:ISUP'] },
  ], 'exactly these pushes: no progress for an ISUP out of order, nothing for pre or mute');
  assert.deepEqual(pushesOf(c, other.wait), [
    { type: 'failed', wait: other.wait, node: 'gone', reason: { code: 'TBFAILED', message: 'REBOOT failed' }, seq: seqs['gone:TBFAILED'] },
  ]);

  const t0 = Date.now();
  const r = await ok(c, 'waitForState', { wait, timeout: 1 });
  const took = Date.now() - t0;
  assert.ok(took >= 900 && took < 5000, `returned at the 1 s timeout, took ${took} ms`);
  assert.deepEqual([r.finished, r.failed, r.remaining], [['early', 'quick'], ['gone'], ['pre', 'mute']]);
  assert.deepEqual(r.failures, { gone: { code: 'TBFAILED', message: 'REBOOT failed' } });
  const o = await ok(c, 'waitForState', { wait: other.wait, timeout: 1 });
  assert.deepEqual([o.finished, o.failed, o.remaining], [[], ['gone'], []], 'the other wait holds the failure too, and returns at once');

  // pre's SHUTDOWN was before the wait: only a SHUTDOWN after it, then ISUP, finishes it.
  await step('pre', 'SHUTDOWN');
  await step('pre', 'ISUP');
  const r2 = await ok(c, 'waitForState', { wait, timeout: 1 });
  assert.deepEqual([r2.finished, r2.failed, r2.remaining], [['early', 'pre', 'quick'], ['gone'], ['mute']]);
  // A failed node stays failed: a later boot does not finish it.
  await step('gone', 'SHUTDOWN');
  await step('gone', 'ISUP');
  const a = await ok(c, 'attach', { wait });
  assert.deepEqual([a.finished, a.failed, a.remaining, a.states], [['early', 'pre', 'quick'], ['gone'], ['mute'], SD_ISUP]);
});

test('waitForState returns partial results at each timeout; cancelWait shrinks remaining; endStateWait deletes the wait (SPEC §3)', async (t) => {
  const { d, c } = await daemonWithNodes(t, ['x', 'y', 'z', 'q']);
  const { wait } = await init(c, ['x', 'y', 'z']);
  const poll = async (): Promise<[string[], string[], string[]]> => {
    const t0 = Date.now();
    const r = await ok(c, 'waitForState', { wait, timeout: 0.3 });
    const took = Date.now() - t0;
    assert.ok(took >= 250 && took < 3000, `a 0.3 s waitForState took ${took} ms`);
    return [r.finished, r.failed, r.remaining];
  };
  assert.deepEqual(await poll(), [[], [], ['x', 'y', 'z']]);
  await send(d, 'x', 'SHUTDOWN');
  await send(d, 'x', 'ISUP');
  assert.deepEqual(await poll(), [['x'], [], ['y', 'z']]);
  await send(d, 'y', 'SHUTDOWN');
  assert.deepEqual(await poll(), [['x'], [], ['y', 'z']], 'half a sequence is not done');

  // An open-ended waitForState, then z is cancelled: it must not end it (y still pending)...
  let replied: any = null;
  const open = ok(c, 'waitForState', { wait }).then((r) => { replied = r; return r; });
  const cancelled = await ok(c, 'cancelWait', { wait, node: 'z' });
  assert.deepEqual(cancelled.remaining, ['y']);
  await sleep(300);
  assert.equal(replied, null, 'y is still pending: no reply yet');
  // ...and once y finishes it completes without z.
  await send(d, 'y', 'ISUP');
  const r = await open;
  assert.deepEqual([r.finished, r.failed, r.remaining], [['x', 'y'], [], []]);
  // z's later boot is ignored: no push, in no list.
  await send(d, 'z', 'SHUTDOWN');
  await send(d, 'z', 'ISUP');
  const a = await ok(c, 'attach', { wait });
  assert.deepEqual([a.finished, a.failed, a.remaining], [['x', 'y'], [], []]);
  assert.deepEqual(pushesOf(c, wait).filter((p) => p.node === 'z'), []);
  // Cancelling an unknown or settled node changes nothing.
  assert.deepEqual((await ok(c, 'cancelWait', { wait, node: 'x' })).remaining, []);

  assert.deepEqual(await ok(c, 'endStateWait', { wait }), {});
  for (const op of ['attach', 'waitForState', 'endStateWait']) assert.equal(await errorCode(c, op, { wait }), 'E_UNKNOWN_WAIT', op);
  assert.equal(await errorCode(c, 'cancelWait', { wait, node: 'x' }), 'E_UNKNOWN_WAIT');

  // A waitForState in flight on another connection gets its one reply when the wait is ended.
  const w2 = await init(c, ['q']);
  const c2 = await ws(t, d);
  const pending = c2.request('waitForState', { wait: w2.wait });
  await sleep(200);
  await ok(c, 'endStateWait', { wait: w2.wait });
  const ended = await pending;
  assert.equal(ended.ok, false, JSON.stringify(ended));
  assert.equal(ended.error.code, 'E_UNKNOWN_WAIT');
  // And its pushes have stopped.
  await send(d, 'q', 'SHUTDOWN');
  await sleep(200);
  assert.deepEqual(pushesOf(c, w2.wait), []);
  assert.equal(await metric(d, 'stated_waits'), 0);
});

test('a client that disconnects: the wait advances without it, attach returns exactly what happened, pushes resume (SPEC §3)', async (t) => {
  const nodes = ['m1', 'm2', 'm3', 'm4'];
  const { d, c } = await daemonWithNodes(t, nodes);
  const { wait } = await init(c, nodes);
  c.close();
  await new Promise((r) => c.ws.once('close', r));

  await send(d, 'm1', 'SHUTDOWN');
  await send(d, 'm1', 'ISUP');
  await send(d, 'm2', 'SHUTDOWN');
  const r = await http(d, 'POST', '/v1/events', { objtype: 'TBFAILED', objname: 'm2', eventtype: 'REBOOT', message: 'm2 is on fire' });
  assert.equal(r.status, 200, r.text);
  await send(d, 'm3', 'SHUTDOWN');
  await send(d, 'm4', 'ISUP');

  const c2 = await ws(t, d);
  const a = await ok(c2, 'attach', { wait });
  assert.deepEqual(
    { finished: a.finished, failed: a.failed, remaining: a.remaining, states: a.states, failures: a.failures },
    { finished: ['m1'], failed: ['m2'], remaining: ['m3', 'm4'], states: SD_ISUP, failures: { m2: { code: 'TBFAILED', message: 'm2 is on fire' } } },
  );
  assert.deepEqual(c2.pushes, [], 'what happened while away comes in the attach reply, not as pushes');

  // m3 kept its place in the sequence while nobody was connected.
  const isup = await send(d, 'm3', 'ISUP');
  assert.deepEqual(await c2.push((p) => p.wait === wait && p.node === 'm3'), { type: 'done', wait, node: 'm3', seq: isup });
  const w = await ok(c2, 'waitForState', { wait, timeout: 0.3 });
  assert.deepEqual([w.finished, w.failed, w.remaining], [['m1', 'm3'], ['m2'], ['m4']]);
});

test('kill -9 mid-wait: the restarted daemon keeps advancing it and attach returns the exact outcome (SPEC §3, §5)', async (t) => {
  const nodes = ['k1', 'k2', 'k3', 'k4'];
  const { d, c } = await daemonWithNodes(t, nodes);
  const { wait } = await init(c, nodes);
  await send(d, 'k1', 'SHUTDOWN');
  await send(d, 'k1', 'ISUP');
  const lastBefore = await send(d, 'k2', 'SHUTDOWN');
  await c.push((p) => p.wait === wait && p.node === 'k2');

  await d.kill9();
  const d2 = await d.restart();
  t.after(() => d2.stop());

  // k2 finishes on its pre-crash SHUTDOWN; k3 fails; k4 sees only ISUP.
  const k2up = await send(d2, 'k2', 'ISUP');
  assert.equal(k2up, lastBefore + 1, 'the log continues where it was: nothing acknowledged was lost');
  await fail(d2, 'k3');
  await send(d2, 'k4', 'ISUP');

  const c2 = await ws(t, d2);
  const a = await ok(c2, 'attach', { wait });
  assert.deepEqual(
    { finished: a.finished, failed: a.failed, remaining: a.remaining, states: a.states, failures: a.failures },
    { finished: ['k1', 'k2'], failed: ['k3'], remaining: ['k4'], states: SD_ISUP, failures: { k3: { code: 'TBFAILED', message: 'REBOOT failed' } } },
  );
  // Attached again, it pushes and completes as before the crash.
  const open = ok(c2, 'waitForState', { wait });
  const sd = await send(d2, 'k4', 'SHUTDOWN');
  const up = await send(d2, 'k4', 'ISUP');
  const w = await open;
  assert.deepEqual([w.finished, w.failed, w.remaining], [['k1', 'k2', 'k4'], ['k3'], []]);
  assert.deepEqual(pushesOf(c2, wait), [
    { type: 'progress', wait, node: 'k4', state: 'SHUTDOWN', remaining: ['ISUP'], seq: sd },
    { type: 'done', wait, node: 'k4', seq: up },
  ]);
});

test('a wait keeps its creation time through attaches and a kill -9: waits list tells its age, not its last attach (SPEC §1 waits)', async (t) => {
  const { d, c } = await daemonWithNodes(t, ['a1']);
  const { wait } = await init(c, ['a1']);
  const createdOf = async (dd: Daemon): Promise<number> => {
    const r = await http(dd, 'GET', '/v1/waits');
    assert.equal(r.status, 200, r.text);
    const w = r.json.waits.find((x: any) => x.wait === wait);
    assert.ok(w, `${wait} is listed`);
    return w.created;
  };
  const created = await createdOf(d);
  await new Promise((res) => setTimeout(res, 150));
  await ok(c, 'attach', { wait }); // moves last_attach, not the creation time
  assert.equal(await createdOf(d), created);
  await d.kill9();
  const d2 = await d.restart();
  t.after(() => d2.stop());
  assert.equal(await createdOf(d2), created, 'the creation time comes back from the database');
});

// ttl is counted from the last attach; the sweep runs every `sweepInterval`
// seconds (config; 60 by default), shortened here so the test takes seconds.
test('ttl: a wait nobody attaches is swept, attach keeps one alive, a waiter on a swept wait gets its reply (SPEC §3 ttl)', async (t) => {
  const dir = tempDir();
  const config = path.join(dir, 'config.json');
  fs.writeFileSync(config, JSON.stringify({ sweepInterval: 0.25 }));
  const d = await startDaemon({ dir, args: ['--config', config] });
  t.after(() => d.stop());
  const c = await ws(t, d);
  assert.equal((await c.request('admin', { action: 'node.add', args: { nodes: ['t1'] } })).ok, true);

  const idle = await init(c, ['t1'], SD_ISUP, { ttl: 1 });
  const kept = await init(c, ['t1'], SD_ISUP, { ttl: 2 });
  const long = await init(c, ['t1']);
  // waitForState is not an attach: this one stays open on `idle` until the sweep.
  const c2 = await ws(t, d);
  const pending = c2.request('waitForState', { wait: idle.wait });
  const t0 = Date.now();
  const at = (ms: number) => sleep(Math.max(0, t0 + ms - Date.now()));
  let lastAttach = 0; // a lower bound of the daemon's own last_attach
  for (const ms of [900, 1800, 2700, 3600]) {
    await at(ms);
    lastAttach = Date.now();
    assert.equal((await c.request('attach', { wait: kept.wait })).ok, true, `kept, attached every 0.9 s, is alive at ${ms} ms`);
  }
  const reply = await Promise.race([pending, sleep(1000).then(() => 'no reply')]);
  assert.notEqual(reply, 'no reply', 'a waitForState on a swept wait must get its one reply (SPEC §3)');
  assert.equal(reply.ok, false);
  assert.equal(reply.error.code, 'E_UNKNOWN_WAIT');
  assert.equal(await errorCode(c, 'attach', { wait: idle.wait }), 'E_UNKNOWN_WAIT', 'idle (ttl 1, never attached) is gone');

  // Left alone, kept goes 2 s after its last attach (not after its creation, 3.6 s ago); the default-ttl wait stays.
  while ((await c.request('waitForState', { wait: kept.wait, timeout: 0.05 })).ok) {
    assert.ok(Date.now() - lastAttach < 5000, 'kept was not swept within 5 s of its last attach');
    await sleep(50);
  }
  const gone = Date.now() - lastAttach;
  assert.ok(gone >= 2000, `kept was swept ${gone} ms after its last attach, before its ttl of 2 s`);
  assert.deepEqual((await ok(c, 'attach', { wait: long.wait })).remaining, ['t1']);
  assert.equal(await metric(d, 'stated_waits'), 1);
});
