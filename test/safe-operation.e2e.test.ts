// Issue 12, "safe operation": what a new operator could do by accident with
// dist/stated, each replayed against the executable (SPEC §1 serve, §3, §5).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { type CliResult, type Daemon, http, runCli, startDaemon, tempDir } from './helpers/daemon.ts';
import { freePort } from './helpers/poll.ts';

function assertError(r: CliResult, code: string, exit = 70): void {
  assert.equal(r.code, exit, `expected exit ${exit} (${code}), got ${r.code}\n${r.stdout}${r.stderr}`);
  assert.match(r.stderr, new RegExp(`^stated: ${code}: \\S`), r.stderr);
}

async function ok(d: Daemon, args: string[]): Promise<string> {
  const r = await d.runCli(args);
  assert.equal(r.code, 0, `stated ${args.join(' ')}: exit ${r.code}\n${r.stderr}`);
  return r.stdout;
}

const nodes = async (d: Daemon): Promise<any[]> => JSON.parse(await ok(d, ['status', '--json']));
const serve = (db: string, listen = '127.0.0.1:0', cwd?: string): Promise<CliResult> =>
  runCli(['serve', '--db', db, '--listen', listen], { timeoutMs: 20_000, ...(cwd ? { cwd } : {}) });

test('1. a second serve on the same database exits at once with E_LOCKED naming the holder; kill -9 leaves no stale lock', async (t) => {
  const d = await startDaemon();
  t.after(() => d.stop());
  await ok(d, ['node', 'add', 'pc1']);
  const second = await serve(d.db); // another port: port 0
  assertError(second, 'E_LOCKED');
  assert.match(second.stderr, new RegExp(`pid ${d.proc.pid}\\b`), 'names the holder');
  // Another path to the same file is the same database.
  const link = path.join(d.dir, 'alias.db');
  fs.symlinkSync(d.db, link);
  assertError(await serve(link), 'E_LOCKED');
  // The first daemon was not disturbed: its writes still commit.
  assert.match(await ok(d, ['send', 'pc1', 'SHUTDOWN']), /^seq \d+/);
  await d.kill9();
  const again = await startDaemon({ dir: d.dir });
  t.after(() => again.stop());
  assert.equal((await nodes(again))[0].state, 'SHUTDOWN', 'the restarted daemon took the lock the killed one held');
});

test('1b. a second serve on the same database and the same port is E_LOCKED naming the holder, not E_LISTEN', async (t) => {
  const port = await freePort();
  const d = await startDaemon({ args: ['--listen', `127.0.0.1:${port}`] });
  t.after(() => d.stop());
  const before = fs.readdirSync(d.dir).sort();
  // The most common accident: the same command line twice (same db, same port).
  const second = await serve(d.db, `127.0.0.1:${port}`, d.dir);
  assertError(second, 'E_LOCKED');
  assert.match(second.stderr, new RegExp(`pid ${d.proc.pid}\\b`), 'names the holder');
  assert.deepEqual(fs.readdirSync(d.dir).sort(), before, 'the second serve created nothing');
  // A port in use on a database nobody holds is still E_LISTEN, and creates nothing.
  const other = tempDir();
  const r = await serve(path.join(other, 'stated.db'), `127.0.0.1:${port}`, other);
  assertError(r, 'E_LISTEN');
  assert.deepEqual(fs.readdirSync(other), []);
});

