// The drivers behind SPEC §4 "Commands and the gatekeeper": the Scheduler
// (never two actions on one node, a concurrency limit per driver, results
// back into the core), the command-template driver (argv, no shell, time
// limit), power agents, and the simulated fleet of `stated simulate`.
// Fakes only: a controllable Driver and a Core on a temp Store.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { parseConfig } from '../src/config.ts';
import type { Committed } from '../src/nodes.ts';
import type { Action, ActionResult, Driver } from '../src/drivers/action.ts';
import { Agents } from '../src/drivers/agents.ts';
import { CommandDriver } from '../src/drivers/command.ts';
import { type Route, Scheduler, routeFor } from '../src/drivers/scheduler.ts';
import { StatedError } from '../src/errors.ts';
import type { Peer } from '../src/hub.ts';
import { FLEET_DEFAULTS, Fleet } from '../src/simulator/fleet.ts';
import { T0, makeCore, tempDir, type TestCore } from './helpers/fake.ts';

const S = 1000;
// Tests run from the repository root (as helpers/fake.ts assumes for migrations/).
const FIXTURES = path.resolve('test/fixtures');

/** Lets promise chains and setImmediate ticks (the core's batches) run. */
async function flush(rounds = 5): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise((r) => setImmediate(r));
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => boolean, what: string, timeoutMs = 2000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await sleep(2);
  }
}

function action(node: string, over: Partial<Action> = {}): Action {
  return { id: `a-${node}-${Math.random()}`, node, type: 'pc', command: 'REBOOT', requested: 'REBOOT', attempt: 1, mode: 'NORMALv2', nextMode: null, ...over };
}

interface Running { a: Action; timeoutMs: number; resolve: (r: ActionResult) => void; reject: (e: Error) => void }

/** A driver whose actions end only when the test says so; it records every overlap. */
class FakeDriver implements Driver {
  readonly started: Action[] = [];
  readonly running: Running[] = [];
  /** Nodes that got an action while one was already running for them. */
  readonly overlaps: string[] = [];
  maxAtOnce = 0;
  constructor(readonly name = 'fake') {}

  run(a: Action, timeoutMs: number): Promise<ActionResult> {
    if (this.running.some((r) => r.a.node === a.node)) this.overlaps.push(a.node);
    this.started.push(a);
    return new Promise((resolve, reject) => {
      const r: Running = { a, timeoutMs, resolve, reject };
      this.running.push(r);
      this.maxAtOnce = Math.max(this.maxAtOnce, this.running.length);
    });
  }

  private take(node: string): Running {
    const i = this.running.findIndex((r) => r.a.node === node);
    assert.ok(i >= 0, `no action running for ${node}; running: ${this.running.map((r) => r.a.node).join(' ')}`);
    return this.running.splice(i, 1)[0]!;
  }

  async finish(node: string, res: ActionResult = { ok: true }): Promise<void> {
    this.take(node).resolve(res);
    await flush();
  }

  async crash(node: string, err: Error): Promise<void> {
    this.take(node).reject(err);
    await flush();
  }

  nodesRunning(): string[] {
    return this.running.map((r) => r.a.node).sort();
  }
}

interface Rig { tc: TestCore; s: Scheduler; logs: string[] }

/**
 * A Core on a temp Store with `nodes` up in NORMALv2, and a Scheduler wired to
 * it as the daemon wires it: every committed `action` effect is submitted.
 */
async function rig(nodes: string[], route: (type: string) => Route, typeOf: (node: string) => string = () => 'pc'): Promise<Rig> {
  const tc = makeCore();
  await tc.step((c) => { for (const id of nodes) c.addNode(id, { type: typeOf(id), mode: 'NORMALv2', state: 'ISUP' }); });
  const logs: string[] = [];
  const s = new Scheduler(tc.core, route, (l) => logs.push(l), [5, 5]);
  tc.core.onCommit = (c: Committed) => {
    tc.commits.push(c);
    for (const e of c.effects) if (e.t === 'action') s.submit(e.node, e.command, e.attempt, e.started);
  };
  tc.core.autoTick = true; // results come back through core.run, as in the daemon
  return { tc, s, logs };
}

