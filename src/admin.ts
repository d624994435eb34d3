/**
 * Operator acts over the WebSocket `admin` op: node inventory, one-shot
 * triggers, machine definitions and tokens. Each action parses its own
 * arguments, is authorized, and runs inside the batch like any event.
 */
import { type Actor, type Auth, type Role, ROLES, authorizeAdmin, authorizeOperator } from './auth.ts';
import type { Core } from './nodes.ts';
import { StatedError } from './errors.ts';
import { Machine, checkDefinition, parseDefinitionJson, parseEmulabSql } from './machine.ts';
import { importRefusals } from './import-guard.ts';
import { checkMode, checkStates, triggerNames } from './names.ts';
import { name, nameList } from './protocol.ts';
import type { MachineDefinition } from './types.ts';
import { nodeView } from './views.ts';

type Args = Record<string, unknown>;

function optName(v: unknown, what: string): string | undefined {
  return v === undefined || v === null ? undefined : name(v, what);
}

function definitionOf(args: Args): MachineDefinition {
  if (typeof args.text !== 'string') throw new StatedError('E_BAD_REQUEST', 'text: expected the definition file contents');
  return args.format === 'sql' ? parseEmulabSql(args.text) : parseDefinitionJson(args.text);
}

export class Admin {
  constructor(
    private readonly core: Core,
    private readonly auth: Auth,
    /** Called after a token is revoked, so its open connections close. */
    private readonly onRevoke: () => void = () => {},
  ) {}

  /**
   * Runs a change in a batch of its own and records it in the audit log in
   * the same transaction. Exclusive: tokens and definitions are written on
   * the core's connection, never by the writer thread.
   */
  private change<T>(actor: Actor, action: string, detail: unknown, fn: (c: Core) => T): Promise<T> {
    return this.core.run((c) => {
      const r = fn(c);
      c.store.audit(c.now(), actor, action, detail);
      return r;
    }, { exclusive: true });
  }

