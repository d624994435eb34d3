// Reboots end to end (SPEC §1 node_reboot/os_load/simulate, §3 command and
// registerAgent, §4 timeouts and the gatekeeper, §5 durability): the built
// dist/stated as the daemon, `stated simulate` as the fleet in its own
// process, or the test itself as a power agent when it must count actions
// exactly. Emulab's shipped rows under test, at --time-scale 0.01:
//   state_timeouts NORMALv2/BOOTING 180 REBOOT     -> 1.8 s
//   state_timeouts TBCOMMAND/REBOOT 75 CMDRETRY    -> 0.75 s
//   config retryDelay 10 s                         -> 0.1 s
//   mode_transitions NORMALv2/SHUTDOWN -> RELOAD/SHUTDOWN, RELOAD/RELOADDONE -> NORMALv2/SHUTDOWN
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { type Daemon, connectWs, http, repoRoot, startDaemon, statedBin, tempDir } from './helpers/daemon.ts';
import { freePort, sleep, until } from './helpers/poll.ts';
import { simulate } from './helpers/fleet.ts';

const POWER_FIXTURE = path.join(repoRoot, 'test', 'fixtures', 'power.sh');
const BOOT = ['SHUTDOWN', 'PXEBOOTING', 'BOOTING', 'TBSETUP', 'ISUP'];
const SCALED = ['--time-scale', '0.01'];
/** NORMALv2/BOOTING 180 s REBOOT at scale 0.01. */
const BOOTING_TIMEOUT_MS = 1800;

interface Logged { seq: number; time: number; event: { objtype: string; objname: string; eventtype: string; mode?: string; message?: string; reason?: Record<string, unknown> } }

const names = (prefix: string, n: number): string[] => Array.from({ length: n }, (_, i) => `${prefix}${i + 1}`);

const headSeq = async (d: Daemon): Promise<number> => (await http(d, 'GET', '/healthz', undefined, null)).json.seq;

async function wsConnections(d: Daemon): Promise<number> {
  const m = /^stated_connections (\d+)$/m.exec((await http(d, 'GET', '/metrics')).text);
  assert.ok(m, 'stated_connections in /metrics');
  return Number(m[1]);
}

/** After a restart, `stated simulate` must be back on exactly one connection (a client's reconnect loop must not multiply). */
async function oneAgentConnection(d: Daemon): Promise<void> {
  let n = -1;
  await until(async () => (n = await wsConnections(d)) === 1, 'one WebSocket connection (stated simulate)', 3000)
    .catch(() => assert.fail(`${n} WebSocket connections after the restart; expected 1 (stated simulate)`));
}

/** The node's events after `since`, oldest first. */
async function history(d: Daemon, node: string, since = 0): Promise<Logged[]> {
  const r = await http(d, 'GET', `/v1/nodes/${node}/history?limit=1000`);
  assert.equal(r.status, 200, r.text);
  return (r.json.events as Logged[]).filter((e) => e.seq > since).reverse();
}

async function nodeView(d: Daemon, node: string): Promise<any> {
  const r = await http(d, 'GET', `/v1/nodes/${node}`);
  assert.equal(r.status, 200, r.text);
  return r.json;
}

const states = (h: Logged[]): string[] => h.filter((e) => e.event.objtype === 'TBNODESTATE').map((e) => e.event.eventtype);
const count = (h: Logged[], objtype: string, eventtype?: string): number =>
  h.filter((e) => e.event.objtype === objtype && (eventtype === undefined || e.event.eventtype === eventtype)).length;

interface AgentAction { type: 'action'; action: string; node: string; command: string; attempt: number; mode: string; nextMode: string | null }

/** The test as a power agent (SPEC §3 registerAgent): it sees every action and answers when told. */
async function fakeAgent(d: Daemon, types: string[]) {
  const c = await connectWs(d);
  const reg = await c.request('registerAgent', { types });
  assert.equal(reg.ok, true, JSON.stringify(reg));
  const answered = new Set<string>();
  const agent = {
    actions: (): AgentAction[] => c.pushes.filter((p) => p.type === 'action'),
    outstanding: (): AgentAction[] => agent.actions().filter((a) => !answered.has(a.action)),
    async answer(a: AgentAction, ok = true, message?: string): Promise<void> {
      answered.add(a.action);
      const r = await c.request('actionResult', { action: a.action, ok, ...(message === undefined ? {} : { message }) });
      assert.equal(r.ok, true, JSON.stringify(r));
    },
    /** Reports states for a node, as its boot scripts would. */
    async say(node: string, ...list: string[]): Promise<void> {
      for (const s of list) {
        const r = await c.request('event', { event: { objtype: 'TBNODESTATE', objname: node, eventtype: s } });
        assert.equal(r.ok, true, JSON.stringify(r));
      }
    },
    close: () => c.close(),
  };
  return agent;
}