function lane(driver: Driver, concurrency: number, key = `${driver.name}:pc`): Route {
  return { driver, key, concurrency, timeoutMs: 5 * S, ladder: undefined };
}

const pcs = (n: number): string[] => Array.from({ length: n }, (_, i) => `pc${i + 1}`);
const reboot = (nodes: string[]) => ({ objtype: 'TBCOMMAND', objname: nodes.join(','), eventtype: 'REBOOT' });

// --- Scheduler --------------------------------------------------------------

test('Scheduler: never two actions on one node at once; a newer request waits and replaces an older queued one (SPEC §4)', async () => {
  const d = new FakeDriver();
  const { s } = await rig(['pc1'], () => lane(d, 16));
  s.submit('pc1', 'REBOOT', 1);
  s.submit('pc1', 'REBOOT', 2);
  s.submit('pc1', 'REBOOT', 3);
  await flush();
  assert.deepEqual(d.started.map((a) => a.attempt), [1], 'only the first runs');
  assert.equal(s.pending, 2, 'one running, one waiting for the node');
  await d.finish('pc1');
  assert.deepEqual(d.started.map((a) => a.attempt), [1, 3], 'attempt 2 was replaced by the newer attempt 3');
  await d.finish('pc1');
  assert.deepEqual(d.overlaps, []);
  assert.equal(s.pending, 0);
});

test('Scheduler: at most `concurrency` actions per driver at once; the rest start in order as slots free', async () => {
  const d = new FakeDriver();
  const nodes = pcs(7);
  const { s } = await rig(nodes, () => lane(d, 3));
  for (const n of nodes) s.submit(n, 'REBOOT', 1);
  await flush();
  assert.deepEqual(d.nodesRunning(), ['pc1', 'pc2', 'pc3']);
  assert.equal(s.pending, 7);
  await d.finish('pc2');
  assert.deepEqual(d.nodesRunning(), ['pc1', 'pc3', 'pc4'], 'the first queued node takes the free slot');
  // A node that is queued (not running) is still busy: a second request for it waits behind it.
  s.submit('pc6', 'REBOOT', 2);
  while (d.running.length > 0) await d.finish(d.running[0]!.a.node);
  assert.equal(d.maxAtOnce, 3);
  assert.deepEqual(d.overlaps, []);
  assert.deepEqual(d.started.map((a) => `${a.node}#${a.attempt}`), ['pc1#1', 'pc2#1', 'pc3#1', 'pc4#1', 'pc5#1', 'pc6#1', 'pc7#1', 'pc6#2']);
  assert.equal(s.pending, 0);
});

test('Scheduler: each driver (lane) has its own limit', async () => {
  const a = new FakeDriver('a');
  const b = new FakeDriver('b');
  // Each node its own type, so the route picks the lane by node.
  const routes: Record<string, Route> = { pc1: lane(a, 1), pc2: lane(b, 1), pc3: lane(a, 1) };
  const { s } = await rig(['pc1', 'pc2', 'pc3'], (type) => routes[type]!, (node) => node);
  s.submit('pc1', 'REBOOT', 1);
  s.submit('pc2', 'REBOOT', 1);
  s.submit('pc3', 'REBOOT', 1);
  await flush();
  assert.deepEqual(a.nodesRunning(), ['pc1'], 'lane a: one at a time, pc3 queued');
  assert.deepEqual(b.nodesRunning(), ['pc2'], 'lane b runs beside it');
  await a.finish('pc1');
  assert.deepEqual(a.nodesRunning(), ['pc3']);
  await a.finish('pc3');
  await b.finish('pc2');
  assert.equal(s.pending, 0);
});

