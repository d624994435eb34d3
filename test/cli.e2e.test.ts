// The client subcommands of SPEC §1 (send, status, machine, node, token), run
// as an operator runs them: dist/stated against a live daemon, nothing else.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { type CliResult, type Daemon, http, runCli, startDaemon, tempDir } from './helpers/daemon.ts';

const BOOT = ['SHUTDOWN', 'PXEBOOTING', 'BOOTING', 'TBSETUP', 'ISUP'];

/** SPEC §1: errors are one stderr line `stated: CODE: message`. */
function assertError(r: CliResult, code: string, exit?: number): void {
  assert.notEqual(r.code, 0, `expected a failure, got exit 0 with ${r.stdout}`);
  if (exit !== undefined) assert.equal(r.code, exit, r.stderr);
  // One line; a usage error for an unknown option or a missing argument adds the command's usage after it.
  assert.match(r.stderr, new RegExp(`^stated: ${code}: \\S.*\\n${code === 'E_USAGE' ? '(\\n[^]*)?' : ''}$`), `stderr: ${r.stderr}`);
}

async function ok(d: Daemon, args: string[], opts?: Parameters<Daemon['runCli']>[1]): Promise<string> {
  const r = await d.runCli(args, opts);
  assert.equal(r.code, 0, `stated ${args.join(' ')} exited ${r.code}\n${r.stderr}`);
  assert.equal(r.stderr, '', `stated ${args.join(' ')} wrote to stderr`);
  return r.stdout;
}

const headSeq = async (d: Daemon): Promise<number> => (await http(d, 'GET', '/healthz', undefined, null)).json.seq;

test('a NORMALv2 boot sent with `stated send` ends in ISUP in `status --json` (SPEC §1, Emulab NORMALv2 rows)', async (t) => {
  const d = await startDaemon();
  t.after(() => d.stop());
  assert.match(await ok(d, ['node', 'add', 'pc1', '--project', 'p1']), /^added pc1: type pc, mode NORMALv2/);

  let last = 0;
  for (const state of BOOT) {
    const m = /^seq (\d+)\n$/.exec(await ok(d, ['send', 'pc1', state]));
    assert.ok(m, `send pc1 ${state} prints "seq N"`);
    assert.ok(Number(m[1]) > last, 'seq strictly increases');
    last = Number(m[1]);
  }
  const nodes = JSON.parse(await ok(d, ['status', '--json']));
  assert.equal(nodes.length, 1);
  assert.equal(nodes[0].node, 'pc1');
  assert.equal(nodes[0].mode, 'NORMALv2');
  assert.equal(nodes[0].state, 'ISUP');
  assert.equal(nodes[0].timeout, null, 'ISUP has no timeout in NORMALv2');

  const table = await ok(d, ['status', 'pc1']);
  assert.match(table, /^NODE\s+MODE\s+STATE\s+SINCE\s+TIMEOUT\s+REBOOTS\s+NEXT MODE\n/);
  assert.match(table, /\npc1\s+NORMALv2\s+ISUP\s+\d\d:\d\d:\d\d\s+-\s+0\s+-\n$/);

  // The long form, with an idempotent id (SPEC §2).
  const a = await ok(d, ['send', '--objtype', 'TBNODESTATE', '--objname', 'pc1', '--eventtype', 'SHUTDOWN', '--id', 'cli-1']);
  const b = await ok(d, ['send', '--objtype', 'TBNODESTATE', '--objname', 'pc1', '--eventtype', 'SHUTDOWN', '--id', 'cli-1']);
  assert.equal(a, `seq ${last + 1}\n`);
  assert.equal(b, `seq ${last + 1} (duplicate)\n`);
  // BOOTING's pending timeout shows with its action and time left.
  await ok(d, ['send', 'pc1', 'PXEBOOTING']);
  await ok(d, ['send', 'pc1', 'BOOTING']);
  assert.match(await ok(d, ['status']), /\npc1\s+NORMALv2\s+BOOTING\s+\d\d:\d\d:\d\d\s+REBOOT in [23]m\d\ds\s+0\s+-\n$/);
});

