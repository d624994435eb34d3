/**
 * Connected power agents (`registerAgent`, SPEC §3): a connection that
 * drives the nodes of some types. Actions go to one agent of the type,
 * round robin; an agent that disconnects fails what it held.
 */
import type { Peer } from '../hub.ts';
import type { Action, ActionResult, Driver } from './action.ts';

interface Held {
  peer: Peer;
  resolve: (r: ActionResult) => void;
  timer: NodeJS.Timeout;
}

export class Agents implements Driver {
  readonly name = 'agent';
  private readonly byType = new Map<string, Peer[]>();
  private readonly held = new Map<string, Held>();
  /** Actions waiting for an agent of their type to (re)connect, by type. */
  private readonly waiting = new Map<string, Set<() => void>>();
  private turn = 0;

  register(peer: Peer, types: string[]): void {
    for (const t of types) {
      const list = this.byType.get(t) ?? [];
      if (!list.includes(peer)) list.push(peer);
      this.byType.set(t, list);
    }
    for (const t of types) {
      const w = this.waiting.get(t);
      this.waiting.delete(t);
      for (const wake of w ?? []) wake();
    }
  }

  has(type: string): boolean {
    return (this.byType.get(type)?.length ?? 0) > 0;
  }

  result(peer: Peer, action: string, ok: boolean, message?: string): void {
    const h = this.held.get(action);
    if (!h || h.peer !== peer) return;
    this.held.delete(action);
    clearTimeout(h.timer);
    h.resolve(message === undefined ? { ok } : { ok, message });
  }

  drop(peer: Peer): void {
    for (const [t, list] of this.byType) {
      const rest = list.filter((p) => p !== peer);
      if (rest.length > 0) this.byType.set(t, rest);
      else this.byType.delete(t);
    }
    for (const [id, h] of this.held) {
      if (h.peer !== peer) continue;
      this.held.delete(id);
      clearTimeout(h.timer);
      h.resolve({ ok: false, message: 'power agent disconnected' });
    }
  }

  /**
   * Sends the action to an agent of its type; with none connected (e.g. just
   * after a restart, before the agents reconnect) it waits for one, within
   * the same time limit.
   */
  run(a: Action, timeoutMs: number): Promise<ActionResult> {
    return new Promise((resolve) => {
      let sent = false;
      const wake = (): void => { if (!dispatch()) this.park(a.type, wake); };
      const timer = setTimeout(() => {
        this.held.delete(a.id);
        this.waiting.get(a.type)?.delete(wake);
        resolve({ ok: false, message: sent ? `power agent did not answer in ${timeoutMs} ms` : `no power agent connected for type ${a.type} within ${timeoutMs} ms` });
      }, timeoutMs);
      const dispatch = (): boolean => {
        const list = this.byType.get(a.type);
        if (!list || list.length === 0) return false;
        const peer = list[this.turn++ % list.length]!;
        sent = true;
        this.held.set(a.id, { peer, resolve, timer });
        peer.send(JSON.stringify({
          type: 'action', action: a.id, command: a.command, node: a.node, attempt: a.attempt, mode: a.mode, nextMode: a.nextMode,
        }));
        return true;
      };
      wake();
    });
  }

  private park(type: string, wake: () => void): void {
    let w = this.waiting.get(type);
    if (!w) this.waiting.set(type, (w = new Set()));
    w.add(wake);
  }
}
