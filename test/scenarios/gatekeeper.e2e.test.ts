// Issue 9's scenarios for the gatekeeper (SPEC §4.3, §4.4, Commands and the
// gatekeeper), against dist/stated with a plain power-controller script as
// the `command` driver (rig.ts) and the test playing the nodes.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BOOTING_TIMEOUT_MS, CMDRETRY_MS, commandRig, ofType, show, sleep, states, until } from './rig.ts';

test('point 1 / row "power cycle, node never says SHUTDOWN, boots normally": exactly 1 action, node ISUP, no TBFAILED', async (t) => {
  const rig = await commandRig(t, ['a3']);
  const r = await rig.d.runCli(['node_reboot', '-n', 'a3']);
  assert.equal(r.code, 0, r.stderr);
  await until(() => rig.actions('a3').length === 1, 'the power cycle');
  // The node was power-cycled: it comes back through PXE without a word about SHUTDOWN.
  for (const s of ['PXEBOOTING', 'BOOTING', 'TBSETUP']) {
    await rig.say('a3', s);
    await sleep(300);
  }
  await sleep(CMDRETRY_MS); // past the command's retry timer, had it stayed armed
  await rig.say('a3', 'ISUP');
  await sleep(300);
  assert.deepEqual(rig.actions(), ['REBOOT a3'], 'one power cycle for one boot');
  const v = await rig.view('a3');
  assert.deepEqual([v.state, v.reboot.command, v.reboot.attempts, v.timeout], ['ISUP', null, 0, null]);
  const h = await rig.history('a3');
  assert.deepEqual(ofType(h, 'TBFAILED'), [], show(h));
  assert.deepEqual(ofType(h, 'NOTIFY', 'REBOOT_RETRY'), [], show(h));
  const st = await rig.d.runCli(['status', 'a3']);
  assert.doesNotMatch(st.stdout, /CMDRETRY/);
});

// Review of issue 9: every README power-controller example's REBOOT is a hard power action, so the
// node never says SHUTDOWN; a `node_reboot -w` (SHUTDOWN,ISUP) must still end when the node is up.
test('point 1 with -w: a power-cycled node that never says SHUTDOWN completes node_reboot -w (stated logs its SHUTDOWN first)', async (t) => {
  const rig = await commandRig(t, ['a4']);
  const cli = rig.d.runCli(['node_reboot', '-w', '-u', '1', '-t', '30', 'a4'], { timeoutMs: 40_000 });
  await until(() => rig.actions('a4').length === 1, 'the power cycle');
  await rig.say('a4', 'PXEBOOTING', 'BOOTING', 'TBSETUP', 'ISUP');
  const r = await cli;
  assert.equal(r.code, 0, `${r.stdout}${r.stderr}`);
  assert.match(r.stdout, /^finished 1\/1: a4$/m);
  const h = await rig.history('a4');
  // The SHUTDOWN stated logs stands before the state that showed the node booting, in its own seq.
  assert.deepEqual(states(h), ['SHUTDOWN', 'PXEBOOTING', 'BOOTING', 'TBSETUP', 'ISUP'], show(h));
  assert.deepEqual(ofType(h, 'NOTIFY', 'INVALID_TRANSITION'), [], show(h));
  assert.deepEqual(rig.actions(), ['REBOOT a4']);
});

// The mode transition at SHUTDOWN (NORMALv2 -> RELOAD) must happen for a hard power cycle too.
test('os_load through a hard power cycle: the node goes through RELOAD though it never says SHUTDOWN', async (t) => {
  const rig = await commandRig(t, ['r4']);
  const cli = rig.d.runCli(['os_load', '-u', '1', '-t', '30', 'r4'], { timeoutMs: 40_000 });
  await until(() => rig.actions('r4').length === 1, 'the power cycle');
  await rig.say('r4', 'PXEBOOTING', 'BOOTING', 'RELOADSETUP', 'RELOADING', 'RELOADDONE');
  const r = await cli;
  assert.equal(r.code, 0, `${r.stdout}${r.stderr}`);
  const h = await rig.history('r4');
  assert.ok(h.some((e) => e.event.objtype === 'TBNODESTATE' && e.event.eventtype === 'RELOADDONE' && e.event.mode === 'RELOAD'), show(h));
});

