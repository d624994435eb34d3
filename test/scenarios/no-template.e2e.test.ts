// A `command` driver that has no template for a command (SPEC §4 "Commands
// and the gatekeeper": a node with no driver for the action is refused at
// once). The README's own driver example has REBOOT and POWERCYCLE only; a
// POWEROFF (operator's, or a trigger's such as SECVIOLATION's) used to fail
// DRIVER_FAILED maxRebootAttempts times before a TBFAILED.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { type TestContext, test } from 'node:test';
import { connectWs, http, startDaemon, tempDir } from '../helpers/daemon.ts';
import { SCALED, history, nodeView, ofType, show, sleep, until } from './rig.ts';

/** A daemon whose type `pc` has templates for `commands` only (a recording script), and `ladder`. */
async function partialDriver(t: TestContext, commands: string[], ladder?: Record<string, string[]>) {
  const dir = tempDir();
  const log = path.join(dir, 'actions.log');
  const script = path.join(dir, 'power.sh');
  fs.writeFileSync(script, `#!/bin/sh\necho "$1 $2" >> '${log}'\nexit 0\n`, { mode: 0o755 });
  const config = path.join(dir, 'stated.json');
  fs.writeFileSync(config, JSON.stringify({ drivers: { pc: {
    kind: 'command', commands: Object.fromEntries(commands.map((c) => [c, [script, c, '{node}']])), ...(ladder ? { ladder } : {}),
  } } }));
  const d = await startDaemon({ dir, args: [...SCALED, '--config', config] });
  t.after(() => d.stop());
  const add = await d.runCli(['node', 'add', 'a3', 'a4', '--type', 'pc', '--state', 'ISUP']);
  assert.equal(add.code, 0, add.stderr);
  const ws = await connectWs(d);
  t.after(() => ws.close());
  const actions = (): string[] => (fs.existsSync(log) ? fs.readFileSync(log, 'utf8').split('\n').filter(Boolean) : []);
  return { d, ws, actions };
}

test('an operator POWEROFF with no POWEROFF template is refused at once with E_NO_DRIVER; what has a template still runs', async (t) => {
  const { d, ws, actions } = await partialDriver(t, ['REBOOT', 'POWERCYCLE']);
  const r = await ws.request('command', { command: 'POWEROFF', nodes: ['a3'] });
  assert.equal(r.ok, true, JSON.stringify(r));
  assert.equal(r.nodes.a3, 'refused', JSON.stringify(r));
  assert.match(r.refusals.a3, /^E_NO_DRIVER: .*no command template for POWEROFF.*drivers\.pc/);
  assert.equal((await nodeView(d, 'a3')).reboot.command, null, 'nothing started');
  // A REBOOT has its template: accepted and run.
  const nr = await d.runCli(['node_reboot', '-n', 'a4']);
  assert.equal(nr.code, 0, nr.stderr);
  await until(() => actions().includes('REBOOT a4'), 'the REBOOT of a4 ran');
  await sleep(300);
  assert.deepEqual(actions(), ['REBOOT a4'], 'the POWEROFF never ran');
});

test('a REBOOT whose ladder escalates to a command with no template is refused at once (node_reboot exits 1)', async (t) => {
  const { d, actions } = await partialDriver(t, ['REBOOT'], { REBOOT: ['REBOOT', 'POWERCYCLE'] });
  const r = await d.runCli(['node_reboot', 'a3'], { timeoutMs: 20_000 });
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stderr, /^refused a3: E_NO_DRIVER: .*REBOOT escalates to POWERCYCLE: no command template for POWERCYCLE/m);
  await sleep(300);
  assert.deepEqual(actions(), [], 'no attempt ran');
});

test('a trigger-issued POWEROFF with no template fails at once: one NOTIFY NO_DRIVER, TBFAILED NO_DRIVER, no retries', async (t) => {
  const { d, ws, actions } = await partialDriver(t, ['REBOOT', 'POWERCYCLE']);
  const start = (await http(d, 'GET', '/healthz', undefined, null)).json.seq as number;
  const add = await d.runCli(['node', 'trigger', 'add', 'a3', 'SHUTDOWN', 'POWEROFF']);
  assert.equal(add.code, 0, add.stderr);
  const sent = await ws.request('event', { event: { objtype: 'TBNODESTATE', objname: 'a3', eventtype: 'SHUTDOWN' } });
  assert.equal(sent.ok, true, JSON.stringify(sent));
  await until(async () => ofType(await history(d, 'a3', start), 'TBFAILED').length > 0, 'a TBFAILED for a3');
  // retryDelay 10 s x 0.01: three DRIVER_FAILED attempts would all be in by now.
  await sleep(1000);
  const h = await history(d, 'a3', start);
  const failed = ofType(h, 'TBFAILED');
  assert.equal(failed.length, 1, show(h));
  assert.equal(failed[0]!.event.eventtype, 'POWEROFF');
  assert.equal(failed[0]!.event.reason?.code, 'NO_DRIVER', show(h));
  assert.deepEqual(ofType(h, 'NOTIFY', 'DRIVER_FAILED'), [], `no attempt failed: ${show(h)}`);
  assert.deepEqual(ofType(h, 'NOTIFY', 'REBOOT_RETRY'), [], `no retry: ${show(h)}`);
  const notes = ofType(h, 'NOTIFY', 'NO_DRIVER');
  assert.equal(notes.length, 1, show(h));
  assert.match(notes[0]!.event.message ?? '', /a3: POWEROFF cannot run: no command template for POWEROFF/);
  assert.deepEqual(actions(), [], 'the power script never ran');
  // The node is not left "being driven": a REBOOT (which has a template) runs.
  const nr = await d.runCli(['node_reboot', '-n', 'a3']);
  assert.equal(nr.code, 0, nr.stdout + nr.stderr);
  await until(() => actions().includes('REBOOT a3'), 'the REBOOT of a3 ran');
});