test('2. machine import refuses an empty file and one that leaves a mode in use without transitions; the old definitions stay', async (t) => {
  const d = await startDaemon();
  t.after(() => d.stop());
  await ok(d, ['node', 'add', 'pc1', 'pc2']);
  await ok(d, ['node', 'add', 'pc3', '--mode', 'MINIMAL']);
  const before = await ok(d, ['machine', 'export', '--json']);
  const empty = path.join(d.dir, 'empty.json');
  fs.writeFileSync(empty, '{}');
  const emptySql = path.join(d.dir, 'empty.sql');
  fs.writeFileSync(emptySql, '');
  for (const f of [empty, emptySql]) {
    const r = await d.runCli(['machine', 'import', f]);
    assertError(r, 'E_BAD_DEFINITION');
    assert.match(r.stderr, /no state_transitions/);
  }
  // Only RELOAD's rows: NORMALv2 (pc1, pc2) and MINIMAL (pc3) would be left bare.
  const def = JSON.parse(before);
  def.state_transitions = def.state_transitions.filter((r: any) => r.op_mode === 'RELOAD');
  const partial = path.join(d.dir, 'partial.json');
  fs.writeFileSync(partial, JSON.stringify(def));
  const r = await d.runCli(['machine', 'import', partial]);
  assertError(r, 'E_BAD_DEFINITION');
  assert.match(r.stderr, /MODE_IN_USE: MINIMAL .*pc3/);
  assert.match(r.stderr, /MODE_IN_USE: NORMALv2 .*pc1 pc2/);
  assert.equal(await ok(d, ['machine', 'export', '--json']), before, 'the old definitions stay');
  // The machine still runs: BOOTING still has its timeout.
  await ok(d, ['send', 'pc1', 'BOOTING']);
  assert.ok((await nodes(d)).find((n) => n.node === 'pc1').timeout, 'BOOTING armed its timeout');
});

test('2b. machine import refuses a file that keeps the transitions but drops the timeouts or the boot-phase triggers; the old definitions stay', async (t) => {
  const d = await startDaemon();
  t.after(() => d.stop());
  await ok(d, ['node', 'add', 'pc1', 'pc2']);
  await ok(d, ['node', 'set-next-mode', 'pc2', 'RELOAD']);
  const before = await ok(d, ['machine', 'export', '--json']);
  const def = JSON.parse(before);
  const write = (name: string, content: object): string => {
    const f = path.join(d.dir, name);
    fs.writeFileSync(f, JSON.stringify(content));
    return f;
  };
  // Every transition, no timeouts, no triggers: no PXEBOOT/BOOTING/RELOADDONE, no retries.
  const bare = await d.runCli(['machine', 'import', write('transitions-only.json', { state_transitions: def.state_transitions })]);
  assertError(bare, 'E_BAD_DEFINITION');
  for (const re of [/TIMEOUTS_DROPPED: NORMALv2 .*pc1 pc2/, /TIMEOUTS_DROPPED: RELOAD .*pc2/, /TIMEOUTS_DROPPED: TBCOMMAND /,
    /PHASE_TRIGGER_DROPPED: state_triggers \*\/PXEBOOTING runs PXEBOOT/, /PHASE_TRIGGER_DROPPED: state_triggers \*\/BOOTING runs BOOTING/,
    /PHASE_TRIGGER_DROPPED: state_triggers RELOAD\/RELOADDONE runs RELOADDONE/]) assert.match(bare.stderr, re);
  assert.equal(await ok(d, ['machine', 'export', '--json']), before, 'the old definitions stay');
  // Only the PXEBOOTING row gone: refused for that row alone.
  const noPxe = { ...def, state_triggers: def.state_triggers.filter((r: any) => r.state !== 'PXEBOOTING') };
  const r = await d.runCli(['machine', 'import', write('no-pxe.json', noPxe)]);
  assertError(r, 'E_BAD_DEFINITION');
  assert.match(r.stderr, /refused: 1 problem/);
  assert.match(r.stderr, /PHASE_TRIGGER_DROPPED: state_triggers \*\/PXEBOOTING runs PXEBOOT/);
  assert.equal(await ok(d, ['machine', 'export', '--json']), before, 'the old definitions stay');
  // The machine still works: PXEBOOTING still moves pc1 into the PXE phase, BOOTING still has its timeout.
  await ok(d, ['send', 'pc1', 'PXEBOOTING']);
  assert.equal((await nodes(d)).find((n) => n.node === 'pc1').mode, 'PXEKERNEL');
  // What keeps what the nodes run on still imports: a timeout changed, a mode nobody uses without timeouts.
  const edited = { ...def, state_timeouts: def.state_timeouts
    .filter((r: any) => r.op_mode !== 'WIMRELOAD')
    .map((r: any) => (r.op_mode === 'NORMALv2' && r.state === 'BOOTING' ? { ...r, timeout: 240 } : r)) };
  await ok(d, ['machine', 'import', write('edited.json', edited)]);
  assert.match(await ok(d, ['machine', 'export']), /'NORMALv2','BOOTING',240,'REBOOT'/);
});

