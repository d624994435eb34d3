// Emulab conformance end to end (issue 10; SPEC §4.3-4.6 and the timeout
// paragraph): what an operator moving from Emulab saw go wrong, replayed
// against the built dist/stated with the shipped rows, at --time-scale 0.01:
//   state_timeouts PXEKERNEL/PXEWAKEUP 20 REBOOT           -> 0.2 s
//   state_timeouts SECUREBOOT/GPXEBOOTING 60 STATE:SECVIOLATION -> 0.6 s
//   state_timeouts TBCOMMAND/REBOOT 75 CMDRETRY            -> 0.75 s
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Store } from '../src/store.ts';
import { type Daemon, connectWs, http, startDaemon } from './helpers/daemon.ts';
import { type LoggedEvent as Logged, history, nodeView } from './helpers/fleet.ts';
import { sleep, until } from './helpers/poll.ts';

const SCALED = ['--time-scale', '0.01'];
const DAY = 86_400_000;

const names = (prefix: string, n: number): string[] => Array.from({ length: n }, (_, i) => `${prefix}${i + 1}`);

/** What a node's boot scripts say, one event at a time. */
async function say(d: Daemon, node: string, ...states: string[]): Promise<void> {
  for (const s of states) {
    const r = await http(d, 'POST', '/v1/events', { objtype: 'TBNODESTATE', objname: node, eventtype: s });
    assert.equal(r.status, 200, r.text);
  }
}

/** NOTIFY codes and TBFAILEDs, in order. */
const notices = (h: Logged[]): string[] => h.flatMap((e) => (e.event.objtype === 'NOTIFY' ? [e.event.eventtype] : e.event.objtype === 'TBFAILED' ? ['TBFAILED'] : []));
const modeStates = (h: Logged[]): string[] => h.filter((e) => e.event.objtype === 'TBNODESTATE').map((e) => `${e.event.mode}/${e.event.eventtype}`);

test('node_reboot -w of a simulated NORMALv2 fleet passes through PXEKERNEL with nothing to report', async (t) => {
  const d = await startDaemon({ args: [...SCALED, '--simulate', '8'] });
  t.after(() => d.stop());
  const nodes = names('sim', 8);
  const r = await d.runCli(['node_reboot', '-w', '-u', '1', ...nodes]);
  assert.equal(r.code, 0, `${r.stdout}${r.stderr}`);
  for (const node of nodes) {
    const h = await history(d, node);
    // */*/PXEBOOTING PXEBOOT and */*/BOOTING BOOTING: BOOTING is applied in PXEKERNEL, then the node is back in NORMALv2.
    assert.deepEqual(modeStates(h), ['NORMALv2/SHUTDOWN', 'NORMALv2/PXEBOOTING', 'PXEKERNEL/BOOTING', 'NORMALv2/TBSETUP', 'NORMALv2/ISUP'], node);
    assert.deepEqual(notices(h), [], `${node}: no INVALID_TRANSITION, nothing else to report`);
    const v = await nodeView(d, node);
    assert.deepEqual([v.mode, v.state], ['NORMALv2', 'ISUP']);
  }
  // A reload passes the PXE phase too, and comes back with nothing to report.
  const o = await d.runCli(['os_load', '-u', '1', 'sim1']);
  assert.equal(o.code, 0, `${o.stdout}${o.stderr}`);
  await until(async () => (await nodeView(d, 'sim1')).state === 'ISUP', 'sim1 back up after its reload');
  assert.deepEqual(notices(await history(d, 'sim1')), []);
  assert.equal((await nodeView(d, 'sim1')).mode, 'NORMALv2');
});

test('a free node parks in PXEWAIT without an invalid transition; PXEWAKEUP that goes unanswered reboots it', async (t) => {
  const d = await startDaemon({ args: [...SCALED, '--simulate', '1'] });
  t.after(() => d.stop());
  await say(d, 'sim1', 'SHUTDOWN', 'PXEBOOTING', 'PXEWAIT');
  let v = await nodeView(d, 'sim1');
  assert.deepEqual([v.mode, v.state, v.timeout], ['PXEKERNEL', 'PXEWAIT', null]);
  assert.deepEqual(notices(await history(d, 'sim1')), [], 'PXEBOOTING -> PXEWAIT is a PXEKERNEL transition ("Free")');
  await say(d, 'sim1', 'PXEWAKEUP');
  // The 20 s REBOOT fires (0.2 s here) and the fleet boots the node into the mode it came from.
  await until(async () => (await nodeView(d, 'sim1')).state === 'ISUP', 'sim1 rebooted out of PXEWAKEUP');
  v = await nodeView(d, 'sim1');
  assert.equal(v.mode, 'NORMALv2');
  assert.equal(notices(await history(d, 'sim1'))[0], 'TIMEOUT');
});

test('GPXEBOOTING puts a node on the secure-boot path, where a hang ends in SECVIOLATION', async (t) => {
  const d = await startDaemon({ args: [...SCALED, '--simulate', '1'] });
  t.after(() => d.stop());
  await say(d, 'sim1', 'SHUTDOWN', 'GPXEBOOTING');
  assert.equal((await nodeView(d, 'sim1')).mode, 'SECUREBOOT');
  // SECUREBOOT/GPXEBOOTING 60 STATE:SECVIOLATION; */*/SECVIOLATION 'POWEROFF, EMAILNOTIFY'.
  await until(async () => modeStates(await history(d, 'sim1')).includes('SECUREBOOT/SECVIOLATION'), 'SECVIOLATION');
  await until(async () => (await nodeView(d, 'sim1')).state === 'POWEROFF', 'the node powered off');
  assert.ok(notices(await history(d, 'sim1')).includes('EMAILNOTIFY'));
});

