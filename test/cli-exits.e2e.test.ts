// One exit-code rule and one usage path for every command (SPEC §1 "exit
// codes", "Command-line conventions"; README "Exit codes"), end to end
// against dist/stated with Emulab's shipped rows at --time-scale 0.01:
//   a refused node (E_NO_DRIVER: a type with no agent, past agentGrace) is a
//   failed node: exit 1, listed failed with its code, also when another
//   node times out; os_load takes only a reload mode; an unknown name is a
//   usage error (64) whether the CLI or the daemon finds it; a missing or
//   extra argument prints the subcommand's usage.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { type Daemon, repoRoot, runCli, startDaemon } from './helpers/daemon.ts';
import { history, nodeView, openWaits, scriptedAgent, until } from './helpers/fleet.ts';

const SCALED = ['--time-scale', '0.01'];

/** A daemon with `n1`..`n3` (type img: its agent takes every action and the node never reports a state) and `bad1` (type nodrv: no agent at all). */
async function mixed(t: import('node:test').TestContext): Promise<Daemon> {
  const d = await startDaemon({ args: SCALED });
  t.after(() => d.stop());
  for (const [node, type] of [['n1', 'img'], ['n2', 'img'], ['n3', 'img'], ['bad1', 'nodrv']]) {
    const add = await d.runCli(['node', 'add', node!, '--type', type!, '--mode', 'NORMALv2', '--state', 'ISUP']);
    assert.equal(add.code, 0, add.stderr);
  }
  const agent = await scriptedAgent(d, ['img'], () => ({ ok: true, states: [] }));
  t.after(() => agent.close());
  // Past the grace in which an action waits for an agent to (re)connect: then no driver is refused at once.
  await until(async () => {
    const r = await d.runCli(['node_reboot', '-n', 'bad1']);
    return /E_NO_DRIVER/.test(r.stderr);
  }, 'bad1 refused with E_NO_DRIVER');
  return d;
}

test('node_reboot -n: a refused node is a failure, exit 1 (README Exit codes)', async (t) => {
  const d = await mixed(t);
  const r = await d.runCli(['node_reboot', '-n', 'bad1']);
  assert.match(r.stderr, /^refused bad1: E_NO_DRIVER/m);
  assert.equal(r.code, 1, `${r.stdout}${r.stderr}`);
  const ok = await d.runCli(['node_reboot', '-n', 'n1']);
  assert.equal(ok.code, 0, `an accepted reboot with -n is a success: ${ok.stderr}`);
});

test('node_reboot -w and os_load: a refused node and a timed-out one exit 1, the refused one in the failed part with its code', async (t) => {
  const d = await mixed(t);
  const nr = await d.runCli(['node_reboot', '-w', '-t', '2', '-u', '1', 'n1', 'bad1'], { timeoutMs: 60_000 });
  assert.equal(nr.code, 1, `failure dominates timeouts:\n${nr.stdout}${nr.stderr}`);
  assert.match(nr.stdout, /^failed 1:\n {2}bad1: refused E_NO_DRIVER/m);
  assert.match(nr.stdout, /^timed out 1 after 2s: n1$/m);
  // Each run on a node of its own: n1 is still in the reboot stated drives (and will give up on).
  const json = await d.runCli(['node_reboot', '-w', '-t', '2', '-u', '1', '--json', 'n2', 'bad1'], { timeoutMs: 60_000 });
  const out = JSON.parse(json.stdout);
  assert.deepEqual([json.code, out.exit, out.failed, out.failures.bad1.code, out.timedOut], [1, 1, ['bad1'], 'E_NO_DRIVER', ['n2']]);

  const ol = await d.runCli(['os_load', '-t', '2', '-u', '1', 'n3', 'bad1'], { timeoutMs: 60_000 });
  assert.equal(ol.code, 1, `failure dominates timeouts:\n${ol.stdout}${ol.stderr}`);
  assert.match(ol.stdout, /^failed 1:\n {2}bad1: refused E_NO_DRIVER/m);
  assert.match(ol.stdout, /^timed out 1 after 2s: n3$/m);
  assert.deepEqual(await openWaits(d), []);
});