test('point 2 / row "node says SHUTDOWN then stalls; node_reboot again": a new action runs, not joined — also from TBFAILED, PXEBOOTING, POWEROFF, TBSETUP', async (t) => {
  // Where each node stops after its SHUTDOWN: NORMALv2 has no REBOOT timeout in any of them.
  const stops: Record<string, string[]> = {
    s1: [], s2: ['PXEBOOTING', 'BOOTING', 'TBSETUP', 'TBFAILED'], s3: ['PXEBOOTING'], s4: ['POWEROFF'], s5: ['PXEBOOTING', 'BOOTING', 'TBSETUP'],
  };
  const nodes = Object.keys(stops);
  const rig = await commandRig(t, nodes);
  assert.equal((await rig.d.runCli(['node_reboot', '-n', ...nodes])).code, 0);
  await until(() => rig.actions().length === nodes.length, 'the first actions');
  for (const n of nodes) await rig.say(n, 'SHUTDOWN', ...stops[n]!);
  // The script has answered (one action each, none in flight), and no timeout of stated's is pending.
  await until(async () => {
    for (const n of nodes) if ((await rig.view(n)).reboot.inFlight) return false;
    return true;
  }, 'the driver results');
  for (const n of nodes) {
    const v = await rig.view(n);
    assert.ok(v.timeout === null || !['REBOOT', 'CMDRETRY'].includes(v.timeout.action), `${n}: ${JSON.stringify(v.timeout)}`);
  }

  const again = await rig.d.runCli(['node_reboot', '-n', ...nodes]);
  assert.equal(again.code, 0, again.stderr);
  assert.equal(again.stderr, `rebooting ${nodes.length}: ${nodes.join(' ')}\n`, 'nothing would happen by itself: every node gets a new action');
  await until(() => rig.actions().length === 2 * nodes.length, 'the second actions');
  for (const n of nodes) {
    assert.deepEqual(rig.actions(n), [`REBOOT ${n}`, `REBOOT ${n}`]);
    assert.equal((await rig.view(n)).reboot.attempts, 1, `${n}: attempts counted afresh`);
  }
});

test('row "node wedges in BOOTING every time" (hard power cycle, no SHUTDOWN): 3 actions, then TBFAILED TIMEOUT_IN_STATE, node_reboot -w exits 1', async (t) => {
  const rig = await commandRig(t, ['w1']);
  const cli = rig.d.runCli(['node_reboot', '-w', '-u', '1', '-t', '30', 'w1'], { timeoutMs: 40_000 });
  // Each action power-cycles the node, which then hangs in BOOTING.
  let played = 0;
  let done = false;
  const player = (async () => {
    while (!done) {
      if (rig.actions('w1').length > played) {
        played++;
        await rig.say('w1', 'PXEBOOTING', 'BOOTING');
      }
      await sleep(40);
    }
  })();
  const r = await cli;
  done = true;
  await player;
  assert.equal(r.code, 1, `${r.stdout}${r.stderr}`);
  assert.match(r.stdout, /^ {2}w1: TIMEOUT_IN_STATE in NORMALv2\/BOOTING after 3 attempt\(s\)$/m);
  await sleep(BOOTING_TIMEOUT_MS + 300); // a 4th attempt must not come
  assert.deepEqual(rig.actions('w1'), ['REBOOT w1', 'REBOOT w1', 'REBOOT w1']);
  const h = await rig.history('w1');
  const failed = ofType(h, 'TBFAILED');
  assert.equal(failed.length, 1, show(h));
  assert.deepEqual(failed[0]!.event.reason, { code: 'TIMEOUT_IN_STATE', mode: 'NORMALv2', state: 'BOOTING', attempts: 3 });
  // Each retry is a NOTIFY, attempt n of max (REBOOT_RETRY, SPEC §4.3).
  assert.deepEqual(ofType(h, 'NOTIFY', 'REBOOT_RETRY').map((e) => e.event.message!.replace(/^.*; /, '')), ['REBOOT attempt 2 of 3', 'REBOOT attempt 3 of 3']);
});

test('point 3 / row "WEDGED while stated drives the node": the POWERCYCLE trigger runs an action, and the node comes up', async (t) => {
  const rig = await commandRig(t, ['g1']);
  rig.slow('g1', 3); // the REBOOT is still in flight: stated is driving the node
  assert.equal((await rig.d.runCli(['node_reboot', '-n', 'g1'])).code, 0);
  await until(() => rig.actions('g1').length === 1, 'the reboot');
  await rig.say('g1', 'SHUTDOWN', 'WEDGED'); // state_triggers NORMALv2/WEDGED POWERCYCLE
  await until(() => rig.actions('g1').length === 2, 'the POWERCYCLE of the trigger', 10_000);
  assert.deepEqual(rig.actions('g1'), ['REBOOT g1', 'POWERCYCLE g1']);
  // stated says SHUTDOWN for the power-cycled node (SPEC §4.3), then it boots.
  await until(async () => (await rig.view('g1')).state === 'SHUTDOWN', 'SHUTDOWN logged by stated');
  await rig.say('g1', 'PXEBOOTING', 'BOOTING', 'TBSETUP', 'ISUP');
  const v = await rig.view('g1');
  assert.deepEqual([v.state, v.reboot.command], ['ISUP', null]);
  const h = await rig.history('g1');
  assert.deepEqual(ofType(h, 'TBFAILED'), [], show(h));
  assert.match(ofType(h, 'NOTIFY', 'REBOOT_RETRY')[0]?.event.message ?? '', /POWERCYCLE attempt 2 of 3$/, show(h));
});

