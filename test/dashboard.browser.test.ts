// The dashboard at GET / (SPEC §3, issue 13) in a real browser: Debian's
// Chromium driven by puppeteer-core, against the built executable. The page
// must show the fleet as the daemon has it, follow it live (a colour change
// within a second of the event), come back after the daemon is killed and
// restarted without missing what happened meanwhile, and show nothing to a
// browser without a token, or to a page from another origin.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { createServer } from 'node:http';
import path from 'node:path';
import { test } from 'node:test';
import type { Page } from 'puppeteer-core';
import { duration } from '../src/timefmt.ts';
import { newPage } from './helpers/browser.ts';
import { type Daemon, connectWs, http, startDaemon, tempDir } from './helpers/daemon.ts';
import { sleep, until } from './helpers/poll.ts';

/**
 * A daemon whose idle subscriptions get a heartbeat every second: the page reads what no event
 * announces (open waits, a driver taking an action) at each heartbeat, never on a timer of its own.
 */
async function daemon(t: { after: (fn: () => unknown) => void }, args: string[], config?: object): Promise<Daemon> {
  const dir = tempDir();
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ heartbeatInterval: 1, ...config }));
  args = [...args, '--config', path.join(dir, 'config.json')];
  const d = await startDaemon({ dir, args });
  t.after(() => d.stop());
  return d;
}

const state = (node: string, s: string) => ({ objtype: 'TBNODESTATE', objname: node, eventtype: s });

async function post(d: Daemon, events: object[]): Promise<number> {
  const r = await http(d, 'POST', '/v1/events', events);
  assert.equal(r.status, 200, r.text);
  return r.json.accepted.at(-1).seq;
}

/** Opens the dashboard with the daemon's token and waits until it is live. */
async function open(t: { after: (fn: () => unknown) => void }, d: Daemon): Promise<{ page: Page; errors: string[]; requests: string[] }> {
  const { page, errors } = await newPage(t);
  const requests: string[] = [];
  page.on('request', (r) => { requests.push(r.url()); });
  const res = await page.goto(`${d.url}/?token=${encodeURIComponent(d.token)}`);
  assert.equal(res?.status(), 200);
  await page.waitForSelector('.link.live', { timeout: 15_000 });
  return { page, errors, requests };
}

interface Tile { node: string; state: string; text: string; colour: string }
const tiles = (page: Page): Promise<Tile[]> => page.$$eval('.tile', (ts) => ts.map((t) => ({
  node: (t as HTMLElement).dataset.node!, state: (t as HTMLElement).dataset.state!, text: t.textContent ?? '', colour: getComputedStyle(t).backgroundColor,
})));

/** Resolves once the node's tile shows the state in the colour the legend gives that state. */
function shows(page: Page, node: string, st: string, timeout: number): Promise<unknown> {
  return page.waitForFunction((node, st) => {
    const tile = document.querySelector<HTMLElement>(`.tile[data-node="${node}"]`);
    const swatch = document.querySelector(`.chip[data-state="${st}"] .swatch`);
    return tile !== null && swatch !== null && tile.dataset.state === st
      && getComputedStyle(tile).backgroundColor === getComputedStyle(swatch).backgroundColor;
  }, { timeout, polling: 'mutation' }, node, st);
}

const text = (page: Page, sel: string): Promise<string> => page.$eval(sel, (e) => e.textContent ?? '');