test('Scheduler: an ok result arms TBCOMMAND/REBOOT CMDRETRY (75 s); a rejected run is a failed attempt with a NOTIFY and a retry after retryDelay', async () => {
  const d = new FakeDriver();
  const { tc } = await rig(['pc1', 'pc2'], () => lane(d, 16));
  await tc.step((c) => c.applyEvent(reboot(['pc1', 'pc2'])));
  await flush();
  assert.deepEqual(d.nodesRunning(), ['pc1', 'pc2'], 'the command became one action per node');
  assert.equal(tc.core.nodes.get('pc1')!.reboot.inFlight, true);

  await d.finish('pc1', { ok: true });
  const n1 = tc.core.nodes.get('pc1')!;
  assert.equal(n1.reboot.inFlight, false);
  assert.deepEqual(n1.timeout, { at: T0 + 75 * S, action: 'CMDRETRY', mode: 'TBCOMMAND', state: 'REBOOT' });

  await d.crash('pc2', new Error('controller on fire'));
  const n2 = tc.core.nodes.get('pc2')!;
  assert.equal(n2.reboot.lastError, 'DRIVER_FAILED');
  assert.deepEqual(n2.timeout, { at: T0 + 10 * S, action: 'CMDRETRY', mode: 'TBCOMMAND', state: 'REBOOT' });
  const notify = tc.commits.flatMap((c) => c.events).find((le) => le.event.objtype === 'NOTIFY' && le.event.objname === 'pc2');
  assert.equal(notify?.event.eventtype, 'DRIVER_FAILED');
  assert.match(notify!.event.message!, /attempt 1 failed: driver error: controller on fire/);
});

test('Scheduler: a result whose batch is lost is recorded again; after the last retry it is given up, loudly', async () => {
  const d = new FakeDriver();
  const { tc, logs } = await rig(['pc1', 'pc2'], () => lane(d, 16));
  await tc.step((c) => c.applyEvent(reboot(['pc1', 'pc2'])));
  await flush();
  // The core's next batches are lost (as a batch refused behind a failed one is).
  const run = tc.core.run.bind(tc.core);
  let lose = 2;
  tc.core.run = ((fn, opts) => (lose-- > 0 ? Promise.reject(new Error('batch lost')) : run(fn, opts))) as typeof tc.core.run;
  await d.finish('pc1', { ok: true });
  await new Promise((r) => setTimeout(r, 50));
  await flush();
  const n1 = tc.core.nodes.get('pc1')!;
  assert.equal(n1.reboot.inFlight, false, 'recorded on the third try');
  assert.equal(n1.timeout?.action, 'CMDRETRY');
  assert.equal(logs.filter((l) => /could not record REBOOT result for pc1: batch lost; trying again/.test(l)).length, 2);

  lose = 3; // more than the retries
  await d.finish('pc2', { ok: true });
  await new Promise((r) => setTimeout(r, 50));
  await flush();
  assert.equal(tc.core.nodes.get('pc2')!.reboot.inFlight, true, 'never recorded: the next start runs the action again');
  assert.ok(logs.some((l) => /E_INTERNAL: could not record REBOOT result for pc2: .*gave up/.test(l)), logs.join('\n'));
});

test('Scheduler: a result waiting to be recorded again does not hold its lane slot', async () => {
  const d = new FakeDriver();
  const { tc } = await rig(['pc1', 'pc2'], () => lane(d, 1));
  const logs: string[] = [];
  const s = new Scheduler(tc.core, () => lane(d, 1), (l) => logs.push(l), [200]);
  const run = tc.core.run.bind(tc.core);
  let lose = 1;
  tc.core.run = ((fn, opts) => (lose-- > 0 ? Promise.reject(new Error('batch lost')) : run(fn, opts))) as typeof tc.core.run;
  s.submit('pc1', 'REBOOT', 1);
  s.submit('pc2', 'REBOOT', 1);
  await flush();
  assert.deepEqual(d.nodesRunning(), ['pc1']);
  await d.finish('pc1');
  assert.deepEqual(d.nodesRunning(), ['pc2'], 'the slot went to pc2 while pc1\'s result waits 200 ms to be tried again');
  assert.equal(logs.length, 1);
  s.submit('pc1', 'REBOOT', 2);
  await flush();
  assert.deepEqual(d.nodesRunning(), ['pc2'], 'pc1 is still busy: its next action waits for the result');
});