function ms(t0: number): string {
  return `${((Date.now() - t0) / 1000).toFixed(2)} s`;
}

// --- the happy path at scale ----------------------------------------------------

test('node_reboot -w of 50 simulated nodes: exit 0, all ISUP in NORMALv2, one action each and nothing to report (SPEC §1, §4)', async (t) => {
  const d = await startDaemon({ args: SCALED });
  t.after(() => d.stop());
  await simulate(t, d, ['--nodes', '50']);
  const nodes = names('sim', 50);
  const before = await headSeq(d);

  const t0 = Date.now();
  const r = await d.runCli(['node_reboot', '-w', '-u', '1', ...nodes]);
  t.diagnostic(`node_reboot -w of 50 nodes took ${ms(t0)}`);
  assert.equal(r.code, 0, `${r.stdout}${r.stderr}`);
  assert.match(r.stderr, new RegExp(`^rebooting 50: ${nodes.join(' ')}\\n$`));
  assert.match(r.stdout, /^finished 50\/50: sim1 /m);
  assert.doesNotMatch(r.stdout, /failed|timed out/);

  for (const n of (await http(d, 'GET', '/v1/nodes')).json.nodes) {
    assert.deepEqual([n.node, n.mode, n.state, n.timeout, n.reboot.command, n.reboot.attempts], [n.node, 'NORMALv2', 'ISUP', null, null, 0]);
  }
  for (const node of nodes) {
    const h = await history(d, node, before);
    // The fleet answers each action with exactly one boot, and says SHUTDOWN once per action.
    assert.deepEqual(states(h), BOOT, `${node}: one boot`);
    assert.equal(count(h, 'NOTIFY') + count(h, 'TBFAILED'), 0, `${node}: ${JSON.stringify(h.filter((e) => e.event.objtype !== 'TBNODESTATE'))}`);
  }
});

test('at most `concurrency` actions per driver at once: 16 by default, 4 when configured (SPEC §4)', async (t) => {
  // Scale 1: nothing here may time out while the agent holds its actions.
  const dir = tempDir();
  const config = path.join(dir, 'stated.json');
  fs.writeFileSync(config, JSON.stringify({ drivers: { rack4: { kind: 'agent', concurrency: 4 } } }));
  const d = await startDaemon({ dir, args: ['--config', config] });
  t.after(() => d.stop());
  const plain = names('r', 20);
  const four = names('q', 10);
  assert.equal((await d.runCli(['node', 'add', ...plain, '--type', 'rack', '--state', 'ISUP'])).code, 0);
  assert.equal((await d.runCli(['node', 'add', ...four, '--type', 'rack4', '--state', 'ISUP'])).code, 0);
  const agent = await fakeAgent(d, ['rack', 'rack4']);
  t.after(() => agent.close());
  const admin = await connectWs(d);
  t.after(() => admin.close());

  const t0 = Date.now();
  const cmd = await admin.request('command', { command: 'REBOOT', nodes: [...plain, ...four] });
  assert.equal(cmd.ok, true, JSON.stringify(cmd));
  assert.ok(Object.values(cmd.nodes).every((v) => v === 'accepted'));
  const typeOf = (a: AgentAction): string => (a.node.startsWith('q') ? 'rack4' : 'rack');
  const held = (type: string): number => agent.outstanding().filter((a) => typeOf(a) === type).length;
  await until(() => agent.actions().length >= 20, '16 + 4 actions');
  await sleep(300);
  assert.deepEqual([held('rack'), held('rack4')], [16, 4], 'the rest wait in the queue');
  assert.match((await http(d, 'GET', '/metrics')).text, /^stated_actions_pending 30$/m);

  const max = { rack: 0, rack4: 0 };
  while (agent.actions().length < 30 || agent.outstanding().length > 0) {
    max.rack = Math.max(max.rack, held('rack'));
    max.rack4 = Math.max(max.rack4, held('rack4'));
    const next = agent.outstanding()[0];
    if (next) await agent.answer(next);
    else await sleep(20);
  }
  t.diagnostic(`30 actions through two lanes took ${ms(t0)}`);
  assert.deepEqual(max, { rack: 16, rack4: 4 });
  assert.deepEqual(agent.actions().map((a) => a.node).sort(), [...plain, ...four].sort(), 'one action per node');
  await until(async () => /^stated_actions_pending 0$/m.test((await http(d, 'GET', '/metrics')).text), 'no action pending');
});