test('with a token the page shows every node of a simulated fleet with its state, counts per state, and the token leaves the address bar', async (t) => {
  const d = await daemon(t, ['--simulate', '12']);
  await post(d, [state('sim2', 'SHUTDOWN'), state('sim3', 'SHUTDOWN'), state('sim7', 'TBSETUP')]);
  const { page, errors, requests } = await open(t, d);
  const { nodes } = (await http(d, 'GET', '/v1/nodes')).json;
  assert.equal(nodes.length, 12);
  await page.waitForFunction(() => document.querySelectorAll('.tile').length === 12, { timeout: 10_000 });
  const shown = await tiles(page);
  for (const n of nodes) {
    const s = shown.find((x) => x.node === n.node);
    assert.ok(s, `a tile for ${n.node}`);
    assert.equal(s.state, n.state, `${n.node}'s state`);
    for (const part of [n.node, n.state, n.mode, n.type, n.project]) assert.ok(s.text.includes(part), `${n.node}'s tile shows ${part}: ${s.text}`);
  }
  const colour = (id: string) => shown.find((x) => x.node === id)!.colour;
  assert.equal(colour('sim2'), colour('sim3'), 'one colour per state');
  assert.notEqual(colour('sim2'), colour('sim1'), 'SHUTDOWN and ISUP differ');
  assert.notEqual(colour('sim7'), colour('sim1'), 'TBSETUP and ISUP differ');
  assert.match(await text(page, '#counts'), /ISUP 9.*SHUTDOWN 2.*TBSETUP 1/);

  // The filters narrow the grid.
  await page.select('#f-state', 'SHUTDOWN');
  assert.deepEqual((await page.$$eval('.tile:not([hidden])', (ts) => ts.map((x) => (x as HTMLElement).dataset.node))).sort(), ['sim2', 'sim3']);
  assert.match(await text(page, '#shown'), /^2 of 12 nodes shown/);

  assert.equal(await page.evaluate(() => location.href), `${d.url}/`, 'the token is out of the address bar');
  assert.equal(await page.evaluate(() => sessionStorage.getItem('stated.token')), d.token, 'kept for the tab');
  assert.deepEqual(await page.cookies(), [], 'no cookie is ever set');
  // Everything comes from the daemon: no CDN, nothing from outside (it works with the network cut).
  assert.ok(requests.length >= 2);
  for (const u of requests) assert.ok(u.startsWith(`${d.url}/`) || u.startsWith('data:'), `the page fetched ${u}`);
  assert.deepEqual(errors, []);
});

test("a node's colour changes within a second of an event (the acceptance criterion)", async (t) => {
  const d = await daemon(t, ['--simulate', '5']);
  const { page, errors } = await open(t, d);
  const before = (await tiles(page)).find((x) => x.node === 'sim4')!;
  assert.equal(before.state, 'ISUP');
  for (const st of ['SHUTDOWN', 'BOOTING', 'TBSETUP']) {
    // Watching starts before the event is sent: one second from sending, not from the commit.
    const seen = shows(page, 'sim4', st, 1000);
    await post(d, [state('sim4', st)]);
    await seen;
  }
  const after = (await tiles(page)).find((x) => x.node === 'sim4')!;
  assert.notEqual(after.colour, before.colour);
  // A node added since the page loaded (inventory changes are not events) comes with its first event.
  assert.equal((await d.runCli(['node', 'add', 'pc1', '--state', 'ISUP'])).code, 0);
  const added = shows(page, 'pc1', 'SHUTDOWN', 5000);
  await post(d, [state('pc1', 'SHUTDOWN')]);
  await added;
  assert.deepEqual(errors, []);
});

test("a user token's page shows its project's nodes only, and only their events", async (t) => {
  const d = await daemon(t, ['--simulate', '3']);
  assert.equal((await d.runCli(['node', 'add', 'lab1', 'lab2', '--project', 'lab', '--state', 'ISUP'])).code, 0);
  const created = await d.runCli(['token', 'create', '--role', 'user', '--project', 'lab']);
  assert.equal(created.code, 0, created.stderr);
  const { page, errors } = await newPage(t);
  await page.goto(`${d.url}/?token=${encodeURIComponent(created.stdout.trim())}`);
  await page.waitForSelector('.link.live', { timeout: 15_000 });
  await page.waitForFunction(() => document.querySelectorAll('.tile').length === 2, { timeout: 5000 });
  assert.deepEqual((await tiles(page)).map((x) => x.node), ['lab1', 'lab2']);
  await post(d, [state('sim1', 'TBSETUP')]);
  const seq = await post(d, [state('lab2', 'TBSETUP')]);
  await shows(page, 'lab2', 'TBSETUP', 5000);
  assert.ok(Number(await page.$eval('#link', (e) => (e as HTMLElement).dataset.seq)) >= seq);
  assert.deepEqual((await tiles(page)).map((x) => x.node), ['lab1', 'lab2'], "another project's event brings no tile");
  assert.doesNotMatch(await text(page, '#notes'), /sim1/);
  assert.deepEqual(errors, []);
});

