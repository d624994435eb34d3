// SIGHUP reloads definitions (SPEC §1); retention trims the log from the low
// end and a resume below it is refused, and abandoned waits expire (SPEC §3, §5).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { connectWs, http, startDaemon, tempDir } from './helpers/daemon.ts';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, fn: () => Promise<T | undefined>, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

test('SIGHUP picks up definitions changed in the database', async (t) => {
  const d = await startDaemon({ args: ['--time-scale', '0.01'] });
  t.after(() => d.stop());
  await d.runCli(['node', 'add', 'pc1']);
  // Emulab ships no NORMALv2/SHUTDOWN timeout; add one behind the daemon's back.
  const db = new Database(d.db);
  // 200 s x 0.01 = 2 s: long enough that status (a CLI spawn away) sees it pending on a slow machine.
  db.prepare("INSERT INTO state_timeouts VALUES ('NORMALv2', 'SHUTDOWN', 200, 'NOTIFY')").run();
  db.close();
  await d.runCli(['send', 'pc1', 'SHUTDOWN']);
  let st = JSON.parse((await d.runCli(['status', '--json', 'pc1'])).stdout);
  assert.equal(st[0].timeout, null, 'not loaded before SIGHUP');

  d.proc.kill('SIGHUP');
  await until('reload line', async () => (d.stdout().includes('reloaded') ? true : undefined));
  await d.runCli(['send', 'pc1', 'SHUTDOWN']);
  st = JSON.parse((await d.runCli(['status', '--json', 'pc1'])).stdout);
  assert.equal(st[0].timeout.action, 'NOTIFY');
  assert.equal(st[0].timeout.state, 'SHUTDOWN');
  // ... and then it fires.
  await until('TIMEOUT notify', async () => {
    const h = await http(d, 'GET', '/v1/nodes/pc1/history?limit=10');
    return h.json.events.find((e: { event: { objtype: string; eventtype: string } }) => e.event.objtype === 'NOTIFY' && e.event.eventtype === 'TIMEOUT');
  });
});

test('retention trims the oldest events; a since below them is E_HISTORY_COMPACTED; idle waits expire', async (t) => {
  const dir = tempDir();
  const config = path.join(dir, 'config.json');
  fs.writeFileSync(config, JSON.stringify({ retentionEvents: 1000, sweepInterval: 0.3 }));
  const d = await startDaemon({ dir, args: ['--config', config] });
  t.after(() => d.stop());
  await d.runCli(['node', 'add', 'pc1']);
  const ws = await connectWs(d);
  t.after(() => ws.close());
  const w = await ws.request('initStateWait', { states: ['ISUP'], nodes: ['pc1'], ttl: 1 });
  assert.equal(w.ok, true);

  const states = ['SHUTDOWN', 'PXEBOOTING', 'BOOTING', 'TBSETUP'];
  const body = Array.from({ length: 1500 }, (_, i) => ({ objtype: 'TBNODESTATE', objname: 'pc1', eventtype: states[i % 4] }));
  const r = await http(d, 'POST', '/v1/events', body);
  assert.equal(r.status, 200);
  const last = r.json.accepted.at(-1).seq;

  // Trimmed down to the newest 1000: everything at or below last-1000 is gone.
  await until('trim', async () => {
    const sub = await ws.request('subscribe', { since: 0 });
    return sub.ok === false ? sub : undefined;
  }).then((sub) => assert.equal(sub.error.code, 'E_HISTORY_COMPACTED'));
  const ok = await ws.request('subscribe', { filter: { objtype: ['TBNODESTATE'] }, since: last - 1000 });
  assert.equal(ok.ok, true);
  const first = await ws.push((m) => m.type === 'event' && m.sub === ok.sub);
  assert.equal(first.seq, last - 999, 'replay starts right after since: no gap');

  // ttl 1 s, never attached again (waitForState does not count as an attach): the sweep deletes it.
  await until('wait expiry', async () => {
    const a = await ws.request('waitForState', { wait: w.wait, timeout: 0.01 });
    return a.ok === false ? a : undefined;
  }).then((a) => assert.equal(a.error.code, 'E_UNKNOWN_WAIT'));
});
