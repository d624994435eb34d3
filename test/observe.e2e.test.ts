// The operator's read-side tools end to end (issue 13 points 3 and 4; SPEC §1
// history/watch/stats, §3 /v1/stats and /metrics), against the built
// dist/stated with Emulab's shipped rows at --time-scale 0.01:
//   config retryDelay 10 s -> 0.1 s between a failed driver attempt and the next
//   maxRebootAttempts 3    -> a driver that always fails: 2 retries, then TBFAILED DRIVER_FAILED
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { type Daemon, http, startDaemon, statedBin, tempDir } from './helpers/daemon.ts';
import { freePort, sleep, until } from './helpers/poll.ts';

const SCALED = ['--time-scale', '0.01'];
const BOOT = ['SHUTDOWN', 'PXEBOOTING', 'BOOTING', 'TBSETUP', 'ISUP'];
interface TypeFigures { type: string; boots: { count: number; p50: number | null; p95: number | null; max: number | null }; failures: Record<string, number>; retries: number }

/** A daemon with three simulated nodes and a node `f1` whose power driver always fails. */
async function fleet(extra: string[] = []): Promise<Daemon> {
  const dir = tempDir();
  const config = path.join(dir, 'stated.json');
  fs.writeFileSync(config, JSON.stringify({ drivers: { flaky: { kind: 'command', timeout: 100, commands: { REBOOT: ['/bin/false'] } } } }));
  const d = await startDaemon({ dir, args: [...SCALED, '--simulate', '3', '--config', config, ...extra] });
  const add = await d.runCli(['node', 'add', 'f1', '--type', 'flaky', '--mode', 'NORMALv2', '--state', 'ISUP', '--project', 'demo']);
  assert.equal(add.code, 0, add.stderr);
  return d;
}

async function statsJson(d: Daemon, args: string[] = []): Promise<TypeFigures[]> {
  const r = await d.runCli(['stats', '--json', ...args]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout).types;
}

test('stats: boot times per type, failures by reason and retries, from reboots of a fleet; kept across a restart', async (t) => {
  let d = await fleet();
  t.after(() => d.stop());
  const up = await d.runCli(['node_reboot', '-w', 'sim1', 'sim2', 'sim3']);
  assert.equal(up.code, 0, up.stdout + up.stderr);
  const bad = await d.runCli(['node_reboot', 'f1']);
  assert.equal(bad.code, 1, `f1's driver always fails: ${bad.stdout}${bad.stderr}`);

  let types = await statsJson(d);
  const sim = types.find((x) => x.type === 'sim')!;
  assert.equal(sim.boots.count, 3, JSON.stringify(types));
  assert.ok(sim.boots.p50! > 0 && sim.boots.p50! <= sim.boots.p95! && sim.boots.p95! <= sim.boots.max!, JSON.stringify(sim));
  assert.deepEqual([sim.failures, sim.retries], [{}, 0]);
  const flaky = types.find((x) => x.type === 'flaky')!;
  assert.deepEqual([flaky.boots.count, flaky.failures, flaky.retries], [0, { DRIVER_FAILED: 1 }, 2]);

  // The table: readable durations, one row per type.
  const table = await d.runCli(['stats']);
  assert.equal(table.code, 0, table.stderr);
  assert.match(table.stdout, /^TYPE\s+BOOTS\s+P50\s+P95\s+MAX\s+RETRIES\s+FAILURES$/m);
  assert.match(table.stdout, /^sim\s+3\s+\d+\.\ds\s+\d+\.\ds\s+\d+\.\ds\s+0\s+-$/m);
  assert.match(table.stdout, /^flaky\s+0\s+-\s+-\s+-\s+2\s+DRIVER_FAILED 1$/m);

  // GET /v1/stats: the shape the dashboard reads, a window, bad input, roles.
  const r = await http(d, 'GET', '/v1/stats');
  assert.equal(r.status, 200);
  assert.deepEqual(Object.keys(r.json).sort(), ['now', 'since', 'types']);
  assert.ok(r.json.now - r.json.since === 86_400_000 || Math.abs(r.json.now - r.json.since - 86_400_000) < 5000, 'default window: 24 h');
  assert.deepEqual((await http(d, 'GET', `/v1/stats?since=${r.json.now + 60_000}`)).json.types, [], 'a window after everything is empty');
  const badSince = await http(d, 'GET', '/v1/stats?since=yesterday');
  assert.deepEqual([badSince.status, badSince.json.error.code], [400, 'E_BAD_REQUEST']);
  const user = (await d.runCli(['token', 'create', '--role', 'user', '--project', 'demo'])).stdout.trim();
  const operator = (await d.runCli(['token', 'create', '--role', 'operator'])).stdout.trim();
  assert.equal((await http(d, 'GET', '/v1/stats', undefined, user)).status, 403, 'fleet-wide figures are not a user token\'s');
  assert.equal((await http(d, 'GET', '/v1/stats', undefined, operator)).status, 200);
  assert.equal((await http(d, 'GET', '/v1/stats', undefined, null)).status, 401);
  const cliUser = await d.runCli(['stats'], { env: { STATED_TOKEN: user } });
  assert.deepEqual([cliUser.code, cliUser.stderr.trim().split(':')[1]?.trim()], [70, 'E_FORBIDDEN']);
  assert.equal((await d.runCli(['stats', '--since', 'yesterday'])).code, 64);

  // A restart rebuilds boots and failures from the log (retries are counted from this start on).
  d = await d.restart();
  types = await statsJson(d);
  assert.equal(types.find((x) => x.type === 'sim')!.boots.count, 3, JSON.stringify(types));
  assert.deepEqual(types.find((x) => x.type === 'flaky')!.failures, { DRIVER_FAILED: 1 });
  const again = await d.runCli(['node_reboot', '-w', 'sim1']);
  assert.equal(again.code, 0, again.stderr);
  assert.equal((await statsJson(d)).find((x) => x.type === 'sim')!.boots.count, 4);
  assert.equal((await statsJson(d, ['--since', '1h'])).find((x) => x.type === 'sim')!.boots.count, 4);
});

