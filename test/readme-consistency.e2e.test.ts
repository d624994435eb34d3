// What the README promises against what the executable and the code do: the
// metrics /metrics serves, the reason codes the code hands out, and the
// listen address the shipped unit suggests (SPEC §3, §6; "everything a user
// sees has a home in the README").
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { http, repoRoot, startDaemon } from './helpers/daemon.ts';

const readme = fs.readFileSync(path.join(repoRoot, 'README.md'), 'utf8');

/** The README's text from the heading `title` to the next heading of the same level. */
function section(title: string): string {
  const start = readme.indexOf(`\n${title}\n`);
  assert.ok(start >= 0, `README has a "${title}" section`);
  const level = title.split(' ')[0]!;
  const end = readme.indexOf(`\n${level} `, start + title.length + 2);
  return readme.slice(start, end < 0 ? undefined : end);
}

function sources(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? sources(p) : p.endsWith('.ts') ? [p] : [];
  });
}

test('every metric the daemon serves at /metrics is in the README metrics table', async (t) => {
  const d = await startDaemon();
  t.after(() => d.stop());
  const r = await http(d, 'GET', '/metrics');
  assert.equal(r.status, 200, r.text);
  const names = [...r.text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!);
  assert.ok(names.includes('stated_db_fs_free_bytes'), 'the free-space gauge is served');
  const table = section('## Statistics and metrics');
  const missing = names.filter((n) => !table.includes(`\`${n}\``));
  assert.deepEqual(missing, [], 'metrics served but not in the README table');
});

test('every failure reason code the code hands out is in the README reason-code table', () => {
  const codes = new Set<string>();
  const patterns = [
    /giveUp\((?:\w+, )?'([A-Z][A-Z_]+)'/g, // the engine gives up
    /code: '([A-Z][A-Z_]+)'/g, // a reason built in place
    /\? '([A-Z][A-Z_]+)' : [\w.]+\.lastError \?\? '([A-Z][A-Z_]+)'/g, // a retry timeout's code
    /lastError: '([A-Z][A-Z_]+)'/g,
    /reason\?\.code \?\? '([A-Z][A-Z_]+)'/g, // metrics' code for a TBFAILED without one
  ];
  for (const file of sources(path.join(repoRoot, 'src'))) {
    const text = fs.readFileSync(file, 'utf8');
    for (const re of patterns) for (const m of text.matchAll(re)) for (const c of m.slice(1)) if (c && !c.startsWith('E_')) codes.add(c);
  }
  for (const known of ['TIMEOUT_IN_STATE', 'COMMAND_TIMEOUT', 'DRIVER_FAILED', 'RECOVERY_FAILED', 'NODE_TBFAILED', 'REPORTED', 'RELOAD_FAILED']) {
    assert.ok(codes.has(known), `the scan finds ${known} (else the patterns went stale)`);
  }
  const from = readme.indexOf('\nReason codes, as');
  assert.ok(from >= 0, 'the README has the reason-code table');
  const table = readme.slice(from, readme.indexOf('\n\n', readme.indexOf('| code |', from)));
  const listed = new Set([...table.matchAll(/^\| `([A-Z][A-Z_]+)` \| /gm)].map((m) => m[1]!));
  const missing = [...codes].filter((c) => !listed.has(c)).sort();
  assert.deepEqual(missing, [], 'reason codes the code uses but the README table does not list');
});

test('the shipped unit and the README keep --listen on 127.0.0.1, as the Security section says', () => {
  const unit = fs.readFileSync(path.join(repoRoot, 'deploy', 'stated.service'), 'utf8');
  assert.doesNotMatch(unit, /--listen\s+0\.0\.0\.0/, 'the unit suggests no public listen address');
  assert.doesNotMatch(readme, /--listen\s+0\.0\.0\.0/, 'neither does the README');
  assert.match(section('## Security'), /keep `--listen` on\s+127\.0\.0\.1/);
});