test('an unknown node is refused with E_UNKNOWN_NODE and changes nothing (SPEC §1, §3)', async (t) => {
  const d = await startDaemon();
  t.after(() => d.stop());
  await ok(d, ['node', 'add', 'pc1']);
  await ok(d, ['send', 'pc1', 'SHUTDOWN']);
  const before = await headSeq(d);
  assertError(await d.runCli(['send', 'nope', 'ISUP']), 'E_UNKNOWN_NODE');
  assertError(await d.runCli(['send', '--objtype', 'TBCOMMAND', '--objname', 'pc1,nope', '--eventtype', 'REBOOT']), 'E_UNKNOWN_NODE');
  assertError(await d.runCli(['status', 'nope']), 'E_UNKNOWN_NODE');
  assertError(await d.runCli(['node', 'remove', 'pc1', 'nope']), 'E_UNKNOWN_NODE');
  assert.equal(await headSeq(d), before, 'no seq consumed');
  const [n] = JSON.parse(await ok(d, ['status', '--json']));
  assert.equal(n.state, 'SHUTDOWN');
  assert.equal(n.reboot.command, null, 'the half-known REBOOT did not start');
});

test('machine export → import round-trips, as SQL and as JSON (SPEC §1, §4)', async (t) => {
  const d = await startDaemon();
  t.after(() => d.stop());
  const sql = await ok(d, ['machine', 'export']);
  assert.match(sql, /^REPLACE INTO state_timeouts VALUES \('NORMALv2','BOOTING',180,'REBOOT'\);$/m);
  fs.writeFileSync(path.join(d.dir, 'defs.sql'), sql);
  assert.match(await ok(d, ['machine', 'import', 'defs.sql']), /^imported: \d+ state_transitions, \d+ state_timeouts/m);
  assert.equal(await ok(d, ['machine', 'export']), sql);

  const json = await ok(d, ['machine', 'export', '--json']);
  const def = JSON.parse(json);
  assert.ok(def.state_transitions.length > 100, "Emulab's tables are the defaults");
  fs.writeFileSync(path.join(d.dir, 'defs.json'), json);
  await ok(d, ['machine', 'import', 'defs.json']);
  assert.equal(await ok(d, ['machine', 'export']), sql);

  assert.match(await ok(d, ['machine', 'check']), /^0 error\(s\), \d+ warning\(s\)\n$/m);
});

test('a bad import is refused with its problems and the old definitions stay (SPEC §1, §4)', async (t) => {
  const d = await startDaemon();
  t.after(() => d.stop());
  const sql = await ok(d, ['machine', 'export']);
  const cases = [
    { row: "('NORMALv2','BOOTING',180,'STATE:NOPE')", code: 'timeout-target-unknown' },
    { row: "('NORMALv2','BOOTING',180,'FROB')", code: 'timeout-action-unknown' },
  ];
  for (const { row, code } of cases) {
    const file = path.join(d.dir, `${code}.sql`);
    fs.writeFileSync(file, `${sql}REPLACE INTO state_timeouts VALUES ${row};\n`);
    const r = await d.runCli(['machine', 'import', file]);
    assert.notEqual(r.code, 0);
    const lines = r.stderr.split('\n');
    assert.match(lines[0]!, /^stated: E_BAD_DEFINITION: refused: 1 error\(s\)/);
    assert.match(lines[1]!, new RegExp(`^  error ${code}: state_timeouts NORMALv2/BOOTING`));
    assert.equal(await ok(d, ['machine', 'export']), sql, 'definitions unchanged');

    const check = await d.runCli(['machine', 'check', file]);
    assert.equal(check.code, 1, 'check exits 1 on an error');
    assert.match(check.stdout, new RegExp(`^error ${code}: `, 'm'));
  }
  // A file that does not parse: refused the same way.
  fs.writeFileSync(path.join(d.dir, 'junk.sql'), 'DROP TABLE nodes;\n');
  assertError(await d.runCli(['machine', 'import', 'junk.sql']), 'E_BAD_DEFINITION');
  assert.equal((await d.runCli(['machine', 'check', 'junk.sql'])).code, 1);
  assert.equal(await ok(d, ['machine', 'export']), sql);
});

