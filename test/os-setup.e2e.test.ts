// `stated os_setup` and `stated tbrestart` end to end (SPEC §1; Emulab's
// os_setup and tbrestart; issue 11), against `stated simulate` fleets at
// --time-scale 0.01: one ISUP wait over the whole set, registered with the
// actions; nodes with a next op mode reload, the others reboot; a wedged
// node fails after stated's retries (NORMALv2/BOOTING 180 s REBOOT -> 1.8 s,
// maxRebootAttempts 3) and --tolerate decides the exit code.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { http, startDaemon } from './helpers/daemon.ts';
import { background, headSeq, history, modeStates, nodeView, openWaits, scriptedAgent, simulate, until } from './helpers/fleet.ts';

const SCALED = ['--time-scale', '0.01'];

test('os_setup of a mixed set: the nodes with next op mode RELOAD reload, the others reboot, all up, one wait registered before any action (SPEC §1 os_setup)', async (t) => {
  const d = await startDaemon({ args: SCALED });
  t.after(() => d.stop());
  await simulate(t, d, ['--nodes', '4']);
  for (const n of ['sim1', 'sim2']) assert.equal((await d.runCli(['node', 'set-next-mode', n, 'RELOAD'])).code, 0);
  // A next mode that is no reload: m1 goes MINIMAL -> NORMALv1 (mode_transitions MINIMAL/SHUTDOWN -> NORMALv1/SHUTDOWN)
  // and is up in NORMALv1: done, not a reload left unfinished.
  // Its power agent is a second fleet that names it (SPEC §3: actions go to the agent that named the node).
  await simulate(t, d, ['--nodes', '1', '--prefix', 'm']);
  assert.equal((await d.runCli(['node', 'remove', 'm1'])).code, 0);
  assert.equal((await d.runCli(['node', 'add', 'm1', '--type', 'sim', '--mode', 'MINIMAL', '--state', 'ISUP'])).code, 0);
  assert.equal((await d.runCli(['node', 'set-next-mode', 'm1', 'NORMALv1'])).code, 0);
  const before = await headSeq(d);

  const run = background(d, ['os_setup', '-t', '60', '-u', '1', 'sim1', 'sim2', 'sim3', 'sim4', 'm1']);
  // While it runs: one wait, over all four nodes, for ISUP.
  let seen: any[] = [];
  await until(async () => (seen = await openWaits(d)).length > 0 || run.proc.exitCode !== null, 'os_setup to register its wait');
  assert.equal(seen.length, 1, JSON.stringify(seen));
  assert.deepEqual(seen[0].states, ['ISUP']);
  assert.deepEqual([...seen[0].done, ...seen[0].remaining, ...seen[0].failed.map((f: any) => f.node)].sort(), ['m1', 'sim1', 'sim2', 'sim3', 'sim4']);
  const r = await run.done;
  assert.equal(r.code, 0, `${r.stdout}${r.stderr}`);
  assert.match(r.stdout, /^reloaded 3: sim1 sim2 m1$/m);
  assert.match(r.stdout, /^rebooted 2: sim3 sim4$/m);
  assert.doesNotMatch(r.stdout, /^(failed|timed out)/m);

  for (const n of ['sim1', 'sim2', 'sim3', 'sim4']) {
    const v = await nodeView(d, n);
    assert.deepEqual([v.mode, v.state, v.nextMode], ['NORMALv2', 'ISUP', null], n);
    const h = await history(d, n, before);
    // The wait started before the node's first event of this run: nothing could slip past it.
    assert.ok(h.length > 0 && h[0]!.seq > seen[0].seq, `${n}: wait seq ${seen[0].seq}, first event ${h[0]?.seq}`);
    const reloads = modeStates(h).filter((s) => s === 'RELOAD/RELOADDONE').length;
    assert.equal(reloads, n === 'sim1' || n === 'sim2' ? 1 : 0, `${n}: ${modeStates(h).join(' ')}`);
  }
  const m1 = await nodeView(d, 'm1');
  assert.deepEqual([m1.mode, m1.state, m1.nextMode], ['NORMALv1', 'ISUP', null]);
  assert.deepEqual(await openWaits(d), [], 'os_setup ends its wait');
});

test('os_setup with a wedging node: exit 1 naming it and TIMEOUT_IN_STATE; with --tolerate 1, exit 0 (SPEC §1 os_setup)', async (t) => {
  const d = await startDaemon({ args: SCALED });
  t.after(() => d.stop());
  await simulate(t, d, ['--nodes', '3']);
  // A node of its own type, whose fleet wedges every boot in BOOTING.
  await simulate(t, d, ['--nodes', '1', '--prefix', 'bad', '--type', 'wedgy', '--wedge-rate', '1']);
  const nodes = ['sim1', 'sim2', 'sim3', 'bad1'];

  const r = await d.runCli(['os_setup', '-t', '60', '-u', '1', ...nodes], { timeoutMs: 90_000 });
  assert.equal(r.code, 1, `${r.stdout}${r.stderr}`);
  assert.match(r.stdout, /^rebooted 3: sim1 sim2 sim3$/m);
  assert.match(r.stdout, /^failed 1:\n {2}bad1: TIMEOUT_IN_STATE in NORMALv2\/BOOTING after 3 attempt\(s\)$/m);
  // Said the moment stated gave up, not only in the summary.
  assert.match(r.stderr, /^failed bad1: TIMEOUT_IN_STATE in NORMALv2\/BOOTING after 3 attempt\(s\)$/m);

  const tolerated = await d.runCli(['os_setup', '--tolerate', '1', '-t', '60', '-u', '1', ...nodes], { timeoutMs: 90_000 });
  assert.equal(tolerated.code, 0, `${tolerated.stdout}${tolerated.stderr}`);
  assert.match(tolerated.stdout, /^failed 1 \(1 tolerated\):\n {2}bad1: TIMEOUT_IN_STATE/m);
  assert.deepEqual(await openWaits(d), []);
});

