// Issue 12, "strict input, readable output": the command line and the logs as
// an operator reads them (SPEC §1 command-line conventions, serve, status, send).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { type Daemon, http, runCli, startDaemon, statedBin } from './helpers/daemon.ts';
import { freePort, until as poll } from './helpers/poll.ts';

async function ok(d: Daemon, args: string[]): Promise<string> {
  const r = await d.runCli(args);
  assert.equal(r.code, 0, `stated ${args.join(' ')}: exit ${r.code}\n${r.stderr}`);
  return r.stdout;
}
const metric = async (d: Daemon, name: string): Promise<number> =>
  Number(new RegExp(`^${name} (\\S+)$`, 'm').exec((await http(d, 'GET', '/metrics')).text)?.[1]);
/** Slow paths here (a give-up, a digest window, a reconnect): more time than poll.ts's default. */
const until = (cond: () => boolean | Promise<boolean>, what: string): Promise<void> => poll(cond, what, 20_000);

test('4. an unknown option or a missing value is a usage error: exit 64 with the usage, nothing sent', async (t) => {
  const d = await startDaemon();
  t.after(() => d.stop());
  await ok(d, ['node', 'add', 'pc1']);
  const seq0 = (await http(d, 'GET', '/healthz', undefined, null)).json.seq;
  for (const [args, why, usage] of [
    [['status', '--jsno'], /unknown option --jsno/, /USAGE stated status/],
    [['waitForState', '--timout', '2', 'pc1'], /unknown option --timout/, /USAGE stated waitForState/],
    [['node_reboot', '-w', '-n', 'pc1'], /-w .* -n .*not both/, null],
    [['node_reboot', '-x', 'pc1'], /unknown option -x/, /USAGE stated node_reboot/],
    [['send', 'pc1', 'ISUP', '--id'], /--id needs a value/, /USAGE stated send/],
    [['waitForState', 'pc1', '-t'], /-t needs a value/, /USAGE/],
    [['node', 'add', 'pc2', '--type'], /--type needs a value/, /USAGE stated node add /],
    [['node', 'trigger', 'add', 'pc1', 'ISUP', 'REBOOT', '--mdoe', 'NORMALv2'], /unknown option --mdoe/, /USAGE stated node trigger add /],
    [['node', 'add'], /NODES/, /USAGE stated node add /],
  ] as const) {
    const r = await d.runCli([...args]);
    assert.equal(r.code, 64, `stated ${args.join(' ')}: exit ${r.code}\n${r.stdout}${r.stderr}`);
    assert.match(r.stderr, /^stated: E_USAGE: /);
    assert.match(r.stderr, why);
    if (usage) assert.match(r.stderr, usage, `the usage follows: ${r.stderr}`);
    assert.equal(r.stdout, '');
  }
  assert.equal((await http(d, 'GET', '/healthz', undefined, null)).json.seq, seq0, 'nothing was sent');
  assert.equal(await metric(d, 'stated_waits'), 0, 'no wait registered');
  // What is right still runs: --flag=value beside --flag value.
  await ok(d, ['node', 'add', 'pc2', '--type=pc', '--project', 'p1']);
  await ok(d, ['send', '--objtype=TBNODESTATE', '--objname', 'pc2', '--eventtype', 'ISUP']);
});