test('3. names an operator types are checked against the definitions before anything is applied', async (t) => {
  const d = await startDaemon();
  t.after(() => d.stop());
  await ok(d, ['node', 'add', 'pc1', 'pc2']);
  const seq = async (): Promise<number> => (await http(d, 'GET', '/healthz', undefined, null)).json.seq;
  const s0 = await seq();
  for (const [args, what] of [
    [['node', 'set-next-mode', 'pc2', 'NOSUCHMODE'], /NOSUCHMODE/],
    [['node', 'add', 'pc3', '--mode', 'NOSUCH'], /NOSUCH/],
    [['node', 'trigger', 'add', 'pc2', 'ISUP', 'REBOOOT'], /REBOOOT/],
    [['node', 'trigger', 'add', 'pc2', 'ISUPP', 'REBOOT'], /state ISUPP/],
    [['node', 'add', 'pc3', '--state', 'NOSUCHSTATE'], /state NOSUCHSTATE/],
    [['node', 'trigger', 'add', 'pc2', 'ISUP', 'REBOOT,SCRIPT:../x'], /SCRIPT:\.\.\/x/],
    [['node', 'trigger', 'add', 'pc2', 'ISUP', 'REBOOT', '--mode', 'NORMALV2'], /NORMALV2/],
    [['waitForState', '-t', '5', '-s', 'SHUTDOWN,ISUPP', 'pc1'], /ISUPP/],
  ] as const) {
    const r = await d.runCli([...args]);
    assertError(r, 'E_UNKNOWN_NAME', 64); // a name that cannot be right is a usage error (SPEC §1, README Exit codes)
    assert.match(r.stderr, what);
  }
  const list = await nodes(d);
  assert.equal(list.length, 2, 'pc3 was not added');
  assert.equal(list.find((n) => n.node === 'pc2').nextMode, null);
  assert.deepEqual(list.find((n) => n.node === 'pc2').triggers, []);
  assert.equal(await seq(), s0, 'nothing was logged');
  // What is right still passes: built-ins, SCRIPT:name, a known mode.
  await ok(d, ['node', 'trigger', 'add', 'pc2', 'ISUP', 'REBOOT,SCRIPT:hello', '--mode', 'NORMALv2']);
  await ok(d, ['node', 'set-next-mode', 'pc2', 'RELOAD']);
  await ok(d, ['node', 'add', 'pc3', '--mode', 'MINIMAL']);
});

test('5. a port in use is E_LISTEN and a database that cannot be opened is E_DB, before any file is created', async (t) => {
  const dir = tempDir();
  const busy = net.createServer();
  await new Promise<void>((res) => busy.listen(0, '127.0.0.1', () => res()));
  t.after(() => busy.close());
  const port = (busy.address() as net.AddressInfo).port;
  const r = await serve(path.join(dir, 'stated.db'), `127.0.0.1:${port}`, dir);
  assertError(r, 'E_LISTEN');
  assert.match(r.stderr, /address in use/);
  assert.deepEqual(fs.readdirSync(dir), [], 'no database, no token file');

  const missing = await serve(path.join(dir, 'nodir', 'stated.db'), '127.0.0.1:0', dir);
  assertError(missing, 'E_DB');
  const notDb = path.join(dir, 'notes.db');
  fs.writeFileSync(notDb, 'these are my notes, not a database\n'.repeat(200));
  const bad = await serve(notDb, '127.0.0.1:0', dir);
  assertError(bad, 'E_DB');
  assert.match(bad.stderr, /not a database/);
  assert.deepEqual(fs.readdirSync(dir).sort(), ['notes.db'], 'no token file, nothing beside the bad file');
});