test('command templates run as argv, never through a shell, {node} substituted, at most `concurrency` at once, output logged (SPEC §4)', async (t) => {
  const dir = tempDir();
  const log = path.join(dir, 'power.log');
  const settings = path.join(dir, 'power.env');
  const pwned = path.join(dir, 'pwned');
  const template = [POWER_FIXTURE, '{node}', settings, '--host={node}.mgmt', `$(touch ${pwned})`, 'a b;c|d', '`id`'];
  const config = path.join(dir, 'stated.json');
  fs.writeFileSync(config, JSON.stringify({ drivers: { pc: { kind: 'command', concurrency: 2, timeout: 1000, commands: { REBOOT: template } } } }));
  const d = await startDaemon({ dir, args: [...SCALED, '--config', config] });
  t.after(() => d.stop());
  // The fixture reports SHUTDOWN with `stated send`, as the node would.
  fs.writeFileSync(settings, [
    `POWER_LOG='${log}'`, 'POWER_SLEEP=0.2', `STATED_BIN='${statedBin}'`, `STATED_URL='${d.wsUrl}'`, `STATED_TOKEN='${d.token}'`, '',
  ].join('\n'));
  const nodes = [...names('pc', 5), 'rack_2.pc-6'];
  assert.equal((await d.runCli(['node', 'add', ...nodes, '--type', 'pc', '--state', 'ISUP'])).code, 0);

  const t0 = Date.now();
  const r = await d.runCli(['node_reboot', '-u', '1', ...nodes]);
  t.diagnostic(`node_reboot of 6 nodes through a 2-wide command driver took ${ms(t0)}`);
  assert.equal(r.code, 0, `${r.stdout}${r.stderr}\n--- daemon\n${d.stdout()}`);
  await sleep(BOOTING_TIMEOUT_MS / 2); // past CMDRETRY (0.75 s): nothing must run again

  const lines = fs.readFileSync(log, 'utf8').trim().split('\n');
  let running = 0;
  let most = 0;
  for (const l of lines) {
    running += l.startsWith('start ') ? 1 : -1;
    most = Math.max(most, running);
  }
  assert.equal(most, 2, `at most 2 at once, and 2 did run together:\n${lines.join('\n')}`);
  assert.deepEqual(lines.filter((l) => l.startsWith('start ')).map((l) => l.slice(6)).sort(), [...nodes].sort(), 'one run per node');
  for (const node of nodes) {
    const argv = fs.readFileSync(`${log}.argv.${node}`, 'utf8').split('\n').slice(0, -1);
    assert.deepEqual(argv, [node, settings, `--host=${node}.mgmt`, `$(touch ${pwned})`, 'a b;c|d', '`id`'], `${node}: argv verbatim`);
    const n = await nodeView(d, node);
    assert.deepEqual([n.state, n.timeout, n.reboot.attempts, n.reboot.awaitingShutdown], ['SHUTDOWN', null, 1, false], node);
  }
  assert.equal(fs.existsSync(pwned), false, 'no shell evaluated $(...)');
  assert.match(d.stdout(), new RegExp(`INFO  REBOOT pc1 \\(attempt 1\\): ${POWER_FIXTURE} pc1 ${settings} --host=pc1\\.mgmt .* -> 0`), 'each run is logged');
});

test('serve --simulate N: the in-process fleet drives its own nodes (SPEC §1, §4)', async (t) => {
  const d = await startDaemon({ args: [...SCALED, '--simulate', '5'] });
  t.after(() => d.stop());
  const before = await headSeq(d);
  const t0 = Date.now();
  const r = await d.runCli(['node_reboot', '-w', '-u', '1', ...names('sim', 5)]);
  t.diagnostic(`node_reboot -w of 5 in-process nodes took ${ms(t0)}`);
  assert.equal(r.code, 0, `${r.stdout}${r.stderr}`);
  for (const node of names('sim', 5)) assert.deepEqual(states(await history(d, node, before)), BOOT, node);
});

