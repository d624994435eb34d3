/**
 * The state machines of SPEC §4 as lookup tables. A Machine is built once from
 * a validated definition and answered from Map indexes: the engine consults it
 * for every TBNODESTATE (50k events/s), so no lookup scans the rows.
 *
 * `*` in a mode or state column means any. Everywhere, a row naming the value
 * literally beats a `*` row; the precedence of each lookup is stated at it.
 */
import { ANY, definedModes, splitTriggers } from './machine-import.ts';
import type { MachineDefinition, ModeTransitionRow, TimeoutRow, TransitionRow, TriggerRow } from './types.ts';

export { ANY, parseDefinitionJson, parseEmulabSql, splitTriggers } from './machine-import.ts';
export { checkDefinition, classifyTrigger, parseTimeoutAction } from './machine-check.ts';
export { definedModes } from './machine-import.ts';
export type { Problem, TimeoutAction, TriggerKind } from './machine-check.ts';

export type TransitionCheck = 'valid' | 'invalid' | 'unchecked';

export interface TimeoutSpec {
  seconds: number;
  action: string;
}

export interface ModeTarget {
  mode: string;
  state: string;
}

type Nested<V> = Map<string, Map<string, V>>;

/** The definition tables, indexed for the engine's per-event lookups. Trusts its input: parse and check first. */
export class Machine {
  // mode -> from -> set of to; '*' stays a key and is tried after the literal.
  private readonly allowed: Nested<Set<string>> = new Map();
  /** Every state a table names literally (`*` aside): a STATE:X target must be one, and so must a state waited for (names.ts). */
  readonly states: ReadonlySet<string>;
  private readonly timeouts: Nested<TimeoutSpec> = new Map();
  // node_id -> mode -> state -> trigger names, already split and deduplicated.
  private readonly triggerLists = new Map<string, Nested<readonly string[]>>();
  // mode1 -> state1 -> mode2 -> row.
  private readonly modeMoves = new Map<string, Nested<ModeTransitionRow>>();
  private readonly def: MachineDefinition;
  private readonly globalRows: Nested<readonly string[]>;
  // mode -> state -> the global rows' triggers (a Machine never changes: SIGHUP builds a new one).
  private readonly globalCache = new Map<string, Map<string, readonly string[]>>();

  constructor(def: MachineDefinition) {
    // Rows are keyed as the tables' primary keys; a later duplicate replaces
    // an earlier one, as INSERT OR REPLACE does in the store.
    const transitions = byKey(def.state_transitions, (r) => [r.op_mode, r.state1, r.state2]);
    const timeouts = byKey(def.state_timeouts, (r) => [r.op_mode, r.state]);
    const triggers = byKey(def.state_triggers, (r) => [r.node_id, r.op_mode, r.state]);
    const moves = byKey(def.mode_transitions, (r) => [r.op_mode1, r.state1, r.op_mode2]);
    this.def = {
      state_transitions: sortRows(transitions, ['op_mode', 'state1', 'state2']),
      state_timeouts: sortRows(timeouts, ['op_mode', 'state']),
      state_triggers: sortRows(triggers, ['node_id', 'op_mode', 'state']),
      mode_transitions: sortRows(moves, ['op_mode1', 'state1', 'op_mode2']),
    };

    const states = new Set<string>();
    for (const r of transitions) {
      nested(this.allowed, r.op_mode, r.state1, () => new Set<string>()).add(r.state2);
      states.add(r.state1).add(r.state2);
    }
    for (const r of timeouts) states.add(r.state);
    for (const r of triggers) states.add(r.state);
    for (const r of moves) states.add(r.state1).add(r.state2);
    states.delete(ANY);
    this.states = states;
    for (const r of timeouts) {
      getOrAdd(this.timeouts, r.op_mode, () => new Map()).set(r.state, Object.freeze({ seconds: r.timeout, action: r.action }));
    }
    for (const r of triggers) {
      const byMode = getOrAdd(this.triggerLists, r.node_id, () => new Map());
      getOrAdd(byMode, r.op_mode, () => new Map()).set(r.state, Object.freeze(splitTriggers(r.triggers)));
    }
    this.globalRows = this.triggerLists.get(ANY) ?? new Map();
    for (const r of moves) {
      nested(this.modeMoves, r.op_mode1, r.state1, () => new Map<string, ModeTransitionRow>()).set(r.op_mode2, r);
    }
  }

  /**
   * Checks mode/from→to against state_transitions (SPEC §4.1), as Emulab's
   * IsValidTransition: a mode checks `from` once it has a row leaving `from`
   * or a row leaving `*`; then the move is valid only if a row from `from`
   * or from `*` (to `to` or to `*`) allows it. So NORMALv2's `*`→POWEROFF row
   * puts every NORMALv2 state under checking: WEDGED→SHUTDOWN is invalid
   * there, as in Emulab. Rows of op_mode `*` (a stated extension) only grant.
   * A mode with no rows of its own, and a new node (`from` null or empty),
   * are unchecked.
   */
  transition(mode: string, from: string | null | undefined, to: string): TransitionCheck {
    if (from === null || from === undefined || from === '') return 'unchecked';
    const own = this.allowed.get(mode);
    if (allows(own, from, to) || allows(this.allowed.get(ANY), from, to)) return 'valid';
    return own !== undefined && (own.has(from) || own.has(ANY)) ? 'invalid' : 'unchecked';
  }