test('Scheduler: a driver that throws instead of rejecting is a failed attempt and frees its slot and its node', async () => {
  // CommandDriver throws synchronously on a template that is not a list
  // (`"REBOOT": "/usr/bin/power {node}"`, which the config accepts today):
  // the throw escaped Scheduler.start from the daemon's onCommit and took
  // the daemon down, and again at every start (the action stays inFlight).
  let calls = 0;
  const throwing: Driver = { name: 'throwing', run: () => { calls++; throw new TypeError('template.map is not a function'); } };
  const { tc, s } = await rig(['pc1', 'pc2'], () => lane(throwing, 1));
  await assert.doesNotReject(async () => tc.step((c) => c.applyEvent(reboot(['pc1']))), 'the throw must not escape into the commit');
  await flush();
  assert.equal(calls, 1);
  assert.equal(s.pending, 0, 'the slot and the node are free again');
  assert.equal(tc.core.nodes.get('pc1')!.reboot.lastError, 'DRIVER_FAILED', 'counted as a failed attempt');
  s.submit('pc2', 'REBOOT', 1);
  await flush();
  assert.equal(calls, 2, 'the lane still runs actions');
});

test('Scheduler: the escalation ladder runs ladder[attempt-1], the last step repeating; the core still hears the requested command', async () => {
  const d = new FakeDriver();
  const route = { ...lane(d, 16), ladder: { REBOOT: ['REBOOT', 'POWERCYCLE'] } };
  const { s } = await rig(['pc1'], () => route);
  for (const attempt of [1, 2, 3]) {
    s.submit('pc1', 'REBOOT', attempt);
    await flush();
    await d.finish('pc1');
  }
  assert.deepEqual(d.started.map((a) => [a.command, a.requested, a.attempt]), [
    ['REBOOT', 'REBOOT', 1], ['POWERCYCLE', 'REBOOT', 2], ['POWERCYCLE', 'REBOOT', 3],
  ]);
});

test('routeFor: template, agent or simulator by config; unconfigured sim nodes use the in-process fleet; timeouts scale with a 50 ms floor', () => {
  const agents = new FakeDriver('agent');
  const simulator = new FakeDriver('simulator');
  const command = new FakeDriver('command');
  const make = { command: () => command, agents, simulator };
  const drivers = parseConfig({ drivers: {
    pc: { kind: 'command', commands: { REBOOT: ['/bin/true', '{node}'] }, concurrency: 2, timeout: 30 },
    '*': { kind: 'agent' },
  } }).drivers;
  const pc = routeFor('pc', drivers, make, 0.01);
  assert.equal(pc.driver, command);
  assert.deepEqual([pc.key, pc.concurrency, pc.timeoutMs], ['command:pc', 2, 300]);
  const other = routeFor('d430', drivers, make, 1);
  assert.equal(other.driver, agents);
  assert.deepEqual([other.key, other.concurrency, other.timeoutMs], ['agent:*', 16, 60 * S], 'the * fallback, concurrency 16, 60 s');
  assert.equal(routeFor('sim', {}, make, 1).driver, simulator, 'serve --simulate drives its own nodes');
  assert.equal(routeFor('sim', {}, { ...make, simulator: null }, 1).driver, agents, 'else `stated simulate` is an agent');
  assert.equal(routeFor('pc', {}, make, 0.0001).timeoutMs, 50);
});

