// One style for times and durations in the CLI and the dashboard (SPEC §1:
// `14:03:07`, `3m12s`): src/timefmt.ts, bundled into the page as well.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { eventLine } from '../src/cli/eventline.ts';
import { repoRoot } from './helpers/daemon.ts';
import { clock, duration } from '../src/timefmt.ts';
import type { LoggedEvent } from '../src/types.ts';

test('duration: tenths under 10 s, then two units, each after the first two digits wide', () => {
  const S = 1000;
  assert.deepEqual(
    [0, -5, 400, 4200, 42 * S, 185 * S, 7380 * S, (3 * 86400 + 4 * 3600) * S, (29 * 60 + 57) * S].map(duration),
    ['0.0s', '0.0s', '0.4s', '4.2s', '42s', '3m05s', '2h03m', '3d04h', '29m57s'],
  );
});

test('clock: the time of day, with the date once it is not today', () => {
  const t = new Date(2026, 10, 29, 14, 3, 7).getTime();
  assert.equal(clock(t, t + 1000), '14:03:07');
  assert.equal(clock(t, t + 2 * 86_400_000), '2026-11-29 14:03:07');
});

test('the CLI and the dashboard have no time or duration formatting of their own', () => {
  const root = path.join(repoRoot, 'src');
  const files = [...fs.readdirSync(path.join(root, 'cli')).map((f) => path.join(root, 'cli', f)),
    ...fs.readdirSync(path.join(root, 'dashboard', 'browser')).map((f) => path.join(root, 'dashboard', 'browser', f))];
  for (const f of files.filter((x) => x.endsWith('.ts'))) {
    const text = fs.readFileSync(f, 'utf8');
    assert.doesNotMatch(text, /function (clock|clockTime|duration|age)\(|toISOString\(\)/, `${f} formats times itself`);
  }
});

test('an event line does not name the node twice: a NOTIFY message starting with its node drops that prefix', () => {
  const le = (objname: string, message: string): LoggedEvent =>
    ({ seq: 9, time: Date.now(), event: { objtype: 'NOTIFY', objname, eventtype: 'CLEARED', message } }) as LoggedEvent;
  const line = eventLine(le('bad1', 'bad1: cleared by an operator'));
  assert.match(line, /NOTIFY {2}bad1 {2}CLEARED {2}- cleared by an operator$/);
  assert.match(eventLine(le('bad1', 'bad10: other node')), /- bad10: other node$/, 'another node named first stays');
});
