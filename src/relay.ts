/** Who listens to which wait: the post-commit side of waits.ts. */
import type { WaitUpdate } from './waits.ts';

/** null: no push, but the wait changed (cancel, end); re-read it. */
export type WaitListener = (u: WaitUpdate | null) => void;

export class WaitRelay {
  private readonly listeners = new Map<string, Set<WaitListener>>();

  listen(wait: string, fn: WaitListener): () => void {
    let set = this.listeners.get(wait);
    if (!set) this.listeners.set(wait, (set = new Set()));
    set.add(fn);
    return () => {
      set.delete(fn);
      if (set.size === 0) this.listeners.delete(wait);
    };
  }

  /** Tells a wait's listeners to re-read it. */
  poke(wait: string): void {
    const set = this.listeners.get(wait);
    if (set) for (const fn of [...set]) fn(null);
  }

  deliver(updates: readonly WaitUpdate[]): void {
    for (const u of updates) {
      const set = this.listeners.get(u.wait);
      if (set) for (const fn of [...set]) fn(u);
    }
  }
}
