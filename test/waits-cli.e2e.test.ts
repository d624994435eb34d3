// Waits a script can trust (SPEC §1 waitForState and waits, §3 GET /v1/waits;
// issue 11): waitForState says on stderr when its wait exists, Ctrl-C prints
// the summary so far and ends the wait on the daemon; `stated waits list`
// shows open waits (a user only those on its project's nodes) and `stated
// waits cancel` ends one.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type Daemon, connectWs, http, startDaemon } from './helpers/daemon.ts';
import { type Background, background, openWaits, until } from './helpers/fleet.ts';

const REGISTERED = /^registered wait (w[0-9a-f]+) at seq (\d+)$/m;

/** Starts waitForState and resolves with its wait id and seq once it says the wait is registered. */
async function registered(d: Daemon, args: string[], env: Record<string, string> = {}): Promise<Background & { wait: string; seq: number }> {
  const run = background(d, ['waitForState', ...args], env);
  await until(() => REGISTERED.test(run.stderr()) || run.proc.exitCode !== null, 'the "registered wait" line on stderr');
  const m = REGISTERED.exec(run.stderr());
  assert.ok(m, `waitForState ended without saying its wait was registered: ${run.stdout()}${run.stderr()}`);
  return Object.assign(run, { wait: m[1]!, seq: Number(m[2]) });
}

async function send(d: Daemon, node: string, state: string): Promise<void> {
  const r = await http(d, 'POST', '/v1/events', { objtype: 'TBNODESTATE', objname: node, eventtype: state });
  assert.equal(r.status, 200, r.text);
}

test('Ctrl-C of waitForState: the summary so far, exit 130, its wait ended and the other waits as they were (SPEC §1 waitForState)', async (t) => {
  const d = await startDaemon();
  t.after(() => d.stop());
  assert.equal((await d.runCli(['node', 'add', 'c1', 'c2', 'c3'])).code, 0);
  // Someone else's wait, which must survive.
  const ws = await connectWs(d);
  t.after(() => ws.close());
  const other = await ws.request('initStateWait', { states: ['ISUP'], nodes: ['c3'] });
  assert.equal(other.ok, true);
  const before = (await openWaits(d)).map((w) => w.wait);
  assert.deepEqual(before, [other.wait]);

  const run = await registered(d, ['-t', '120', '-u', '1', 'c1', 'c2']);
  // The line comes once the wait exists: an event sent now counts.
  assert.ok((await openWaits(d)).some((w) => w.wait === run.wait && w.seq === run.seq));
  await send(d, 'c1', 'ISUP');
  await until(async () => (await openWaits(d)).some((w) => w.wait === run.wait && w.done.includes('c1')), 'c1 done in the wait');
  run.proc.kill('SIGINT');
  const r = await run.done;
  assert.equal(r.code, 130, `${r.stdout}${r.stderr}`);
  assert.match(r.stdout, /^finished 1\/2: c1$/m);
  assert.match(r.stdout, /^interrupted, still waiting for 1: c2$/m);
  assert.deepEqual((await openWaits(d)).map((w) => w.wait), before, 'its wait is gone, the other stays');

  // SIGTERM, --json: the same, as JSON.
  const run2 = await registered(d, ['--json', '-t', '120', 'c1', 'c2']);
  run2.proc.kill('SIGTERM');
  const r2 = await run2.done;
  assert.equal(r2.code, 130, `${r2.stdout}${r2.stderr}`);
  const j = JSON.parse(r2.stdout);
  assert.deepEqual([j.finished, j.interrupted, j.timedOut, j.exit], [[], ['c1', 'c2'], [], 130]);
  assert.deepEqual((await openWaits(d)).map((w) => w.wait), before);
});

