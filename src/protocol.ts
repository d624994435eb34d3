/**
 * The one place a message's shape is written down (SPEC §2, §3). Every
 * request is parsed here into a typed value or rejected with a code; nothing
 * behind this module sees unchecked input.
 */
import { StatedError } from './errors.ts';
import type { Filter } from './hub.ts';
import type { FailureReason, StatedEvent } from './types.ts';

export const MAX_MESSAGE_BYTES = 1024 * 1024;
export const MAX_NODES = 10_000;
const NAME = /^[A-Za-z0-9_./-]{1,64}$/;
export const OBJTYPES = new Set(['TBNODESTATE', 'TBNODEOPMODE', 'TBCOMMAND', 'TBCONTROL', 'TBFAILED', 'NOTIFY']);
export const COMMAND_NAMES = ['REBOOT', 'POWERON', 'POWEROFF', 'POWERCYCLE'] as const;

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A node, state or mode name. */
export function name(v: unknown, what: string): string {
  if (typeof v !== 'string' || !NAME.test(v)) {
    // Only strings are quoted back: JSON.stringify of a hostile value (nested 10,000 deep) throws RangeError.
    const shown = typeof v === 'string' ? JSON.stringify(v.slice(0, 80)) : Array.isArray(v) ? 'a list' : v === null ? 'null' : typeof v;
    throw new StatedError('E_BAD_NAME', `${what}: ${shown} is not a name ([A-Za-z0-9_./-]{1,64})`);
  }
  return v;
}

export function nameList(v: unknown, what: string): string[] {
  if (!Array.isArray(v) || v.length === 0) throw new StatedError('E_BAD_REQUEST', `${what}: expected a non-empty list`);
  if (v.length > MAX_NODES) throw new StatedError('E_TOO_MANY', `${what}: ${v.length} entries, at most ${MAX_NODES}`);
  return v.map((x, i) => name(x, `${what}[${i}]`));
}

/** Most alternatives in one wait entry (`A|B|...`). */
const MAX_ALTERNATIVES = 16;

/**
 * A wait's states (SPEC §3): a non-empty list of names, in order; an entry
 * may be `A|B`, passed by either (a reload closes with RELOADDONE or
 * RELOADDONEV2).
 */
function stateList(v: unknown, what: string): string[] {
  if (!Array.isArray(v) || v.length === 0) throw new StatedError('E_BAD_REQUEST', `${what}: expected a non-empty list`);
  if (v.length > MAX_NODES) throw new StatedError('E_TOO_MANY', `${what}: ${v.length} entries, at most ${MAX_NODES}`);
  return v.map((x, i) => {
    if (typeof x !== 'string' || !x.includes('|')) return name(x, `${what}[${i}]`);
    const alts = x.split('|');
    if (alts.length > MAX_ALTERNATIVES) throw new StatedError('E_BAD_REQUEST', `${what}[${i}]: at most ${MAX_ALTERNATIVES} alternatives`);
    return alts.map((a, j) => name(a, `${what}[${i}] alternative ${j + 1}`)).join('|');
  });
}

function optString(v: unknown, what: string, max: number): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || v.length > max) throw new StatedError('E_BAD_REQUEST', `${what}: expected a string of at most ${max} characters`);
  return v;
}

function optBool(v: unknown, what: string): boolean {
  if (v === undefined) return false;
  if (typeof v !== 'boolean') throw new StatedError('E_BAD_REQUEST', `${what}: expected true or false`);
  return v;
}

function optNumber(v: unknown, what: string, min: number, max: number): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) {
    throw new StatedError('E_BAD_REQUEST', `${what}: expected a number from ${min} to ${max}`);
  }
  return v;
}

