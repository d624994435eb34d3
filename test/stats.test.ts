// Boot statistics and /metrics families (issue 13, SPEC §1 `stats`, §3
// /v1/stats and /metrics): what the figures count, over which window, and
// that a start rebuilds them from the log's SHUTDOWN/ISUP/TBFAILED rows alone.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { CounterVec, HistogramVec } from '../src/metrics.ts';
import { RETRY_NOTIFY, Stats } from '../src/stats.ts';
import { Store } from '../src/store.ts';
import { Telemetry } from '../src/telemetry.ts';
import type { LoggedEvent, StatedEvent } from '../src/types.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stated-stats-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const TYPES: Record<string, string> = { pc1: 'pc3000', pc2: 'pc3000', pc3: 'd710', vm1: 'pcvm' };
const typeOf = (n: string): string | undefined => TYPES[n];
let seq = 0;
const ev = (time: number, objtype: string, objname: string, eventtype: string, extra: Partial<StatedEvent> = {}): LoggedEvent =>
  ({ seq: ++seq, time, event: { objtype, objname, eventtype, ...extra } });
const st = (time: number, node: string, state: string): LoggedEvent => ev(time, 'TBNODESTATE', node, state);
const failed = (time: number, node: string, code: string): LoggedEvent =>
  ev(time, 'TBFAILED', node, 'REBOOT', { reason: { code, mode: 'NORMALv2', state: 'BOOTING', attempts: 3 } });

test('a boot is timed from SHUTDOWN to ISUP, per node type; p50/p95 are nearest-rank', () => {
  const s = new Stats(typeOf);
  // pc3000: ten boots of 10..100 s, interleaved across two nodes; other states in between do not matter.
  let t = 1_000_000;
  for (let i = 1; i <= 10; i++) {
    const node = i % 2 ? 'pc1' : 'pc2';
    s.add(st(t, node, 'SHUTDOWN'));
    s.add(st(t + 1000, node, 'PXEBOOTING'));
    s.add(st(t + 2000, node, 'BOOTING'));
    s.add(st(t + i * 10_000, node, 'ISUP'));
    t += 200_000;
  }
  s.add(st(t, 'pc3', 'SHUTDOWN'));
  s.add(st(t + 42_000, 'pc3', 'ISUP'));
  const r = s.report(0, t + 50_000);
  assert.deepEqual(r.types.map((x) => [x.type, x.boots]), [
    ['d710', { count: 1, p50: 42_000, p95: 42_000, max: 42_000 }],
    ['pc3000', { count: 10, p50: 50_000, p95: 100_000, max: 100_000 }],
  ]);
  assert.deepEqual([r.since, r.now], [0, t + 50_000]);
});

test('an ISUP with no SHUTDOWN before it is no boot; a second SHUTDOWN restarts the clock', () => {
  const s = new Stats(typeOf);
  s.add(st(1000, 'pc1', 'ISUP'));
  s.add(st(2000, 'pc1', 'SHUTDOWN'));
  s.add(st(5000, 'pc1', 'SHUTDOWN')); // e.g. a retried power cycle: the boot that succeeded is timed
  s.add(st(9000, 'pc1', 'ISUP'));
  s.add(st(9500, 'pc1', 'ISUP')); // an ISUP trigger's echo is not a second boot
  assert.deepEqual(s.report(0, 10_000).types[0]!.boots, { count: 1, p50: 4000, p95: 4000, max: 4000 });
});

test('TBFAILED counts per type and reason code, and ends the boot it gave up on', () => {
  const s = new Stats(typeOf);
  s.add(st(1000, 'pc1', 'SHUTDOWN'));
  s.add(failed(2000, 'pc1', 'TIMEOUT_IN_STATE'));
  s.add(failed(3000, 'pc2', 'TIMEOUT_IN_STATE'));
  s.add(failed(4000, 'pc2', 'DRIVER_FAILED'));
  s.add(ev(4500, 'TBFAILED', 'pc3', 'REBOOT')); // sent by an operator's tool, without a reason
  s.add(st(600_000, 'pc1', 'ISUP')); // up by hand long after: not a 10-minute boot
  const r = s.report(0, 700_000);
  const pc = r.types.find((x) => x.type === 'pc3000')!;
  assert.deepEqual(pc.failures, { TIMEOUT_IN_STATE: 2, DRIVER_FAILED: 1 });
  assert.equal(pc.boots.count, 0);
  assert.deepEqual(pc.boots, { count: 0, p50: null, p95: null, max: null });
  assert.deepEqual(r.types.find((x) => x.type === 'd710')!.failures, { REPORTED: 1 });
});

