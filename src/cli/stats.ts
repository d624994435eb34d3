/** `stated stats`: boot times, failures and retries per node type over a window (SPEC §1; GET /v1/stats). */
import { defineCommand } from 'citty';
import type { StatsReport } from '../stats.ts';
import { clock, duration } from '../timefmt.ts';
import { connArgs, fail, printJson, table, usage } from './common.ts';
import { getJson } from './http.ts';

const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** `90s`, `15m`, `24h`, `7d`, `1w`, or combined (`1h30m`), into ms; null when it is none of these. */
function parseDuration(text: string): number | null {
  if (!/^(\d+[smhdw])+$/.test(text)) return null;
  let ms = 0;
  for (const m of text.matchAll(/(\d+)([smhdw])/g)) ms += Number(m[1]) * UNIT_MS[m[2]!]!;
  return ms > 0 ? ms : null;
}

const ms = (v: number | null): string => (v === null ? '-' : duration(v));

/** The table `stated stats` prints. */
function statsTable(r: StatsReport): string {
  const rows = r.types.map((t) => [
    t.type, String(t.boots.count), ms(t.boots.p50), ms(t.boots.p95), ms(t.boots.max), String(t.retries),
    Object.entries(t.failures).sort((a, b) => b[1] - a[1]).map(([code, n]) => `${code} ${n}`).join(', ') || '-',
  ]);
  return table(['TYPE', 'BOOTS', 'P50', 'P95', 'MAX', 'RETRIES', 'FAILURES'], rows);
}

export default defineCommand({
  meta: { name: 'stats', description: 'boot times per node type (SHUTDOWN to ISUP: count, p50, p95, max), failures by reason, retries' },
  args: {
    since: { type: 'string', description: 'the window: the last DURATION (e.g. 30m, 24h, 7d; default 24h)' },
    json: { type: 'boolean', description: 'print the daemon\'s reply as JSON (times and durations in ms)' },
    ...connArgs,
  },
  async run({ args }) {
    const window = parseDuration(args.since ?? '24h');
    if (window === null) usage(`--since: expected a duration such as 30m, 24h or 7d, got ${JSON.stringify(args.since)}`);
    // The window ends at the daemon's clock, but starts by this one: a few seconds of skew move its edge, not its figures.
    const r = await getJson<StatsReport>(args, `/v1/stats?since=${Math.max(0, Date.now() - window)}`).catch(fail);
    if (args.json) {
      printJson(r);
      return;
    }
    process.stdout.write(`the last ${duration(r.now - r.since)}, since ${clock(r.since, r.now)}\n`);
    process.stdout.write(r.types.length === 0 ? 'no boots, failures or retries in this window\n' : statsTable(r));
  },
});
