// `stated os_load` end to end (SPEC §1 os_load; issue 11): the reload closes
// with RELOADDONE or RELOADDONEV2; a refused node is reported at once and
// keeps no next op mode; a mode the definitions do not know is refused
// before anything is sent; a second os_load after a failed reload reloads
// once and does not loop. Emulab's shipped rows at --time-scale 0.01:
//   mode_transitions NORMALv2/SHUTDOWN -> RELOAD/SHUTDOWN,
//                    RELOAD/RELOADDONE(V2) -> NORMALv2/SHUTDOWN
//   state_triggers   RELOAD/RELOADDONEV2 'RESET, RELOADDONEV2', RELOAD/ISUP 'REBOOT'
//   state_timeouts   RELOAD/BOOTING 180 REBOOT -> 1.8 s
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { connectWs, startDaemon } from './helpers/daemon.ts';
import { history, modeStates, nodeView, openWaits, scriptedAgent, simulate, sleep, until } from './helpers/fleet.ts';

const SCALED = ['--time-scale', '0.01'];
const BOOT = ['PXEBOOTING', 'BOOTING', 'TBSETUP', 'ISUP'];

test('a reload that closes with RELOADDONEV2 ends os_load with exit 0, the node back in NORMALv2 (SPEC §1; Emulab RELOAD/RELOADDONEV2 rows)', async (t) => {
  const d = await startDaemon({ args: SCALED });
  t.after(() => d.stop());
  assert.equal((await d.runCli(['node', 'add', 'pc1', '--type', 'img'])).code, 0);
  // A node whose reload image reports the newer RELOADDONEV2.
  const agent = await scriptedAgent(d, ['img'], (a) => ({
    ok: true,
    states: a.mode === 'RELOAD' || a.nextMode === 'RELOAD'
      ? ['SHUTDOWN', 'PXEBOOTING', 'BOOTING', 'RELOADSETUP', 'RELOADING', 'RELOADDONEV2', ...BOOT]
      : ['SHUTDOWN', ...BOOT],
  }));
  t.after(() => agent.close());

  const r = await d.runCli(['os_load', '-t', '30', '-u', '1', 'pc1'], { timeoutMs: 60_000 });
  assert.equal(r.code, 0, `os_load waited out a reload that closed with RELOADDONEV2:\n${r.stdout}${r.stderr}`);
  assert.match(r.stdout, /^finished 1\/1: pc1$/m);
  await until(async () => (await nodeView(d, 'pc1')).state === 'ISUP', 'pc1 back up');
  const v = await nodeView(d, 'pc1');
  assert.deepEqual([v.mode, v.nextMode], ['NORMALv2', null]);
  assert.ok(modeStates(await history(d, 'pc1')).includes('RELOAD/RELOADDONEV2'));
  assert.deepEqual(await openWaits(d), [], 'os_load leaves no wait behind');
});

test('os_load of a refused node: reported at once, exit 1, its next op mode cleared, no wait left (SPEC §1 os_load)', async (t) => {
  const d = await startDaemon({ args: SCALED });
  t.after(() => d.stop());
  assert.equal((await d.runCli(['node', 'add', 'pc2', 'pc3', '--type', 'img'])).code, 0);
  // pc2's power controller takes a POWEROFF and never answers: a REBOOT is refused while it is in flight.
  const agent = await scriptedAgent(d, ['img'], (a) => (a.command === 'POWEROFF' ? null : { ok: true, states: [] }));
  t.after(() => agent.close());
  const ws = await connectWs(d);
  t.after(() => ws.close());
  const off = await ws.request('command', { command: 'POWEROFF', nodes: ['pc2'] });
  assert.deepEqual(off.nodes, { pc2: 'accepted' });
  await until(() => agent.actions().length === 1, 'the POWEROFF to reach the agent');

  const r = await d.runCli(['os_load', '-t', '20', '-u', '1', 'pc2'], { timeoutMs: 60_000 });
  assert.equal(r.code, 1, `a refused node is a failure, not a timeout:\n${r.stdout}${r.stderr}`);
  assert.match(r.stderr, /^refused pc2: E_CONFLICT: POWEROFF in progress/m);
  assert.doesNotMatch(r.stdout, /timed out/);
  assert.equal((await nodeView(d, 'pc2')).nextMode, null, 'a later plain reboot must not reload pc2');
  assert.deepEqual(await openWaits(d), []);
});

