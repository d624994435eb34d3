/**
 * Connected power agents (`registerAgent`, SPEC §3). A power agent drives
 * the outlets wired to it, so an action goes to the agent that named its
 * node; only a node no agent named goes to an agent of its type (round robin
 * among them). An agent that disconnects fails what it held.
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
  private readonly byNode = new Map<string, Peer[]>();
  /**
   * Every node some agent named since the start: its actions wait for an
   * agent that names it, never go to one of its type that cannot reach it.
   */
  private readonly named = new Set<string>();
  private readonly held = new Map<string, Held>();
  /** Actions waiting for their agent to (re)connect: node -> how to try again. */
  private readonly waiting = new Map<string, Set<() => void>>();
  private turn = 0;
  /** Until then (ms), an action with no agent waits for one to reconnect; after, it fails at once. */
  private graceUntil = Infinity;

  /** Nodes whose action waits for its power agent to connect (status shows them). */
  get waitingNodes(): { has(node: string): boolean } {
    return this.waiting;
  }

  constructor(private readonly clock: () => number = Date.now) {}

  /** Starts the start-up grace period: agents reconnecting after a restart have `ms` to do so. */
  startGrace(ms: number): void {
    this.graceUntil = this.clock() + ms;
  }

  private get inGrace(): boolean {
    return this.clock() < this.graceUntil;
  }

  register(peer: Peer, types: readonly string[], nodes: readonly string[] = []): void {
    add(this.byType, types, peer);
    add(this.byNode, nodes, peer);
    for (const n of nodes) this.named.add(n);
    // Wake every waiting action: each looks again for its own agent.
    const all = [...this.waiting.values()];
    this.waiting.clear();
    for (const set of all) for (const wake of set) wake();
  }

  /** The agent for the node: the one that named it, else (if none ever did) one of its type. */
  private pick(node: string, type: string): Peer | null {
    const own = this.byNode.get(node);
    if (own && own.length > 0) return own[this.turn++ % own.length]!;
    if (this.named.has(node)) return null;
    const list = this.byType.get(type);
    if (!list || list.length === 0) return null;
    return list[this.turn++ % list.length]!;
  }

  /** Could an action for this node run (now, or once its agents reconnect)? Null if so, else why not. */
  missing(node: string, type: string): string | null {
    if (this.inGrace) return null;
    if ((this.byNode.get(node)?.length ?? 0) > 0) return null;
    if (!this.named.has(node) && this.has(type)) return null;
    return this.named.has(node)
      ? `the power agent of ${node} is not connected`
      : `no command driver for type ${type} and no power agent for ${node} or its type`;
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
    remove(this.byType, peer);
    remove(this.byNode, peer);
    for (const [id, h] of this.held) {
      if (h.peer !== peer) continue;
      this.held.delete(id);
      clearTimeout(h.timer);
      h.resolve({ ok: false, message: 'power agent disconnected' });
    }
  }

  /**
   * Sends the action to the node's agent. With none connected it waits for
   * one within the same time limit during the start-up grace period (the
   * daemon is up before its agents reconnect); after it, it fails at once.
   */
  run(a: Action, timeoutMs: number): Promise<ActionResult> {
    return new Promise((resolve) => {
      let sent = false;
      const wake = (): void => { if (!dispatch()) this.park(a.node, wake); };
      const timer = setTimeout(() => {
        this.held.delete(a.id);
        this.unpark(a.node, wake);
        resolve({ ok: false, message: sent ? `power agent did not answer in ${timeoutMs} ms` : `no power agent connected for ${a.node} (type ${a.type}) within ${timeoutMs} ms` });
      }, timeoutMs);
      const dispatch = (): boolean => {
        const peer = this.pick(a.node, a.type);
        if (peer === null) return false;
        sent = true;
        this.held.set(a.id, { peer, resolve, timer });
        peer.send(JSON.stringify({
          type: 'action', action: a.id, command: a.command, node: a.node, attempt: a.attempt, mode: a.mode, nextMode: a.nextMode,
        }));
        return true;
      };
      if (dispatch()) return;
      if (!this.inGrace) {
        clearTimeout(timer);
        resolve({ ok: false, message: this.missing(a.node, a.type) ?? `no power agent for ${a.node}` });
        return;
      }
      this.park(a.node, wake);
    });
  }

  private park(node: string, wake: () => void): void {
    let w = this.waiting.get(node);
    if (!w) this.waiting.set(node, (w = new Set()));
    w.add(wake);
  }

  private unpark(node: string, wake: () => void): void {
    const w = this.waiting.get(node);
    if (!w) return;
    w.delete(wake);
    if (w.size === 0) this.waiting.delete(node);
  }
}

function add(index: Map<string, Peer[]>, keys: readonly string[], peer: Peer): void {
  for (const k of keys) {
    const list = index.get(k) ?? [];
    if (!list.includes(peer)) list.push(peer);
    index.set(k, list);
  }
}

function remove(index: Map<string, Peer[]>, peer: Peer): void {
  for (const [k, list] of index) {
    const rest = list.filter((p) => p !== peer);
    if (rest.length > 0) index.set(k, rest);
    else index.delete(k);
  }
}
