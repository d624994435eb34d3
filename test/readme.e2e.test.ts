// Issue 12 point 9: the README's examples run when pasted in order. Every
// ```sh block of README.md (```console/```text blocks are output, not run),
// concatenated as a reader pastes them into one shell, against a fresh
// `make demo` daemon in an empty directory holding ./dist/stated.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { repoRoot, startDaemon, statedBin, tempDir } from './helpers/daemon.ts';
import { freePort } from './helpers/poll.ts';

/** The ```sh blocks of a Markdown text, in order. */
export function shellBlocks(md: string): string[] {
  return [...md.matchAll(/^```sh\n([^]*?)^```$/gm)].map((m) => m[1]!);
}

test('9. the README walkthrough runs when pasted in order', async (t) => {
  const blocks = shellBlocks(fs.readFileSync(path.join(repoRoot, 'README.md'), 'utf8'));
  assert.ok(blocks.length >= 3, `README has its walkthrough (${blocks.length} sh blocks)`);
  const dir = tempDir();
  fs.mkdirSync(path.join(dir, 'dist'));
  fs.symlinkSync(statedBin, path.join(dir, 'dist', 'stated'));
  // The README's fixed ports (the default 16505, the retry demo's 16600) become free
  // ones, so the test runs beside other daemons; nothing else of the text changes.
  const demoPort = await freePort();
  const retryPort = await freePort();
  const demo = await startDaemon({ dir, args: ['--simulate', '5', '--listen', `127.0.0.1:${demoPort}`] }); // Terminal 1: make demo
  t.after(() => demo.stop());
  const script = blocks.join('\n').replaceAll('16505', String(demoPort)).replaceAll('16600', String(retryPort));
  // As a terminal runs a paste: line after line, whatever each exits with (the retry demo's
  // node_reboot exits 1 by design); errors show as `stated: E_...` lines. What the script left
  // running in the background (the retry demo's daemon and fleet) is stopped at its end.
  const full = `trap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n${script}\n`;
  const { STATED_URL: _u, STATED_TOKEN: _t, ...env } = process.env;
  const r = await new Promise<{ code: number | null; out: string }>((resolve) => {
    // Its own process group: on a hang, the shell and everything it started go at once.
    const p = spawn('bash', ['-c', full], { cwd: dir, detached: true, env: { ...env, NO_COLOR: '1', STATED_URL: `ws://127.0.0.1:${demoPort}` }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.setEncoding('utf8').on('data', (s: string) => { out += s; });
    p.stderr.setEncoding('utf8').on('data', (s: string) => { out += s; });
    const kill = (): void => { try { process.kill(-p.pid!, 'SIGKILL'); } catch { /* gone */ } };
    t.after(kill);
    const timer = setTimeout(() => { out += '\n[the pasted README did not finish within 120 s]\n'; kill(); }, 120_000);
    p.on('close', (code) => { clearTimeout(timer); resolve({ code, out }); });
  });
  assert.equal(r.code, 0, `the pasted README failed:\n${r.out}`);
  assert.doesNotMatch(r.out, /No such file|command not found|stated: E_[A-Z_]+:/, r.out);
  // What the README says happens, happened.
  assert.match(r.out, /finished 2\/2: pc1 pc2/, 'the background waiter saw both boots');
  assert.match(r.out, /finished 3\/3: sim1 sim2 sim3/, 'node_reboot -w rebooted the demo nodes');
  assert.match(r.out, /exit [01]\n/, 'the retry demo ran to its summary');
  assert.match(r.out, /"accepted":\[\{"seq":\d+,"duplicate":false\},\{"seq":\d+,"duplicate":false\}\]/, 'the curl example was accepted');
  assert.match(r.out, /"ok":true/, '/healthz answered');
});

// A fence with text after it is no fence in CommonMark: everything up to the next one renders as code.
test('every README code fence stands on a line of its own (```, or ``` and a language)', () => {
  const lines = fs.readFileSync(path.join(repoRoot, 'README.md'), 'utf8').split('\n');
  const bad = lines.map((l, i) => [i + 1, l] as const).filter(([, l]) => l.startsWith('```') && !/^```[a-z]*$/.test(l));
  assert.deepEqual(bad, []);
  assert.equal(lines.filter((l) => l.startsWith('```')).length % 2, 0, 'fences come in pairs');
});
