// `stated waitForState` (SPEC §1): run as an operator runs it, in the
// background against a live dist/stated while events arrive from `stated
// send` and HTTP. Exit 0 every node done, 1 some failed (TBFAILED), 2 some
// timed out, 64 usage; --json prints finished/failed/timedOut.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type CliResult, type Daemon, http, startDaemon } from './helpers/daemon.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function daemonWithNodes(t: { after: (fn: () => unknown) => void }, nodes: string[], args?: string[]): Promise<Daemon> {
  const d = await startDaemon(args ? { args } : {});
  t.after(() => d.stop());
  const r = await d.runCli(['node', 'add', ...nodes]);
  assert.equal(r.code, 0, r.stderr);
  return d;
}

async function metric(d: Daemon, name: string): Promise<number> {
  const r = await http(d, 'GET', '/metrics');
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(r.text);
  assert.ok(m, `no ${name} in /metrics:\n${r.text}`);
  return Number(m[1]);
}

/**
 * Starts `stated waitForState ARGS` in the background and resolves once its
 * wait is registered (events before that would not count, by design).
 */
async function waitInBackground(d: Daemon, args: string[], timeoutMs = 30_000): Promise<{ done: Promise<CliResult> }> {
  const before = await metric(d, 'stated_waits');
  const run = d.runCli(['waitForState', ...args], { timeoutMs });
  let exited: CliResult | null = null;
  void run.then((r) => { exited = r; }, () => {});
  const t0 = Date.now();
  while ((await metric(d, 'stated_waits')) === before) {
    if (exited) assert.fail(`waitForState exited before registering its wait: ${JSON.stringify(exited)}`);
    assert.ok(Date.now() - t0 < 10_000, 'waitForState registered no wait within 10 s');
    await sleep(25);
  }
  // Boxed: an async function returning the bare promise would wait for the CLI to exit.
  return { done: run };
}

async function cliSend(d: Daemon, ...args: string[]): Promise<void> {
  const r = await d.runCli(['send', ...args]);
  assert.equal(r.code, 0, `stated send ${args.join(' ')}: ${r.stderr}`);
  assert.match(r.stdout, /^seq \d+\n/);
}

async function httpSend(d: Daemon, objname: string, eventtype: string): Promise<void> {
  const r = await http(d, 'POST', '/v1/events', { objtype: 'TBNODESTATE', objname, eventtype });
  assert.equal(r.status, 200, r.text);
}

const tbfailed = (d: Daemon, node: string, message: string) =>
  cliSend(d, '--objtype', 'TBFAILED', '--objname', node, '--eventtype', 'REBOOT', '--message', message);

test('every node passes SHUTDOWN,ISUP: exit 0, the summary says finished, the wait is ended (SPEC §1)', async (t) => {
  const d = await daemonWithNodes(t, ['c1', 'c2']);
  const { done: run } = await waitInBackground(d, ['-s', 'SHUTDOWN,ISUP', '-t', '20', '-u', '1', 'c1', 'c2']);
  await cliSend(d, 'c1', 'SHUTDOWN');
  await httpSend(d, 'c2', 'SHUTDOWN');
  await cliSend(d, 'c1', 'ISUP');
  await httpSend(d, 'c2', 'ISUP');
  const r = await run;
  assert.equal(r.code, 0, `exit ${r.code}\n${r.stdout}${r.stderr}`);
  // stderr carries one line, the registration (SPEC §1), and nothing else.
  assert.match(r.stderr, /^registered wait w[0-9a-f]+ at seq \d+\n$/);
  assert.match(r.stdout, /^finished 2\/2: c1 c2$/m);
  assert.doesNotMatch(r.stdout, /^(failed|timed out)/m);
  assert.equal(await metric(d, 'stated_waits'), 0, 'the CLI ends its wait');
});

test('one node TBFAILED: exit 1, the summary names the node and the reason (SPEC §1)', async (t) => {
  const d = await daemonWithNodes(t, ['c1', 'c2']);
  const { done: run } = await waitInBackground(d, ['-s', 'SHUTDOWN,ISUP', '-t', '20', '-u', '1', 'c1', 'c2']);
  await cliSend(d, 'c1', 'SHUTDOWN');
  await cliSend(d, 'c1', 'ISUP');
  await cliSend(d, 'c2', 'SHUTDOWN');
  await tbfailed(d, 'c2', 'power controller unreachable');
  const r = await run;
  assert.equal(r.code, 1, `exit ${r.code}\n${r.stdout}${r.stderr}`);
  assert.match(r.stdout, /^finished 1\/2: c1$/m);
  assert.match(r.stdout, /^failed 1:\n {2}c2: TBFAILED: power controller unreachable$/m);
  assert.doesNotMatch(r.stdout, /^timed out/m);
});

test('one node never answers: with -t 2 exit 2 after ~2 s, listed as timed out (SPEC §1)', async (t) => {
  const d = await daemonWithNodes(t, ['c1', 'c3']);
  const t0 = Date.now();
  const { done: run } = await waitInBackground(d, ['-s', 'SHUTDOWN,ISUP', '-t', '2', '-u', '1', 'c1', 'c3']);
  await cliSend(d, 'c1', 'SHUTDOWN');
  await cliSend(d, 'c1', 'ISUP');
  await cliSend(d, 'c3', 'ISUP'); // ISUP without a SHUTDOWN after the wait began: not done
  const r = await run;
  const took = Date.now() - t0;
  assert.equal(r.code, 2, `exit ${r.code}\n${r.stdout}${r.stderr}`);
  assert.ok(took >= 2000 && took < 8000, `took ${took} ms for -t 2`);
  assert.match(r.stdout, /^finished 1\/2: c1$/m);
  assert.match(r.stdout, /^timed out 1 after 2s: c3$/m);
  assert.match(r.stdout, /^waiting for SHUTDOWN,ISUP: 1\/2 done, 0 failed, 1 pending \(c3\), \d+(\.\d)?s left$/m, 'a status line every -u seconds');
  assert.equal(await metric(d, 'stated_waits'), 0, 'a timed-out CLI ends its wait too');
});