test('waits list shows open waits (a user token only its project\'s), waits cancel ends one and its waiter hears so (SPEC §1 waits, §3 GET /v1/waits)', async (t) => {
  const d = await startDaemon();
  t.after(() => d.stop());
  assert.equal((await d.runCli(['node', 'add', 'p1', '--project', 'alpha'])).code, 0);
  assert.equal((await d.runCli(['node', 'add', 'q1', '--project', 'beta'])).code, 0);
  const userTok = (await d.runCli(['token', 'create', '--role', 'user', '--project', 'alpha'])).stdout.trim();
  const mine = await registered(d, ['-t', '120', 'p1'], { STATED_TOKEN: userTok });
  const theirs = await registered(d, ['-s', 'SHUTDOWN,ISUP', '-t', '120', 'q1']);

  const all = await d.runCli(['waits', 'list', '--json']);
  assert.equal(all.code, 0, all.stderr);
  const waits = JSON.parse(all.stdout).waits;
  assert.deepEqual(waits.map((w: any) => w.wait), [mine.wait, theirs.wait], 'oldest first');
  const w = waits[1];
  assert.deepEqual([w.states, w.done, w.failed, w.remaining, w.seq], [['SHUTDOWN', 'ISUP'], [], [], ['q1'], theirs.seq]);
  assert.equal(typeof w.owner, 'string');
  assert.notEqual(waits[0].owner, w.owner, 'each wait names the token that registered it');
  assert.ok(Math.abs(w.created - Date.now()) < 60_000, `created ${w.created} is epoch ms`);
  // The same over HTTP, in the shape the dashboard reads.
  assert.deepEqual(await openWaits(d), waits);

  const table = await d.runCli(['waits', 'list']);
  assert.equal(table.code, 0, table.stderr);
  assert.match(table.stdout, /^WAIT\s+STATES\s+DONE\/FAILED\/LEFT\s+OWNER\s+AGE\s+WAITING FOR$/m);
  assert.match(table.stdout, new RegExp(`^${theirs.wait}\\s+SHUTDOWN,ISUP\\s+0/0/1\\s+\\S+\\s+\\d+(\\.\\d)?s\\s+q1$`, 'm'));
  assert.doesNotMatch(table.stdout, /\x1b\[/, 'no colour codes off a terminal');

  // A user sees only waits on its project's nodes, and may not end another's.
  const asUser = await d.runCli(['waits', 'list', '--json'], { env: { STATED_TOKEN: userTok } });
  assert.deepEqual(JSON.parse(asUser.stdout).waits.map((x: any) => x.wait), [mine.wait]);
  assert.deepEqual((await openWaits(d, userTok)).map((x) => x.wait), [mine.wait]);
  const denied = await d.runCli(['waits', 'cancel', theirs.wait], { env: { STATED_TOKEN: userTok } });
  assert.equal(denied.code, 70);
  assert.match(denied.stderr, /^stated: E_FORBIDDEN: /);

  // An operator ends it; its waiter is told, and the list no longer has it.
  const c = await d.runCli(['waits', 'cancel', theirs.wait]);
  assert.equal(c.code, 0, c.stderr);
  assert.equal(c.stdout, `cancelled ${theirs.wait}\n`);
  const ended = await theirs.done;
  assert.equal(ended.code, 70, `${ended.stdout}${ended.stderr}`);
  assert.match(ended.stderr, new RegExp(`E_UNKNOWN_WAIT: wait ${theirs.wait} ended`));
  assert.deepEqual((await openWaits(d)).map((x) => x.wait), [mine.wait]);

  const again = await d.runCli(['waits', 'cancel', theirs.wait]);
  assert.equal(again.code, 70);
  assert.match(again.stderr, /^stated: E_UNKNOWN_WAIT: /);
  const usage = await d.runCli(['waits', 'cancel']);
  assert.equal(usage.code, 64, usage.stderr);

  await send(d, 'p1', 'ISUP');
  assert.equal((await mine.done).code, 0);
  assert.deepEqual(await openWaits(d), []);
  const nodeTok = (await d.runCli(['token', 'create', '--role', 'node', '--node', 'p1'])).stdout.trim();
  assert.equal((await http(d, 'GET', '/v1/waits', undefined, nodeTok)).status, 403, 'a node token reads nothing');
});