test('a TBFAILED shows with its reason, as the daemon logged it, and the retries as notifications', async (t) => {
  const d = await daemon(t, ['--time-scale', '0.01'], { retryDelay: 1, drivers: { pc: { kind: 'command', commands: { REBOOT: ['false'] } } } });
  const add = await d.runCli(['node', 'add', 'pc1', 'pc2', '--type', 'pc', '--state', 'ISUP', '--project', 'lab']);
  assert.equal(add.code, 0, add.stderr);
  const { page, errors } = await open(t, d);
  await post(d, [{ objtype: 'TBCOMMAND', objname: 'pc2', eventtype: 'REBOOT' }]);
  await page.waitForFunction(() => /pc2/.test(document.querySelector('#failed')?.textContent ?? ''), { timeout: 30_000 });
  const hist = (await http(d, 'GET', '/v1/nodes/pc2/history')).json.events as { event: { objtype: string; reason: { code: string; attempts: number } } }[];
  const failed = hist.find((e) => e.event.objtype === 'TBFAILED')!.event;
  const li = await text(page, '#failed li');
  assert.ok(li.includes(failed.reason.code) && li.includes(`after ${failed.reason.attempts} attempt(s)`), `the reason ${JSON.stringify(failed.reason)} in: ${li}`);
  assert.match(li, /pc2\s*REBOOT/);
  assert.match(await text(page, '#notes'), /pc2\s*DRIVER_FAILED/);
  assert.equal(await text(page, '#reboots'), 'none', 'a reboot given up is no longer in progress');
  assert.deepEqual(errors, []);
});

test('reboots in progress with attempt n/max and what they wait for, pending timeouts with time left, waits, boot times, history on click', async (t) => {
  const d = await daemon(t, ['--simulate', '4'], { drivers: { slow: { kind: 'command', commands: { REBOOT: ['sleep', '30'] }, timeout: 120 } } });
  assert.equal((await d.runCli(['node', 'add', 'pc9', '--type', 'slow', '--state', 'ISUP'])).code, 0);
  const { page, errors } = await open(t, d);

  await post(d, [{ objtype: 'TBCOMMAND', objname: 'pc9', eventtype: 'REBOOT' }]);
  await page.waitForFunction(() => /pc9/.test(document.querySelector('#reboots')?.textContent ?? ''), { timeout: 5000 });
  assert.match(await text(page, '#reboots tr[data-node="pc9"]'), /REBOOT\s*attempt 1\/3\s*waits for its driver\s*in ISUP/);
  assert.equal(await page.$eval('.tile[data-node="pc9"]', (e) => e.classList.contains('busy')), true);

  await post(d, [state('sim1', 'BOOTING')]); // NORMALv2 BOOTING: 180 s, then REBOOT (Emulab's table)
  await page.waitForFunction(() => /sim1/.test(document.querySelector('#timeouts')?.textContent ?? ''), { timeout: 5000 });
  assert.match(await text(page, '#timeouts tr[data-node="sim1"]'), /NORMALv2\/BOOTING\s*REBOOT\s*(2m5\ds|3m00s) left/);

  // Open waits, read from GET /v1/waits (more in the waits test below).
  const c = await connectWs(d);
  t.after(() => c.close());
  const w = await c.request('initStateWait', { states: ['ISUP'], nodes: ['sim1', 'sim2'] });
  assert.equal(w.ok, true, JSON.stringify(w));
  await post(d, [{ objtype: 'TBCOMMAND', objname: 'sim3', eventtype: 'REBOOT' }]);
  await page.waitForFunction((id) => /0\/2 done/.test(document.querySelector(`[data-wait="${id}"]`)?.textContent ?? ''), { timeout: 5000 }, w.wait);
  await post(d, [state('sim1', 'ISUP')]);
  await page.waitForFunction((id) => /1\/2 done/.test(document.querySelector(`[data-wait="${id}"]`)?.textContent ?? ''), { timeout: 5000 }, w.wait);

  // Boot times: a live SHUTDOWN -> ISUP pair counts for the node's type.
  const boots = async (): Promise<number> => Number(await page.$eval('#boots', (e) => e.querySelector('tr[data-type="sim"] td:nth-child(2)')?.textContent ?? '0'));
  const n0 = await boots();
  await post(d, [state('sim2', 'SHUTDOWN')]);
  await post(d, [state('sim2', 'ISUP')]);
  await page.waitForFunction((n) => Number(document.querySelector('#boots tr[data-type="sim"] td:nth-child(2)')?.textContent ?? '0') === n + 1, { timeout: 5000 }, n0);

  // History on click, then live.
  await page.click('.tile[data-node="sim1"]');
  await page.waitForFunction(() => document.querySelector<HTMLDialogElement>('#history')?.open && /BOOTING/.test(document.querySelector('#h-events')?.textContent ?? ''), { timeout: 5000 });
  const seq = await post(d, [state('sim1', 'TBSETUP')]);
  await page.waitForSelector(`#h-events tr[data-seq="${seq}"]`, { timeout: 5000 });
  // Oldest first, each once: what the log holds for sim1, in its order (the live ones included).
  const logged = ((await http(d, 'GET', '/v1/nodes/sim1/history?limit=200')).json.events as { seq: number }[]).map((e) => e.seq).sort((a, b) => a - b);
  await page.waitForFunction((n) => document.querySelectorAll('#h-events tr[data-seq]').length >= n, { timeout: 5000 }, logged.length);
  const shown = await page.$$eval('#h-events tr[data-seq]', (rows) => rows.map((r) => Number(r.getAttribute('data-seq'))));
  assert.deepEqual(shown, logged);
  assert.ok(logged.includes(seq));
  assert.deepEqual(errors, []);
});