/** Parses one event (SPEC §2). */
export function parseEvent(v: unknown): StatedEvent {
  if (!isObj(v)) throw new StatedError('E_BAD_EVENT', 'an event is an object {objtype, objname, eventtype}');
  const objtype = v.objtype;
  if (typeof objtype !== 'string' || !OBJTYPES.has(objtype)) {
    throw new StatedError('E_BAD_EVENT', `objtype: expected one of ${[...OBJTYPES].join(', ')}`);
  }
  let objname: string;
  if (objtype === 'TBCOMMAND') {
    if (typeof v.objname !== 'string') throw new StatedError('E_BAD_EVENT', 'objname: expected comma-separated node names');
    const nodes = v.objname.split(',');
    if (nodes.length > MAX_NODES) throw new StatedError('E_TOO_MANY', `objname: at most ${MAX_NODES} nodes`);
    objname = nodes.map((n, i) => name(n, `objname[${i}]`)).join(',');
  } else objname = name(v.objname, 'objname');
  const e: StatedEvent = { objtype, objname, eventtype: name(v.eventtype, 'eventtype') };
  if (objtype === 'TBCOMMAND' && !(COMMAND_NAMES as readonly string[]).includes(e.eventtype)) {
    throw new StatedError('E_BAD_EVENT', `eventtype: a command is one of ${COMMAND_NAMES.join(', ')}`);
  }
  const id = optString(v.id, 'id', 128);
  if (id !== undefined) e.id = id;
  const message = optString(v.message, 'message', 4096);
  if (message !== undefined) e.message = message;
  if (v.reason !== undefined) e.reason = parseReason(v.reason);
  return e;
}

function parseReason(v: unknown): FailureReason {
  if (!isObj(v) || typeof v.code !== 'string' || !NAME.test(v.code)) {
    throw new StatedError('E_BAD_EVENT', 'reason: expected {code, message?}');
  }
  const r: FailureReason = { code: v.code };
  const message = optString(v.message, 'reason.message', 4096);
  if (message !== undefined) r.message = message;
  return r;
}

/** One event or an array of them (POST /v1/events). */
export function parseEvents(v: unknown): StatedEvent[] {
  if (Array.isArray(v)) {
    if (v.length === 0) throw new StatedError('E_BAD_REQUEST', 'an empty list of events');
    if (v.length > MAX_NODES) throw new StatedError('E_TOO_MANY', `at most ${MAX_NODES} events per request`);
    return v.map(parseEvent);
  }
  return [parseEvent(v)];
}

function parseFilter(v: unknown): Filter {
  if (v === undefined) return {};
  if (!isObj(v)) throw new StatedError('E_BAD_REQUEST', 'filter: expected an object');
  const f: Filter = {};
  for (const key of ['objtype', 'objname', 'eventtype'] as const) {
    if (v[key] !== undefined) f[key] = nameList(v[key], `filter.${key}`);
  }
  return f;
}

/** WebSocket requests (SPEC §3), after parsing. */
export type Request =
  | { op: 'event'; event: StatedEvent }
  | { op: 'initStateWait'; states: string[]; nodes: string[]; ttl?: number; command?: string; actions?: Map<string, string>; force?: boolean }
  | { op: 'waitForState'; wait: string; timeout?: number }
  | { op: 'cancelWait'; wait: string; node: string }
  | { op: 'endStateWait'; wait: string }
  | { op: 'attach'; wait: string }
  | { op: 'subscribe'; filter: Filter; since?: number }
  | { op: 'unsubscribe'; sub: string }
  | { op: 'command'; command: string; nodes: string[]; force: boolean }
  | { op: 'registerAgent'; types: string[]; nodes: string[] }
  | { op: 'actionResult'; action: string; ok: boolean; message?: string }
  | { op: 'status'; nodes?: string[]; partial?: boolean }
  | { op: 'listWaits' }
  | { op: 'admin'; action: string; args: Obj };

function command(v: unknown): string {
  if (typeof v !== 'string' || !(COMMAND_NAMES as readonly string[]).includes(v)) {
    throw new StatedError('E_BAD_REQUEST', `command: expected one of ${COMMAND_NAMES.join(', ')}`);
  }
  return v;
}

/**
 * initStateWait's per-node plan: {node: command}, each node one the wait
 * holds; nodes left out are only waited for.
 */
function actions(v: unknown, nodes: readonly string[]): Map<string, string> {
  if (!isObj(v)) throw new StatedError('E_BAD_REQUEST', 'actions: expected an object {node: command}');
  const held = new Set(nodes);
  const out = new Map<string, string>();
  for (const [node, cmd] of Object.entries(v)) {
    if (!held.has(name(node, 'actions: node'))) throw new StatedError('E_BAD_REQUEST', `actions: ${node} is not one of the wait's nodes`);
    out.set(node, command(cmd));
  }
  if (out.size === 0) throw new StatedError('E_BAD_REQUEST', 'actions: expected at least one node');
  return out;
}