test('a one-shot trigger fires once, then is gone (SPEC §4.4)', async (t) => {
  const d = await startDaemon();
  t.after(() => d.stop());
  await ok(d, ['node', 'add', 'pc1', 'pc2']);
  assert.match(await ok(d, ['node', 'trigger', 'add', 'pc1', 'ISUP', 'EMAILNOTIFY', '--mode', 'NORMALv2']), /\npc1\s+NORMALv2\s+ISUP\s+EMAILNOTIFY\n$/);
  assert.match(await ok(d, ['node', 'trigger', 'list']), /\npc1\s+NORMALv2\s+ISUP\s+EMAILNOTIFY\n$/);

  const notifies = async (): Promise<number> => {
    const h = await http(d, 'GET', '/v1/nodes/pc1/history?limit=1000');
    return h.json.events.filter((e: any) => e.event.objtype === 'NOTIFY' && e.event.eventtype === 'EMAILNOTIFY').length;
  };
  for (const s of BOOT) await ok(d, ['send', 'pc1', s]);
  assert.equal(await notifies(), 1, 'fired at ISUP');
  assert.equal(await ok(d, ['node', 'trigger', 'list']), 'no one-shot triggers\n');
  for (const s of BOOT) await ok(d, ['send', 'pc1', s]);
  assert.equal(await notifies(), 1, 'not again');

  // Without --mode the trigger is for any mode ('*'), and clear drops it.
  assert.match(await ok(d, ['node', 'trigger', 'add', 'pc2', 'ISUP', 'EMAILNOTIFY,RESET']), /\npc2\s+\*\s+ISUP\s+EMAILNOTIFY, RESET\n$/);
  await ok(d, ['node', 'trigger', 'clear', 'pc2']);
  assert.equal(await ok(d, ['node', 'trigger', 'list', 'pc2']), 'no one-shot triggers\n');
  assert.match(await ok(d, ['node', 'set-next-mode', 'pc2', 'RELOAD']), /^pc2: next op mode RELOAD\n$/);
  assert.match(await ok(d, ['node', 'set-next-mode', 'pc2', '--clear']), /^pc2: next op mode none\n$/);
  assert.equal(await ok(d, ['node', 'remove', 'pc2']), 'removed pc2\n');
});

test('token create prints the token alone, usable with --token; revoke ends it (SPEC §1, §5)', async (t) => {
  const d = await startDaemon();
  t.after(() => d.stop());
  await ok(d, ['node', 'add', 'pc1', 'pc2']);
  // Elsewhere, with no token in the environment or the working directory.
  const away = { cwd: tempDir(), env: { STATED_TOKEN: '' } };
  assertError(await d.runCli(['status'], away), 'E_UNAUTHORIZED');

  const op = await ok(d, ['token', 'create', '--role', 'operator']);
  assert.match(op, /^st_[A-Za-z0-9_-]+\n$/);
  assert.match(await ok(d, ['status', '--token', op.trim()], away), /^NODE/);

  const nodeTok = (await ok(d, ['token', 'create', '--role', 'node', '--node', 'pc1'])).trim();
  assert.match(await ok(d, ['send', 'pc1', 'SHUTDOWN', '--token', nodeTok], away), /^seq \d+\n$/);
  assertError(await d.runCli(['send', 'pc2', 'SHUTDOWN', '--token', nodeTok], away), 'E_FORBIDDEN');
  assertError(await d.runCli(['token', 'list', '--token', op.trim()], away), 'E_FORBIDDEN');

  // The daemon's own token file is the default in its directory (SPEC §1).
  const list = JSON.parse(await ok(d, ['token', 'list', '--json'], { env: { STATED_TOKEN: '' } }));
  const id = list.find((x: any) => x.role === 'node').id;
  assert.equal(await ok(d, ['token', 'revoke', id]), `revoked ${id}\n`);
  assertError(await d.runCli(['send', 'pc1', 'ISUP', '--token', nodeTok], away), 'E_UNAUTHORIZED');
  assertError(await d.runCli(['token', 'revoke', id]), 'E_NOT_FOUND');
});

test('usage errors exit 64 with one line; a dead daemon is E_CONNECT at once (SPEC §1)', async () => {
  for (const args of [
    ['send', 'pc1'],
    ['send', 'pc1', 'ISUP', '--objtype', 'TBNODESTATE'],
    ['send', '--objtype', 'TBNODESTATE', '--objname', 'pc1'],
    ['token', 'create'],
    ['token', 'create', '--role', 'wizard'],
    ['token', 'create', '--role', 'node'],
    ['node', 'add'],
    ['node', 'trigger', 'add', 'pc1', 'ISUP'],
    ['node', 'set-next-mode', 'pc1'],
    ['machine', 'import'],
    ['machine', 'import', '/nonexistent/defs.sql'],
    ['machine'],
    ['frobnicate'],
    ['status', '--url', 'not a url'],
  ]) {
    const r = await runCli(args, { env: { STATED_URL: 'ws://127.0.0.1:1' } });
    assertError(r, 'E_USAGE', 64);
    assert.equal(r.stdout, '', `stated ${args.join(' ')}: nothing on stdout`);
  }
  const t0 = Date.now();
  assertError(await runCli(['status', '--url', 'ws://127.0.0.1:1']), 'E_CONNECT');
  assert.ok(Date.now() - t0 < 5000, 'no retry loop');
});