/** The text of the wait's entry in the waits panel ('' while it is not there). */
const waitText = (page: Page, id: string): Promise<string> => page.evaluate((id) => document.querySelector(`#waits [data-wait="${id}"]`)?.textContent ?? '', id);
function waitShows(page: Page, id: string, re: RegExp, timeout = 10_000): Promise<unknown> {
  return page.waitForFunction((id, src) => new RegExp(src).test(document.querySelector(`#waits [data-wait="${id}"]`)?.textContent ?? ''), { timeout, polling: 200 }, id, re.source);
}

test('open waits as GET /v1/waits lists them: a waitForState shows on a quiet fleet, moves with its nodes, names a failed node and why, and leaves when its owner collects it', async (t) => {
  const d = await daemon(t, ['--simulate', '3', '--time-scale', '0.01'], { retryDelay: 1, drivers: { bad: { kind: 'command', commands: { REBOOT: ['false'] } } } });
  assert.equal((await d.runCli(['node', 'add', 'pc1', '--type', 'bad', '--state', 'ISUP'])).code, 0);
  const { page, errors } = await open(t, d);
  assert.equal(await text(page, '#waits'), 'none');

  // The CLI in the background: registering a wait is no event, yet the panel must show it.
  const cli = d.runCli(['waitForState', 'sim1', 'sim2', '-t', '120']);
  let id = '';
  for (let i = 0; !id; i++) {
    assert.ok(i < 100, 'waitForState registers its wait');
    await new Promise((r) => setTimeout(r, 100));
    id = ((await http(d, 'GET', '/v1/waits')).json.waits as { wait: string; remaining: string[] }[]).find((w) => w.remaining.join() === 'sim1,sim2')?.wait ?? '';
  }
  await waitShows(page, id, /for ISUP: 0\/2 done.*waiting on sim1 sim2/);
  assert.equal(await text(page, '#n-waits'), '1');

  // A simulated reboot of sim1 (node_reboot -w, its own wait meanwhile): the CLI's wait is half done.
  const r1 = await d.runCli(['node_reboot', '-w', 'sim1']);
  assert.equal(r1.code, 0, r1.stderr);
  await waitShows(page, id, /1\/2 done.*waiting on sim2$/);
  assert.doesNotMatch(await waitText(page, id), /sim1/, 'sim1 is no longer waited on');

  // A wait whose node fails: counted as failed, with the node, the reason's code and the reason.
  const c = await connectWs(d);
  t.after(() => c.close());
  const bad = await c.request('initStateWait', { states: ['ISUP'], nodes: ['pc1'], command: 'REBOOT' });
  assert.equal(bad.ok, true, JSON.stringify(bad));
  await waitShows(page, bad.wait, /0\/1 done, 1 failed/, 30_000);
  const listed = ((await http(d, 'GET', '/v1/waits')).json.waits as { wait: string; failed: { node: string; reason: string; code: string }[] }[]).find((w) => w.wait === bad.wait)!;
  const f = listed.failed[0]!;
  const shown = await waitText(page, bad.wait);
  assert.ok(shown.includes(`${f.node} ${f.code} ${f.reason}`), `the failure ${JSON.stringify(f)} in: ${shown}`);
  assert.match(shown, /finished/, 'no node left to wait on');

  // sim2 comes up: the CLI's wait is done, the CLI collects it and it leaves the panel, with no event to say so.
  const r2 = await d.runCli(['node_reboot', '-w', 'sim2']);
  assert.equal(r2.code, 0, r2.stderr);
  assert.equal((await cli).code, 0);
  await page.waitForFunction((id) => !document.querySelector(`#waits [data-wait="${id}"]`), { timeout: 10_000, polling: 200 }, id);
  // The failed one leaves when its owner ends it too.
  assert.equal((await c.request('endStateWait', { wait: bad.wait })).ok, true);
  await page.waitForFunction(() => document.querySelector('#waits')?.textContent === 'none', { timeout: 10_000, polling: 200 });
  assert.equal(await text(page, '#n-waits'), '');
  assert.deepEqual(errors, []);
});