/** Parses a WebSocket message's JSON value. The caller has checked the size. */
export function parseRequest(m: Obj): Request {
  switch (m.op) {
    case 'event':
      return { op: 'event', event: parseEvent(m.event) };
    case 'initStateWait': {
      const r: Request = { op: 'initStateWait', states: stateList(m.states, 'states'), nodes: nameList(m.nodes, 'nodes') };
      const ttl = optNumber(m.ttl, 'ttl', 1, 365 * 86400);
      if (ttl !== undefined) r.ttl = ttl;
      if (m.command !== undefined) r.command = command(m.command);
      if (m.actions !== undefined) {
        if (r.command !== undefined) throw new StatedError('E_BAD_REQUEST', 'give either command (every node) or actions (per node), not both');
        r.actions = actions(m.actions, r.nodes);
      }
      if (m.force !== undefined) r.force = optBool(m.force, 'force');
      return r;
    }
    case 'waitForState': {
      const r: Request = { op: 'waitForState', wait: name(m.wait, 'wait') };
      const timeout = optNumber(m.timeout, 'timeout', 0, 365 * 86400);
      if (timeout !== undefined) r.timeout = timeout;
      return r;
    }
    case 'cancelWait':
      return { op: 'cancelWait', wait: name(m.wait, 'wait'), node: name(m.node, 'node') };
    case 'endStateWait':
      return { op: 'endStateWait', wait: name(m.wait, 'wait') };
    case 'attach':
      return { op: 'attach', wait: name(m.wait, 'wait') };
    case 'subscribe': {
      const r: Request = { op: 'subscribe', filter: parseFilter(m.filter) };
      const since = optNumber(m.since, 'since', 0, Number.MAX_SAFE_INTEGER);
      if (since !== undefined) r.since = Math.floor(since);
      return r;
    }
    case 'unsubscribe':
      return { op: 'unsubscribe', sub: name(m.sub, 'sub') };
    case 'command':
      return { op: 'command', command: command(m.command), nodes: nameList(m.nodes, 'nodes'), force: optBool(m.force, 'force') };
    case 'registerAgent': {
      // The nodes it drives and/or the types it drives the other nodes of (SPEC §3).
      if (m.types === undefined && m.nodes === undefined) throw new StatedError('E_BAD_REQUEST', 'registerAgent: give nodes and/or types');
      return {
        op: 'registerAgent',
        types: m.types === undefined ? [] : nameList(m.types, 'types'),
        nodes: m.nodes === undefined ? [] : nameList(m.nodes, 'nodes'),
      };
    }
    case 'actionResult': {
      if (typeof m.ok !== 'boolean') throw new StatedError('E_BAD_REQUEST', 'ok: expected a boolean');
      const r: Request = { op: 'actionResult', action: name(m.action, 'action'), ok: m.ok };
      const message = optString(m.message, 'message', 4096);
      if (message !== undefined) r.message = message;
      return r;
    }
    case 'listWaits':
      return { op: 'listWaits' };
    case 'status':
      // partial: unknown nodes are listed in the reply's `unknown` instead of failing the request.
      return m.nodes === undefined ? { op: 'status' } : { op: 'status', nodes: nameList(m.nodes, 'nodes'), ...(m.partial === true ? { partial: true } : {}) };
    case 'admin': {
      if (typeof m.action !== 'string') throw new StatedError('E_BAD_REQUEST', 'action: expected a string');
      if (m.args !== undefined && !isObj(m.args)) throw new StatedError('E_BAD_REQUEST', 'args: expected an object');
      return { op: 'admin', action: m.action, args: isObj(m.args) ? m.args : {} };
    }
    default:
      throw new StatedError('E_UNKNOWN_OP', `unknown op ${typeof m.op === 'string' ? JSON.stringify(m.op.slice(0, 40)) : typeof m.op}`);
  }
}
