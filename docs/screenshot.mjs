// Takes docs/dashboard.png, the README's picture of the dashboard:
//   make build && node docs/screenshot.mjs
// The demo fleet (`serve --simulate 5`) plus some activity: a few simulated
// reboots (boot times), a node stuck booting (a pending timeout), two nodes
// whose power command hangs (reboots in progress, waiting for their driver),
// one whose power command fails (retries, then TBFAILED with its reason).
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
  const cli = (...args) => new Promise((resolve) => {
    spawn(bin, args, { stdio: 'ignore', env: { ...process.env, STATED_URL: url.replace('http', 'ws'), STATED_TOKEN: token } }).once('exit', resolve);
  });
  const post = async (events) => {
    const r = await fetch(`${url}/v1/events`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(events) });
    if (!r.ok) throw new Error(`POST /v1/events: ${r.status} ${await r.text()}`);
  };
  await cli('node', 'add', 'pc1', 'pc2', 'pc3', '--type', 'pc3000', '--project', 'lab', '--state', 'ISUP');
  await cli('node', 'add', 'pc4', '--type', 'd710', '--project', 'lab', '--state', 'ISUP');

  browser = await puppeteer.launch({ executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
  const page = await browser.newPage();
  await page.setViewport({ width: 1360, height: 900, deviceScaleFactor: 1 });
  await page.goto(`${url}/?token=${encodeURIComponent(token)}`);
  await page.waitForSelector('.link.live');

  // Seen live by the page: simulated reboots (boot times per type), then the rest.
  await cli('node_reboot', '-w', 'sim1', 'sim2', 'sim4');
  await cli('node_reboot', '-w', 'sim1', 'sim4');
  await post([{ objtype: 'TBNODESTATE', objname: 'sim3', eventtype: 'SHUTDOWN' }]);
  await post([{ objtype: 'TBNODESTATE', objname: 'sim3', eventtype: 'PXEBOOTING' }]);
  await post([{ objtype: 'TBNODESTATE', objname: 'sim3', eventtype: 'BOOTING' }]);
  await post([{ objtype: 'TBNODESTATE', objname: 'sim5', eventtype: 'SHUTDOWN' }]);
  await post([{ objtype: 'TBCOMMAND', objname: 'pc1,pc2,pc4', eventtype: 'REBOOT' }]);
  await page.waitForFunction(() => /pc4/.test(document.querySelector('#failed')?.textContent ?? ''), { timeout: 60_000 });
  await sleep(500);
  const out = path.join(root, 'docs', 'dashboard.png');
  await page.screenshot({ path: out });
  console.log(`wrote ${out}`);
} finally {
  await browser?.close();
  daemon.kill('SIGTERM');
  await new Promise((r) => daemon.once('exit', r));
  fs.rmSync(dir, { recursive: true, force: true });
}