test('the window: only records at or after since; types with nothing in it are left out', () => {
  const s = new Stats(typeOf);
  s.add(st(1000, 'pc3', 'SHUTDOWN'));
  s.add(st(2000, 'pc3', 'ISUP')); // d710, before the window
  s.retry('pc1', 4_000);
  s.add(failed(5000, 'pc2', 'TIMEOUT_IN_STATE'));
  s.add(st(10_000, 'pc1', 'SHUTDOWN'));
  s.retry('pc1', 12_000);
  s.add(st(13_000, 'pc1', 'ISUP'));
  const r = s.report(10_000, 20_000);
  assert.deepEqual(r.types, [{ type: 'pc3000', boots: { count: 1, p50: 3000, p95: 3000, max: 3000 }, failures: {}, retries: 1 }]);
  assert.equal(s.report(0, 20_000).types.find((x) => x.type === 'pc3000')!.retries, 2);
});

test('prune drops records older than retention, and boots in progress that old', () => {
  const s = new Stats(typeOf);
  s.add(st(1000, 'pc1', 'SHUTDOWN'));
  s.add(st(2000, 'pc1', 'ISUP'));
  s.add(st(3000, 'pc2', 'SHUTDOWN'));
  s.add(st(50_000, 'pc1', 'SHUTDOWN'));
  s.add(st(51_000, 'pc1', 'ISUP'));
  s.prune(10_000);
  s.add(st(60_000, 'pc2', 'ISUP')); // its SHUTDOWN was pruned: not a 57 s boot
  assert.deepEqual(s.report(0, 70_000).types[0]!.boots, { count: 1, p50: 1000, p95: 1000, max: 1000 });
});