test("boot figures from GET /v1/stats: a boot before the page opened shows with the daemon's figures, one seen live adds to them, a reload counts nothing twice", async (t) => {
  const d = await daemon(t, ['--simulate', '3', '--time-scale', '0.01']);
  const r1 = await d.runCli(['node_reboot', '-w', 'sim1']);
  assert.equal(r1.code, 0, r1.stderr);
  const before = (await http(d, 'GET', '/v1/stats')).json;
  const sim = before.types.find((x: { type: string }) => x.type === 'sim');
  assert.equal(sim.boots.count, 1);
  const { page, errors } = await open(t, d);
  const row = (): Promise<string[]> => page.$$eval('#boots tr[data-type="sim"] td', (tds) => tds.map((x) => x.textContent ?? ''));
  await page.waitForSelector('#boots tr[data-type="sim"]', { timeout: 5000 });
  const [type, count, p50, p95, max] = await row();
  assert.deepEqual([type, count], ['sim', '1'], 'the boot before the page opened, from the daemon');
  assert.deepEqual([p50, p95, max], [sim.boots.p50, sim.boots.p95, sim.boots.max].map(duration), "the daemon's percentiles");
  assert.match(await text(page, '#boots-since'), /^since /);

  const r2 = await d.runCli(['node_reboot', '-w', 'sim2']);
  assert.equal(r2.code, 0, r2.stderr);
  await page.waitForFunction(() => document.querySelector('#boots tr[data-type="sim"] td:nth-child(2)')?.textContent === '2', { timeout: 5000, polling: 200 });
  await page.reload();
  await page.waitForSelector('.link.live', { timeout: 15_000 });
  await page.waitForFunction(() => document.querySelector('#boots tr[data-type="sim"] td:nth-child(2)')?.textContent === '2', { timeout: 5000, polling: 200 });
  assert.equal((await http(d, 'GET', '/v1/stats')).json.types.find((x: { type: string }) => x.type === 'sim').boots.count, 2);
  assert.equal((await row())[1], '2', 'a reload counts each boot once');
  assert.deepEqual(errors, []);
});

test("a user token: the stats panel says calmly that the fleet's figures are not its to read, and the grid and its waits still work", async (t) => {
  const d = await daemon(t, ['--simulate', '2']);
  assert.equal((await d.runCli(['node', 'add', 'lab1', 'lab2', '--project', 'lab', '--state', 'ISUP'])).code, 0);
  const created = await d.runCli(['token', 'create', '--role', 'user', '--project', 'lab']);
  assert.equal(created.code, 0, created.stderr);
  const user = created.stdout.trim();
  assert.equal((await http(d, 'GET', '/v1/stats', undefined, user)).status, 403, 'the daemon refuses it');
  const { page, errors } = await newPage(t);
  await page.goto(`${d.url}/?token=${encodeURIComponent(user)}`);
  await page.waitForSelector('.link.live', { timeout: 15_000 });
  await page.waitForFunction(() => /for operator and admin tokens/.test(document.querySelector('#boots')?.textContent ?? ''), { timeout: 5000 });
  assert.match(await text(page, '#boots'), /needs an operator or admin token/, "the daemon's own words");
  assert.equal(await page.$eval('#link', (e) => e.className), 'link live', 'still live: a refused panel is not a refused token');
  // The grid still follows its nodes, and a boot it sees live is still counted.
  await page.waitForFunction(() => document.querySelectorAll('.tile').length === 2, { timeout: 5000 });
  await post(d, [state('lab2', 'SHUTDOWN')]);
  await shows(page, 'lab2', 'SHUTDOWN', 5000);
  await post(d, [state('lab2', 'ISUP')]);
  await shows(page, 'lab2', 'ISUP', 5000);
  await page.waitForFunction(() => document.querySelector('#boots tr[data-type="pc"] td:nth-child(2)')?.textContent === '1', { timeout: 5000, polling: 200 });
  // Its waits: those on its project's nodes, not another project's.
  const c = await connectWs(d);
  t.after(() => c.close());
  const mine = await c.request('initStateWait', { states: ['TBSETUP'], nodes: ['lab1'] });
  const theirs = await c.request('initStateWait', { states: ['TBSETUP'], nodes: ['sim1'] });
  await waitShows(page, mine.wait, /0\/1 done/);
  assert.equal(await page.$(`#waits [data-wait="${theirs.wait}"]`), null);
  assert.deepEqual(errors, []);
});

