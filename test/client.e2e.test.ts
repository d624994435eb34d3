// The client library (src/client) against the built dist/stated: a StateWait
// rides out a kill -9 of the daemon, reconnecting on its own and re-attaching,
// and reports every node's outcome exactly once (SPEC §3 attach, §5).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Connection, StateWait, type WaitProgress, connect, initStateWait } from '../src/client/index.ts';
import { type Daemon, http, startDaemon } from './helpers/daemon.ts';
import { freePort } from './helpers/poll.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function send(d: Daemon, objname: string, eventtype: string, objtype = 'TBNODESTATE'): Promise<number> {
  const r = await http(d, 'POST', '/v1/events', { objtype, objname, eventtype });
  assert.equal(r.status, 200, r.text);
  return r.json.accepted[0].seq;
}

async function metric(d: Daemon, name: string): Promise<number> {
  const r = await http(d, 'GET', '/metrics');
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(r.text);
  assert.ok(m, `no ${name} in /metrics:\n${r.text}`);
  return Number(m[1]);
}

async function until(what: string, pred: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const t0 = Date.now();
  while (!(await pred())) {
    if (Date.now() - t0 > ms) assert.fail(`${what}: not within ${ms} ms`);
    await sleep(25);
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([p, sleep(ms).then(() => assert.fail(`${what}: not within ${ms} ms`))]);
}

test('library: kill -9 and restart on the same port; auto-reconnect + re-attach gives the final result, each node settles once (SPEC §3, §5)', async (t) => {
  const nodes = ['L1', 'L2', 'L3', 'L4'];
  const d = await startDaemon();
  t.after(() => d.stop());
  const conn = await connect({ url: d.wsUrl, token: d.token });
  t.after(() => conn.close());
  await conn.request('admin', { action: 'node.add', args: { nodes } });

  const w = await initStateWait(conn, ['SHUTDOWN', 'ISUP'], nodes);
  assert.ok(w instanceof StateWait);
  assert.deepEqual([w.states, w.nodes], [['SHUTDOWN', 'ISUP'], nodes]);
  const seen: WaitProgress[] = [];
  const drained = (async () => { for await (const u of w.progress()) seen.push(u); })();

  const l1sd = await send(d, 'L1', 'SHUTDOWN');
  const l1up = await send(d, 'L1', 'ISUP');
  const l2sd = await send(d, 'L2', 'SHUTDOWN');
  await until('progress for L2 before the crash', () => seen.some((u) => u.node === 'L2'));
  assert.deepEqual(seen, [
    { type: 'progress', node: 'L1', state: 'SHUTDOWN', remaining: ['ISUP'], seq: l1sd },
    { type: 'done', node: 'L1', seq: l1up },
    { type: 'progress', node: 'L2', state: 'SHUTDOWN', remaining: ['ISUP'], seq: l2sd },
  ]);
  // In flight across the crash: no timeout, so only the final outcome answers it.
  const final = w.waitForState();

  await d.kill9();
  // Asked while the daemon is down: a retryable request must wait for the reconnect, not fail.
  const during = w.waitForState({ timeout: 0.2 }).then((v) => ({ ok: true, v }), (e: unknown) => ({ ok: false, e: String(e) }));
  await sleep(300);
  const d2 = await d.restart(['--listen', `127.0.0.1:${d.port}`]);
  t.after(() => d2.stop());
  assert.equal(d2.port, d.port, 'the harness restarted on the same port');

  // Sent at once, most likely before the library is back: they reach it through attach.
  await send(d2, 'L2', 'ISUP');
  await send(d2, 'L3', 'REBOOT', 'TBFAILED');
  await until('L2 done (from the re-attach)', () => seen.some((u) => u.type === 'done' && u.node === 'L2'));
  // Re-attached: pushes are live again.
  const l4sd = await send(d2, 'L4', 'SHUTDOWN');
  await until('live progress for L4 after the reconnect', () => seen.some((u) => u.node === 'L4'));
  const l4up = await send(d2, 'L4', 'ISUP');

  const r = await withTimeout(final, 10_000, 'the waitForState sent before the crash');
  assert.deepEqual(r, {
    finished: ['L1', 'L2', 'L4'], failed: ['L3'], remaining: [],
    failures: { L3: { code: 'TBFAILED', message: 'REBOOT failed' } },
  });
  await withTimeout(drained, 5000, 'progress() ends once every node is settled');

  const settled = seen.filter((u) => u.type !== 'progress').map((u) => `${u.type} ${u.node}`).sort();
  assert.deepEqual(settled, ['done L1', 'done L2', 'done L4', 'failed L3'], 'every node settles exactly once');
  const failed = seen.find((u) => u.type === 'failed');
  assert.deepEqual(failed && failed.type === 'failed' ? failed.reason : null, { code: 'TBFAILED', message: 'REBOOT failed' });

  // Checked together, so one run shows every symptom of a reconnect gone wrong.
  const mid = await withTimeout(during, 10_000, 'the waitForState asked during the outage');
  assert.deepEqual({
    // A live push arrives once, not once per socket.
    l4: seen.filter((u) => u.node === 'L4'),
    // A retryable request made while the daemon was down waits for the reconnect.
    duringOutage: mid.ok ? 'answered' : mid,
    // One library connection, one socket at the daemon.
    sockets: await metric(d2, 'stated_connections'),
  }, {
    l4: [
      { type: 'progress', node: 'L4', state: 'SHUTDOWN', remaining: ['ISUP'], seq: l4sd },
      { type: 'done', node: 'L4', seq: l4up },
    ],
    duringOutage: 'answered',
    sockets: 1,
  });
  await w.endStateWait();
  assert.equal(await metric(d2, 'stated_waits'), 0);
});

test('library: a first connect that fails rejects with E_CONNECT and leaves nothing retrying behind', async (t) => {
  const port = await freePort();
  const token = 'st_client-e2e-admin';
  const conn = new Connection({ url: `ws://127.0.0.1:${port}`, token, reconnect: true });
  t.after(() => conn.close());
  await assert.rejects(conn.connect(), { code: 'E_CONNECT' });
  await sleep(300);
  // A daemon (accepting that token) now appears on that port: the failed connection must not dial it by itself.
  const d = await startDaemon({ args: ['--listen', `127.0.0.1:${port}`], env: { STATED_TOKEN: token } });
  t.after(() => d.stop());
  await sleep(2500); // past the library's longest backoff (2 s)
  assert.equal(await metric(d, 'stated_connections'), 0, 'a connection whose connect() rejected kept reconnecting in the background');
});

test('library: StateWait.attach re-opens a wait by id from another connection with what happened so far (SPEC §3 attach)', async (t) => {
  const d = await startDaemon();
  t.after(() => d.stop());
  const a = await connect({ url: d.wsUrl, token: d.token, reconnect: false });
  t.after(() => a.close());
  await a.request('admin', { action: 'node.add', args: { nodes: ['A1', 'A2', 'A3'] } });
  const w = await initStateWait(a, ['SHUTDOWN', 'ISUP'], ['A1', 'A2', 'A3']);
  await send(d, 'A1', 'SHUTDOWN');
  const up = await send(d, 'A1', 'ISUP');
  await send(d, 'A2', 'REBOOT', 'TBFAILED');
  a.close();

  const b = await connect({ url: d.wsUrl, token: d.token, reconnect: false });
  t.after(() => b.close());
  const w2 = await StateWait.attach(b, w.id);
  assert.deepEqual([w2.states, [...w2.nodes].sort()], [['SHUTDOWN', 'ISUP'], ['A1', 'A2', 'A3']]);
  const seen: WaitProgress[] = [];
  const drained = (async () => { for await (const u of w2.progress()) seen.push(u); })();
  await send(d, 'A3', 'SHUTDOWN');
  const a3 = await send(d, 'A3', 'ISUP');
  assert.deepEqual(await w2.waitForState({ timeout: 5 }), {
    finished: ['A1', 'A3'], failed: ['A2'], remaining: [], failures: { A2: { code: 'TBFAILED', message: 'REBOOT failed' } },
  });
  await withTimeout(drained, 5000, 'progress() ends');
  assert.deepEqual(seen.filter((u) => u.type !== 'progress').map((u) => [u.type, u.node]).sort(), [['done', 'A1'], ['done', 'A3'], ['failed', 'A2']]);
  assert.ok(up > 0 && a3 > up);
  await w2.endStateWait();
  await assert.rejects(StateWait.attach(b, w.id), { code: 'E_UNKNOWN_WAIT' });
});
