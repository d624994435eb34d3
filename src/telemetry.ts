/**
 * What the daemon tells operators about the fleet and itself, fed from each
 * committed batch: the boot statistics (stats.ts, for `stated stats` and
 * `/v1/stats`) and the labelled Prometheus families of `/metrics` (SPEC §3).
 */
import type { Committed } from './nodes.ts';
import { CounterVec, HistogramVec, family, sample } from './metrics.ts';
import { Stats, failureCode } from './stats.ts';
import type { LoggedEvent, NodeState } from './types.ts';

/** Boot-duration buckets, seconds: a VM boots in seconds, a PXE reload of a big image takes most of an hour. */
const BOOT_BUCKETS = [10, 30, 60, 120, 180, 240, 300, 450, 600, 900, 1200, 1800, 3600];
/** Events per committed batch (MAX_BATCH in pipeline.ts is 3000 jobs; a job's triggers may log more). */
const BATCH_BUCKETS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000];
/** The label values of an unlabelled histogram: one array, not one per batch. */
const NO_LABELS: readonly string[] = [];
/** Writer commit latency, seconds. */
const COMMIT_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

export class Telemetry {
  readonly stats: Stats;
  private readonly tbfailed = new CounterVec('stated_tbfailed_total', 'TBFAILED events since start, by node type and reason code', ['type', 'code']);
  private readonly retries = new CounterVec('stated_retries_total', 'actions stated started again since start, by node type and why the last attempt failed', ['type', 'code']);
  private readonly boots = new HistogramVec('stated_boot_duration_seconds', 'SHUTDOWN to ISUP since start, by node type', ['type'], BOOT_BUCKETS);
  private readonly batches = new HistogramVec('stated_batch_events', 'events per committed batch', [], BATCH_BUCKETS);
  private readonly commits = new HistogramVec('stated_commit_seconds', 'writer thread: from a batch handed over to its commit reported', [], COMMIT_BUCKETS);
  private readonly one: string[] = [''];
  private readonly two: string[] = ['', ''];

  constructor(private readonly typeOf: (node: string) => string | undefined) {
    this.stats = new Stats(typeOf);
    this.stats.onBoot = (type, ms) => {
      this.one[0] = type;
      this.boots.observe(this.one, ms / 1000);
    };
  }

  /** Rebuilds the statistics from the log at start (the counters start at zero, as Prometheus expects). */
  load(events: Iterable<LoggedEvent>): void {
    this.stats.load(events);
  }

  /** One committed batch: O(1) per event, nothing allocated for the events it does not count. */
  committed(c: Committed): void {
    const events = c.events;
    if (events.length > 0) this.batches.observe(NO_LABELS, events.length);
    for (let i = 0; i < events.length; i++) {
      const le = events[i]!;
      this.stats.add(le);
      if (le.event.objtype === 'TBFAILED') this.count(this.tbfailed, le.event.objname, failureCode(le.event));
    }
    for (const eff of c.effects) {
      // The stats count the retry from its REBOOT_RETRY notice; the counter wants the action's reason code.
      if (eff.t === 'action' && eff.retry !== undefined) this.count(this.retries, eff.node, eff.retry);
    }
  }

  private count(v: CounterVec, node: string, code: string): void {
    const type = this.typeOf(node);
    if (type === undefined) return;
    this.two[0] = type;
    this.two[1] = code;
    v.inc(this.two);
  }

  /** A batch's commit latency, ms. */
  commitLatency(ms: number): void {
    this.commits.observe(NO_LABELS, ms / 1000);
  }

  /** The labelled families; `stated_nodes{mode,state}` is counted at scrape time, not per event. */
  render(nodes: Iterable<NodeState>): string {
    const byModeState = new Map<string, number>();
    for (const n of nodes) {
      const key = `${n.mode}\u0000${n.state ?? ''}`;
      byModeState.set(key, (byModeState.get(key) ?? 0) + 1);
    }
    const gauges = [...byModeState].sort((a, b) => (a[0] < b[0] ? -1 : 1))
      .map(([k, v]) => sample('stated_nodes', v, ['mode', 'state'], k.split('\u0000')));
    return [
      family('stated_nodes', 'gauge', 'known nodes by op mode and state (state "" when never reported)', gauges),
      this.tbfailed.render(), this.retries.render(), this.boots.render(), this.batches.render(), this.commits.render(),
    ].join('');
  }
}
