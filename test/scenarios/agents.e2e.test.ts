// Issue 9's scenarios for drivers (SPEC §3 registerAgent, §4 Commands and the
// gatekeeper): actions routed by node, two simulated fleets of one type side
// by side, and a node with no driver at all.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { DEFAULTS } from '../../src/config.ts';
import { connectWs, http, startDaemon, tempDir } from '../helpers/daemon.ts';
import { SCALED, history, nodeView, ofType, show, simulate, sleep, states, until } from './rig.ts';

test('point 6 / row "two agents of one type, each with its own nodes": every action reaches the node\'s own agent', async (t) => {
  const d = await startDaemon({ args: SCALED });
  t.after(() => d.stop());
  const mine = { A: ['x1', 'x2', 'x3'], B: ['y1', 'y2', 'y3'] };
  assert.equal((await d.runCli(['node', 'add', ...mine.A, ...mine.B, 'z1', '--type', 'rack', '--state', 'ISUP'])).code, 0);
  const agents = { A: await connectWs(d), B: await connectWs(d) };
  for (const [k, c] of Object.entries(agents)) {
    t.after(() => c.close());
    // Each drives its own outlets, and offers to drive the type's nodes nobody named.
    const r = await c.request('registerAgent', { nodes: mine[k as 'A' | 'B'], types: ['rack'] });
    assert.equal(r.ok, true, JSON.stringify(r));
  }
  const admin = await connectWs(d);
  t.after(() => admin.close());
  const all = [...mine.A, ...mine.B, 'z1'];
  const cmd = await admin.request('command', { command: 'REBOOT', nodes: all });
  assert.ok(Object.values(cmd.nodes).every((v) => v === 'accepted'), JSON.stringify(cmd));
  const got = (k: 'A' | 'B'): string[] => agents[k].pushes.filter((p) => p.type === 'action').map((p) => p.node as string).sort();
  await until(() => got('A').length + got('B').length === all.length, 'every action');
  const rest = (k: 'A' | 'B'): string[] => got(k).filter((n) => n !== 'z1');
  assert.deepEqual([rest('A'), rest('B')], [mine.A, mine.B], 'each named node went to its own agent');
  assert.equal(got('A').includes('z1') !== got('B').includes('z1'), true, 'the node nobody named went to one agent of its type');
});

test('point 6: two `stated simulate` fleets of one type, one healthy and one wedging, run side by side', async (t) => {
  const d = await startDaemon({ args: SCALED });
  t.after(() => d.stop());
  await simulate(t, d, ['--nodes', '3', '--prefix', 'a']);
  await simulate(t, d, ['--nodes', '3', '--prefix', 'b', '--wedge-rate', '1']);
  const since = (await http(d, 'GET', '/healthz', undefined, null)).json.seq as number;
  const r = await d.runCli(['node_reboot', '-w', '-u', '1', '-t', '30', 'a1', 'a2', 'a3'], { timeoutMs: 40_000 });
  assert.equal(r.code, 0, `${r.stdout}${r.stderr}`);
  for (const n of ['a1', 'a2', 'a3']) {
    const h = await history(d, n, since);
    assert.deepEqual(states(h), ['SHUTDOWN', 'PXEBOOTING', 'BOOTING', 'TBSETUP', 'ISUP'], `${n}: one boot, by its own fleet: ${show(h)}`);
  }
});

test('point 7 / row "type with no driver and no agent, past the grace period": node_reboot exits 1 at once with E_NO_DRIVER, not after tries and retry delays', async (t) => {
  // The config makes the start-up grace short and the delay between attempts long (both scaled by 0.1).
  const scale = 0.1;
  const cfg = { agentGrace: 5, retryDelay: 50 };
  const dir = tempDir();
  const config = path.join(dir, 'stated.json');
  fs.writeFileSync(config, JSON.stringify(cfg));
  const d = await startDaemon({ dir, args: ['--time-scale', String(scale), '--config', config] });
  t.after(() => d.stop());
  assert.equal((await d.runCli(['node', 'add', 'n1', '--type', 'nodrv', '--state', 'ISUP'])).code, 0);
  await sleep(cfg.agentGrace * 1000 * scale + 500); // past the start-up grace period
  // Were the reboot tried instead of refused, each attempt would fail (no agent) and the next come
  // retryDelay later: the least node_reboot -w could then take before the TBFAILED that ends it.
  const triedMs = (DEFAULTS.maxRebootAttempts - 1) * cfg.retryDelay * 1000 * scale;
  const t0 = Date.now();
  const r = await d.runCli(['node_reboot', '-w', '-t', '60', 'n1'], { timeoutMs: 60_000 });
  const tookMs = Date.now() - t0;
  t.diagnostic(`node_reboot took ${tookMs} ms; trying the reboot would take at least ${triedMs} ms`);
  assert.equal(r.code, 1, `${r.stdout}${r.stderr}`);
  // No wall-clock figure: "at once" is under half of what trying would take.
  assert.ok(tookMs < triedMs / 2, `node_reboot took ${tookMs} ms, as if the reboot had been tried (${triedMs} ms at least)`);
  assert.match(r.stderr, /^refused n1: E_NO_DRIVER: .*nodrv/m);
  const h = await history(d, 'n1');
  assert.deepEqual([...ofType(h, 'NOTIFY'), ...ofType(h, 'TBFAILED')], [], `refused before any attempt: ${show(h)}`);
  assert.equal((await nodeView(d, 'n1')).reboot.command, null);
});

test('point 7: `status` shows an action waiting for its power agent, until the agent of the node connects', async (t) => {
  // Scale 1: within the 60 s start-up grace period and the 60 s driver limit, the action waits for its agent.
  const d = await startDaemon();
  t.after(() => d.stop());
  assert.equal((await d.runCli(['node', 'add', 'w1', '--type', 'pc', '--state', 'ISUP'])).code, 0);
  const r = await d.runCli(['node_reboot', '-n', 'w1']);
  assert.deepEqual([r.code, r.stderr], [0, 'rebooting 1: w1\n']);
  await until(async () => (await nodeView(d, 'w1')).reboot.waitingForDriver === true, 'the node JSON to show the wait');
  const st = await d.runCli(['status', 'w1']);
  assert.match(st.stdout, /^w1 .*1 \(REBOOT, waiting for its driver\)/m, st.stdout);

  const agent = await connectWs(d);
  t.after(() => agent.close());
  assert.equal((await agent.request('registerAgent', { nodes: ['w1'] })).ok, true);
  const a = await agent.push((p) => p.type === 'action' && p.node === 'w1');
  const v = await nodeView(d, 'w1');
  assert.deepEqual([v.reboot.inFlight, v.reboot.waitingForDriver], [true, false]);
  assert.equal((await agent.request('actionResult', { action: a.action, ok: true })).ok, true);
});
