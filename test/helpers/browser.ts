/**
 * Headless Chromium for the dashboard's tests: Debian's `chromium` (the
 * Makefile's `system` target installs it), driven by puppeteer-core, which
 * never downloads a browser of its own. CHROMIUM overrides the path.
 */
import fs from 'node:fs';
import { after } from 'node:test';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';

const CANDIDATES = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'];

export function chromiumPath(): string {
  const p = process.env.CHROMIUM ?? CANDIDATES.find((c) => fs.existsSync(c));
  if (!p || !fs.existsSync(p)) throw new Error(`no Chromium at ${p ?? CANDIDATES.join(', ')}: run \`make system\` (apt-get install chromium) or set CHROMIUM`);
  return p;
}

let shared: Promise<Browser> | null = null;

/** One browser per test file (each test opens its own pages), closed after the file. */
export function browser(): Promise<Browser> {
  shared ??= puppeteer.launch({
    executablePath: chromiumPath(),
    headless: true, // Chromium's new headless mode (--headless=new)
    // Root in a container: no user namespaces for the sandbox; /dev/shm may be small.
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run', '--no-default-browser-check'],
  });
  return shared;
}

after(async () => {
  if (shared) await (await shared).close();
});

/** A new page whose script errors fail the test that reads `errors`. */
export async function newPage(t: { after: (fn: () => unknown) => void }): Promise<{ page: Page; errors: string[] }> {
  const page = await (await browser()).newPage();
  t.after(() => page.close().catch(() => {}));
  await page.setViewport({ width: 1400, height: 900 });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push((e as Error).message));
  return { page, errors };
}