test('6. help and tables are readable: no colour off a terminal, NODE shown, clock times, gave-up marked, partial output, filters', async (t) => {
  // NO_COLOR empty, CI and TEST empty (citty drops its colours for either): only the pipe keeps colour out.
  for (const args of [['--help'], ['node_reboot', '--help'], ['status', '--help']]) {
    const r = await runCli(args, { env: { NO_COLOR: '', CI: '', TEST: '', TERM: 'xterm-256color' } });
    assert.equal(r.code, 0);
    assert.doesNotMatch(r.stdout, /\x1b\[/, `stated ${args.join(' ')} on a pipe has no colour codes`);
  }
  const help = (await runCli(['node_reboot', '--help'])).stdout;
  assert.match(help, /USAGE stated node_reboot .*NODES/);
  assert.match(help, /NODES\s+NODE\.\.\./);

  const dir = (await import('./helpers/daemon.ts')).tempDir();
  const cfg = path.join(dir, 'config.json');
  // A power controller that always fails: stated gives up on pc1 after 3 attempts.
  fs.writeFileSync(cfg, JSON.stringify({ retryDelay: 1, drivers: { pc: { kind: 'command', timeout: 5, commands: { REBOOT: ['/bin/false'] } } } }));
  const d = await startDaemon({ dir, args: ['--config', cfg, '--time-scale', '0.01'] });
  t.after(() => d.stop());
  await ok(d, ['node', 'add', 'pc1', 'pc2', '--project', 'p1']);
  await ok(d, ['node', 'add', 'pc3', '--type', 'sim', '--project', 'p2']);
  await ok(d, ['node', 'add', 'pc4', '--project', 'p1']);
  await ok(d, ['send', 'pc1', 'ISUP']);
  await ok(d, ['send', 'pc3', 'BOOTING']);
  await ok(d, ['send', 'pc4', 'ISUP']);
  await ok(d, ['send', '--objtype', 'TBCOMMAND', '--objname', 'pc1', '--eventtype', 'REBOOT']);
  await until(async () => JSON.parse(await ok(d, ['status', 'pc1', '--json']))[0].reboot.gaveUp, 'stated to give up on pc1');

  const table = await ok(d, ['status']);
  const row = (n: string): string => table.split('\n').find((l) => l.startsWith(`${n} `)) ?? '';
  assert.match(row('pc1'), /^pc1\s+NORMALv2\s+ISUP \(gave up\)\s+\d\d:\d\d:\d\d\s/, table);
  assert.match(row('pc2'), /^pc2\s+NORMALv2\s+-\s+-\s+-\s/, `a node with no state has no SINCE: ${table}`);
  assert.doesNotMatch(table, /ago/);
  assert.match(row('pc3'), /BOOTING\s+\d\d:\d\d:\d\d\s+REBOOT (in \d+(\.\d)?s|\d+(\.\d)?s overdue)/);

  const partial = await d.runCli(['status', 'pc1', 'nosuch']);
  assert.equal(partial.code, 1, partial.stderr);
  assert.match(partial.stdout, /^NODE .*\npc1 /);
  assert.equal(partial.stderr, 'stated: E_UNKNOWN_NODE: unknown node nosuch\n');

  const names = async (args: string[]): Promise<string[]> => JSON.parse(await ok(d, ['status', '--json', ...args])).map((n: any) => n.node);
  assert.deepEqual(await names(['--state', 'ISUP']), ['pc1', 'pc4']);
  assert.deepEqual(await names(['--project', 'p1', '--state', 'ISUP']), ['pc1', 'pc4']);
  assert.deepEqual(await names(['--type', 'sim']), ['pc3']);
  assert.deepEqual(await names(['--mode', 'NORMALv2', '--project', 'p2']), ['pc3']);
  assert.deepEqual(await names(['--failed']), ['pc1']);

  // node clear ends the gave-up condition without a reboot, and is audited.
  const seq0 = (await http(d, 'GET', '/healthz', undefined, null)).json.seq;
  assert.match(await ok(d, ['node', 'clear', 'pc1']), /^pc1: cleared/);
  assert.deepEqual(await names(['--failed']), []);
  assert.doesNotMatch(await ok(d, ['status', 'pc1']), /gave up/);
  const audit = await ok(d, ['audit', '--json']);
  assert.ok(JSON.parse(audit).some((a: any) => a.action === 'node.clear' && a.detail.node === 'pc1'), audit);
  const hist = (await http(d, 'GET', '/v1/nodes/pc1/history?limit=5')).json;
  const after = (hist.events ?? hist).filter((e: any) => e.seq > seq0).map((e: any) => `${e.event.objtype} ${e.event.eventtype}`);
  assert.deepEqual(after, ['NOTIFY CLEARED'], 'no reboot was started');
});

/**
 * Runs dist/stated with its stdout on a pseudo-terminal, through util-linux
 * script(1) (no PTY module is a dependency). A missing script(1) fails the
 * test: skipping would leave the TTY half of the colour rule untested.
 */
function runOnTty(args: string[], env: Record<string, string | undefined>): Promise<{ code: number | null; out: string }> {
  const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
  const { NO_COLOR: _n, CI: _c, TEST: _t, ...base } = process.env;
  return new Promise((resolve, reject) => {
    const proc = spawn('script', ['-qec', [statedBin, ...args].map(q).join(' '), '/dev/null'], { env: { ...base, TERM: 'xterm-256color', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    proc.stdout.setEncoding('utf8').on('data', (s: string) => { out += s; });
    proc.stderr.setEncoding('utf8').on('data', (s: string) => { out += s; });
    const timer = setTimeout(() => { proc.kill('SIGKILL'); reject(new Error(`script ${args.join(' ')}: no exit within 30 s\n${out}`)); }, 30_000);
    proc.on('error', (e) => { clearTimeout(timer); reject(new Error(`this test needs util-linux script(1) to give stated a terminal: ${e.message}`)); });
    proc.on('close', (code) => { clearTimeout(timer); resolve({ code, out }); });
  });
}

test('6b. on a terminal help is coloured, and NO_COLOR (any non-empty value) takes the colour out', async () => {
  for (const args of [['--help'], ['node_reboot', '--help']]) {
    const tty = await runOnTty(args, {});
    assert.equal(tty.code, 0, tty.out);
    // The PTY turns \n into \r\n: proof stdout was a terminal, so the NO_COLOR runs below are not passing on a pipe.
    assert.match(tty.out, /USAGE.*\r\n/, `stated ${args.join(' ')} ran on a terminal: ${JSON.stringify(tty.out)}`);
    assert.match(tty.out, /\x1b\[[0-9;]*m/, `stated ${args.join(' ')} on a terminal is coloured`);
    // "1" is also citty's own switch; "yes" is only stated's (no-color.org: any non-empty value).
    for (const NO_COLOR of ['1', 'yes']) {
      const r = await runOnTty(args, { NO_COLOR });
      assert.equal(r.code, 0, r.out);
      assert.match(r.out, /USAGE.*\r\n/, `ran on a terminal: ${JSON.stringify(r.out)}`);
      assert.doesNotMatch(r.out, /\x1b\[/, `NO_COLOR=${NO_COLOR} stated ${args.join(' ')} on a terminal has no colour codes: ${JSON.stringify(r.out)}`);
      assert.equal(r.out.replace(/\r\n/g, '\n'), tty.out.replace(/\r\n/g, '\n').replace(/\x1b\[[0-9;]*m/g, ''), 'the same help, uncoloured');
    }
  }
});

const LINE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (DEBUG|INFO |WARN |ERROR) \S/;

test('7. log lines carry an ISO-8601 time and a level (or are JSON); start and stop are logged; NOTIFY names the node once; simulate says when it loses the daemon', async (t) => {
  const port = await freePort();
  let d = await startDaemon({ args: ['--listen', `127.0.0.1:${port}`, '--time-scale', '0.01'] });
  t.after(() => d.stop());
  await ok(d, ['node', 'add', 'pc1']);
  await ok(d, ['send', 'pc1', 'SHUTDOWN']);
  await ok(d, ['send', 'pc1', 'ISUP']); // SHUTDOWN -> ISUP is not in NORMALv2's table: a NOTIFY
  await until(() => d.stdout().includes('NOTIFY INVALID_TRANSITION'), 'the NOTIFY digest');
  const notify = d.stdout().split('\n').find((l) => l.includes('NOTIFY INVALID_TRANSITION'))!;
  assert.match(notify, /WARN  NOTIFY INVALID_TRANSITION pc1: /);
  assert.equal(notify.split('pc1').length - 1, 1, `the node is named once: ${notify}`);

  // A fleet in its own process, then the daemon goes away and comes back on the same port.
  const sim = spawn(statedBin, ['simulate', '--nodes', '2'], { env: { ...process.env, NO_COLOR: '1', STATED_URL: d.wsUrl, STATED_TOKEN: d.token }, stdio: ['ignore', 'pipe', 'pipe'] });
  let simOut = '';
  sim.stdout.setEncoding('utf8').on('data', (s: string) => { simOut += s; });
  sim.stderr.setEncoding('utf8').on('data', (s: string) => { simOut += s; });
  t.after(() => sim.kill('SIGKILL'));
  await until(() => /simulating 2 nodes/.test(simOut), 'simulate to start');
  assert.equal(await d.stop(), 0);
  const text = d.stdout().trimEnd().split('\n');
  for (const l of text) assert.match(l, LINE, `every log line is "ISO-8601 LEVEL message": ${l}`);
  assert.match(text[0]!, /INFO  stated \d+\.\d+\.\d+ starting: database \S*stated\.db, listen 127\.0\.0\.1:\d+, drivers: /);
  assert.match(text.at(-1)!, /INFO  stopped at seq \d+$/);
  await until(() => /lost the daemon/.test(simOut), 'simulate to say it lost the daemon');

  d = await startDaemon({ dir: d.dir, args: ['--listen', `127.0.0.1:${port}`, '--log-format', 'json'] });
  await until(() => /reconnected to the daemon/.test(simOut), 'simulate to say it reconnected');
  for (const l of simOut.trimEnd().split('\n')) assert.match(l, LINE, `simulate logs as the daemon does: ${l}`);
  await d.stop();
  const json = d.stdout().trimEnd().split('\n').map((l) => JSON.parse(l));
  for (const o of json) assert.deepEqual(Object.keys(o), ['time', 'level', 'msg']);
  assert.match(json[0].msg, /^stated \S+ starting: /);
  assert.ok(json.some((o) => /^listening on http:/.test(o.msg)));
  assert.equal(json.at(-1).msg.startsWith('stopped'), true);
});

test('8. send says when the transition was not in the tables (valid: false), and it is applied all the same', async (t) => {
  const d = await startDaemon();
  t.after(() => d.stop());
  await ok(d, ['node', 'add', 'pc1']);
  await ok(d, ['send', 'pc1', 'ISUP']);
  assert.doesNotMatch(await ok(d, ['send', 'pc1', 'SHUTDOWN']), /valid/, 'a valid transition says nothing more');
  const typo = await ok(d, ['send', 'pc1', 'ISUPP']);
  assert.match(typo, /^seq \d+\nvalid: false \(.*ISUPP.*\)\n$/);
  assert.equal(JSON.parse(await ok(d, ['status', 'pc1', '--json']))[0].state, 'ISUPP', 'applied, as Emulab does');
});
