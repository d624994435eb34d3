// The client library's plan (issue 11): per-node actions under one wait, in
// one request, against the built dist/stated with the test as power agent.
// The wait and the commands share one transaction (SPEC §3 initStateWait),
// a refused node leaves the wait at once, a user may plan only its project.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { connect, listWaits, runPlan } from '../src/client/index.ts';
import { http, startDaemon } from './helpers/daemon.ts';
import { history, scriptedAgent, until } from './helpers/fleet.ts';

const BOOT = ['PXEBOOTING', 'BOOTING', 'TBSETUP', 'ISUP'];

test('runPlan: a REBOOT, a POWERCYCLE and a node only waited for, under one ISUP wait; a refused node leaves the wait at once', async (t) => {
  const d = await startDaemon({ args: ['--time-scale', '0.01'] });
  t.after(() => d.stop());
  const conn = await connect({ url: d.wsUrl, token: d.token, reconnect: false });
  t.after(() => conn.close());
  await conn.request('admin', { action: 'node.add', args: { nodes: ['pc1', 'pc2', 'pc3', 'pc4'], type: 'img', project: 'alpha' } });
  // pc4's power controller takes a POWEROFF and never answers: a REBOOT is refused meanwhile.
  const agent = await scriptedAgent(d, ['img'], (a) => (a.command === 'POWEROFF' ? null
    : { ok: true, states: a.command === 'REBOOT' ? ['SHUTDOWN', ...BOOT] : BOOT }));
  t.after(() => agent.close());
  await conn.request('command', { command: 'POWEROFF', nodes: ['pc4'] });
  await until(() => agent.actions().length === 1, 'the POWEROFF to reach the agent');

  const { wait, started, refused } = await runPlan(conn, {
    states: ['ISUP'], actions: { pc1: 'REBOOT', pc2: 'POWERCYCLE', pc3: null, pc4: 'REBOOT' },
  });
  assert.deepEqual(started, { pc1: 'accepted', pc2: 'accepted' });
  assert.deepEqual(Object.keys(refused), ['pc4']);
  assert.match(refused.pc4!, /^E_CONFLICT: POWEROFF in progress/);
  // The wait existed before either command: both commands come after its start in the log.
  await until(async () => (await history(d, 'pc1')).length > 0 && (await history(d, 'pc2')).length > 0, 'pc1 and pc2 to move');
  for (const n of ['pc1', 'pc2']) {
    const h = await history(d, n);
    assert.ok(h.every((e) => e.seq > wait.seq), `${n}: every event after the wait's start ${wait.seq}: ${h.map((e) => e.seq)}`);
  }
  const open = await listWaits(conn);
  assert.equal(open.length, 1);
  assert.deepEqual(open[0]!.remaining.includes('pc4'), false, 'a refused node is not waited out');

  const r = await http(d, 'POST', '/v1/events', { objtype: 'TBNODESTATE', objname: 'pc3', eventtype: 'ISUP' });
  assert.equal(r.status, 200);
  const out = await wait.waitForState({ timeout: 30 });
  assert.deepEqual([out.finished.sort(), out.failed, out.remaining], [['pc1', 'pc2', 'pc3'], [], []]);
  assert.deepEqual(agent.actions().map((a) => `${a.node} ${a.command}`).sort(), ['pc1 REBOOT', 'pc2 POWERCYCLE', 'pc4 POWEROFF'],
    'one action per planned node, none for the node only waited for');
  await wait.endStateWait();
  assert.deepEqual(await listWaits(conn), []);

  // A user token plans only its own project's nodes: anything else is refused whole, nothing started.
  await conn.request('admin', { action: 'node.add', args: { nodes: ['other1'], type: 'img', project: 'beta' } });
  const tok = (await conn.request<{ result: { token: string } }>('admin', { action: 'token.create', args: { role: 'user', project: 'alpha' } })).result.token;
  const user = await connect({ url: d.wsUrl, token: tok, reconnect: false });
  t.after(() => user.close());
  const before = agent.actions().length;
  await assert.rejects(runPlan(user, { states: ['ISUP'], actions: { pc1: 'REBOOT', other1: 'REBOOT' } }), { code: 'E_FORBIDDEN' });
  await assert.rejects(runPlan(user, { states: ['ISUP'], actions: { pc1: 'REBOOT' }, force: true }), { code: 'E_FORBIDDEN' });
  assert.deepEqual(await listWaits(conn), []);
  assert.equal(agent.actions().length, before);
});
