/**
 * Readable times and durations (SPEC §1: `14:03:07`, `3m12s`), one style for
 * every place a person reads them: the CLI's tables and progress lines and
 * the dashboard (esbuild bundles this file into the page, so no DOM and no
 * Node here).
 */

const two = (n: number): string => String(n).padStart(2, '0');

/** Local wall-clock time of an epoch-ms instant, `14:03:07`; the date in front when it is not `now`'s day. */
export function clock(ms: number, now = Date.now()): string {
  const d = new Date(ms);
  const hms = `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
  if (new Date(now).toDateString() === d.toDateString()) return hms;
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ${hms}`;
}

/**
 * A duration as an operator reads it: `0.4s`, `4.2s`, `42s`, `3m05s`,
 * `2h03m`, `4d07h`. Tenths under ten seconds, where a simulated boot or a
 * scaled timeout lives; two significant units above; negative is 0.
 */
export function duration(ms: number): string {
  if (!(ms > 0)) ms = 0;
  if (ms < 9950) return `${(ms / 1000).toFixed(1)}s`;
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${two(s % 60)}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${two(Math.floor(s / 60) % 60)}m`;
  return `${Math.floor(s / 86400)}d${two(Math.floor(s / 3600) % 24)}h`;
}