test('a reboot waiting for its driver (no driver for the type, within the agent grace period) says so, until an agent takes it', async (t) => {
  const d = await daemon(t, [], { agentGrace: 600 });
  assert.equal((await d.runCli(['node', 'add', 'pc1', '--type', 'nodrv', '--state', 'ISUP'])).code, 0);
  const { page, errors } = await open(t, d);
  await post(d, [{ objtype: 'TBCOMMAND', objname: 'pc1', eventtype: 'REBOOT' }]);
  await page.waitForFunction(() => /pc1/.test(document.querySelector('#reboots')?.textContent ?? ''), { timeout: 5000 });
  for (let i = 0; !(await http(d, 'GET', '/v1/nodes/pc1')).json.reboot.waitingForDriver; i++) {
    assert.ok(i < 50, 'the daemon says its action waits for a driver');
    await new Promise((r) => setTimeout(r, 100));
  }
  await page.waitForFunction(() => /waits for a driver to connect/.test(document.querySelector('#reboots tr[data-node="pc1"]')?.textContent ?? ''), { timeout: 5000, polling: 200 });
  assert.match(await text(page, '#reboots tr[data-node="pc1"]'), /REBOOT\s*attempt 1\/3\s*waits for a driver to connect/);
  // A power agent for the type connects and takes the action (it holds it): no event says so, yet the row follows.
  const agent = await connectWs(d);
  t.after(() => agent.close());
  assert.equal((await agent.request('registerAgent', { types: ['nodrv'] })).ok, true);
  await agent.push((m) => m.type === 'action' && m.node === 'pc1');
  await page.waitForFunction(() => /waits for its driver$/.test(document.querySelector('#reboots tr[data-node="pc1"] td:nth-child(4)')?.textContent ?? ''), { timeout: 10_000, polling: 200 });
  assert.deepEqual(errors, []);
});

test('the page survives a daemon restart: it reconnects and shows what happened while it was away, with no gap', async (t) => {
  const first = await daemon(t, ['--simulate', '6', '--time-scale', '0.01']);
  const { page, errors } = await open(t, first);
  await post(first, [state('sim1', 'SHUTDOWN')]);
  await shows(page, 'sim1', 'SHUTDOWN', 5000);

  // Offline first, so the page cannot reconnect before the events below are committed: it must fetch them as a replay.
  await page.setOfflineMode(true);
  await first.kill9();
  const d = await startDaemon({ dir: first.dir, args: ['--simulate', '6', '--time-scale', '0.01', '--listen', `127.0.0.1:${first.port}`] });
  t.after(() => d.stop());
  await post(d, [state('sim2', 'SHUTDOWN')]);
  await post(d, [state('sim3', 'TBSETUP'), state('sim4', 'SHUTDOWN')]);
  const last = await post(d, [state('sim5', 'SHUTDOWN')]);
  await page.waitForFunction(() => !document.querySelector('.link.live'), { timeout: 5000 });
  await page.setOfflineMode(false);

  for (const [node, st] of [['sim2', 'SHUTDOWN'], ['sim3', 'TBSETUP'], ['sim4', 'SHUTDOWN'], ['sim5', 'SHUTDOWN']] as const) await shows(page, node, st, 20_000);
  await page.waitForFunction((s) => Number(document.querySelector<HTMLElement>('#link')?.dataset.seq) >= s, { timeout: 5000 }, last);
  // And it is live again.
  const seen = shows(page, 'sim6', 'BOOTING', 5000);
  await post(d, [state('sim6', 'BOOTING')]);
  await seen;
  const server = (await http(d, 'GET', '/v1/nodes')).json.nodes as { node: string; state: string }[];
  const shown = await tiles(page);
  for (const n of server) assert.equal(shown.find((x) => x.node === n.node)?.state, n.state, `${n.node} as the daemon has it`);
  assert.deepEqual(errors, []);
});

