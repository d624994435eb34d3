// Every error code a client can see is documented, with its HTTP status (STYLE §3).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import { ERRORS, StatedError } from '../src/errors.ts';

test('README lists every error code with its status, and nothing else', () => {
  const readme = fs.readFileSync('README.md', 'utf8');
  const section = readme.slice(readme.indexOf('## Errors'), readme.indexOf('## Security'));
  const documented = new Map<string, number>();
  for (const m of section.matchAll(/^\| `(E_[A-Z_]+)` \| (\d{3}) \|/gm)) documented.set(m[1]!, Number(m[2]));
  for (const [code, { status }] of Object.entries(ERRORS)) {
    assert.equal(documented.get(code), status, `${code} (${status}) in README's Errors table`);
  }
  assert.deepEqual([...documented.keys()].sort(), Object.keys(ERRORS).sort());
});

test('StatedError carries code, status and detail on the wire', () => {
  const e = new StatedError('E_BAD_DEFINITION', 'refused', { problems: [] });
  assert.equal(e.status, 422);
  assert.deepEqual(e.toJSON(), { code: 'E_BAD_DEFINITION', message: 'refused', detail: { problems: [] } });
  assert.equal(new StatedError('E_FORBIDDEN').message, ERRORS.E_FORBIDDEN.message);
});
