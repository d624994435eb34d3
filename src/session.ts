/**
 * One WebSocket connection: parses each frame (protocol.ts), authorizes it
 * (auth.ts) and dispatches it to the op's handler. Every request gets exactly
 * one reply; pushes carry `type` (SPEC §3).
 */
import { randomBytes } from 'node:crypto';
import type { Admin } from './admin.ts';
import { type Actor, type Auth, authorizeAgent, authorizeEvent, authorizeForce, authorizeNodes, canSee } from './auth.ts';
import type { Core, EventResult } from './nodes.ts';
import type { Agents } from './drivers/agents.ts';
import { StatedError, asStatedError } from './errors.ts';
import type { Hub, Peer } from './hub.ts';
import { checkStates } from './names.ts';
import { type Request, parseRequest } from './protocol.ts';
import type { WaitRelay } from './relay.ts';
import type { StatedEvent } from './types.ts';
import { nodeView } from './views.ts';
import type { WaitSummary, WaitUpdate } from './waits.ts';

export interface Services {
  core: Core;
  hub: Hub;
  auth: Auth;
  relay: WaitRelay;
  admin: Admin;
  /** Power agents (reboot issue); may be absent. */
  agents?: Agents;
  log: (line: string) => void;
}

const DEFAULT_TTL = 86_400;

/**
 * A wait's per-node plan (initStateWait `actions`), inside its batch: one
 * TBCOMMAND per command, nodes in the order given; the verdicts merged.
 */
function applyActions(c: Core, actions: ReadonlyMap<string, string>, force: boolean, actor: Actor): EventResult {
  const byCommand = new Map<string, string[]>();
  for (const [node, cmd] of actions) {
    const list = byCommand.get(cmd);
    if (list) list.push(node);
    else byCommand.set(cmd, [node]);
  }
  const out: EventResult = { seq: 0, duplicate: false, nodes: {} };
  for (const [cmd, nodes] of byCommand) {
    const r = c.applyEvent({ objtype: 'TBCOMMAND', objname: nodes.join(','), eventtype: cmd }, force, actor);
    out.seq = r.seq;
    Object.assign(out.nodes!, r.nodes);
    if (r.refusals) out.refusals = { ...out.refusals, ...r.refusals };
  }
  return out;
}

/**
 * The open waits an actor may see (GET /v1/waits, `listWaits`): all for
 * operators; for a user, those whose every node is in its project, so a
 * listing never names another project's node. Committed state only.
 */
export function listWaits(core: Core, actor: Actor): Promise<WaitSummary[]> {
  if (actor.role === 'node') throw new StatedError('E_FORBIDDEN', 'a node token may only send its own node state');
  const all = actor.role === 'admin' || actor.role === 'operator';
  return core.read((c) => c.waits.list(all ? undefined : (nodes) => {
    for (const id of nodes) if (!canSee(actor, c.nodes.get(id))) return false;
    return true;
  }));
}

export class Session {
  /** Waits whose pushes go to this connection, with how to stop them. */
  private readonly attached = new Map<string, () => void>();
  private readonly timers = new Set<NodeJS.Timeout>();
  /** Open waitForState requests: how to stop listening. */
  private readonly waiting = new Set<() => void>();
  private closed = false;

  constructor(private readonly svc: Services, readonly actor: Actor, private readonly peer: Peer) {}

  /** Handles one text frame. */
  onMessage(text: string): void {
    let id: unknown = null;
    try {
      let m: unknown;
      try {
        m = JSON.parse(text);
      } catch {
        throw new StatedError('E_BAD_REQUEST', 'not JSON');
      }
      if (typeof m !== 'object' || m === null || Array.isArray(m)) throw new StatedError('E_BAD_REQUEST', 'a request is a JSON object {op, id, ...}');
      id = (m as { id?: unknown }).id ?? null;
      // The id is echoed in the reply; one nested past JSON.stringify's stack would throw in send().
      if (typeof id === 'object' && id !== null) {
        try {
          JSON.stringify(id);
        } catch {
          id = null;
          throw new StatedError('E_BAD_REQUEST', 'id: nested too deeply to echo');
        }
      }
      const req = parseRequest(m as Record<string, unknown>);
      // Events are most of the traffic: a callback, not a chain of promises, per event.
      if (req.op === 'event') return this.event(req.event, id);
      this.dispatch(req, id).then((result) => {
        if (result !== undefined) this.reply(id, result);
      }, (err: unknown) => this.fail(id, err)).catch((err: unknown) => this.broken(err));
    } catch (err) {
      this.fail(id, err);
    }
  }

  private fail(id: unknown, err: unknown): void {
    const e = asStatedError(err);
    if (e.code === 'E_INTERNAL') this.svc.log(`stated: internal error: ${(err as Error).stack ?? e.message}`);
    this.send({ re: id, ok: false, error: e.toJSON() });
  }