test('os_load -m TYPO is refused before anything is sent: exit 64, no next op mode, no event (SPEC §1 conventions)', async (t) => {
  const d = await startDaemon({ args: SCALED });
  t.after(() => d.stop());
  assert.equal((await d.runCli(['node', 'add', 'pc4', '--type', 'img'])).code, 0);
  const before = (await history(d, 'pc4')).length;
  const r = await d.runCli(['os_load', '-m', 'RELAOD', '-t', '5', 'pc4'], { timeoutMs: 30_000 });
  assert.equal(r.code, 64, `${r.stdout}${r.stderr}`);
  assert.match(r.stderr, /^stated: E_USAGE: -m RELAOD: not a reload mode \(RELOAD, /m);
  assert.equal((await nodeView(d, 'pc4')).nextMode, null);
  assert.equal((await history(d, 'pc4')).length, before, 'no command was sent');
  assert.deepEqual(await openWaits(d), []);
});

test('os_load twice after a failed reload: the second reloads once, the node comes back in NORMALv2 and stays (no reload loop; SPEC §1 os_load)', async (t) => {
  const d = await startDaemon({ args: SCALED });
  t.after(() => d.stop());
  // First a node that wedges on every boot: the reload fails in RELOAD/BOOTING after 3 attempts.
  const wedged = await simulate(t, d, ['--nodes', '1', '--prefix', 'r', '--wedge-rate', '1']);
  const r1 = await d.runCli(['os_load', '-t', '60', '-u', '1', 'r1'], { timeoutMs: 90_000 });
  assert.equal(r1.code, 1, `${r1.stdout}${r1.stderr}`);
  assert.match(r1.stdout, /^ {2}r1: TIMEOUT_IN_STATE in RELOAD\/\S+ after 3 attempt\(s\)/m);
  assert.match(r1.stderr, /^failed r1: TIMEOUT_IN_STATE in RELOAD\/\S+ after 3 attempt\(s\)/m, 'reported as soon as stated gave up');
  let v = await nodeView(d, 'r1');
  assert.deepEqual([v.mode, v.nextMode], ['RELOAD', null], 'left in RELOAD, with no next op mode to outlive a reload');

  // The node is mended (a fleet that boots), and the operator runs os_load again.
  await wedged.stop();
  await simulate(t, d, ['--nodes', '1', '--prefix', 'r']);
  const r2 = await d.runCli(['os_load', '-t', '60', '-u', '1', 'r1'], { timeoutMs: 90_000 });
  assert.equal(r2.code, 0, `${r2.stdout}${r2.stderr}`);
  await until(async () => { const n = await nodeView(d, 'r1'); return n.mode === 'NORMALv2' && n.state === 'ISUP'; },
    'r1 up in NORMALv2 after its reload (a node still in RELOAD at ISUP is rebooted into another reload)');
  const settled = (await history(d, 'r1')).length;
  // Long enough for several reload cycles at this scale (one is ~1.5 s), were there a loop.
  await sleep(4000);
  v = await nodeView(d, 'r1');
  assert.deepEqual([v.mode, v.state, v.nextMode, v.reboot.command], ['NORMALv2', 'ISUP', null, null]);
  const after = await history(d, 'r1');
  assert.equal(after.length, settled, `nothing happened to r1 once it was up: ${JSON.stringify(modeStates(after.slice(settled)))}`);
  const states = modeStates(after);
  assert.equal(states.filter((s) => s === 'RELOAD/RELOADDONE').length, 1, 'one reload closed, the second os_load\'s');
});