test('point 3: RELOAD/TBFAILED -> REBOOT recovers a reload stated is driving', async (t) => {
  const rig = await commandRig(t, ['r1'], { nodeArgs: ['--mode', 'RELOAD'] });
  rig.slow('r1', 3);
  assert.equal((await rig.d.runCli(['node_reboot', '-n', 'r1'])).code, 0);
  await until(() => rig.actions('r1').length === 1, 'the reboot');
  await rig.say('r1', 'SHUTDOWN', 'RELOADSETUP', 'TBFAILED'); // the reload failed on the node
  await until(() => rig.actions('r1').length === 2, 'the REBOOT of the trigger', 10_000);
  assert.deepEqual(rig.actions('r1'), ['REBOOT r1', 'REBOOT r1']);
});

test('point 8 / row "POWEROFF then POWERON, node boots": POWERON logs a state; the boot is valid and retried if it wedges', async (t) => {
  const rig = await commandRig(t, ['p1']);
  const cmd = async (command: string): Promise<void> => {
    const r = await rig.ws.request('command', { command, nodes: ['p1'] });
    assert.deepEqual([r.ok, r.nodes], [true, { p1: 'accepted' }], JSON.stringify(r));
  };
  await cmd('POWEROFF');
  await until(async () => (await rig.view('p1')).state === 'POWEROFF', 'POWEROFF logged');
  await cmd('POWERON');
  await until(async () => (await rig.view('p1')).state === 'SHUTDOWN', 'POWERON logs SHUTDOWN for the node that was off');
  await rig.say('p1', 'PXEBOOTING', 'BOOTING'); // and wedges
  await until(() => rig.actions('p1').length === 3, 'a retry of the wedged boot', 10_000);
  assert.deepEqual(rig.actions('p1'), ['POWEROFF p1', 'POWERON p1', 'POWERCYCLE p1'], 'a node that is on is power-cycled to boot again');
  await until(async () => (await rig.view('p1')).reboot.inFlight === false, 'the power cycle done');
  await rig.say('p1', 'PXEBOOTING', 'BOOTING', 'TBSETUP', 'ISUP');
  const h = await rig.history('p1');
  assert.deepEqual(states(h), ['POWEROFF', 'SHUTDOWN', 'PXEBOOTING', 'BOOTING', 'SHUTDOWN', 'PXEBOOTING', 'BOOTING', 'TBSETUP', 'ISUP'], show(h));
  assert.deepEqual(h.filter((e) => e.event.valid === false || e.event.eventtype === 'INVALID_TRANSITION'), [], `every transition valid: ${show(h)}`);
  assert.equal((await rig.view('p1')).reboot.command, null);
});

test('point 8: states stated generates itself (POWEROFF, SHUTDOWN) are not judged against the tables', async (t) => {
  // MINIMAL has ISUP rows but none to POWEROFF; NORMALv2 has no PXEBOOTING -> SHUTDOWN row.
  const rig = await commandRig(t, ['m1', 'c1']);
  assert.equal((await rig.d.runCli(['node', 'remove', 'm1'])).code, 0);
  assert.equal((await rig.d.runCli(['node', 'add', 'm1', '--type', 'pc', '--mode', 'MINIMAL', '--state', 'ISUP'])).code, 0);
  await rig.say('c1', 'SHUTDOWN', 'PXEBOOTING');
  for (const [node, command] of [['m1', 'POWEROFF'], ['c1', 'POWERCYCLE']] as const) {
    const r = await rig.ws.request('command', { command, nodes: [node] });
    assert.deepEqual(r.nodes, { [node]: 'accepted' }, JSON.stringify(r));
  }
  await until(async () => (await rig.view('m1')).state === 'POWEROFF' && (await rig.view('c1')).state === 'SHUTDOWN', 'the generated states');
  for (const node of ['m1', 'c1']) {
    const h = await rig.history(node);
    assert.deepEqual(h.filter((e) => e.event.valid === false || e.event.eventtype === 'INVALID_TRANSITION'), [], `${node}: ${show(h)}`);
  }
});