  private event(e: StatedEvent, id: unknown): void {
    const { core } = this.svc;
    const actor = this.actor;
    authorizeEvent(actor, e, core.nodes);
    core.submit((c) => c.applyEvent(e, false, actor), { checksFirst: true }, (err, r) => {
      try {
        if (err !== null) return this.fail(id, err);
        if (this.closed) return;
        // The usual reply, written out: JSON.stringify of a spread object was a tenth of the event path.
        if (!r!.nodes && !r!.refusals) this.peer.send(`{"re":${JSON.stringify(id)},"ok":true,"seq":${r!.seq},"duplicate":${r!.duplicate}${r!.valid === false ? ',"valid":false' : ''}}`);
        else this.reply(id, { seq: r!.seq, duplicate: r!.duplicate, nodes: r!.nodes, refusals: r!.refusals });
      } catch (e2) {
        this.broken(e2);
      }
    });
  }

  /** A reply that could not even be sent: log it and drop this connection, never the process. */
  private broken(err: unknown): void {
    this.svc.log(`stated: internal error: ${(err as Error).stack ?? String(err)}`);
    this.peer.close(1011, 'E_INTERNAL');
  }

  private send(msg: object): void {
    if (!this.closed) this.peer.send(JSON.stringify(msg));
  }

  private reply(id: unknown, body: object): void {
    this.send({ re: id, ok: true, ...body });
  }

  /** Returns the reply body, or undefined when the handler replies later itself. */
  private async dispatch(req: Request, id: unknown): Promise<object | undefined> {
    const { core, hub } = this.svc;
    const actor = this.actor;
    switch (req.op) {
      case 'event':
        throw new Error('unreachable: events take onMessage\'s fast path');
      case 'command': {
        authorizeNodes(actor, req.nodes, core.nodes);
        if (req.force) authorizeForce(actor);
        const r = await core.run((c) => c.applyEvent({ objtype: 'TBCOMMAND', objname: req.nodes.join(','), eventtype: req.command }, req.force, actor));
        return { seq: r.seq, nodes: r.nodes, ...(r.refusals ? { refusals: r.refusals } : {}) };
      }
      case 'initStateWait': {
        authorizeNodes(actor, req.nodes, core.nodes);
        checkStates(core.machine, req.states); // a wait for a state no table names could never end
        if (req.force) authorizeForce(actor);
        const wait = `w${randomBytes(8).toString('hex')}`;
        // Registered before anything it waits for can happen (the seed's rule);
        // with `command`, in the same transaction as the command itself.
        const r = await core.run((c) => {
          for (const n of req.nodes) c.node(n);
          const seq = c.seq;
          c.waits.create(wait, req.states, req.nodes, seq, req.ttl ?? DEFAULT_TTL, c.now(), actor.id);
          const cmd = req.command
            ? c.applyEvent({ objtype: 'TBCOMMAND', objname: req.nodes.join(','), eventtype: req.command }, req.force === true, actor)
            : req.actions ? applyActions(c, req.actions, req.force === true, actor) : null;
          if (cmd?.nodes) c.catchUpJoined(wait, cmd.nodes, seq);
          // Listening from inside the batch: no commit can come between the wait's start and its pushes.
          this.attach(wait);
          return { seq, cmd };
          // With commands, exclusive: a joined node's events since its reboot began are read from the log.
        }, { exclusive: req.command !== undefined || req.actions !== undefined }).catch((err: unknown) => {
          this.detach(wait); // the batch was lost: there is no such wait
          throw err;
        });
        return { wait, seq: r.seq, ...(r.cmd ? { command: { seq: r.cmd.seq, nodes: r.cmd.nodes, ...(r.cmd.refusals ? { refusals: r.cmd.refusals } : {}) } } : {}) };
      }
      case 'attach': {
        this.ownWait(req.wait);
        const already = this.attached.has(req.wait);
        // Exclusive: the snapshot shows only what is committed, and pushes resume from there.
        return await core.run((c) => {
          const snap = c.waits.snapshot(req.wait, c.seq);
          if (!snap) throw new StatedError('E_UNKNOWN_WAIT', `no wait ${req.wait}`);
          c.waits.touch(req.wait, c.now());
          this.attach(req.wait);
          return snap;
        }, { exclusive: true }).catch((err: unknown) => {
          if (!already) this.detach(req.wait); // the batch was lost: the client was told it is not attached
          throw err;
        });
      }
      case 'waitForState':
        this.ownWait(req.wait);
        this.waitFor(req.wait, req.timeout ?? 0, id);
        return undefined;
      case 'cancelWait': {
        this.ownWait(req.wait);
        const remaining = await core.run((c) => c.waits.cancel(req.wait, req.node));
        if (remaining === null) throw new StatedError('E_UNKNOWN_WAIT', `no wait ${req.wait}`);
        this.svc.relay.poke(req.wait);
        return { remaining };
      }
      case 'endStateWait': {
        this.ownWait(req.wait);
        await core.run((c) => c.waits.end(req.wait));
        this.detach(req.wait);
        this.svc.relay.poke(req.wait);
        return {};
      }
      case 'subscribe': {
        const allow = actor.role === 'admin' || actor.role === 'operator'
          ? undefined
          : (e: { objname: string }) => canSee(actor, core.nodes.get(e.objname));
        if (actor.role === 'node') throw new StatedError('E_FORBIDDEN', 'a node token may not subscribe');
        const { sub, start } = hub.subscribe(this.peer, req.filter, req.since, allow);
        this.reply(id, { sub, seq: core.committedSeq });
        start();
        return undefined;
      }
      case 'unsubscribe':
        if (!hub.unsubscribe(req.sub, this.peer)) throw new StatedError('E_UNKNOWN_SUB', `no subscription ${req.sub}`);
        return {};
      case 'listWaits':
        return { waits: await listWaits(core, actor) };
      case 'status': {
        if (actor.role === 'node') throw new StatedError('E_FORBIDDEN', 'a node token may only send its own node state');
        // A read of committed state only: never a state a crash could still take back.
        return core.read((c) => {
          const ids = req.nodes ?? [...c.nodes.keys()].sort();
          const nodes = [];
          const unknown: string[] = [];
          for (const nid of ids) {
            const n = c.nodes.get(nid);
            if (!n) {
              if (!req.partial) throw new StatedError('E_UNKNOWN_NODE', `unknown node ${nid}`);
              unknown.push(nid);
              continue;
            }
            if (canSee(actor, n)) nodes.push(nodeView(n, this.svc.agents?.waitingNodes));
            else if (req.nodes) throw new StatedError('E_FORBIDDEN', `node ${nid} is not yours to see`);
          }
          return { seq: c.seq, now: c.now(), nodes, ...(req.partial ? { unknown } : {}) };
        });
      }
      case 'registerAgent':
        authorizeAgent(actor);
        if (!this.svc.agents) throw new StatedError('E_UNAVAILABLE', 'this daemon drives no agents');
        this.svc.agents.register(this.peer, req.types, req.nodes);
        return {};
      case 'actionResult':
        authorizeAgent(actor);
        this.svc.agents?.result(this.peer, req.action, req.ok, req.message);
        return {};
      case 'admin':
        return { result: await this.svc.admin.run(actor, req.action, req.args) };
    }
  }

