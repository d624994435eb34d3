// Issue 9's scenarios for waits (SPEC §3 wait semantics): a node that reports
// TBFAILED, TBFAILED events that do and do not concern a wait, a wait that
// joins a reboot in progress, and the client library's progress().
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Connection, StateWait } from '../../src/client/index.ts';
import { http } from '../helpers/daemon.ts';
import { commandRig, ofType, sleep, until } from './rig.ts';

test('point 4 / row "node reports TBFAILED itself while waited": the wait fails at once, exit 1', async (t) => {
  const rig = await commandRig(t, ['f1', 'f2']);
  // node_reboot -w, and a plain waitForState for ISUP; -t is long: failing must not mean timing out.
  const reboot = rig.d.runCli(['node_reboot', '-w', '-u', '1', '-t', '60', 'f1'], { timeoutMs: 30_000 });
  const wait = rig.d.runCli(['waitForState', '-u', '1', '-t', '60', 'f2'], { timeoutMs: 30_000 });
  await until(() => rig.actions('f1').length === 1, 'the reboot');
  await until(async () => /^stated_waits 2$/m.test((await http(rig.d, 'GET', '/metrics')).text), 'both waits registered');
  // NORMALv2 TBSETUP -> TBFAILED "BootFail", as the node's boot scripts say it.
  await rig.say('f1', 'SHUTDOWN', 'PXEBOOTING', 'BOOTING', 'TBSETUP', 'TBFAILED');
  await rig.say('f2', 'SHUTDOWN', 'PXEBOOTING', 'BOOTING', 'TBSETUP', 'TBFAILED');
  const [r, w] = await Promise.all([reboot, wait]);
  assert.equal(r.code, 1, `${r.stdout}${r.stderr}`);
  assert.match(r.stdout, /^ {2}f1: NODE_TBFAILED in NORMALv2\/TBFAILED$/m);
  assert.equal(w.code, 1, `${w.stdout}${w.stderr}`);
  assert.match(w.stdout, /^ {2}f2: NODE_TBFAILED in NORMALv2\/TBFAILED$/m);
});

test('point 4: a TBFAILED event fails a wait only for REBOOT, POWERCYCLE, POWERON or a state it still expects', async (t) => {
  const rig = await commandRig(t, ['e1', 'e2', 'e3']);
  const w = await rig.ws.request('initStateWait', { states: ['SHUTDOWN', 'ISUP'], nodes: ['e1', 'e2', 'e3'] });
  assert.equal(w.ok, true, JSON.stringify(w));
  const failed = (node: string, eventtype: string) =>
    rig.ws.request('event', { event: { objtype: 'TBFAILED', objname: node, eventtype, reason: { code: 'TOOL_SAYS' } } });
  assert.equal((await failed('e1', 'POWEROFF')).ok, true); // a failed power-off says nothing about ISUP
  assert.equal((await failed('e2', 'ISUP')).ok, true); // a state the wait still expects
  assert.equal((await failed('e3', 'POWERCYCLE')).ok, true);
  await rig.say('e1', 'SHUTDOWN', 'ISUP');
  const r = await rig.ws.request('waitForState', { wait: w.wait, timeout: 10 });
  assert.deepEqual([r.finished, r.failed.sort(), r.remaining], [['e1'], ['e2', 'e3'], []], JSON.stringify(r));
});

test('point 5 / row "node_reboot -w joins after SHUTDOWN, node comes up": exit 0', async (t) => {
  const rig = await commandRig(t, ['j1']);
  rig.slow('j1', 4); // the power controller takes its time: stated is still driving the node
  assert.equal((await rig.d.runCli(['node_reboot', '-n', 'j1'])).code, 0);
  await until(() => rig.actions('j1').length === 1, 'the reboot');
  await rig.say('j1', 'SHUTDOWN', 'PXEBOOTING');

  const cli = rig.d.runCli(['node_reboot', '-w', '-u', '1', '-t', '12', 'j1'], { timeoutMs: 30_000 });
  // The second REBOOT is logged once its wait is registered.
  await until(async () => ofType(await rig.history('j1'), 'TBCOMMAND').length === 2, 'the joining node_reboot');
  await rig.say('j1', 'BOOTING', 'TBSETUP', 'ISUP');
  const r = await cli;
  assert.equal(r.code, 0, `${r.stdout}${r.stderr}`);
  assert.equal(r.stderr, 'already rebooting, joined 1: j1\n');
  assert.match(r.stdout, /^finished 1\/1: j1$/m);
  assert.deepEqual(rig.actions('j1'), ['REBOOT j1'], 'joined: no second action');
});

test('point 8: the client library\'s progress() ends once every node is done, failed or cancelled', async (t) => {
  const rig = await commandRig(t, ['c1', 'c2']);
  const conn = new Connection({ url: rig.d.wsUrl, token: rig.d.token });
  await conn.connect();
  t.after(() => conn.close());
  const w = await StateWait.init(conn, ['ISUP'], ['c1', 'c2']);
  const seen: string[] = [];
  const ended = (async () => {
    for await (const u of w.progress()) seen.push(`${u.type} ${u.node}`);
    return true;
  })();
  await w.cancelWait('c2');
  await rig.say('c1', 'SHUTDOWN', 'ISUP');
  const result = await Promise.race([ended, sleep(5000).then(() => false)]);
  assert.equal(result, true, `progress() still open after c1 done and c2 cancelled; saw ${seen.join(', ')}`);
  assert.deepEqual(seen, ['done c1']);
});