/** Mounts a small tmpfs at dir; false (with why) where this machine cannot. */
function mountTmpfs(dir: string, size: string): string | null {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { stdio: 'pipe' });
    return null;
  } catch (err) {
    return `cannot mount a tmpfs here (needs root and mount(8)): ${String((err as { stderr?: Buffer }).stderr ?? err).trim()}`;
  }
}

test('10. a full disk is 507 E_DISK_FULL with nothing applied; reads go on, writes resume once space frees; free space in /metrics; a corrupt database is E_DB', async (t) => {
  const dir = tempDir();
  const why = mountTmpfs(dir, '3m');
  if (why) return t.skip(why);
  let d: Daemon | undefined;
  t.after(async () => {
    await d?.stop();
    execFileSync('umount', ['-l', dir]);
  });
  d = await startDaemon({ dir });
  await ok(d, ['node', 'add', 'pc1']);
  const free = async (): Promise<number> => Number(/^stated_db_fs_free_bytes (\d+)$/m.exec((await http(d!, 'GET', '/metrics')).text)?.[1]);
  assert.ok(await free() > 1024 * 1024, 'free space of the tmpfs shows in /metrics');

  // Fill the file system, then write until a commit needs space it cannot have.
  const filler = path.join(dir, 'filler');
  const fd = fs.openSync(filler, 'w');
  const chunk = Buffer.alloc(64 * 1024, 1);
  try { for (;;) fs.writeSync(fd, chunk); } catch { /* ENOSPC: full */ }
  try { for (;;) fs.writeSync(fd, chunk.subarray(0, 512)); } catch { /* the last bytes too */ }
  fs.closeSync(fd);
  assert.ok(await free() < 64 * 1024, `metrics show the disk full (${await free()})`);
  let accepted = 0;
  let full: Awaited<ReturnType<typeof http>> | undefined;
  for (let i = 0; i < 3000 && !full; i++) {
    const r = await http(d, 'POST', '/v1/events', { objtype: 'TBNODESTATE', objname: 'pc1', eventtype: i % 2 ? 'ISUP' : 'SHUTDOWN', id: `fill-${i}` });
    if (r.status === 200) accepted = r.json.accepted[0].seq;
    else full = r;
  }
  assert.ok(full, 'a write was refused once the disk was full');
  assert.equal(full.status, 507, full.text);
  assert.equal(full.json.error.code, 'E_DISK_FULL');
  // Reads still work and show exactly what was acknowledged.
  const health = await http(d, 'GET', '/healthz', undefined, null);
  assert.equal(health.json.seq, accepted, 'nothing of the refused write was applied');
  assert.equal((await http(d, 'GET', '/v1/nodes/pc1')).status, 200);
  fs.rmSync(filler);
  let resumed: Awaited<ReturnType<typeof http>> | undefined;
  for (let i = 0; i < 50; i++) {
    resumed = await http(d, 'POST', '/v1/events', { objtype: 'TBNODESTATE', objname: 'pc1', eventtype: 'SHUTDOWN', id: 'after-full' });
    if (resumed.status === 200) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.equal(resumed!.status, 200, `writes resume once space frees: ${resumed!.text}`);
  assert.equal(resumed!.json.accepted[0].seq, accepted + 1, 'no gap, nothing lost');
  assert.ok(d.stdout().includes('E_DISK_FULL'), 'the daemon logged the full disk as E_DISK_FULL');
  await d.stop();

  // A corrupt database at start: its header overwritten.
  const fdb = fs.openSync(d.db, 'r+');
  fs.writeSync(fdb, Buffer.from('not a sqlite header at all!!'), 0, 28, 0);
  fs.closeSync(fdb);
  for (const ext of ['-wal', '-shm']) fs.rmSync(d.db + ext, { force: true });
  assertError(await serve(d.db, '127.0.0.1:0', dir), 'E_DB');
  d = undefined;
});