// --- retries and giving up --------------------------------------------------------

test('wedged nodes get maxRebootAttempts reboots, then TBFAILED TIMEOUT_IN_STATE; a node whose power fails gets DRIVER_FAILED after 3 (Emulab NORMALv2/BOOTING 180 s REBOOT; SPEC §4)', async (t) => {
  const d = await startDaemon({ args: SCALED });
  t.after(() => d.stop());
  await simulate(t, d, ['--nodes', '3', '--prefix', 'w', '--type', 'wsim', '--wedge-rate', '1']);
  await simulate(t, d, ['--nodes', '2', '--prefix', 'f', '--type', 'fsim', '--fail-rate', '1']);
  await simulate(t, d, ['--nodes', '2', '--prefix', 'ok', '--type', 'sim']);
  const wedged = names('w', 3);
  const failing = names('f', 2);
  const before = await headSeq(d);

  const t0 = Date.now();
  const r = await d.runCli(['node_reboot', '-w', '-u', '1', ...wedged, ...failing, 'ok1', 'ok2']);
  t.diagnostic(`node_reboot -w with 3 wedged and 2 failing nodes took ${ms(t0)}`);
  assert.equal(r.code, 1, `exit 1: some failed\n${r.stdout}${r.stderr}`);
  assert.match(r.stdout, /^finished 2\/7: ok1 ok2$/m);
  assert.match(r.stdout, /^failed 5:$/m);
  for (const n of wedged) assert.match(r.stdout, new RegExp(`^  ${n}: TIMEOUT_IN_STATE in NORMALv2/BOOTING after 3 attempt\\(s\\)$`, 'm'));
  for (const n of failing) assert.match(r.stdout, new RegExp(`^  ${n}: DRIVER_FAILED in TBCOMMAND/REBOOT after 3 attempt\\(s\\): simulated power controller failure$`, 'm'));

  await sleep(BOOTING_TIMEOUT_MS + 400); // long enough for a 4th attempt, which must not come
  for (const node of wedged) {
    const h = await history(d, node, before);
    const boots = ['SHUTDOWN', 'PXEBOOTING', 'BOOTING'];
    assert.deepEqual(states(h), [...boots, ...boots, ...boots], `${node}: three reboots, each wedged in BOOTING`);
    const last = h.at(-1)!;
    assert.equal(last.event.objtype, 'TBFAILED', `${node}: TBFAILED comes last`);
    assert.equal(last.event.eventtype, 'REBOOT');
    assert.deepEqual(last.event.reason, { code: 'TIMEOUT_IN_STATE', mode: 'NORMALv2', state: 'BOOTING', attempts: 3 });
    // Each retry comes no sooner than the BOOTING timeout.
    const at = (i: number, s: string): number => h.filter((e) => e.event.eventtype === s)[i]!.time;
    for (const i of [0, 1]) assert.ok(at(i + 1, 'SHUTDOWN') - at(i, 'BOOTING') >= BOOTING_TIMEOUT_MS, `${node}: retry ${i + 2} waited for the timeout`);
    assert.ok(last.time - at(2, 'BOOTING') >= BOOTING_TIMEOUT_MS);
    const v = await nodeView(d, node);
    assert.deepEqual([v.state, v.timeout, v.reboot.attempts, v.reboot.gaveUp], ['BOOTING', null, 3, true], `${node} is left alone`);
  }
  for (const node of failing) {
    const h = await history(d, node, before);
    assert.deepEqual(states(h), [], `${node} never booted`);
    // Each retry is notified too (SPEC §4.3: attempt n of max).
    assert.deepEqual(h.filter((e) => e.event.objtype === 'NOTIFY').map((e) => e.event.eventtype),
      ['DRIVER_FAILED', 'REBOOT_RETRY', 'DRIVER_FAILED', 'REBOOT_RETRY', 'DRIVER_FAILED']);
    const notes = h.filter((e) => e.event.eventtype === 'DRIVER_FAILED');
    notes.forEach((e, i) => assert.match(e.event.message!, new RegExp(`attempt ${i + 1} failed: simulated power controller failure`)));
    h.filter((e) => e.event.eventtype === 'REBOOT_RETRY').forEach((e, i) => assert.match(e.event.message!, new RegExp(`REBOOT attempt ${i + 2} of 3$`)));
    assert.ok(notes[1]!.time - notes[0]!.time >= 100, 'retryDelay 10 s x 0.01 between attempts');
    const last = h.at(-1)!;
    assert.equal(last.event.objtype, 'TBFAILED');
    assert.deepEqual(last.event.reason, { code: 'DRIVER_FAILED', mode: 'TBCOMMAND', state: 'REBOOT', attempts: 3, message: 'simulated power controller failure' });
  }
  for (const node of ['ok1', 'ok2']) assert.deepEqual(states(await history(d, node, before)), BOOT);
});

