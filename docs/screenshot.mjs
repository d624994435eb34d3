// Takes docs/dashboard.png, the README's picture of the dashboard:
//   make build && node docs/screenshot.mjs
// The demo fleet (`serve --simulate 5`) plus some activity: simulated reboots
// before the page opens (the daemon's boot figures, GET /v1/stats) and after
// (seen live), a `waitForState` part done (an open wait, GET /v1/waits), a
// node stuck booting (a pending timeout), three rack nodes whose power command
// hangs under `node_reboot -w` (reboots in progress, a second open wait), one
// whose power command fails (retries, then TBFAILED with its reason).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const puppeteer = createRequire(import.meta.url)('puppeteer-core');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stated-shot-'));
fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({
  retryDelay: 2,
  drivers: {
    pc3000: { kind: 'command', commands: { REBOOT: ['sleep', '600'] }, timeout: 900 },
    d710: { kind: 'command', commands: { REBOOT: ['false'] } },
  },
}));
const db = path.join(dir, 'stated.db');
const bin = path.join(root, 'dist', 'stated');
const daemon = spawn(bin, ['serve', '--simulate', '5', '--db', db, '--listen', '127.0.0.1:0', '--config', path.join(dir, 'config.json')], { stdio: ['ignore', 'pipe', 'inherit'] });
let browser;
/** CLI processes left running for the picture (their waits stay open); stopped at the end. */
const background = [];
try {
  const url = await new Promise((resolve, reject) => {
    let out = '';
    daemon.stdout.on('data', (b) => {
      out += b;
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) resolve(m[1]);
    });
    daemon.once('exit', (code) => reject(new Error(`stated serve exited ${code}`)));
  });
  await sleep(200);
  const token = fs.readFileSync(`${db}.token`, 'utf8').trim();
  const spawnCli = (...args) => spawn(bin, args, { stdio: 'ignore', env: { ...process.env, STATED_URL: url.replace('http', 'ws'), STATED_TOKEN: token } });
  const cli = (...args) => new Promise((resolve) => { spawnCli(...args).once('exit', resolve); });
  const post = async (events) => {
    const r = await fetch(`${url}/v1/events`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(events) });
    if (!r.ok) throw new Error(`POST /v1/events: ${r.status} ${await r.text()}`);
  };
  await cli('node', 'add', 'pc1', 'pc2', 'pc3', '--type', 'pc3000', '--project', 'lab', '--state', 'ISUP');
  await cli('node', 'add', 'pc4', '--type', 'd710', '--project', 'lab', '--state', 'ISUP');

  // Before the page opens: these boots are in the daemon's figures.
  await cli('node_reboot', '-w', 'sim1', 'sim2', 'sim4');

  browser = await puppeteer.launch({ executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
  const page = await browser.newPage();
  await page.setViewport({ width: 1360, height: 1000, deviceScaleFactor: 1 });
  await page.goto(`${url}/?token=${encodeURIComponent(token)}`);
  await page.waitForSelector('.link.live');

  // An open wait, registered before what it waits for; then seen live: more reboots, a node stuck booting.
  background.push(spawnCli('waitForState', 'sim2', 'sim3', 'sim5', '-t', '600'));
  await sleep(1000);
  await cli('node_reboot', '-w', 'sim1', 'sim2', 'sim4');
  await post([{ objtype: 'TBNODESTATE', objname: 'sim3', eventtype: 'SHUTDOWN' }]);
  await post([{ objtype: 'TBNODESTATE', objname: 'sim3', eventtype: 'PXEBOOTING' }]);
  await post([{ objtype: 'TBNODESTATE', objname: 'sim3', eventtype: 'BOOTING' }]);
  await post([{ objtype: 'TBNODESTATE', objname: 'sim5', eventtype: 'SHUTDOWN' }]);
  // Rack nodes: a node_reboot -w that hangs in their power command (a second wait), one whose power command fails.
  background.push(spawnCli('node_reboot', '-w', 'pc1', 'pc2', 'pc3'));
  await post([{ objtype: 'TBCOMMAND', objname: 'pc4', eventtype: 'REBOOT' }]);
  await page.waitForFunction(() => /pc4/.test(document.querySelector('#failed')?.textContent ?? '')
    && document.querySelectorAll('#waits [data-wait]').length === 2, { timeout: 60_000 });
  await sleep(1500);
  const out = path.join(root, 'docs', 'dashboard.png');
  await page.screenshot({ path: out });
  console.log(`wrote ${out}`);
} finally {
  await browser?.close();
  for (const p of background) p.kill('SIGTERM');
  daemon.kill('SIGTERM');
  await new Promise((r) => daemon.once('exit', r));
  fs.rmSync(dir, { recursive: true, force: true });
}