test('/metrics after reboots and failures: node gauges, labelled counters, histograms; promtool check metrics passes', async (t) => {
  const d = await fleet();
  t.after(() => d.stop());
  assert.equal((await d.runCli(['node_reboot', '-w', 'sim1', 'sim2'])).code, 0);
  assert.equal((await d.runCli(['node_reboot', 'f1'])).code, 1);
  const text = (await http(d, 'GET', '/metrics')).text;
  // f1 never went down: its driver failed before any state change.
  assert.match(text, /^stated_nodes\{mode="NORMALv2",state="ISUP"\} 4$/m);
  assert.match(text, /^stated_tbfailed_total\{type="flaky",code="DRIVER_FAILED"\} 1$/m);
  assert.match(text, /^stated_retries_total\{type="flaky",code="DRIVER_FAILED"\} 2$/m);
  assert.match(text, /^stated_boot_duration_seconds_count\{type="sim"\} 2$/m);
  assert.match(text, /^stated_boot_duration_seconds_bucket\{type="sim",le="\+Inf"\} 2$/m);
  assert.match(text, /^stated_batch_events_count [1-9]\d*$/m);
  assert.match(text, /^stated_commit_seconds_count [1-9]\d*$/m);
  const promtool = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  assert.ok(!promtool.error, `promtool is needed (Debian's prometheus package; make system installs it): ${promtool.error?.message}`);
  assert.equal(promtool.status, 0, `promtool check metrics:\n${promtool.stdout}${promtool.stderr}`);
  const user = (await d.runCli(['token', 'create', '--role', 'user', '--project', 'demo'])).stdout.trim();
  assert.equal((await http(d, 'GET', '/metrics', undefined, user)).status, 403);
});