test('os_load takes only a reload mode: NORMALv2 or a typo is a usage error before anything is sent (exit 64)', async (t) => {
  const d = await startDaemon({ args: [...SCALED, '--simulate', '1'] });
  t.after(() => d.stop());
  await until(async () => (await nodeView(d, 'sim1')).state === 'ISUP', 'sim1 up');
  const before = (await history(d, 'sim1')).length;
  for (const mode of ['NORMALv2', 'RELAOD', 'RELOAD-NOSUCH']) {
    const r = await d.runCli(['os_load', '-m', mode, '-t', '5', 'sim1'], { timeoutMs: 30_000 });
    assert.equal(r.code, 64, `-m ${mode}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, new RegExp(`^stated: E_(USAGE|UNKNOWN_NAME): .*${mode}`, 'm'));
  }
  assert.equal((await nodeView(d, 'sim1')).nextMode, null);
  assert.equal((await history(d, 'sim1')).length, before, 'no command was sent');
  assert.deepEqual(await openWaits(d), []);
});

test('a name that cannot be right exits 64 whichever side refuses it (E_UNKNOWN_NAME, SPEC §1)', async (t) => {
  const d = await startDaemon({ args: [...SCALED, '--simulate', '1'] });
  t.after(() => d.stop());
  const r = await d.runCli(['node', 'set-next-mode', 'sim1', 'RELAOD']);
  assert.match(r.stderr, /^stated: E_UNKNOWN_NAME: /m);
  assert.equal(r.code, 64);
  const w = await d.runCli(['waitForState', '-s', 'ISUPP', '-t', '5', 'sim1']);
  assert.match(w.stderr, /^stated: E_UNKNOWN_NAME: /m);
  assert.equal(w.code, 64);
});

test('a missing or extra argument is a usage error with the subcommand\'s usage (SPEC §1)', async () => {
  const cases: [string[], RegExp][] = [
    [['waitForState'], /USAGE stated waitForState/],
    [['send', 'sim1'], /USAGE stated send/],
    [['history', 'a', 'b'], /USAGE stated history/],
    [['history'], /USAGE stated history/],
    [['tbrestart', 'p1', 'p2'], /USAGE stated tbrestart/],
    [['waits', 'cancel'], /USAGE stated waits cancel/],
    [['waits', 'list', 'extra'], /USAGE stated waits list/],
    [['node', 'set-next-mode', 'a', 'b', 'c'], /USAGE stated node set-next-mode/],
    [['stats', 'extra'], /USAGE stated stats/],
  ];
  for (const [args, usage] of cases) {
    const r = await runCli(args, { env: { STATED_URL: 'ws://127.0.0.1:9', STATED_TOKEN: 'x' } });
    assert.equal(r.code, 64, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /^stated: E_USAGE: /, args.join(' '));
    assert.match(r.stderr, usage, `${args.join(' ')} prints its usage:\n${r.stderr}`);
  }
});

test('audit shows readable times in its table and epoch ms with --json (SPEC §1)', async (t) => {
  const d = await startDaemon({ args: [...SCALED, '--simulate', '1'] });
  t.after(() => d.stop());
  assert.equal((await d.runCli(['node', 'set-next-mode', 'sim1', 'RELOAD'])).code, 0);
  const r = await d.runCli(['audit']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^\d+\s+\d\d:\d\d:\d\d\s+\S+ \(admin\)\s+node\.setNextMode/m);
  assert.doesNotMatch(r.stdout, /\d{4}-\d\d-\d\dT/);
  const j = JSON.parse((await d.runCli(['audit', '--json'])).stdout);
  assert.ok(Math.abs(j[0].time - Date.now()) < 60_000, 'epoch ms');
});

test('the README\'s rows for the waiting commands name every option their --help has (README "Commands")', async () => {
  const readme = fs.readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
  for (const cmd of ['waitForState', 'node_reboot', 'os_load', 'os_setup', 'tbrestart']) {
    const row = readme.split('\n').find((l) => l.startsWith(`| \`stated ${cmd} `));
    assert.ok(row, `README has a row for ${cmd}`);
    const synopsis = row.split(' | ')[0]!;
    const help = (await runCli([cmd, '--help'])).stdout;
    for (const m of help.matchAll(/^\s+(?:-(\w), )?--([\w-]+)/gm)) {
      const [, short, long] = m;
      if (long === 'url' || long === 'token') continue; // every client command's, documented once
      assert.ok(synopsis.includes(`--${long}`) || (short !== undefined && synopsis.includes(`-${short} `)) || (short !== undefined && synopsis.includes(`-${short}]`)),
        `${cmd}: README's synopsis ${synopsis} lacks ${short ? `-${short}/` : ''}--${long}`);
    }
  }
});