test('tbrestart PROJECT: every node of the project rebooted under one ISUP wait, the other project untouched (SPEC §1 tbrestart)', async (t) => {
  const d = await startDaemon({ args: SCALED });
  t.after(() => d.stop());
  await simulate(t, d, ['--nodes', '3', '--prefix', 'a', '--project', 'alpha']);
  await simulate(t, d, ['--nodes', '1', '--prefix', 'b', '--type', 'simb', '--project', 'beta']);
  const before = await headSeq(d);

  const r = await d.runCli(['tbrestart', '-t', '60', '-u', '1', 'alpha'], { timeoutMs: 90_000 });
  assert.equal(r.code, 0, `${r.stdout}${r.stderr}`);
  assert.match(r.stdout, /^rebooted 3: a1 a2 a3$/m);
  for (const n of ['a1', 'a2', 'a3']) {
    assert.deepEqual(modeStates(await history(d, n, before)).slice(-1), ['NORMALv2/ISUP'], n);
    assert.equal((await nodeView(d, n)).state, 'ISUP');
  }
  assert.deepEqual(await history(d, 'b1', before), [], 'beta is not alpha');
  const audit = (await http(d, 'GET', '/v1/audit')).json.records.filter((x: any) => x.action === 'command.REBOOT');
  assert.equal(audit.length, 1, 'one request rebooted the project');
  assert.deepEqual([...audit[0].detail.nodes].sort(), ['a1', 'a2', 'a3']);

  const none = await d.runCli(['tbrestart', 'nosuch']);
  assert.equal(none.code, 64, none.stderr);
  assert.match(none.stderr, /^stated: E_USAGE: project nosuch has no nodes/);
});

test('os_setup: a reload that fails is counted failed and leaves no next op mode behind — one that boots its old disk (up in RELOAD), one whose power fails (SPEC §1 os_setup)', async (t) => {
  const d = await startDaemon({ args: SCALED });
  t.after(() => d.stop());
  assert.equal((await d.runCli(['node', 'add', 'fb1', 'pf1', 'ok1', '--type', 'img'])).code, 0);
  for (const n of ['fb1', 'pf1']) assert.equal((await d.runCli(['node', 'set-next-mode', n, 'RELOAD'])).code, 0);
  const agent = await scriptedAgent(d, ['img'], (a) => {
    if (a.node === 'pf1') return { ok: false, states: [] }; // its power controller fails every time
    // fb1 boots its old disk instead of the reload image: RELOAD's FailedBoot rows, BOOTING -> TBSETUP -> ISUP.
    // Its RELOAD/ISUP trigger then reboots it into another reload, which this controller never answers.
    if (a.node === 'fb1' && a.mode === 'RELOAD') return null;
    return { ok: true, states: ['SHUTDOWN', 'PXEBOOTING', 'BOOTING', 'TBSETUP', 'ISUP'] };
  });
  t.after(() => agent.close());

  const r = await d.runCli(['os_setup', '-t', '60', '-u', '1', 'fb1', 'pf1', 'ok1'], { timeoutMs: 90_000 });
  assert.equal(r.code, 1, `${r.stdout}${r.stderr}`);
  assert.match(r.stdout, /^reloaded 0$/m);
  assert.match(r.stdout, /^rebooted 1: ok1$/m);
  assert.match(r.stdout, /^failed 2:$/m);
  assert.match(r.stdout, /^ {2}fb1: RELOAD_FAILED in RELOAD\/\S+: up without finishing its RELOAD$/m);
  assert.match(r.stdout, /^ {2}pf1: DRIVER_FAILED in TBCOMMAND\/REBOOT after 3 attempt\(s\)/m);
  assert.match(r.stdout, /^next op mode cleared: pf1$/m);
  assert.equal((await nodeView(d, 'pf1')).nextMode, null, 'a later plain reboot of pf1 must not reload it');
  assert.equal((await nodeView(d, 'pf1')).mode, 'NORMALv2');
  assert.deepEqual(await openWaits(d), []);
});

test('os_setup past -t: exit 2, the node listed as timed out, the next op mode it never used cleared (SPEC §1 os_setup)', async (t) => {
  const d = await startDaemon({ args: SCALED });
  t.after(() => d.stop());
  assert.equal((await d.runCli(['node', 'add', 'slow1', '--type', 'hang'])).code, 0);
  assert.equal((await d.runCli(['node', 'set-next-mode', 'slow1', 'RELOAD'])).code, 0);
  // A power controller that takes the action and never answers: nothing happens within -t.
  const agent = await scriptedAgent(d, ['hang'], () => null);
  t.after(() => agent.close());
  const r = await d.runCli(['os_setup', '-t', '1', 'slow1'], { timeoutMs: 60_000 });
  assert.equal(r.code, 2, `${r.stdout}${r.stderr}`);
  assert.match(r.stdout, /^reloaded 0$/m);
  assert.match(r.stdout, /^timed out 1 after 1s: slow1$/m);
  assert.match(r.stdout, /^next op mode cleared: slow1$/m);
  assert.equal((await nodeView(d, 'slow1')).nextMode, null);
  assert.deepEqual(await openWaits(d), []);
});
