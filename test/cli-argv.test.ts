// src/cli/argv.ts: every command line is checked against its command's options
// before the command runs (SPEC §1: an unknown option or a missing argument is a usage error).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { defineCommand } from 'citty';
import { checkArgv, resolveCommand } from '../src/cli/argv.ts';
import { makeLog } from '../src/log.ts';

const reboot = defineCommand({
  meta: { name: 'node_reboot' },
  args: {
    nodes: { type: 'positional', required: false },
    wait: { type: 'boolean', alias: 'w' },
    'no-wait': { type: 'boolean', alias: 'n' },
    timeout: { type: 'string', alias: 't' },
    'log-format': { type: 'string' },
  },
});
const main = defineCommand({ meta: { name: 'stated' }, subCommands: { node_reboot: reboot, node: defineCommand({ meta: { name: 'node' }, subCommands: { add: () => reboot } }) } });

test('checkArgv accepts what the definition declares: names, aliases, camelCase, --x=v, clusters, values after --', async () => {
  for (const argv of [
    ['pc1', 'pc2'], ['-w', 'pc1'], ['--wait', '--timeout', '5', 'pc1'], ['--timeout=5'], ['-wt', '5'], ['-wt5'],
    ['--no-wait'], ['-n'], ['--logFormat', 'json'], ['--log-format=json'], ['-t', '-5'], ['--', '--anything', '-x'],
  ]) assert.equal(await checkArgv(reboot, argv), null, argv.join(' '));
});

test('checkArgv names the first unknown option or missing value', async () => {
  for (const [argv, want] of [
    [['--jsno'], 'unknown option --jsno'],
    [['pc1', '--timout', '2'], 'unknown option --timout'],
    [['-x'], 'unknown option -x'],
    [['-wx'], 'unknown option -x'],
    [['--timeout'], 'option --timeout needs a value'],
    [['-t'], 'option -t needs a value'],
    [['-t', '--wait'], 'option -t needs a value'],
    [['-wt'], 'option -t needs a value'],
    [['--wait=yes'], 'option --wait takes no value'],
    [['--no-timeout'], 'unknown option --no-timeout'],
  ] as const) assert.equal(await checkArgv(reboot, [...argv]), want, argv.join(' '));
});

test('resolveCommand follows subcommand names and keeps the whole path for the usage line', async () => {
  const r = await resolveCommand(main, ['node', 'add', '-w', 'pc1']);
  assert.equal(r.cmd, reboot);
  assert.deepEqual(r.rest, ['-w', 'pc1']);
  assert.equal((r.parent?.meta as { name: string }).name, 'stated node');
  const top = await resolveCommand(main, ['--help']);
  assert.equal(top.cmd, main);
  assert.equal(top.parent, undefined);
});

test('log lines: ISO-8601 time and level, or one JSON object; the level is read off the message when not given', () => {
  const out: string[] = [];
  const text = makeLog('text', (l) => out.push(l));
  text('stated: listening on http://127.0.0.1:1');
  text('E_DISK_FULL: a batch was not committed');
  text('NOTIFY INVALID_TRANSITION pc1: x');
  text('#5 TBNODESTATE pc1 ISUP', 'debug');
  assert.match(out[0]!, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z INFO  listening on http:\/\/127\.0\.0\.1:1\n$/);
  assert.match(out[1]!, /Z ERROR E_DISK_FULL: /);
  assert.match(out[2]!, /Z WARN  NOTIFY /);
  assert.match(out[3]!, /Z DEBUG #5 /);
  const json: string[] = [];
  makeLog('json', (l) => json.push(l))('stated: stopped at seq 3');
  const o = JSON.parse(json[0]!);
  assert.deepEqual([Object.keys(o), o.level, o.msg], [['time', 'level', 'msg'], 'info', 'stopped at seq 3']);
  assert.ok(!Number.isNaN(Date.parse(o.time)));
});