  /**
   * The timeout of (mode, state), or null for none. Precedence: (mode,state),
   * (mode,`*`), (`*`,state), (`*`,`*`); the first row found decides, so an
   * explicit 0 row switches a wildcard's timeout off for that state.
   */
  timeout(mode: string, state: string): TimeoutSpec | null {
    const spec = lookup2(this.timeouts, mode, state);
    return spec === undefined || spec.seconds === 0 ? null : spec;
  }

  /**
   * Triggers to run when nodeId enters (mode, state) (SPEC §4.4), in Emulab's
   * order (its stated's GetNodeTriggerList): the node's own rows for
   * (mode,state) then (`*`,state); then ONE global row (node_id `*`): the
   * first that exists of (mode,state), (mode,`*`), (`*`,state), (`*`,`*`),
   * the timeout lookup's order (Emulab's tables use no `*` state here).
   * A mode-specific row overrides the any-mode one even when empty
   * (SECUREBOOT/BOOTING '' switches the (`*`,BOOTING) triggers off); rows
   * are never merged. One-shot triggers are the engine's, not here.
   */
  triggers(nodeId: string, mode: string, state: string): readonly string[] {
    const own = nodeId === ANY ? undefined : this.triggerLists.get(nodeId);
    if (own === undefined) {
      // Most nodes have no rows of their own: the answer depends on (mode, state) alone, so it is kept.
      let byState = this.globalCache.get(mode);
      if (byState === undefined) this.globalCache.set(mode, (byState = new Map()));
      let list = byState.get(state);
      if (list === undefined) byState.set(state, (list = Object.freeze(lookup2(this.globalRows, mode, state) ?? [])));
      return list;
    }
    const out: string[] = [];
    for (const list of [own.get(mode)?.get(state), own.get(ANY)?.get(state), this.triggers(ANY, mode, state)]) {
      if (list !== undefined) out.push(...list);
    }
    return out;
  }

  /**
   * True when (mode, state) starts some mode transition: only there does a
   * next op mode take effect (SPEC §4.5; Emulab checks modeTrans{mode:state}).
   */
  modeTransitionState(mode: string, state: string): boolean {
    for (const m of [mode, ANY]) {
      const byState = this.modeMoves.get(m);
      if (byState !== undefined && (byState.has(state) || byState.has(ANY))) return true;
    }
    return false;
  }

  /**
   * Where a node in (mode, state) with next op mode nextMode goes (SPEC
   * §4.5), or null. Literal values beat `*` in op_mode1, then state1, then
   * op_mode2. A `*` target keeps the value: op_mode2 `*` means nextMode,
   * state2 `*` means the current state.
   */
  modeTransition(mode: string, state: string, nextMode: string): ModeTarget | null {
    for (const m of [mode, ANY]) {
      const byState = this.modeMoves.get(m);
      if (byState === undefined) continue;
      for (const s of [state, ANY]) {
        const byNext = byState.get(s);
        const row = byNext?.get(nextMode) ?? byNext?.get(ANY);
        if (row !== undefined) {
          return {
            mode: row.op_mode2 === ANY ? nextMode : row.op_mode2,
            state: row.state2 === ANY ? state : row.state2,
          };
        }
      }
    }
    return null;
  }

  /** The definition, duplicates resolved and rows sorted by key, for export. */
  definition(): MachineDefinition {
    return {
      state_transitions: this.def.state_transitions.map((r) => ({ ...r })),
      state_timeouts: this.def.state_timeouts.map((r) => ({ ...r })),
      state_triggers: this.def.state_triggers.map((r) => ({ ...r })),
      mode_transitions: this.def.mode_transitions.map((r) => ({ ...r })),
    };
  }

  /** Every op mode any table names literally, sorted. */
  modes(): string[] {
    return definedModes(this.def);
  }
}

function allows(byFrom: Map<string, Set<string>> | undefined, from: string, to: string): boolean {
  if (byFrom === undefined) return false;
  const a = byFrom.get(from);
  if (a !== undefined && (a.has(to) || a.has(ANY))) return true;
  const b = byFrom.get(ANY);
  return b !== undefined && (b.has(to) || b.has(ANY));
}

function lookup2<V>(index: Nested<V>, mode: string, state: string): V | undefined {
  const m = index.get(mode);
  const a = m?.get(state) ?? m?.get(ANY);
  if (a !== undefined) return a;
  const w = index.get(ANY);
  return w?.get(state) ?? w?.get(ANY);
}

function getOrAdd<K, V>(map: Map<K, V>, key: K, make: () => V): V {
  let v = map.get(key);
  if (v === undefined) map.set(key, (v = make()));
  return v;
}

function nested<V>(index: Nested<V>, a: string, b: string, make: () => V): V {
  return getOrAdd(getOrAdd(index, a, () => new Map()), b, make);
}

function byKey<R>(rows: readonly R[], key: (r: R) => string[]): R[] {
  const map = new Map<string, R>();
  for (const r of rows) {
    const k = key(r).join('\0');
    map.delete(k); // a replaced row takes the new row's place in insertion order
    map.set(k, r);
  }
  return [...map.values()];
}

function sortRows<R extends TransitionRow | TimeoutRow | TriggerRow | ModeTransitionRow>(rows: R[], cols: (keyof R)[]): R[] {
  const cmp = (a: R, b: R): number => {
    for (const c of cols) {
      const x = String(a[c]);
      const y = String(b[c]);
      if (x !== y) return x < y ? -1 : 1;
    }
    return 0;
  };
  return rows.map((r) => ({ ...r })).sort(cmp);
}
