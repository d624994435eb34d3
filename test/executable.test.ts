// SPEC §1: dist/stated runs alone, with no node_modules, carrying its SQLite addon.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { http, runCli, startDaemon, statedBin, tempDir } from './helpers/daemon.ts';

function nodeModulesInReach(dir: string): string | undefined {
  for (let d = dir; ; d = path.dirname(d)) {
    if (fs.existsSync(path.join(d, 'node_modules'))) return path.join(d, 'node_modules');
    if (path.dirname(d) === d) return undefined;
  }
}

test('dist/stated copied alone elsewhere runs --help and serves from its embedded SQLite addon', async (t) => {
  assert.ok(fs.existsSync(statedBin), `${statedBin} is missing: run \`node build.mjs\` first`);
  const dir = tempDir();
  const bin = path.join(dir, 'stated');
  fs.copyFileSync(statedBin, bin);
  fs.chmodSync(bin, 0o755);
  assert.equal(nodeModulesInReach(dir), undefined, 'the copy must not be able to fall back on a node_modules');

  const help = await runCli(['--help'], { bin, cwd: dir });
  assert.equal(help.code, 0, help.stderr);
  assert.match(help.stdout, /\bserve\b/);
  assert.equal(help.stderr, '');

  // A private TMPDIR shows the addon's temp copy is removed once loaded.
  const tmp = path.join(dir, 'tmp');
  fs.mkdirSync(tmp);
  const d = await startDaemon({ bin, dir, env: { TMPDIR: tmp } });
  t.after(() => d.stop());
  const health = await http(d, 'GET', '/healthz', undefined, null);
  assert.equal(health.status, 200);
  assert.ok(fs.existsSync(d.db), 'the SQLite database file exists');
  assert.deepEqual(fs.readdirSync(tmp), []);
  assert.equal(d.stderr(), '', 'nothing on stderr at start (no warnings)');
  assert.equal(await d.stop(), 0);
});