test('a next op mode with no transition row is notified, taken and cleared at the next transition state', async (t) => {
  const d = await startDaemon({ args: SCALED });
  t.after(() => d.stop());
  assert.equal((await d.runCli(['node', 'add', 'p1', '--state', 'ISUP'])).code, 0);
  assert.equal((await d.runCli(['node', 'set-next-mode', 'p1', 'PCVM'])).code, 0);
  await say(d, 'p1', 'SHUTDOWN');
  const v = await nodeView(d, 'p1');
  assert.deepEqual([v.mode, v.state, v.nextMode], ['PCVM', 'SHUTDOWN', null]);
  assert.deepEqual(notices(await history(d, 'p1')), ['INVALID_MODE_TRANSITION']);
});

test('each retry of a reboot that does not take raises a REBOOT_RETRY notice, attempt n of 3', async (t) => {
  const d = await startDaemon({ args: SCALED });
  t.after(() => d.stop());
  assert.equal((await d.runCli(['node', 'add', 'w1', '--type', 'wsim', '--state', 'ISUP'])).code, 0);
  // A power agent that says every reboot worked; the node never goes down.
  const agent = await connectWs(d);
  t.after(() => agent.close());
  assert.equal((await agent.request('registerAgent', { types: ['wsim'] })).ok, true);
  const answered = new Set<string>();
  const answering = setInterval(() => {
    for (const a of agent.pushes.filter((p) => p.type === 'action' && !answered.has(p.action))) {
      answered.add(a.action);
      void agent.request('actionResult', { action: a.action, ok: true });
    }
  }, 20);
  t.after(() => clearInterval(answering));
  const r = await d.runCli(['node_reboot', '-w', '-u', '1', 'w1']);
  assert.equal(r.code, 1, `${r.stdout}${r.stderr}`);
  const h = await history(d, 'w1');
  assert.deepEqual(notices(h), ['REBOOT_RETRY', 'REBOOT_RETRY', 'TBFAILED']);
  assert.deepEqual(h.filter((e) => e.event.eventtype === 'REBOOT_RETRY').map((e) => /attempt \d of \d/.exec(e.event.message ?? '')?.[0]),
    ['attempt 2 of 3', 'attempt 3 of 3']);
});

test('after a week-long outage overdue deadlines are dropped with a NOTIFY, not fired as a power-cycle storm; a minute-old one fires', async (t) => {
  let d = await startDaemon({ args: ['--simulate', '3'] });
  await d.stop();
  // The store as a daemon that died long ago left it.
  const now = Date.now();
  const store = new Store(d.db);
  const set = store.db.prepare(`UPDATE nodes SET op_mode = ?, state = ?, timeout_at = ?, timeout_action = ?, timeout_mode = ?, timeout_state = ?, reboot = ? WHERE node_id = ?`);
  const driven = JSON.stringify({ command: 'REBOOT', attempts: 1, awaitingShutdown: true, gaveUp: false, inFlight: false, lastError: null });
  set.run('PXEKERNEL', 'PXEWAKEUP', now - 8 * DAY, 'REBOOT', 'PXEKERNEL', 'PXEWAKEUP', null, 'sim1');
  set.run('NORMALv2', 'BOOTING', now - 60_000, 'REBOOT', 'NORMALv2', 'BOOTING', null, 'sim2');
  set.run('NORMALv2', 'ISUP', now - 8 * DAY, 'CMDRETRY', 'TBCOMMAND', 'REBOOT', driven, 'sim3');
  store.close();

  d = await startDaemon({ dir: d.dir, args: ['--simulate', '3'] });
  t.after(() => d.stop());
  await until(async () => (await history(d, 'sim2')).some((e) => e.event.objtype === 'NOTIFY'), 'the minute-old deadline to fire');
  await sleep(500); // time for any power action the old deadlines might have started
  assert.deepEqual(notices(await history(d, 'sim1')), ['STALE_TIMEOUT']);
  assert.deepEqual(notices(await history(d, 'sim3')), ['STALE_TIMEOUT']);
  assert.deepEqual(notices(await history(d, 'sim2')), ['TIMEOUT']);
  for (const node of ['sim1', 'sim3']) {
    const v = await nodeView(d, node);
    assert.deepEqual(modeStates(await history(d, node)), [], `${node}: not rebooted`);
    assert.deepEqual([v.timeout, v.reboot.command], [null, null], node);
  }
});

test('stated machine check on the shipped rows: no errors, no trigger-merge warnings', async (t) => {
  const d = await startDaemon();
  t.after(() => d.stop());
  const r = await d.runCli(['machine', 'check']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^0 error\(s\), \d+ warning\(s\)$/m);
  assert.doesNotMatch(r.stdout + r.stderr, /trigger-merge/);
  assert.doesNotMatch(r.stdout, /trigger-noop: .*(PXEBOOT|SECUREBOOT|: BOOTING)/);
});