test('usage errors exit 64 with one `stated: E_USAGE:` line and register nothing (SPEC §1)', async (t) => {
  const d = await daemonWithNodes(t, ['c1']);
  // A missing NODE is a command line of the wrong shape: the line, then the usage.
  const none = await d.runCli(['waitForState']);
  assert.equal(none.code, 64);
  assert.match(none.stderr, /^stated: E_USAGE: expected at least one NODE\n\n.*\n\nUSAGE stated waitForState /);
  for (const args of [
    ['-t', '0', 'c1'],
    ['-t', 'soon', 'c1'],
    ['-u', '-3', 'c1'],
    ['-s', ',', 'c1'],
    ['bad name!'],
  ]) {
    const r = await d.runCli(['waitForState', ...args]);
    assert.equal(r.code, 64, `waitForState ${args.join(' ')}: exit ${r.code}\n${r.stdout}${r.stderr}`);
    assert.match(r.stderr, /^stated: E_USAGE: \S.*\n$/, `waitForState ${args.join(' ')}: ${r.stderr}`);
    assert.equal(r.stdout, '');
    assert.equal(await metric(d, 'stated_waits'), 0, `waitForState ${args.join(' ')} left a wait registered in the daemon`);
  }
  // Not a usage error: an unknown node is the daemon's refusal, one line, not 0/1/2/64.
  const r = await d.runCli(['waitForState', '-t', '2', 'nosuch']);
  assert.match(r.stderr, /^stated: E_UNKNOWN_NODE: .*\n$/);
  assert.ok(r.code !== 0 && r.code !== 1 && r.code !== 2 && r.code !== 64, `exit ${r.code}`);
});

test('--json: stdout is one JSON document with finished, failed (with reasons) and timedOut (SPEC §1)', async (t) => {
  const d = await daemonWithNodes(t, ['j1', 'j2', 'j3']);
  const { done: run } = await waitInBackground(d, ['--json', '-s', 'SHUTDOWN,ISUP', '-t', '3', '-u', '1', 'j1', 'j2', 'j3']);
  await cliSend(d, 'j1', 'SHUTDOWN');
  await cliSend(d, 'j1', 'ISUP');
  await tbfailed(d, 'j2', 'disk on fire');
  const r = await run;
  assert.equal(r.code, 1, `a failure outranks a timeout: exit ${r.code}\n${r.stdout}${r.stderr}`);
  const out = JSON.parse(r.stdout);
  assert.deepEqual(out, {
    states: ['SHUTDOWN', 'ISUP'],
    finished: ['j1'],
    failed: ['j2'],
    timedOut: ['j3'],
    failures: { j2: { code: 'TBFAILED', message: 'disk on fire' } },
    exit: 1,
  });
  assert.match(r.stderr, /^waiting for SHUTDOWN,ISUP: /m, 'with --json the status lines go to stderr');

  const { done: all } = await waitInBackground(d, ['--json', '-t', '10', '-u', '1', 'j1']);
  await httpSend(d, 'j1', 'ISUP');
  const ok = await all;
  assert.equal(ok.code, 0, ok.stderr);
  assert.deepEqual(JSON.parse(ok.stdout), { states: ['ISUP'], finished: ['j1'], failed: [], timedOut: [], failures: {}, exit: 0 });
});

test('the daemon is killed -9 and restarted on the same port mid-wait: the CLI rides it out and exits 0 (SPEC §1, §5)', async (t) => {
  const first = await startDaemon();
  const port = first.port;
  await first.stop();
  // A fixed port from the start, so restart() comes back where the CLI dials.
  const d = await daemonWithNodes(t, ['r1', 'r2'], ['--listen', `127.0.0.1:${port}`]);
  const { done: run } = await waitInBackground(d, ['--json', '-s', 'SHUTDOWN,ISUP', '-t', '30', '-u', '1', 'r1', 'r2']);
  await httpSend(d, 'r1', 'SHUTDOWN');
  await httpSend(d, 'r1', 'ISUP');
  await httpSend(d, 'r2', 'SHUTDOWN');
  await d.kill9();
  await sleep(1500); // past one -u period: the CLI's next waitForState falls in the outage
  const d2 = await d.restart();
  t.after(() => d2.stop());
  assert.equal(d2.port, port);
  await httpSend(d2, 'r2', 'ISUP');
  const r = await run;
  assert.equal(r.code, 0, `exit ${r.code}\n${r.stdout}${r.stderr}`);
  const out = JSON.parse(r.stdout);
  assert.deepEqual([out.finished, out.failed, out.timedOut], [['r1', 'r2'], [], []]);
  assert.equal(await metric(d2, 'stated_waits'), 0, 'the CLI ended its wait on the restarted daemon');
  // The CLI has exited; its sockets close as the daemon notices.
  const t0 = Date.now();
  while ((await metric(d2, 'stated_connections')) !== 0) {
    assert.ok(Date.now() - t0 < 3000, 'the exited CLI still holds a socket after 3 s');
    await sleep(50);
  }
});