test('config: a driver that cannot run is refused when the config loads, naming the key', () => {
  // Today `drivers` is only checked to be an object: each of these starts a
  // daemon that crashes (string template), never runs an action
  // (concurrency 0) or treats an unknown kind as an agent.
  const bad: [unknown, RegExp][] = [
    [{ pc: { kind: 'command', commands: { REBOOT: '/usr/bin/power {node}' } } }, /drivers\.pc\.commands\.REBOOT/],
    [{ pc: { kind: 'command', commands: { REBOOT: [] } } }, /drivers\.pc\.commands\.REBOOT/],
    [{ pc: { kind: 'command', commands: { REBOOT: ['/usr/bin/power', 7] } } }, /drivers\.pc\.commands\.REBOOT/],
    [{ pc: { kind: 'agent', concurrency: 0 } }, /drivers\.pc\.concurrency/],
    [{ pc: { kind: 'agent', concurrency: 1.5 } }, /drivers\.pc\.concurrency/],
    [{ pc: { kind: 'agent', timeout: -1 } }, /drivers\.pc\.timeout/],
    [{ pc: { kind: 'ipmi' } }, /drivers\.pc\.kind/],
    [{ pc: { kind: 'agent', comands: {} } }, /drivers\.pc\.comands/],
    [{ pc: 'agent' }, /drivers\.pc/],
  ];
  for (const [drivers, key] of bad) {
    assert.throws(() => parseConfig({ drivers }), (err: unknown) => {
      assert.ok(err instanceof StatedError, `${JSON.stringify(drivers)}: ${String(err)}`);
      assert.equal(err.code, 'E_BAD_REQUEST');
      assert.match(err.message, key);
      return true;
    }, `${JSON.stringify(drivers)} must be refused`);
  }
});

// --- CommandDriver ----------------------------------------------------------

/** Whether a process still runs (a zombie waiting for init to reap it does not). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return !/^\d+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true; // no /proc: signal 0 is all we know
  }
}

function commandDriver(templates: Record<string, string[]>): { d: CommandDriver; logs: string[] } {
  const logs: string[] = [];
  return { d: new CommandDriver(templates, (l) => logs.push(l)), logs };
}

test('CommandDriver: {node} is substituted in every argument and argv reaches the program verbatim, with no shell', async () => {
  const dir = tempDir();
  const { d, logs } = commandDriver({ REBOOT: ['/usr/bin/printf', '<%s>', '{node}', '--host={node}.mgmt', `$(touch ${dir}/pwned)`, 'a b;c|d', '{node}{node}'] });
  const r = await d.run(action('pc-1.r_2'), 5 * S);
  assert.deepEqual(r, { ok: true });
  assert.equal(logs.length, 1);
  assert.ok(logs[0]!.endsWith(`: <pc-1.r_2><--host=pc-1.r_2.mgmt><$(touch ${dir}/pwned)><a b;c|d><pc-1.r_2pc-1.r_2>`), logs[0]);
  assert.equal(fs.existsSync(path.join(dir, 'pwned')), false, 'nothing was evaluated by a shell');
});

test('CommandDriver: a non-zero exit, a missing program and a missing template are failures, never throws', async () => {
  const { d, logs } = commandDriver({ REBOOT: ['/bin/sh', '-c', 'echo "controller busy" >&2; exit 3'], POWEROFF: ['/nonexistent/power', '{node}'] });
  assert.deepEqual(await d.run(action('pc1'), 5 * S), { ok: false, message: 'exit 3: controller busy' });
  assert.match(logs[0]!, /REBOOT pc1 \(attempt 1\): .* -> 3: controller busy$/);
  const missing = await d.run(action('pc1', { command: 'POWEROFF' }), 5 * S);
  assert.equal(missing.ok, false);
  assert.match(missing.message!, /^\/nonexistent\/power: .*ENOENT/);
  assert.deepEqual(await d.run(action('pc1', { command: 'POWERCYCLE' }), 5 * S), { ok: false, message: 'no command template for POWERCYCLE' });
});

test('CommandDriver: a hung command is killed at its time limit and reported as a failure', async () => {
  const { d } = commandDriver({ REBOOT: ['/bin/sleep', '30'] });
  const t0 = Date.now();
  const r = await d.run(action('pc1'), 200);
  const took = Date.now() - t0;
  assert.deepEqual(r, { ok: false, message: 'killed after 200 ms (hung)' });
  assert.ok(took >= 190 && took < 1500, `took ${took} ms`);
});

test('CommandDriver: a hung helper of the command (holding its pipes) neither outlives the limit nor holds the result', async (t) => {
  // A wrapper script whose ipmitool hangs: SIGKILL to the script alone
  // orphans the helper, which keeps stdout open, and 'close' waits for it.
  const pidFile = path.join(tempDir(), 'helper.pid');
  let helper = 0;
  t.after(() => { try { process.kill(helper, 'SIGKILL'); } catch { /* gone, as it should be */ } });
  const { d } = commandDriver({ REBOOT: [path.join(FIXTURES, 'hung-power.sh'), '{node}', pidFile] });
  const t0 = Date.now();
  const r = await Promise.race([d.run(action('pc1'), 300), sleep(3 * S).then(() => null)]);
  const took = Date.now() - t0;
  helper = Number(fs.readFileSync(pidFile, 'utf8'));
  assert.ok(r, `no result ${took} ms after a 300 ms limit: the helper still holds the pipes`);
  assert.equal(r.ok, false);
  assert.match(r.message!, /killed after 300 ms/);
  assert.ok(took < 1500, `took ${took} ms`);
  await until(() => !alive(helper), 'the hung helper to be killed with its script', 1000);
});