  /** A wait may be driven by whoever created it, or by an operator. */
  private ownWait(wait: string): void {
    const owner = this.svc.core.waits.owner(wait);
    if (owner === undefined) throw new StatedError('E_UNKNOWN_WAIT', `no wait ${wait}`);
    if (owner !== this.actor.id && this.actor.role !== 'admin' && this.actor.role !== 'operator') {
      throw new StatedError('E_FORBIDDEN', `wait ${wait} belongs to another token`);
    }
  }

  private detach(wait: string): void {
    this.attached.get(wait)?.();
    this.attached.delete(wait);
  }

  private attach(wait: string): void {
    if (this.attached.has(wait)) return;
    this.attached.set(wait, this.svc.relay.listen(wait, (u: WaitUpdate | null) => { if (u) this.send(u); }));
  }

  /** Replies once every node is done or failed, or at the timeout (0: no timeout). */
  private waitFor(wait: string, timeoutS: number, id: unknown): void {
    const { core, relay } = this.svc;
    const deadline = timeoutS > 0 ? Date.now() + timeoutS * 1000 : null;
    let timer: NodeJS.Timeout | undefined;
    let stop = (): void => {};
    const settle = (timedOut: boolean): void => {
      stop();
      this.waiting.delete(stop);
      stop = () => {};
      if (timer) {
        clearTimeout(timer);
        this.timers.delete(timer);
        timer = undefined;
      }
      // The reply comes from committed state: a node is never reported done on an uncommitted event.
      core.read((c) => c.waits.snapshot(wait, c.seq)).then((snap) => {
        if (this.closed) return;
        // Memory ran ahead of a batch that was then lost: not done after all, keep waiting.
        if (snap && snap.remaining.length > 0 && !timedOut) return listen();
        if (!snap) this.send({ re: id, ok: false, error: { code: 'E_UNKNOWN_WAIT', message: `wait ${wait} ended` } });
        else this.reply(id, { finished: snap.finished, failed: snap.failed, remaining: snap.remaining, failures: snap.failures, seq: snap.seq });
      }, (err: unknown) => this.fail(id, err));
    };
    // Memory (which may run ahead of the disk) says when to look; settle() looks at what is committed.
    const listen = (): void => {
      const snap = core.waits.snapshot(wait, core.seq);
      if (!snap || snap.remaining.length === 0) return settle(false);
      stop = relay.listen(wait, () => {
        const s = core.waits.snapshot(wait, core.seq);
        if (!s || s.remaining.length === 0) settle(false);
      });
      this.waiting.add(stop);
      if (deadline !== null) {
        timer = setTimeout(() => settle(true), Math.max(0, deadline - Date.now()));
        this.timers.add(timer);
      }
    };
    listen();
  }

  /** The connection went away: its waits keep advancing in SQLite, only pushes stop. */
  close(): void {
    this.closed = true;
    for (const stop of this.attached.values()) stop();
    this.attached.clear();
    for (const t of this.timers) clearTimeout(t);
    for (const stop of this.waiting) stop();
    this.waiting.clear();
    this.svc.hub.dropPeer(this.peer);
    this.svc.agents?.drop(this.peer);
  }
}
