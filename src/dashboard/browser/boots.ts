/**
 * Boot-time statistics per node type: GET /v1/stats as read at load (or at a
 * reconnect), plus what the live stream showed since: SHUTDOWN→ISUP pairs per
 * node, TBFAILED reasons, retries. Anything at or before the moment the
 * figures were read (their `now`) is already in them and is not counted twice
 * (a resumed subscription replays such events).
 */
import type { StatsReport, TypeFigures } from '../../stats.ts';

/** GET /v1/stats, the daemon's own types (type-only imports, erased from the bundle). */
export type TypeStats = TypeFigures;
export type StatsReply = StatsReport;

export interface BootRow {
  type: string;
  count: number;
  p50: number | null;
  p95: number | null;
  max: number | null;
  last: number | null;
  failures: Record<string, number>;
  retries: number;
}

interface Live { samples: number[]; failures: Record<string, number>; retries: number; last: number | null }

function quantile(sorted: readonly number[], q: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? null;
}

/** Live samples kept per type: enough for the percentiles of a page left open all day. */
const MAX_SAMPLES = 5000;

export class BootStats {
  private server = new Map<string, TypeStats>();
  private live = new Map<string, Live>();
  /** Per node, when it last went down (SHUTDOWN), for the next ISUP. */
  private readonly down = new Map<string, number>();
  /** The figures' `now`: events up to it are in them. */
  private readAt = -Infinity;
  since: number | null = null;
  /**
   * What GET /v1/stats answered: figures (`ok`), no such route (`absent`, a
   * daemon older than it), or a refusal (`refused`: the figures are
   * fleet-wide, for operator and admin tokens only), with the daemon's words.
   */
  source: 'pending' | 'ok' | 'absent' | 'refused' = 'pending';
  refusal = '';
  changed = true;

  /** Takes a GET /v1/stats reply (null: the route is not there); live figures start again from it. */
  load(reply: StatsReply | null): void {
    this.server = new Map((reply?.types ?? []).map((t) => [t.type, t]));
    this.source = reply !== null ? 'ok' : 'absent';
    this.since = reply?.since ?? null;
    if (reply) {
      this.readAt = reply.now;
      this.live = new Map();
    }
    this.changed = true;
  }

  /** The daemon would not give this token its figures: only the boots seen live are counted. */
  refuse(message: string): void {
    this.source = 'refused';
    this.refusal = message;
    this.changed = true;
  }

  private of(type: string): Live {
    let l = this.live.get(type);
    if (!l) this.live.set(type, (l = { samples: [], failures: {}, retries: 0, last: null }));
    return l;
  }

  /** A node entered a state at `time` (server ms). */
  state(node: string, type: string, state: string, time: number): void {
    if (state === 'SHUTDOWN') {
      this.down.set(node, time);
      return;
    }
    if (state !== 'ISUP') return;
    const from = this.down.get(node);
    this.down.delete(node);
    if (from === undefined || time <= this.readAt) return;
    const l = this.of(type);
    l.samples.push(time - from);
    if (l.samples.length > MAX_SAMPLES) l.samples.splice(0, l.samples.length - MAX_SAMPLES);
    l.last = time - from;
    this.changed = true;
  }

  failed(type: string, code: string, time: number): void {
    if (time <= this.readAt) return;
    const l = this.of(type);
    l.failures[code] = (l.failures[code] ?? 0) + 1;
    this.changed = true;
  }

  retried(type: string): void {
    this.of(type).retries++;
    this.changed = true;
  }

  /**
   * One row per type. Count, max and failures add up exactly; a percentile
   * cannot be merged from two summaries, so p50/p95 are the daemon's figures
   * while it has some for the type, else those of the boots seen live.
   */
  rows(): BootRow[] {
    const types = new Set([...this.server.keys(), ...this.live.keys()]);
    return [...types].sort().map((type) => {
      const s = this.server.get(type);
      const l = this.live.get(type);
      const sorted = l ? [...l.samples].sort((a, b) => a - b) : [];
      const serverCount = s?.boots.count ?? 0;
      const failures: Record<string, number> = { ...(s?.failures ?? {}) };
      for (const [k, v] of Object.entries(l?.failures ?? {})) failures[k] = (failures[k] ?? 0) + v;
      const maxes = [s?.boots.max ?? null, sorted.at(-1) ?? null].filter((x): x is number => x !== null);
      return {
        type,
        count: serverCount + sorted.length,
        p50: serverCount > 0 ? s!.boots.p50 : quantile(sorted, 0.5),
        p95: serverCount > 0 ? s!.boots.p95 : quantile(sorted, 0.95),
        max: maxes.length > 0 ? Math.max(...maxes) : null,
        last: l?.last ?? null,
        failures,
        retries: (s?.retries ?? 0) + (l?.retries ?? 0),
      };
    });
  }
}
