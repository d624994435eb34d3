/** Percentiles and the printed table of the wait benchmark. */

export interface Summary {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

/** Nearest-rank percentiles of a sample (ms); null when it is empty. */
export function summarize(sample: ArrayLike<number>): Summary | null {
  if (sample.length === 0) return null;
  const s = Float64Array.from(sample).sort();
  const at = (p: number): number => s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
  return { count: s.length, p50: at(50), p90: at(90), p99: at(99), max: s[s.length - 1]! };
}

export const int = (n: number): string => Math.round(n).toLocaleString('en-US');

/** Milliseconds with a precision that suits their size. */
export function ms(v: number): string {
  if (v >= 1000) return `${(v / 1000).toFixed(2)} s`;
  return `${v.toFixed(v >= 100 ? 0 : v >= 10 ? 1 : 2)} ms`;
}

/** One table row: a label and a latency summary (or a reason there is none). */
export function latencyRow(label: string, s: Summary | null, why = 'no samples'): string[] {
  if (!s) return [label, why, '', '', '', ''];
  return [label, int(s.count), ms(s.p50), ms(s.p90), ms(s.p99), ms(s.max)];
}

/** Left-aligned first column, right-aligned others. */
export function table(header: string[], rows: string[][]): string {
  const all = [header, ...rows];
  const width = header.map((_, c) => Math.max(...all.map((r) => (r[c] ?? '').length)));
  const line = (r: string[]): string =>
    `  ${r.map((cell, c) => (c === 0 ? cell.padEnd(width[c]!) : cell.padStart(width[c]!))).join('  ')}`.trimEnd();
  return `${all.map(line).join('\n')}\n`;
}

/** Key/value lines, keys padded to one width. */
export function facts(rows: [string, string][]): string {
  const width = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `  ${k.padEnd(width)}  ${v}\n`).join('');
}