  /** Runs one admin action for an actor; resolves after commit. */
  async run(actor: Actor, action: string, args: Args): Promise<unknown> {
    const core = this.core;
    if (action.startsWith('token.')) authorizeAdmin(actor);
    else authorizeOperator(actor);
    switch (action) {
      case 'node.add': {
        const nodes = nameList(args.nodes, 'nodes');
        const opts = {
          type: optName(args.type, 'type'), mode: optName(args.mode, 'mode'),
          state: optName(args.state, 'state'), project: optName(args.project, 'project'),
        };
        if (opts.mode !== undefined) checkMode(core.machine, opts.mode);
        if (opts.state !== undefined) checkStates(core.machine, [opts.state]);
        return this.change(actor, action, { nodes, ...opts }, (c) => {
          for (const id of nodes) if (c.nodes.has(id)) throw new StatedError('E_CONFLICT', `node ${id} exists`);
          return nodes.map((id) => nodeView(c.addNode(id, opts)));
        });
      }
      case 'node.remove': {
        const nodes = nameList(args.nodes, 'nodes');
        return this.change(actor, action, { nodes }, (c) => {
          for (const id of nodes) c.node(id);
          for (const id of nodes) c.removeNode(id);
          return { removed: nodes };
        });
      }
      case 'node.setNextMode': {
        const id = name(args.node, 'node');
        const mode = args.mode === null ? null : name(args.mode, 'mode');
        if (mode !== null) checkMode(core.machine, mode, 'next op mode');
        return this.change(actor, action, { node: id, mode }, (c) => nodeView(c.updateNode(id, { nextMode: mode })));
      }
      case 'node.trigger.add': {
        const id = name(args.node, 'node');
        const list = triggerNames(args.triggers);
        const t = { mode: args.mode === undefined || args.mode === null || args.mode === '*' ? '*' : name(args.mode, 'mode'), state: name(args.state, 'state'), triggers: list.join(', ') };
        if (t.mode !== '*') checkMode(core.machine, t.mode);
        checkStates(core.machine, [t.state]); // a trigger on a state no table names would never run
        return this.change(actor, action, { node: id, ...t }, (c) => {
          const n = c.node(id);
          const rest = n.triggers.filter((x) => x.mode !== t.mode || x.state !== t.state);
          return nodeView(c.updateNode(id, { triggers: [...rest, t] })).triggers;
        });
      }
      case 'node.clear': {
        // Ends a gave-up (TBFAILED) reboot without rebooting: the operator fixed the node by hand.
        const id = name(args.node, 'node');
        return this.change(actor, action, { node: id }, (c) => {
          const before = c.node(id);
          const was = before.reboot.gaveUp ? `gave up on ${before.reboot.command ?? 'a reboot'} after ${before.reboot.attempts} attempt(s)`
            : before.reboot.command ? `${before.reboot.command} in progress, attempt ${before.reboot.attempts}` : 'nothing pending';
          const n = c.clearFailure(id);
          c.applyEvent({ objtype: 'NOTIFY', objname: id, eventtype: 'CLEARED', message: `${id}: cleared by ${actor.id} (${was})` });
          return nodeView(n);
        });
      }
      case 'node.trigger.clear': {
        const id = name(args.node, 'node');
        return this.change(actor, action, { node: id }, (c) => nodeView(c.updateNode(id, { triggers: [] })).triggers);
      }
      case 'node.trigger.list': {
        const ids = args.nodes === undefined ? [...core.nodes.keys()] : nameList(args.nodes, 'nodes');
        return ids.map((id) => ({ node: id, triggers: core.node(id).triggers })).filter((x) => x.triggers.length > 0);
      }
      case 'machine.export':
        return core.machine.definition();
      case 'machine.check': {
        const def = args.text === undefined ? core.machine.definition() : definitionOf(args);
        return { problems: checkDefinition(def) };
      }
      case 'machine.import': {
        const def = definitionOf(args);
        // SPEC §5: an import never leaves the daemon without a working machine.
        if (def.state_transitions.length === 0) {
          throw new StatedError('E_BAD_DEFINITION', 'refused: the file defines no state_transitions (empty?); the old definitions stay');
        }
        const problems = checkDefinition(def);
        const errors = problems.filter((p) => p.severity === 'error');
        if (errors.length > 0) {
          throw new StatedError('E_BAD_DEFINITION', `refused: ${errors.length} error(s); the old definitions stay`, { problems });
        }
        const counts = Object.fromEntries(Object.entries(def).map(([k, v]) => [k, (v as unknown[]).length]));
        return this.change(actor, action, counts, (c) => {
          const lost = importRefusals(c.machine.definition(), def, c.nodes.values());
          if (lost.length > 0) {
            throw new StatedError('E_BAD_DEFINITION', `refused: ${lost.length} problem(s): the file would take from the nodes what they run on; the old definitions stay`, { problems: lost });
          }
          c.store.replaceDefinition(def);
          c.setMachine(new Machine(def));
          return { problems };
        });
      }
      case 'token.create': {
        const role = args.role as Role;
        if (!ROLES.includes(role)) throw new StatedError('E_BAD_REQUEST', `role: expected one of ${ROLES.join(', ')}`);
        const node = optName(args.node, 'node');
        const project = optName(args.project, 'project');
        return core.run((c) => {
          const r = this.auth.create(role, { node: node ?? null, project: project ?? null }, c.now());
          c.store.audit(c.now(), actor, action, { id: r.id, role, node, project });
          return r;
        }, { exclusive: true });
      }
      case 'token.list':
        return this.auth.list();
      case 'audit.list': {
        const limit = Math.min(Math.max(Number(args.limit ?? 100) || 100, 1), 10_000);
        const after = Math.max(Number(args.after ?? 0) || 0, 0);
        return core.store.auditList(after, limit);
      }
      case 'token.revoke': {
        const id = name(args.id, 'id');
        const r = await this.change(actor, action, { id }, (c) => {
          if (!this.auth.revoke(id, c.now())) throw new StatedError('E_NOT_FOUND', `no live token ${id}`);
          return { revoked: id };
        });
        this.onRevoke();
        return r;
      }
      default:
        throw new StatedError('E_UNKNOWN_OP', `unknown admin action ${action}`);
    }
  }
}
