/**
 * Fleet figures kept as events commit (SPEC §1 `stats`, §3 `/v1/stats`):
 * per node type, SHUTDOWN→ISUP boot durations, TBFAILED reasons and
 * retries, each a timestamped record so any window can be asked for.
 *
 * Fed once per committed event by the daemon; O(1) per event, and nothing is
 * allocated for an event that is not a SHUTDOWN, an ISUP or a TBFAILED. A
 * request sorts only the boots inside its window, never the log. At start the
 * records are rebuilt from the log's SHUTDOWN/ISUP/TBFAILED rows and retry
 * notices alone (a partial index, migration 008), not from a scan of the log.
 */
import type { LoggedEvent } from './types.ts';
import { REBOOT_RETRY } from './gatekeeper.ts';

/** Boot durations of one type in a window, ms (null percentiles when there were none). */
export interface BootFigures {
  count: number;
  p50: number | null;
  p95: number | null;
  max: number | null;
}

export interface TypeFigures {
  type: string;
  boots: BootFigures;
  /** TBFAILED events by reason code. */
  failures: Record<string, number>;
  /** Actions stated started again (attempt 2 and later). */
  retries: number;
}

/** The body of `GET /v1/stats` (BRIEF: the shape the dashboard reads). */
export interface StatsReport {
  since: number;
  now: number;
  types: TypeFigures[];
}

/** One type's records, oldest first: parallel arrays, so a record is two numbers or a number and a shared string. */
class TypeRecords {
  bootAt: number[] = [];
  bootMs: number[] = [];
  failAt: number[] = [];
  failCode: string[] = [];
  retryAt: number[] = [];
}

/** The first index whose time is >= t (times are in commit order, so non-decreasing). */
function from(times: readonly number[], t: number): number {
  let lo = 0;
  let hi = times.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (times[mid]! < t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Nearest-rank percentile of sorted values. */
function rank(sorted: Float64Array, q: number): number {
  return sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)]!;
}

/** The reason code a TBFAILED carries; a client-sent one without a reason counts as REPORTED. */
export function failureCode(e: LoggedEvent['event']): string {
  return e.reason?.code ?? 'REPORTED';
}

/**
 * The NOTIFY code of a retry (SPEC §4.3: "each retry raises a NOTIFY"; issue
 * 10 names it): retries are counted from these notices, live and at start alike.
 */
export const RETRY_NOTIFY = REBOOT_RETRY;

export class Stats {
  private readonly types = new Map<string, TypeRecords>();
  /** node -> time of its last SHUTDOWN with no ISUP since: a boot in progress. */
  private readonly down = new Map<string, number>();
  /** Called with each boot as it completes (the /metrics histogram). */
  onBoot: (type: string, ms: number) => void = () => {};

  /** @param typeOf the node's type now (events carry only the node's name) */
  constructor(private readonly typeOf: (node: string) => string | undefined) {}

  private of(type: string): TypeRecords {
    let r = this.types.get(type);
    if (!r) this.types.set(type, (r = new TypeRecords()));
    return r;
  }

  /** Takes one committed event. */
  add(le: LoggedEvent): void {
    const e = le.event;
    if (e.objtype === 'TBNODESTATE') {
      if (e.eventtype === 'SHUTDOWN') {
        // The boot is timed from the last SHUTDOWN: a retried power cycle starts a new boot (counted as a retry).
        this.down.set(e.objname, le.time);
      } else if (e.eventtype === 'ISUP') {
        const t0 = this.down.get(e.objname);
        if (t0 === undefined) return;
        this.down.delete(e.objname);
        const type = this.typeOf(e.objname);
        if (type === undefined) return;
        const r = this.of(type);
        r.bootAt.push(le.time);
        r.bootMs.push(le.time - t0);
        this.onBoot(type, le.time - t0);
      }
    } else if (e.objtype === 'NOTIFY') {
      if (e.eventtype === RETRY_NOTIFY) this.retry(e.objname, le.time);
    } else if (e.objtype === 'TBFAILED') {
      // A boot stated gave up on is not timed if the node comes up much later by other means.
      this.down.delete(e.objname);
      const type = this.typeOf(e.objname);
      if (type === undefined) return;
      const r = this.of(type);
      r.failAt.push(le.time);
      r.failCode.push(failureCode(e));
    }
  }

  /** Records an action stated started again for a node (a retry), at `time`. */
  retry(node: string, time: number): void {
    const type = this.typeOf(node);
    if (type !== undefined) this.of(type).retryAt.push(time);
  }

  /** Rebuilds from the log's SHUTDOWN/ISUP/TBFAILED rows and retry notices, oldest first (at start). */
  load(events: Iterable<LoggedEvent>): void {
    const hook = this.onBoot;
    this.onBoot = () => {}; // the /metrics histogram counts since this start, as a Prometheus counter does
    try {
      for (const le of events) this.add(le);
    } finally {
      this.onBoot = hook;
    }
  }

  /** Drops records older than `before` (the log's retention: figures cannot outlive the events behind them). */
  prune(before: number): void {
    for (const [type, r] of this.types) {
      const b = from(r.bootAt, before);
      if (b > 0) { r.bootAt.splice(0, b); r.bootMs.splice(0, b); }
      const f = from(r.failAt, before);
      if (f > 0) { r.failAt.splice(0, f); r.failCode.splice(0, f); }
      const x = from(r.retryAt, before);
      if (x > 0) r.retryAt.splice(0, x);
      if (r.bootAt.length + r.failAt.length + r.retryAt.length === 0) this.types.delete(type);
    }
    for (const [node, t] of this.down) if (t < before) this.down.delete(node);
  }

  /** The figures for records at or after `since`, types with none in the window left out, sorted by type. */
  report(since: number, now: number): StatsReport {
    const types: TypeFigures[] = [];
    for (const [type, r] of this.types) {
      const b = from(r.bootAt, since);
      const f = from(r.failAt, since);
      const x = from(r.retryAt, since);
      if (b === r.bootAt.length && f === r.failAt.length && x === r.retryAt.length) continue;
      const durations = Float64Array.from(r.bootMs.slice(b)).sort();
      const failures: Record<string, number> = {};
      for (let i = f; i < r.failCode.length; i++) failures[r.failCode[i]!] = (failures[r.failCode[i]!] ?? 0) + 1;
      const n = durations.length;
      types.push({
        type,
        boots: { count: n, p50: n ? rank(durations, 0.5) : null, p95: n ? rank(durations, 0.95) : null, max: n ? durations[n - 1]! : null },
        failures,
        retries: r.retryAt.length - x,
      });
    }
    types.sort((a, c) => (a.type < c.type ? -1 : a.type > c.type ? 1 : 0));
    return { since, now, types };
  }
}