test('a start rebuilds the figures from the log through the partial index; the histogram counts only since start', () => {
  const file = path.join(dir, 'rebuild.db');
  const store = new Store(file);
  const plan = store.db.prepare(`EXPLAIN QUERY PLAN SELECT * FROM events INDEXED BY events_stats
    WHERE ((objtype = 'TBNODESTATE' AND eventtype IN ('SHUTDOWN', 'ISUP')) OR objtype = 'TBFAILED') ORDER BY seq`).all() as { detail: string }[];
  assert.match(plan.map((p) => p.detail).join(';'), /USING (COVERING )?INDEX events_stats/);
  const log: LoggedEvent[] = [
    st(1000, 'pc1', 'SHUTDOWN'), st(1500, 'pc1', 'PXEBOOTING'), ev(1600, 'NOTIFY', 'pc1', 'TIMEOUT', { message: 'x' }),
    st(4000, 'pc1', 'ISUP'), failed(5000, 'pc2', 'TIMEOUT_IN_STATE'), st(6000, 'pc3', 'SHUTDOWN'),
    ev(7000, 'NOTIFY', 'pc3', RETRY_NOTIFY, { message: 'pc3: REBOOT retry, attempt 2 of 3 (TIMEOUT_IN_STATE in NORMALv2/BOOTING)' }),
  ];
  store.transaction(() => { for (const le of log) store.insertEvent(le.seq, le.time, le.event); });
  const rows = [...store.statsEvents()];
  assert.deepEqual(rows.map((le) => `${le.event.objtype} ${le.event.eventtype}`),
    ['TBNODESTATE SHUTDOWN', 'TBNODESTATE ISUP', 'TBFAILED REBOOT', 'TBNODESTATE SHUTDOWN', `NOTIFY ${RETRY_NOTIFY}`]);

  const tel = new Telemetry(typeOf);
  tel.load(store.statsEvents());
  // pc3 was mid-boot when the daemon stopped: its ISUP after the start completes the boot.
  tel.committed({ events: [st(9000, 'pc3', 'ISUP')], waits: [], effects: [] });
  const r = tel.stats.report(0, 10_000);
  assert.deepEqual(r.types.map((x) => [x.type, x.boots.count, x.failures, x.retries]), [['d710', 1, {}, 1], ['pc3000', 1, { TIMEOUT_IN_STATE: 1 }, 0]]);
  // Live, a retry is counted from its notice as at start (a trigger's replacement too), once.
  tel.committed({ events: [ev(9100, 'NOTIFY', 'pc3', RETRY_NOTIFY, { message: 'x' })], waits: [], effects: [
    { t: 'action', node: 'pc3', command: 'POWERCYCLE', attempt: 3, started: 9100, retry: 'TRIGGER' },
  ] });
  assert.equal(tel.stats.report(0, 10_000).types.find((x) => x.type === 'd710')!.retries, 2);
  const text = tel.render([]);
  assert.match(text, /^stated_boot_duration_seconds_count\{type="d710"\} 1$/m);
  assert.deepEqual(text.match(/^stated_retries_total\{.*$/gm), ['stated_retries_total{type="d710",code="TRIGGER"} 1'], 'retries before this start are not in the counters');
  assert.doesNotMatch(text, /stated_boot_duration_seconds_count\{type="pc3000"\}/, 'boots before this start are not in the counters');
  store.close();
});

test('telemetry counts TBFAILED and retries by type and code, and batch sizes', () => {
  const tel = new Telemetry(typeOf);
  tel.committed({
    events: [failed(1000, 'pc1', 'TIMEOUT_IN_STATE'), st(1000, 'pc2', 'BOOTING'), failed(1001, 'pc3', 'DRIVER_FAILED'),
      ev(1000, 'NOTIFY', 'pc2', RETRY_NOTIFY, { message: 'pc2: TIMEOUT_IN_STATE in NORMALv2/BOOTING; REBOOT attempt 2 of 3' })],
    waits: [],
    effects: [
      { t: 'action', node: 'pc2', command: 'REBOOT', attempt: 2, started: 1000, retry: 'TIMEOUT_IN_STATE' },
      { t: 'action', node: 'pc1', command: 'REBOOT', attempt: 1, started: 1000 }, // a first attempt is no retry
    ],
  });
  const text = tel.render([]);
  assert.match(text, /^stated_tbfailed_total\{type="pc3000",code="TIMEOUT_IN_STATE"\} 1$/m);
  assert.match(text, /^stated_tbfailed_total\{type="d710",code="DRIVER_FAILED"\} 1$/m);
  assert.match(text, /^stated_retries_total\{type="pc3000",code="TIMEOUT_IN_STATE"\} 1$/m);
  assert.equal(text.match(/^stated_retries_total\{/gm)!.length, 1);
  assert.match(text, /^stated_batch_events_count 1$/m);
  assert.match(text, /^stated_batch_events_sum 4$/m);
  assert.equal(tel.stats.report(0, 2000).types.find((x) => x.type === 'pc3000')!.retries, 1);
});

test('stated_nodes counts nodes per (mode, state) at scrape time', () => {
  const tel = new Telemetry(typeOf);
  const node = (mode: string, state: string | null) => ({ mode, state }) as never;
  const text = tel.render([node('NORMALv2', 'ISUP'), node('NORMALv2', 'ISUP'), node('RELOAD', 'RELOADING'), node('NORMALv2', null)]);
  assert.match(text, /^stated_nodes\{mode="NORMALv2",state="ISUP"\} 2$/m);
  assert.match(text, /^stated_nodes\{mode="RELOAD",state="RELOADING"\} 1$/m);
  assert.match(text, /^stated_nodes\{mode="NORMALv2",state=""\} 1$/m);
});

test('histograms are cumulative with +Inf, sum and count; label values are escaped', () => {
  const h = new HistogramVec('x_seconds', 'help', ['type'], [1, 5]);
  for (const v of [0.5, 1, 3, 9]) h.observe(['a"b\\c'], v);
  assert.equal(h.render(), [
    '# HELP x_seconds help', '# TYPE x_seconds histogram',
    'x_seconds_bucket{type="a\\"b\\\\c",le="1"} 2',
    'x_seconds_bucket{type="a\\"b\\\\c",le="5"} 3',
    'x_seconds_bucket{type="a\\"b\\\\c",le="+Inf"} 4',
    'x_seconds_sum{type="a\\"b\\\\c"} 13.5',
    'x_seconds_count{type="a\\"b\\\\c"} 4', '',
  ].join('\n'));
  const c = new CounterVec('y_total', 'help', ['type', 'code']);
  c.inc(['pc', 'A']);
  c.inc(['pc', 'A']);
  assert.match(c.render(), /^y_total\{type="pc",code="A"\} 2$/m);
});