// --- the gatekeeper ---------------------------------------------------------------

test('two reboots of one node are one action (joined); -f needs an admin token and starts a new one after the running one (SPEC §1, §4 gatekeeper)', async (t) => {
  const d = await startDaemon(); // scale 1: the held action must not time out
  t.after(() => d.stop());
  assert.equal((await d.runCli(['node', 'add', 'pc1', '--project', 'p1', '--state', 'ISUP'])).code, 0);
  const agent = await fakeAgent(d, ['pc']);
  t.after(() => agent.close());
  const admin = await connectWs(d);
  t.after(() => admin.close());

  // Back to back, in one batch or two: the second joins the first.
  const [a, b] = await Promise.all([
    admin.request('command', { command: 'REBOOT', nodes: ['pc1'] }),
    admin.request('command', { command: 'REBOOT', nodes: ['pc1'] }),
  ]);
  assert.deepEqual([a.ok, a.nodes, b.ok, b.nodes], [true, { pc1: 'accepted' }, true, { pc1: 'joined' }]);
  const again = await d.runCli(['node_reboot', '-n', 'pc1']);
  assert.deepEqual([again.code, again.stderr], [0, 'already rebooting, joined 1: pc1\n']);
  const user = (await d.runCli(['token', 'create', '--role', 'user', '--project', 'p1'])).stdout.trim();
  const asUser = await d.runCli(['node_reboot', '-n', 'pc1'], { env: { STATED_TOKEN: user } });
  assert.deepEqual([asUser.code, asUser.stderr], [0, 'already rebooting, joined 1: pc1\n'], 'a user may join a reboot of its project');
  const forcedByUser = await d.runCli(['node_reboot', '-n', '-f', 'pc1'], { env: { STATED_TOKEN: user } });
  assert.equal(forcedByUser.code, 70);
  assert.match(forcedByUser.stderr, /^stated: E_FORBIDDEN: .+\n$/);
  await sleep(300);
  assert.equal(agent.actions().length, 1, 'one action for three requests');

  const forced = await d.runCli(['node_reboot', '-n', '-f', 'pc1']);
  assert.deepEqual([forced.code, forced.stderr], [0, 'rebooting 1: pc1\n']);
  await sleep(300);
  assert.equal(agent.actions().length, 1, 'never two actions on one node at once: the forced one waits');
  await agent.answer(agent.actions()[0]!);
  await until(() => agent.actions().length === 2, 'the forced action');
  const second = agent.actions()[1]!;
  assert.deepEqual([second.node, second.command, second.attempt], ['pc1', 'REBOOT', 1]);
  await agent.answer(second);
  await agent.say('pc1', ...BOOT);
  const v = await nodeView(d, 'pc1');
  assert.deepEqual([v.state, v.reboot.command, v.timeout], ['ISUP', null, null]);
  await sleep(200);
  assert.equal(agent.actions().length, 2);
});

