/**
 * Deadlines of pending timeouts: a binary min-heap of (at, node). Entries
 * are never removed in place; a popped entry whose node no longer has that
 * deadline is stale and skipped, so rescheduling is O(log n) and nothing scans.
 */
export interface Deadline {
  at: number;
  node: string;
}

export class Timers {
  private heap: Deadline[] = [];

  get size(): number {
    return this.heap.length;
  }

  /** Schedules a deadline; an older one for the same node goes stale by itself. */
  add(node: string, at: number): void {
    const h = this.heap;
    h.push({ at, node });
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (h[p]!.at <= h[i]!.at) break;
      [h[p], h[i]] = [h[i]!, h[p]!];
      i = p;
    }
  }

  /** The earliest deadline, stale or not; null when empty. */
  peek(): number | null {
    return this.heap.length > 0 ? this.heap[0]!.at : null;
  }

  /** Pops every entry due at `now`; `live` filters out stale ones. Overdue ones come first, in deadline order. */
  popDue(now: number, live: (d: Deadline) => boolean): Deadline[] {
    const due: Deadline[] = [];
    while (this.heap.length > 0 && this.heap[0]!.at <= now) {
      const d = this.pop();
      if (live(d)) due.push(d);
    }
    return due;
  }

  /** Rebuilds from the live deadlines when stale entries dominate. */
  compact(live: Iterable<Deadline>): void {
    this.heap = [];
    for (const d of live) this.add(d.node, d.at);
  }

  private pop(): Deadline {
    const h = this.heap;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && h[l]!.at < h[m]!.at) m = l;
        if (r < h.length && h[r]!.at < h[m]!.at) m = r;
        if (m === i) break;
        [h[m], h[i]] = [h[i]!, h[m]!];
        i = m;
      }
    }
    return top;
  }
}