test('history: the node\'s events newest last with readable times; --json keeps epoch ms; bad input refused', async (t) => {
  const d = await fleet();
  t.after(() => d.stop());
  assert.equal((await d.runCli(['node_reboot', '-w', 'sim2'])).code, 0);
  const r = await d.runCli(['history', 'sim2', '--limit', '5']);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.equal(lines.length, 5, r.stdout);
  // The last five of the boot, in order, each `HH:MM:SS  #seq  TBNODESTATE  sim2  STATE  (mode)`.
  assert.deepEqual(lines.map((l) => l.split(/\s+/)[4]), BOOT);
  for (const l of lines) assert.match(l, /^\d\d:\d\d:\d\d  #\d+  TBNODESTATE  sim2  [A-Z]+  \((?:NORMALv2|PXEKERNEL)\)$/); // BOOTING arrives in the PXE phase (SPEC §4.6)
  const seqs = lines.map((l) => Number(/#(\d+)/.exec(l)![1]));
  assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b), 'newest last');

  const j = await d.runCli(['history', 'sim2', '--json', '--limit', '2']);
  const events = JSON.parse(j.stdout) as { seq: number; time: number; event: { eventtype: string } }[];
  assert.deepEqual(events.map((e) => e.event.eventtype), ['TBSETUP', 'ISUP']);
  assert.ok(events.every((e) => Number.isInteger(e.time) && e.time > 1.5e12), 'epoch ms');
  assert.deepEqual(events.map((e) => e.seq), seqs.slice(3));

  const unknown = await d.runCli(['history', 'nosuch']);
  assert.deepEqual([unknown.code, /E_UNKNOWN_NODE/.test(unknown.stderr)], [70, true], unknown.stderr);
  for (const args of [['history'], ['history', 'sim2', '--limit', '0'], ['history', 'sim2', '--limit', 'many'], ['history', 'a', 'b']]) {
    const u = await d.runCli(args);
    assert.equal(u.code, 64, `${args.join(' ')}: ${u.stderr}`);
  }
});

/** `stated watch` as a child that keeps running; lines() is what it printed so far. */
function watch(d: Daemon, args: string[]): { proc: ChildProcess; lines: () => string[]; err: () => string; exit: Promise<number | null> } {
  const { STATED_URL: _u, STATED_TOKEN: _t, ...env } = process.env;
  const proc = spawn(statedBin, ['watch', ...args], { env: { ...env, NO_COLOR: '1', STATED_URL: d.wsUrl, STATED_TOKEN: d.token }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stdout!.setEncoding('utf8').on('data', (s: string) => { out += s; });
  proc.stderr!.setEncoding('utf8').on('data', (s: string) => { err += s; });
  const exit = new Promise<number | null>((res) => proc.once('exit', (code) => res(code)));
  return { proc, lines: () => out.split('\n').filter((l) => l !== ''), err: () => err, exit };
}

test('watch: filtered live lines with readable times; a daemon restart loses nothing and repeats nothing; Ctrl-C exits 0', async (t) => {
  const port = await freePort();
  let d = await fleet(['--listen', `127.0.0.1:${port}`]);
  t.after(() => d.stop());
  const w = watch(d, ['--filter', 'objtype=TBNODESTATE node=sim1']);
  t.after(() => w.proc.kill('SIGKILL'));
  await sleep(500); // subscribed (nothing to see yet: the filter leaves the start-up events out)
  assert.equal((await d.runCli(['node_reboot', '-w', 'sim1', 'sim2'])).code, 0);
  await until(() => w.lines().length >= 5, 'five lines for sim1\'s boot');
  for (const l of w.lines()) assert.match(l, /^\d\d:\d\d:\d\d  #\d+  TBNODESTATE  sim1  [A-Z]+/);
  assert.deepEqual(w.lines().map((l) => l.split(/\s+/)[4]), BOOT);

  // Down, then up again; events for sim1 land before the watcher can reconnect (its backoff).
  d = await d.restart();
  for (const s of ['SHUTDOWN', 'ISUP']) assert.equal((await d.runCli(['send', 'sim1', s])).code, 0);
  assert.equal((await d.runCli(['node_reboot', '-w', 'sim1'])).code, 0);
  const hist = JSON.parse((await d.runCli(['history', 'sim1', '--json', '--limit', '1000'])).stdout) as { seq: number; event: { objtype: string } }[];
  const first = Number(/#(\d+)/.exec(w.lines()[0]!)![1]);
  const want = hist.filter((e) => e.seq >= first && e.event.objtype === 'TBNODESTATE').map((e) => e.seq);
  await until(() => w.lines().length >= want.length, `${want.length} lines`, 20_000);
  await sleep(300);
  assert.deepEqual(w.lines().map((l) => Number(/#(\d+)/.exec(l)![1])), want, 'every sim1 state since the first line, once each, in order');
  assert.match(w.err(), /reconnected; resuming after seq \d+/);

  w.proc.kill('SIGINT');
  assert.equal(await w.exit, 0);
  const bad = await d.runCli(['watch', '--filter', 'colour=red']);
  assert.equal(bad.code, 64, bad.stderr);
});