test("a forced reboot is judged by its own action's result, not by the superseded one's (SPEC §4 gatekeeper)", async (t) => {
  // The superseded action and the forced one are both REBOOT attempt 1, so
  // the engine takes the old action's answer as the new one's: the forced
  // action's failure is then dropped (no DRIVER_FAILED, no retry of it).
  const d = await startDaemon();
  t.after(() => d.stop());
  assert.equal((await d.runCli(['node', 'add', 'pc1', '--state', 'ISUP'])).code, 0);
  const agent = await fakeAgent(d, ['pc']);
  t.after(() => agent.close());
  const admin = await connectWs(d);
  t.after(() => admin.close());
  const before = await headSeq(d);

  assert.deepEqual((await admin.request('command', { command: 'REBOOT', nodes: ['pc1'] })).nodes, { pc1: 'accepted' });
  await until(() => agent.actions().length === 1, 'the first action');
  assert.deepEqual((await admin.request('command', { command: 'REBOOT', nodes: ['pc1'], force: true })).nodes, { pc1: 'accepted' });
  await agent.answer(agent.actions()[0]!, true);
  await until(() => agent.actions().length === 2, 'the forced action');
  await agent.answer(agent.actions()[1]!, false, 'forced attempt: controller refused');
  await until(async () => count(await history(d, 'pc1', before), 'NOTIFY', 'DRIVER_FAILED') > 0, 'a DRIVER_FAILED NOTIFY for the forced action', 2000);
  const note = (await history(d, 'pc1', before)).find((e) => e.event.eventtype === 'DRIVER_FAILED')!;
  assert.match(note.event.message!, /attempt 1 failed: forced attempt: controller refused/);
  const v = await nodeView(d, 'pc1');
  assert.equal(v.reboot.lastError, 'DRIVER_FAILED');
  assert.equal(v.timeout?.action, 'CMDRETRY');
});

// --- durability -------------------------------------------------------------------

/** A daemon on a fixed port (so clients and `stated simulate` find it again after a restart) with one wedged node. */
async function wedgedRig(t: TestContext, config?: object) {
  const dir = tempDir();
  const port = await freePort();
  const args = [...SCALED, '--listen', `127.0.0.1:${port}`];
  if (config) {
    fs.writeFileSync(path.join(dir, 'stated.json'), JSON.stringify(config));
    args.push('--config', path.join(dir, 'stated.json'));
  }
  const d = await startDaemon({ dir, args });
  t.after(() => d.stop());
  await simulate(t, d, ['--nodes', '1', '--prefix', 'w', '--type', 'wsim', '--wedge-rate', '1']);
  return d;
}

/** Waits for the second attempt's BOOTING: no action in flight, the REBOOT deadline pending. */
async function atSecondBooting(d: Daemon, since: number): Promise<any> {
  await until(async () => count(await history(d, 'w1', since), 'TBNODESTATE', 'BOOTING') === 2, 'the second BOOTING');
  const v = await nodeView(d, 'w1');
  assert.deepEqual([v.state, v.reboot.attempts, v.reboot.inFlight, v.timeout?.action], ['BOOTING', 2, false, 'REBOOT']);
  return v;
}

test('kill -9 mid-retry: the attempt count and the deadline survive, and the node still fails after exactly 3 attempts (SPEC §5)', async (t) => {
  // The fleet reconnects with backoff (up to 2 s between tries): a grace of 10 s (scaled) lets the
  // third attempt reach it however slowly a loaded machine restarts the daemon; grace itself is tested below.
  const d = await wedgedRig(t, { agentGrace: 1000 });
  const before = await headSeq(d);
  const t0 = Date.now();
  // The CLI rides out the restart on its durable connection and re-attaches its wait.
  const cli = d.runCli(['node_reboot', '-w', '-u', '1', 'w1'], { timeoutMs: 30_000 });
  const mid = await atSecondBooting(d, before);

  await d.kill9();
  const d2 = await d.restart();
  t.after(() => d2.stop());
  const v = await nodeView(d2, 'w1');
  assert.deepEqual([v.reboot.attempts, v.reboot.command, v.timeout], [2, 'REBOOT', mid.timeout], 'attempts and the absolute deadline were kept');

  const r = await cli;
  t.diagnostic(`wedged node with a kill -9 after attempt 2 failed after ${ms(t0)}`);
  assert.equal(r.code, 1, `${r.stdout}${r.stderr}`);
  assert.match(r.stdout, /^  w1: TIMEOUT_IN_STATE in NORMALv2\/BOOTING after 3 attempt\(s\)$/m);
  await oneAgentConnection(d2);
  await sleep(BOOTING_TIMEOUT_MS + 400);
  const h = await history(d2, 'w1', before);
  assert.equal(count(h, 'TBNODESTATE', 'SHUTDOWN'), 3, `three reboots in all: ${states(h).join(' ')}`);
  assert.equal(count(h, 'TBFAILED'), 1);
  assert.deepEqual(h.at(-1)!.event.reason, { code: 'TIMEOUT_IN_STATE', mode: 'NORMALv2', state: 'BOOTING', attempts: 3 });
});