test('back after retention trimmed what it missed: the page reloads the fleet instead of showing a gap', async (t) => {
  const first = await daemon(t, ['--simulate', '4'], { retentionEvents: 1000, sweepInterval: 0.2 });
  const { page, errors } = await open(t, first);
  // Away: offline (so it stays away) and its connection gone with the daemon, which comes back on the same port.
  await page.setOfflineMode(true);
  await first.kill9();
  const d = await startDaemon({ dir: first.dir, args: ['--simulate', '4', '--config', path.join(first.dir, 'config.json'), '--listen', `127.0.0.1:${first.port}`] });
  t.after(() => d.stop());
  // sim2 changes while the page is away, then enough happens that the log no longer reaches back to the page's seq.
  await post(d, [state('sim2', 'SHUTDOWN')]);
  for (let i = 0; i < 3; i++) await post(d, Array.from({ length: 500 }, (_, k) => ({ objtype: 'NOTIFY', objname: 'sim1', eventtype: 'FILLER', message: `${i}.${k}` })));
  const c = await connectWs(d);
  t.after(() => c.close());
  await until(async () => {
    const r = await c.request('subscribe', { since: 1 });
    if (r.ok) await c.request('unsubscribe', { sub: r.sub }); // not trimmed yet: try again, without a stream left open
    return !r.ok && r.error.code === 'E_HISTORY_COMPACTED';
  }, 'retention to trim the log', 20_000);
  await page.setOfflineMode(false);
  await shows(page, 'sim2', 'SHUTDOWN', 20_000);
  const seen = shows(page, 'sim3', 'BOOTING', 5000);
  await post(d, [state('sim3', 'BOOTING')]);
  await seen;
  assert.deepEqual(errors, []);
});

test('without a token the page is refused (401, a token form, no data); a bad token is refused; a reload keeps working', async (t) => {
  const d = await daemon(t, ['--simulate', '3']);
  // What a browser sends when it navigates: Accept text/html. (Without it, the usual JSON 401, as events.e2e checks.)
  const html = { accept: 'text/html,application/xhtml+xml,*/*;q=0.8' };
  for (const [what, headers] of [['no token', html], ['a bad token', { ...html, authorization: 'Bearer st_nope' }], ['a good token in a cookie', { ...html, cookie: `token=${d.token}; stated.token=${d.token}` }]] as const) {
    const res = await fetch(`${d.url}/`, { headers });
    const body = await res.text();
    assert.equal(res.status, 401, what);
    assert.match(res.headers.get('content-type') ?? '', /text\/html/);
    assert.ok(!body.includes('sim1') && !body.includes('/v1/ws'), `${what}: the form carries no data and not the dashboard's code`);
    assert.equal(res.headers.get('set-cookie'), null);
  }
  const { page, errors } = await newPage(t);
  await page.goto(`${d.url}/`);
  await page.waitForSelector('input[name="token"]');
  assert.equal(await page.$('.tile'), null);

  await page.goto(`${d.url}/?token=st_nope`);
  await page.waitForFunction(() => /refused/.test(document.querySelector('#why')?.textContent ?? ''));
  assert.equal(await page.evaluate(() => location.href), `${d.url}/`, 'the refused token is out of the address bar too');

  // The form sends the token in the address (GET); the dashboard takes it out at once.
  await page.type('input[name="token"]', d.token);
  await Promise.all([page.waitForNavigation(), page.click('button[type="submit"]')]);
  await page.waitForSelector('.link.live', { timeout: 15_000 });
  assert.equal(await page.evaluate(() => location.href), `${d.url}/`);
  // A reload has no token in the address: the tab's copy brings the page back.
  await page.reload();
  await page.waitForSelector('.link.live', { timeout: 15_000 });
  assert.equal(await page.evaluate(() => location.href), `${d.url}/`);
  assert.equal(await page.$$eval('.tile', (ts) => ts.length), 3);
  assert.deepEqual(errors, []);
});

test('a page from another origin cannot open the WebSocket even with a token, nor read the API (SPEC §3)', async (t) => {
  const d = await daemon(t, ['--simulate', '2']);
  const foreign = createServer((_req, res) => { res.writeHead(200, { 'content-type': 'text/html' }); res.end('<!doctype html><title>elsewhere</title>'); });
  await new Promise<void>((r) => foreign.listen(0, '127.0.0.1', r));
  t.after(() => foreign.close());
  const { page } = await newPage(t);
  await page.goto(`http://127.0.0.1:${(foreign.address() as { port: number }).port}/`);
  const tryWs = (url: string) => new Promise<string>((res) => {
    const ws = new WebSocket(url);
    ws.onopen = () => { res('open'); ws.close(); };
    ws.onclose = () => res('refused');
  });
  const wsUrl = `${d.wsUrl}/v1/ws?token=${encodeURIComponent(d.token)}`;
  assert.equal(await page.evaluate(tryWs, wsUrl), 'refused', 'the browser sent the other page\'s Origin');
  const read = await page.evaluate((url, token) => fetch(url, { headers: { authorization: `Bearer ${token}` } }).then((r) => `read ${r.status}`, () => 'blocked'), `${d.url}/v1/nodes`, d.token);
  assert.equal(read, 'blocked', 'no CORS: the answer is not the other page\'s to read');
  // The same WebSocket from the daemon's own page opens: it is the Origin that was refused.
  const own = await open(t, d);
  assert.equal(await own.page.evaluate(tryWs, wsUrl), 'open');
});

