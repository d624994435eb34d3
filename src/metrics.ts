/**
 * Prometheus text exposition (format 0.0.4) for `/metrics` (SPEC §3):
 * labelled counters and histograms, kept as plain numbers so that updating
 * one on the commit path costs a map lookup and an add.
 */

/** A label value escaped as the text format wants (backslash, quote, newline). */
function esc(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function labels(names: readonly string[], values: readonly string[], extra = ''): string {
  const parts = names.map((n, i) => `${n}="${esc(values[i]!)}"`);
  if (extra) parts.push(extra);
  return parts.length > 0 ? `{${parts.join(',')}}` : '';
}

function num(v: number): string {
  return Number.isFinite(v) ? String(v) : v > 0 ? '+Inf' : v < 0 ? '-Inf' : 'NaN';
}

/** One metric family: its HELP and TYPE lines and samples. */
export function family(name: string, type: 'counter' | 'gauge' | 'histogram', help: string, samples: string[]): string {
  return `# HELP ${name} ${help}\n# TYPE ${name} ${type}\n${samples.join('')}`;
}

/** A sample line. */
export function sample(name: string, value: number, names: readonly string[] = [], values: readonly string[] = []): string {
  return `${name}${labels(names, values)} ${num(value)}\n`;
}

/** A counter per label tuple (the tuple joined with \u0000 as the key). */
export class CounterVec {
  private readonly values = new Map<string, number>();

  constructor(readonly name: string, readonly help: string, readonly labelNames: readonly string[]) {}

  inc(labelValues: readonly string[], by = 1): void {
    const key = labelValues.join('\u0000');
    this.values.set(key, (this.values.get(key) ?? 0) + by);
  }

  render(): string {
    const out: string[] = [];
    for (const [key, v] of [...this.values].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
      out.push(sample(this.name, v, this.labelNames, key.split('\u0000')));
    }
    return family(this.name, 'counter', this.help, out);
  }
}

/** One histogram series: cumulative bucket counts are made at render time. */
class Series {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  constructor(n: number) {
    this.counts = new Float64Array(n + 1); // the last is +Inf
  }
}

/** A histogram per label tuple, with fixed upper bounds. */
export class HistogramVec {
  private readonly series = new Map<string, Series>();

  constructor(readonly name: string, readonly help: string, readonly labelNames: readonly string[], readonly bounds: readonly number[]) {}

  observe(labelValues: readonly string[], v: number): void {
    const key = labelValues.join('\u0000');
    let s = this.series.get(key);
    if (!s) this.series.set(key, (s = new Series(this.bounds.length)));
    let i = 0;
    while (i < this.bounds.length && v > this.bounds[i]!) i++;
    s.counts[i]!++;
    s.sum += v;
    s.count++;
  }

  render(): string {
    const out: string[] = [];
    for (const [key, s] of [...this.series].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
      const values = key === '' && this.labelNames.length === 0 ? [] : key.split('\u0000');
      let acc = 0;
      for (let i = 0; i <= this.bounds.length; i++) {
        acc += s.counts[i]!;
        const le = i < this.bounds.length ? num(this.bounds[i]!) : '+Inf';
        out.push(`${this.name}_bucket${labels(this.labelNames, values, `le="${le}"`)} ${acc}\n`);
      }
      out.push(sample(`${this.name}_sum`, s.sum, this.labelNames, values));
      out.push(sample(`${this.name}_count`, s.count, this.labelNames, values));
    }
    return family(this.name, 'histogram', this.help, out);
  }
}
