// node_reboot -e PROJECT reboots every node of the project and no other
// (what an experiment restart needs), and the command lands in the audit log.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { http, startDaemon } from './helpers/daemon.ts';

test('node_reboot -w -e PROJECT: the project rebooted, others untouched, audited', async (t) => {
  const d = await startDaemon({ args: ['--simulate', '3', '--time-scale', '0.01'] });
  t.after(() => d.stop());
  await d.runCli(['node', 'add', 'pc9', '--project', 'other', '--state', 'ISUP']);
  const before = (await http(d, 'GET', '/v1/nodes/pc9/history')).json.events.length;

  const r = await d.runCli(['node_reboot', '-w', '-e', 'demo', '-t', '20']);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  assert.match(r.stdout, /finished 3\/3: sim1 sim2 sim3/);
  for (const n of ['sim1', 'sim2', 'sim3']) {
    const h = (await http(d, 'GET', `/v1/nodes/${n}/history?limit=50`)).json.events.map((e: { event: { eventtype: string } }) => e.event.eventtype).reverse();
    assert.deepEqual(h, ['SHUTDOWN', 'PXEBOOTING', 'BOOTING', 'TBSETUP', 'ISUP'], n);
  }
  assert.equal((await http(d, 'GET', '/v1/nodes/pc9/history')).json.events.length, before, 'pc9 is not in project demo');

  const audit = await d.runCli(['audit', '--json']);
  assert.equal(audit.code, 0, audit.stderr);
  const records = JSON.parse(audit.stdout) as { action: string; role: string; detail: { nodes?: string[] } }[];
  const cmd = records.find((x) => x.action === 'command.REBOOT');
  assert.ok(cmd, 'the REBOOT is audited');
  assert.equal(cmd.role, 'admin');
  assert.deepEqual(cmd.detail.nodes, ['sim1', 'sim2', 'sim3']);
  assert.ok(records.some((x) => x.action === 'node.add'), 'inventory changes are audited');
  // An empty project is a usage error, and nothing is sent.
  const none = await d.runCli(['node_reboot', '-e', 'nosuch']);
  assert.equal(none.code, 64);
  assert.match(none.stderr, /^stated: E_USAGE: project nosuch has no nodes/);
});