test('5,000 nodes: every tile shows, and a burst of 5,000 events costs under 100 renders (one per frame), not one per event', async (t) => {
  const d = await daemon(t, ['--simulate', '5000']);
  const { page, errors } = await open(t, d);
  await page.waitForFunction(() => document.querySelectorAll('.tile').length === 5000, { timeout: 30_000 });
  const r0 = await page.evaluate(() => Number(document.body.dataset.renders));
  const events = Array.from({ length: 5000 }, (_, i) => state(`sim${i + 1}`, 'SHUTDOWN'));
  await post(d, events);
  await page.waitForFunction(() => document.querySelectorAll('.tile[data-state="SHUTDOWN"]').length === 5000, { timeout: 30_000, polling: 200 });
  const renders = (await page.evaluate(() => Number(document.body.dataset.renders))) - r0;
  t.diagnostic(`${renders} renders for 5000 events`);
  assert.ok(renders < 100, `renders are per frame, not per event: ${renders} for 5000 events`);
  assert.match(await text(page, '#counts'), /SHUTDOWN 5000/);
  assert.deepEqual(errors, []);
});

/** Resolves once the page has made no request for a second; fails with the last ones if it never stops. */
const quiet = (page: Page, when: string, log: string[]): Promise<void> => page.waitForNetworkIdle({ idleTime: 1000, timeout: 10_000 })
  .catch(() => assert.fail(`${when}: the page never stopped making requests, the last: ${log.slice(-6).join(', ')}`));

test('live over the WebSocket, never polled: an idle page makes no HTTP request while its 1 s timer redraws; a NOTIFY costs none, a state change exactly one GET /v1/waits', async (t) => {
  // Heartbeats only after 30 s of silence: none falls in this test, so any request seen is the page's own doing.
  const d = await daemon(t, ['--simulate', '3'], { heartbeatInterval: 30 });
  // Work for the 1 s timer: a pending timeout (time left) and an open wait (its age).
  await post(d, [state('sim1', 'BOOTING')]);
  const c = await connectWs(d);
  t.after(() => c.close());
  const w = await c.request('initStateWait', { states: ['ISUP'], nodes: ['sim1'] });
  assert.equal(w.ok, true, JSON.stringify(w));
  const { page, errors, requests } = await open(t, d);
  await page.waitForSelector('#timeouts tr[data-node="sim1"]', { timeout: 5000 });
  await waitShows(page, w.wait, /0\/1 done/);
  await quiet(page, 'after load', requests);
  // The recorder does see the page's reads: those made at load.
  for (const p of ['/v1/nodes', '/v1/stats', '/v1/waits']) assert.ok(requests.includes(`${d.url}${p}`), `${p} read at load: ${requests.join(' ')}`);

  const seen: string[] = [];
  page.on('request', (r) => { seen.push(`${r.method()} ${r.url().slice(d.url.length)}`); });
  const left = (): Promise<string> => text(page, '#timeouts tr[data-node="sim1"]');
  const left0 = await left();
  await sleep(3000);
  assert.notEqual(await left(), left0, 'the 1 s timer redrew the time left');
  assert.deepEqual(seen, [], 'an idle page makes no HTTP request');

  // A NOTIFY settles no wait: shown from the socket, nothing read for it.
  await post(d, [{ objtype: 'NOTIFY', objname: 'sim2', eventtype: 'QUIETNOTE', message: 'just so' }]);
  await page.waitForFunction(() => /sim2\s*QUIETNOTE/.test(document.querySelector('#notes')?.textContent ?? ''), { timeout: 5000 });
  await quiet(page, 'after a NOTIFY', seen);
  assert.deepEqual(seen, [], 'a NOTIFY makes no HTTP request');

  // A state change may settle a wait: the tile follows from the socket, and the page reads the waits once (status goes over the socket).
  const up = shows(page, 'sim1', 'ISUP', 5000);
  await post(d, [state('sim1', 'ISUP')]);
  await up;
  await waitShows(page, w.wait, /1\/1 done/);
  await quiet(page, 'after a state event', seen);
  assert.deepEqual(seen, ['GET /v1/waits'], 'a state event reads GET /v1/waits once, and nothing else');
  assert.deepEqual(errors, []);
});