// --- Agents -----------------------------------------------------------------

class FakePeer implements Peer {
  readonly sent: { action: string; node: string; command: string; attempt: number }[] = [];
  send(text: string): void { this.sent.push(JSON.parse(text)); }
  buffered(): number { return 0; }
  close(): void {}
}

test('Agents: actions go round robin to the agents of the type; only the holder can answer; a drop fails what it held', async () => {
  const agents = new Agents();
  const p1 = new FakePeer();
  const p2 = new FakePeer();
  agents.register(p1, ['pc']);
  agents.register(p2, ['pc', 'sim']);
  assert.equal(agents.has('pc'), true);
  assert.equal(agents.has('d430'), false);
  const r1 = agents.run(action('pc1'), 5 * S);
  const r2 = agents.run(action('pc2'), 5 * S);
  assert.deepEqual([p1.sent.map((m) => m.node), p2.sent.map((m) => m.node)], [['pc1'], ['pc2']]);
  assert.deepEqual(Object.keys(p1.sent[0]!).sort(), ['action', 'attempt', 'command', 'mode', 'nextMode', 'node', 'type']);

  agents.result(p2, p1.sent[0]!.action, true); // not p2's to answer
  agents.result(p1, p1.sent[0]!.action, false, 'breaker open');
  assert.deepEqual(await r1, { ok: false, message: 'breaker open' });
  agents.drop(p2);
  assert.deepEqual(await r2, { ok: false, message: 'power agent disconnected' });
  assert.equal(agents.has('sim'), false, 'a dropped agent drives nothing');
  assert.equal(agents.has('pc'), true);
});

test('Agents: with no agent of the type connected, an action waits for one within its limit (a restart: the daemon is up before its agents)', async () => {
  const agents = new Agents();
  const early = agents.run(action('pc1'), 2 * S);
  await sleep(50);
  const p = new FakePeer();
  agents.register(p, ['pc']);
  assert.deepEqual(p.sent.map((m) => m.node), ['pc1'], 'sent as soon as an agent registered');
  agents.result(p, p.sent[0]!.action, true);
  assert.deepEqual(await early, { ok: true });
  const never = await agents.run(action('pc2', { type: 'd430' }), 60);
  assert.equal(never.ok, false);
  assert.match(never.message!, /no power agent connected for pc2 \(type d430\)/);
});

test('Agents: an agent that does not answer within the limit is a failure naming the limit', async () => {
  const agents = new Agents();
  const p = new FakePeer();
  agents.register(p, ['pc']);
  const r = await agents.run(action('pc1'), 60);
  assert.deepEqual(r, { ok: false, message: 'power agent did not answer in 60 ms' });
  agents.result(p, p.sent[0]!.action, true); // a late answer is ignored, not a throw
});

