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

// The failure path, live: another process holds SQLite's write lock past
// busy_timeout (5 s), so the writer thread's batch fails. Its senders get the
// error, the daemon rebuilds from the database, a timeout that came due
// meanwhile still fires, and the log stays gap-free.
test('a batch lost to a held write lock: the sender gets E_INTERNAL, the daemon recovers and a due timeout still fires', async (t) => {
  // NORMALv2/TBSETUP: 600 s NOTIFY -> 1.2 s at 0.002.
  const d = await startDaemon({ args: ['--time-scale', '0.002'] });
  t.after(() => d.stop());
  await d.runCli(['node', 'add', 'pc1', 'pc2']);
  for (const s of ['SHUTDOWN', 'PXEBOOTING', 'BOOTING', 'TBSETUP']) {
    assert.equal((await http(d, 'POST', '/v1/events', { objtype: 'TBNODESTATE', objname: 'pc1', eventtype: s })).status, 200);
  }
  const db = new Database(d.db);
  t.after(() => { if (db.open) db.close(); });
  db.exec('BEGIN IMMEDIATE'); // the write lock, until ROLLBACK
  const locked = Date.now();
  const release = setTimeout(() => db.exec('ROLLBACK'), 6500);
  t.after(() => clearTimeout(release));
  const lost = await http(d, 'POST', '/v1/events', { objtype: 'TBNODESTATE', objname: 'pc2', eventtype: 'SHUTDOWN' });
  assert.equal(lost.status, 500, lost.text);
  assert.equal(lost.json.error.code, 'E_INTERNAL');
  assert.match(lost.json.error.message, /locked|busy/i);
  await until('the rebuild line', async () => (/a batch was not committed .*state was rebuilt/.test(d.stdout()) ? true : undefined));

  // pc1's TBSETUP timeout came due under the lock and its firing was lost with
  // the batch; the rebuild fires it again by itself (no request may nudge the
  // daemon meanwhile: any commit re-arms its timer), once the lock goes.
  await sleep(Math.max(0, locked + 8500 - Date.now()));
  const h = await http(d, 'GET', '/v1/nodes/pc1/history?limit=5');
  const notify = (h.json.events as { event: { objtype: string; eventtype: string } }[]).find((e) => e.event.objtype === 'NOTIFY' && e.event.eventtype === 'TIMEOUT');
  assert.ok(notify, `no TIMEOUT NOTIFY 2 s after the lock went: ${JSON.stringify(h.json.events)}`);
  const ok = await http(d, 'POST', '/v1/events', { objtype: 'TBNODESTATE', objname: 'pc2', eventtype: 'SHUTDOWN' });
  assert.equal(ok.status, 200, ok.text);
  const seqs: number[] = [];
  const log = new Database(d.db, { readonly: true });
  try {
    for (const r of log.prepare('SELECT seq FROM events ORDER BY seq').all() as { seq: number }[]) seqs.push(r.seq);
  } finally {
    log.close();
  }
  assert.deepEqual(seqs, Array.from({ length: seqs.length }, (_, i) => i + 1), 'gap-free');
  assert.equal(seqs.at(-1), ok.json.accepted[0].seq);
});

test('stop: a WebSocket client that never answers the close is cut; a repeated signal is the same stop; exit 0', async () => {
  const d = await startDaemon();
  const ws = await connectWs(d);
  // Never reads again: the close frame goes unanswered.
  (ws.ws as unknown as { _socket: { pause(): void } })._socket.pause();
  const t0 = Date.now();
  d.proc.kill('SIGTERM');
  await sleep(100);
  d.proc.kill('SIGINT'); // Ctrl-C reaches npm and its child at once
  const code = await d.stop();
  assert.equal(code, 0, d.stderr());
  assert.ok(Date.now() - t0 < 8000, `stop took ${Date.now() - t0} ms`);
  assert.doesNotMatch(d.stderr(), /E_UNAVAILABLE/);
});