test('a retry that fell due while the daemon was down waits for its power agent to reconnect instead of failing (SPEC §5, §4)', async (t) => {
  // The daemon fires overdue deadlines at once on start (§5), before any
  // agent can have reconnected; "no power agent connected" then burns the
  // node's last attempt and it is declared failed without a third reboot.
  // The driver's own time limit (here 300 s x 0.01 = 3 s) should bound the wait.
  const d = await wedgedRig(t, { drivers: { wsim: { kind: 'agent', timeout: 300 } } });
  const before = await headSeq(d);
  assert.equal((await d.runCli(['node_reboot', '-n', 'w1'])).code, 0);
  const mid = await atSecondBooting(d, before);
  await d.kill9();
  await sleep(Math.max(0, mid.timeout.at - Date.now()) + 300); // down past the deadline
  const t0 = Date.now();
  const d2 = await d.restart();
  t.after(() => d2.stop());

  await until(async () => count(await history(d2, 'w1', before), 'TBFAILED') === 1, 'TBFAILED', 15_000);
  t.diagnostic(`after the restart, TBFAILED came in ${ms(t0)}`);
  const h = await history(d2, 'w1', before);
  assert.deepEqual(h.at(-1)!.event.reason, { code: 'TIMEOUT_IN_STATE', mode: 'NORMALv2', state: 'BOOTING', attempts: 3 },
    `the third attempt must reach the agent: ${h.map((e) => `${e.event.objtype} ${e.event.eventtype} ${e.event.message ?? ''}`).join('; ')}`);
  assert.equal(count(h, 'TBNODESTATE', 'SHUTDOWN'), 3);
  await oneAgentConnection(d2);
});

// --- os_load ----------------------------------------------------------------------

test('os_load: the nodes pass RELOADSETUP, RELOADING, RELOADDONE in RELOAD and come back in NORMALv2 (SPEC §1; Emulab mode_transitions)', async (t) => {
  const d = await startDaemon({ args: SCALED });
  t.after(() => d.stop());
  await simulate(t, d, ['--nodes', '2']);
  const before = await headSeq(d);

  const t0 = Date.now();
  const r = await d.runCli(['os_load', '-u', '1', 'sim1', 'sim2']);
  t.diagnostic(`os_load of 2 nodes took ${ms(t0)}`);
  assert.equal(r.code, 0, `${r.stdout}${r.stderr}`);
  assert.match(r.stdout, /^finished 2\/2: sim1 sim2$/m);
  assert.match(r.stdout, /^sim1: now NORMALv2\/\S+$/m, 'RELOADDONE sent the node to its next op mode');
  assert.match(r.stdout, /^sim2: now NORMALv2\/\S+$/m);

  await until(async () => (await nodeView(d, 'sim1')).state === 'ISUP' && (await nodeView(d, 'sim2')).state === 'ISUP', 'both back up');
  for (const node of ['sim1', 'sim2']) {
    const v = await nodeView(d, node);
    assert.deepEqual([v.mode, v.nextMode, v.reboot.command], ['NORMALv2', null, null]);
    const h = await history(d, node, before);
    assert.deepEqual(h.filter((e) => e.event.objtype === 'TBNODESTATE').map((e) => `${e.event.mode}/${e.event.eventtype}`), [
      'NORMALv2/SHUTDOWN',
      'RELOAD/SHUTDOWN', // mode_transitions NORMALv2/SHUTDOWN -> RELOAD/SHUTDOWN, generated by stated
      // PXEBOOTING's PXEBOOT trigger moves the node into PXEKERNEL; BOOTING's trigger back to RELOAD
      'RELOAD/PXEBOOTING', 'PXEKERNEL/BOOTING', 'RELOAD/RELOADSETUP', 'RELOAD/RELOADING', 'RELOAD/RELOADDONE',
      'NORMALv2/SHUTDOWN', // mode_transitions RELOAD/RELOADDONE -> NORMALv2/SHUTDOWN
      'NORMALv2/SHUTDOWN', // the reload MFS reboots the node into its new image
      'NORMALv2/PXEBOOTING', 'PXEKERNEL/BOOTING', 'NORMALv2/TBSETUP', 'NORMALv2/ISUP',
    ]);
    assert.equal(count(h, 'NOTIFY') + count(h, 'TBFAILED'), 0, JSON.stringify(h.filter((e) => e.event.objtype !== 'TBNODESTATE')));
  }
});