// SPEC §3 registerAgent (issue 9): a power agent drives the outlets wired to it.
test('Agents: an action goes to the agent that named its node; only unnamed nodes go by type; a named node never goes to another', async () => {
  const agents = new Agents();
  const a = new FakePeer();
  const b = new FakePeer();
  agents.register(a, ['pc'], ['x1', 'x2']);
  agents.register(b, ['pc'], ['y1']);
  const runs = ['x1', 'y1', 'x2', 'y1', 'x1'].map((n) => agents.run(action(n), 5 * S));
  assert.deepEqual([a.sent.map((m) => m.node), b.sent.map((m) => m.node)], [['x1', 'x2', 'x1'], ['y1', 'y1']]);
  agents.run(action('z1'), 5 * S);
  assert.equal(a.sent.filter((m) => m.node === 'z1').length + b.sent.filter((m) => m.node === 'z1').length, 1, 'unnamed: one agent of the type');
  // Its own agent gone, a named node waits for it rather than go to b.
  agents.drop(a);
  const waiting = agents.run(action('x1'), 5 * S);
  assert.equal(b.sent.some((m) => m.node === 'x1'), false);
  assert.equal(agents.waitingNodes.has('x1'), true, 'status shows it waiting for its driver');
  const a2 = new FakePeer();
  agents.register(a2, [], ['x1']);
  assert.deepEqual(a2.sent.map((m) => m.node), ['x1']);
  assert.equal(agents.waitingNodes.has('x1'), false);
  agents.result(a2, a2.sent[0]!.action, true);
  assert.deepEqual(await waiting, { ok: true });
  agents.drop(b);
  agents.drop(a2);
  await Promise.all(runs);
});

test('Agents: after the start-up grace period a node with no agent fails at once and is reported missing', async () => {
  let now = T0;
  const agents = new Agents(() => now);
  agents.startGrace(1000);
  assert.equal(agents.missing('n1', 'nodrv'), null, 'within the grace period its agent may still reconnect');
  now += 1001;
  assert.match(agents.missing('n1', 'nodrv') ?? '', /no command driver for type nodrv and no power agent for n1/);
  const r = await agents.run(action('n1', { type: 'nodrv' }), 60 * S);
  assert.equal(r.ok, false);
  agents.register(new FakePeer(), ['nodrv']);
  assert.equal(agents.missing('n1', 'nodrv'), null);
});

// --- Fleet (stated simulate) --------------------------------------------------

const names = (n: number): string[] => Array.from({ length: n }, (_, i) => `sim${i + 1}`);

test('Fleet: wedge and fail picks are stable per node name, independent of each other, and follow the rate', () => {
  const opts = { ...FLEET_DEFAULTS, wedgeRate: 0.3, failRate: 0.3 };
  const noop = async (): Promise<void> => {};
  const a = new Fleet(noop, opts);
  const b = new Fleet(noop, opts);
  const ids = names(1000);
  const wedged = ids.filter((n) => a.wedges(n));
  const failing = ids.filter((n) => a.failsPower(n));
  assert.deepEqual(ids.filter((n) => b.wedges(n)), wedged, 'another process picks the same nodes');
  assert.deepEqual(ids.filter((n) => a.wedges(n)), wedged, 'and so does a second look');
  assert.deepEqual(ids.filter((n) => b.failsPower(n)), failing);
  assert.ok(wedged.length > 230 && wedged.length < 370, `${wedged.length} of 1000 wedge at rate 0.3`);
  assert.ok(failing.length > 230 && failing.length < 370, `${failing.length} of 1000 fail at rate 0.3`);
  assert.notDeepEqual(wedged, failing, 'the two picks are salted apart');
  const all = new Fleet(noop, { ...FLEET_DEFAULTS, wedgeRate: 1, failRate: 1 });
  const none = new Fleet(noop, FLEET_DEFAULTS);
  assert.ok(ids.every((n) => all.wedges(n) && all.failsPower(n)), 'rate 1: every node');
  assert.ok(ids.every((n) => !none.wedges(n) && !none.failsPower(n)), 'rate 0: none');
});

