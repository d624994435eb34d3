/**
 * Tokens and roles (SPEC §5). A token is shown once and stored only as its
 * SHA-256; every request is decided here, in one function per kind of act.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Database as Db, Statement } from 'better-sqlite3';
import { StatedError } from './errors.ts';
import type { NodeState, StatedEvent } from './types.ts';

export type Role = 'admin' | 'operator' | 'user' | 'node';
export const ROLES: readonly Role[] = ['admin', 'operator', 'user', 'node'];

export interface Actor {
  id: string;
  role: Role;
  node: string | null;
  project: string | null;
}

export interface TokenInfo extends Actor {
  created: number;
  revoked: number | null;
}

function hash(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

export class Auth {
  private readonly s: Record<string, Statement>;
  /** hash -> actor; tokens are few and read on every request. */
  private cache = new Map<string, Actor>();
  private readonly envHash: string | null;

  constructor(db: Db, envToken: string | undefined) {
    const p = (sql: string): Statement => db.prepare(sql);
    this.s = {
      insert: p('INSERT INTO tokens (hash, id, role, node, project, created) VALUES (?, ?, ?, ?, ?, ?)'),
      live: p('SELECT hash, id, role, node, project FROM tokens WHERE revoked IS NULL'),
      list: p('SELECT id, role, node, project, created, revoked FROM tokens ORDER BY created'),
      revoke: p('UPDATE tokens SET revoked = ? WHERE (id = ? OR hash = ?) AND revoked IS NULL'),
      count: p('SELECT count(*) AS n FROM tokens'),
    };
    this.envHash = envToken ? hash(envToken) : null;
    this.reload();
  }

  reload(): void {
    this.cache = new Map();
    for (const r of this.s.live!.all() as (Actor & { hash: string })[]) {
      this.cache.set(r.hash, { id: r.id, role: r.role, node: r.node, project: r.project });
    }
  }

  get count(): number {
    return (this.s.count!.get() as { n: number }).n;
  }

  /** Creates a token; returns it (the only time it exists in clear). */
  create(role: Role, opts: { node?: string | null; project?: string | null }, now: number): { token: string; id: string } {
    if (role === 'node' && !opts.node) throw new StatedError('E_BAD_REQUEST', 'a node token needs --node');
    if (role === 'user' && !opts.project) throw new StatedError('E_BAD_REQUEST', 'a user token needs --project');
    const token = `st_${randomBytes(24).toString('base64url')}`;
    const id = `t${randomBytes(4).toString('hex')}`;
    const h = hash(token);
    this.s.insert!.run(h, id, role, opts.node ?? null, opts.project ?? null, now);
    this.cache.set(h, { id, role, node: opts.node ?? null, project: opts.project ?? null });
    return { token, id };
  }

  list(): TokenInfo[] {
    return this.s.list!.all() as TokenInfo[];
  }

  /** Revokes by id; returns whether one was live. */
  revoke(id: string, now: number): boolean {
    const changed = this.s.revoke!.run(now, id, id).changes > 0;
    if (changed) this.reload();
    return changed;
  }

  /** The actor a bearer token stands for, or E_UNAUTHORIZED. */
  authenticate(token: string | undefined | null): Actor {
    if (!token) throw new StatedError('E_UNAUTHORIZED', 'a token is required (Authorization: Bearer TOKEN)');
    const h = hash(token);
    if (this.envHash && timingSafeEqual(Buffer.from(h), Buffer.from(this.envHash))) {
      return { id: 'env', role: 'admin', node: null, project: null };
    }
    const actor = this.cache.get(h);
    if (!actor) throw new StatedError('E_UNAUTHORIZED', 'unknown or revoked token');
    return actor;
  }

  /** Whether a token id is still live (connections of revoked tokens are closed). */
  isLive(actor: Actor): boolean {
    if (actor.id === 'env') return true;
    for (const a of this.cache.values()) if (a.id === actor.id) return true;
    return false;
  }
}

const deny = (why: string): never => {
  throw new StatedError('E_FORBIDDEN', why);
};

/** May the actor see or wait on this node? */
export function canSee(actor: Actor, node: NodeState | undefined): boolean {
  if (actor.role === 'admin' || actor.role === 'operator') return true;
  if (actor.role === 'node') return node !== undefined && node.id === actor.node;
  return node !== undefined && node.project !== null && node.project === actor.project;
}

/** Authorizes sending one event; nodes by name. */
export function authorizeEvent(actor: Actor, e: StatedEvent, nodes: ReadonlyMap<string, NodeState>): void {
  switch (actor.role) {
    case 'admin':
    case 'operator':
      return;
    case 'node':
      if (e.objtype !== 'TBNODESTATE') deny(`a node token may only send TBNODESTATE`);
      if (e.objname !== actor.node) deny(`a node token for ${actor.node} may not report ${e.objname}`);
      return;
    case 'user':
      if (e.objtype !== 'TBCOMMAND') deny('a user token may only send commands');
      authorizeNodes(actor, e.objname.split(','), nodes);
  }
}

/** Authorizes acting on (waiting for, commanding) nodes. */
export function authorizeNodes(actor: Actor, ids: readonly string[], nodes: ReadonlyMap<string, NodeState>): void {
  if (actor.role === 'admin' || actor.role === 'operator') return;
  if (actor.role === 'node') deny('a node token may only send its own node state');
  for (const id of ids) {
    const n = nodes.get(id);
    if (!n) throw new StatedError('E_UNKNOWN_NODE', `unknown node ${id}`);
    if (!canSee(actor, n)) deny(`node ${id} is not in project ${actor.project}`);
  }
}

/** Authorizes operator-level acts (node inventory, definitions). */
export function authorizeOperator(actor: Actor): void {
  if (actor.role !== 'admin' && actor.role !== 'operator') deny(`needs an operator or admin token, not ${actor.role}`);
}

/** Authorizes token management. */
export function authorizeAdmin(actor: Actor): void {
  if (actor.role !== 'admin') deny(`needs an admin token, not ${actor.role}`);
}

/** Power agents drive real hardware: operators and admins only. */
export function authorizeAgent(actor: Actor): void {
  authorizeOperator(actor);
}

/** TBFAILED from a client: only admin and operator (SPEC §2). Force: admin only (SPEC §1). */
export function authorizeForce(actor: Actor): void {
  if (actor.role !== 'admin') deny('force needs an admin token');
}