/** A fleet on a fast clock that records what each node reports. */
function fleet(opts: Partial<typeof FLEET_DEFAULTS> = {}): { f: Fleet; said: Map<string, string[]> } {
  const said = new Map<string, string[]>();
  const f = new Fleet(async (node, state) => { said.set(node, [...(said.get(node) ?? []), state]); }, { ...FLEET_DEFAULTS, stepMs: 4, ...opts });
  return { f, said };
}

test('Fleet: a REBOOT answers ok, then the node boots SHUTDOWN..ISUP; a POWERCYCLE leaves SHUTDOWN to stated', async () => {
  const { f, said } = fleet();
  assert.deepEqual(await f.run(action('sim1')), { ok: true });
  await until(() => said.get('sim1')?.at(-1) === 'ISUP', 'sim1 ISUP');
  assert.deepEqual(said.get('sim1'), ['SHUTDOWN', 'PXEBOOTING', 'BOOTING', 'TBSETUP', 'ISUP']);
  assert.deepEqual(await f.run(action('sim2', { command: 'POWERCYCLE' })), { ok: true });
  await until(() => said.get('sim2')?.at(-1) === 'ISUP', 'sim2 ISUP');
  assert.deepEqual(said.get('sim2'), ['PXEBOOTING', 'BOOTING', 'TBSETUP', 'ISUP']);
  f.stop();
});

// test/conformance.test.ts replays these sequences against the shipped tables.
test('Fleet: a node headed for RELOAD boots the reload sequence, reboots into its image, then boots normally', async () => {
  const { f, said } = fleet();
  await f.run(action('sim1', { nextMode: 'RELOAD' }));
  await until(() => said.get('sim1')?.at(-1) === 'ISUP', 'sim1 ISUP');
  assert.deepEqual(said.get('sim1'), ['SHUTDOWN', 'PXEBOOTING', 'BOOTING', 'RELOADSETUP', 'RELOADING', 'RELOADDONE', 'SHUTDOWN', 'PXEBOOTING', 'BOOTING', 'TBSETUP', 'ISUP']);
  f.stop();
});

test('Fleet: a wedged node hangs in BOOTING on every boot; a failing one answers not ok and says nothing', async () => {
  const { f, said } = fleet({ wedgeRate: 1 });
  for (let i = 0; i < 2; i++) {
    assert.deepEqual(await f.run(action('sim1')), { ok: true });
    await until(() => said.get('sim1')?.at(-1) === 'BOOTING', 'sim1 BOOTING');
    await sleep(40); // ten steps: nothing more comes
    assert.deepEqual(said.get('sim1'), ['SHUTDOWN', 'PXEBOOTING', 'BOOTING']);
    said.clear();
  }
  const failing = fleet({ failRate: 1 });
  assert.deepEqual(await failing.f.run(action('sim1')), { ok: false, message: 'simulated power controller failure' });
  await sleep(40);
  assert.equal(failing.said.size, 0);
  f.stop();
});

test('Fleet: a new action supersedes the boot in progress; stop() silences the fleet', async () => {
  const { f, said } = fleet({ stepMs: 20 });
  await f.run(action('sim1'));
  await until(() => said.get('sim1')?.length === 2, 'two states');
  await f.run(action('sim1', { command: 'POWERCYCLE' }));
  await until(() => said.get('sim1')?.at(-1) === 'ISUP', 'sim1 ISUP');
  assert.deepEqual(said.get('sim1'), ['SHUTDOWN', 'PXEBOOTING', 'PXEBOOTING', 'BOOTING', 'TBSETUP', 'ISUP'], 'the first boot stopped where it was');
  await f.run(action('sim2'));
  f.stop();
  await sleep(120);
  assert.deepEqual(said.get('sim2') ?? [], [], 'nothing after stop()');
});
