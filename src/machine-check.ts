/**
 * Lints for machine definitions (`stated machine import`). Errors refuse the
 * import; warnings are printed and the import goes ahead.
 *
 * The line between them: an error is a name stated would have to act on but
 * cannot resolve anywhere in the definition (an unknown timeout action or
 * trigger, a STATE:X or mode-transition target that no table mentions) —
 * almost surely a typo, and one that fails silently at 3 a.m. Everything
 * that still runs (odd graph shapes, missing timeouts, a target state that
 * exists but not in that mode, Emulab triggers we do not implement) is a
 * warning. Emulab's shipped tables have no errors by this rule (tested).
 */
import { ANY, splitTriggers } from './machine-import.ts';
import { Machine } from './machine.ts';
import { isPhaseTrigger } from './phases.ts';
import type { MachineDefinition, TimeoutRow } from './types.ts';

export interface Problem {
  severity: 'error' | 'warning';
  code: string;
  message: string;
}

/** Triggers stated implements (SPEC §4.4), besides SCRIPT:name. */
export const BUILTIN_TRIGGERS: readonly string[] = [
  'RESET', 'RELOADDONE', 'RELOADDONEV2', 'ISUP', 'CHECKGENISUP', 'REBOOT', 'POWERCYCLE', 'POWEROFF', 'EMAILNOTIFY',
  'PXEBOOT', 'BOOTING', 'SECUREBOOT',
];

/**
 * Emulab triggers for work outside the state machine (port registration,
 * the PXE boot path, mail about an old frisbee MFS), which stated does not
 * have. The engine accepts them and logs them (debug) without a NOTIFY
 * (SPEC §4.6); the linter only warns.
 */
export const EMULAB_NOOP_TRIGGERS: readonly string[] = ['CHECKPORTREG', 'PXERESET', 'RELOADOLDMFS'];

/**
 * States where a node is booting or reloading and, without a timeout, a hang
 * goes unnoticed. Only checked in node modes (see isNodeMode).
 */
export const BOOT_STATES: readonly string[] = ['SHUTDOWN', 'PXEBOOTING', 'BOOTING', 'RELOADSETUP', 'RELOADING'];

/** The pseudo-mode whose "states" are commands; CMDRETRY belongs to it (SPEC §4). */
export const COMMAND_MODE = 'TBCOMMAND';

const SCRIPT_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/; // no '/' and no leading '.': stays in the script directory
const STATE_RE = /^[A-Za-z0-9_./-]{1,64}$/;

export type TriggerKind = 'builtin' | 'script' | 'noop' | 'unknown';

/** What stated does with a trigger name. `SCRIPT:` with a bad name is unknown. */
export function classifyTrigger(name: string): TriggerKind {
  if (BUILTIN_TRIGGERS.includes(name)) return 'builtin';
  if (name.startsWith('SCRIPT:')) return SCRIPT_RE.test(name.slice(7)) ? 'script' : 'unknown';
  return EMULAB_NOOP_TRIGGERS.includes(name) ? 'noop' : 'unknown';
}

export type TimeoutAction =
  | { kind: 'NONE' | 'NOTIFY' | 'REBOOT' | 'CMDRETRY' }
  | { kind: 'STATE'; state: string };

/** Parses a state_timeouts action ('' = none); null when stated has no such action. */
export function parseTimeoutAction(action: string): TimeoutAction | null {
  if (action === '') return { kind: 'NONE' };
  if (action === 'NOTIFY' || action === 'REBOOT' || action === 'CMDRETRY') return { kind: action };
  if (action.startsWith('STATE:') && STATE_RE.test(action.slice(6))) return { kind: 'STATE', state: action.slice(6) };
  return null;
}

/** Lints a definition; errors first. See the file comment for what is an error. */
export function checkDefinition(def: MachineDefinition): Problem[] {
  const out: Problem[] = [];
  const error = (code: string, message: string): void => { out.push({ severity: 'error', code, message }); };
  const warn = (code: string, message: string): void => { out.push({ severity: 'warning', code, message }); };

  // States each mode mentions as a source or a timeout/trigger subject. Targets
  // of mode transitions are left out, or every such target would define itself.
  const states = new Map<string, Set<string>>();
  const mention = (mode: string, state: string): void => {
    if (state === ANY) return;
    let s = states.get(mode);
    if (s === undefined) states.set(mode, (s = new Set()));
    s.add(state);
  };
  for (const r of def.state_transitions) { mention(r.op_mode, r.state1); mention(r.op_mode, r.state2); }
  for (const r of def.state_timeouts) mention(r.op_mode, r.state);
  for (const r of def.state_triggers) mention(r.op_mode, r.state);
  for (const r of def.mode_transitions) mention(r.op_mode1, r.state1);
  const everywhere = new Set([...states.values()].flatMap((s) => [...s]));
  const sourceModes = new Set(states.keys());
  // A state exists in a mode when that mode mentions it, or a `*`-mode
  // transition does (those are edges of every machine). A `*`-mode trigger
  // or timeout does not: (*,*,ISUP) says what to do if a node reaches ISUP,
  // not that every mode has an ISUP.
  const anyModeStates = new Set(def.state_transitions.filter((r) => r.op_mode === ANY).flatMap((r) => [r.state1, r.state2]));
  const existsIn = (mode: string, state: string): boolean =>
    mode === ANY ? everywhere.has(state) : states.get(mode)?.has(state) === true || anyModeStates.has(state);

  // --- timeouts -------------------------------------------------------------
  for (const r of def.state_timeouts) {
    const where = `state_timeouts ${r.op_mode}/${r.state}`;
    const action = parseTimeoutAction(r.action);
    if (action === null) {
      error('timeout-action-unknown', `${where}: unknown action ${JSON.stringify(r.action)}; known: '', NOTIFY, REBOOT, CMDRETRY, STATE:<state>`);
    } else if (action.kind === 'STATE' && !existsIn(r.op_mode, action.state)) {
      if (everywhere.has(action.state)) warn('timeout-target-unknown', `${where}: STATE:${action.state} is not a state of mode ${r.op_mode} (other modes have it)`);
      else error('timeout-target-unknown', `${where}: STATE:${action.state} names a state no table mentions`);
    } else if (action.kind === 'CMDRETRY' && r.op_mode !== COMMAND_MODE) {
      warn('cmdretry-outside-tbcommand', `${where}: CMDRETRY only retries commands, which live in mode ${COMMAND_MODE}`);
    }
  }

  // --- mode transitions ---------------------------------------------------------
  for (const r of def.mode_transitions) {
    const where = `mode_transitions ${r.op_mode1}/${r.state1} -> ${r.op_mode2}/${r.state2}`;
    if (r.op_mode2 !== ANY && !sourceModes.has(r.op_mode2)) {
      error('mode-target-unknown', `${where}: mode ${r.op_mode2} is defined by no table`);
    } else if (r.state2 !== ANY && !existsIn(r.op_mode2, r.state2)) {
      if (everywhere.has(r.state2)) warn('mode-target-unknown', `${where}: ${r.state2} is not a state of mode ${r.op_mode2} (other modes have it)`);
      else error('mode-target-unknown', `${where}: state ${r.state2} is mentioned by no table`);
    }
  }

  // --- triggers -----------------------------------------------------------------
  for (const r of def.state_triggers) {
    const where = `state_triggers ${r.node_id}/${r.op_mode}/${r.state}`;
    for (const name of splitTriggers(r.triggers)) {
      const kind = classifyTrigger(name);
      if (kind === 'unknown') {
        const why = name.startsWith('SCRIPT:') ? 'a script name is [A-Za-z0-9_][A-Za-z0-9_.-]{0,63}' : `known: ${BUILTIN_TRIGGERS.join(', ')}, SCRIPT:<name>`;
        error('trigger-unknown', `${where}: unknown trigger ${name}; ${why}`);
      } else if (kind === 'noop') {
        warn('trigger-noop', `${where}: ${name} is Emulab work outside stated; stated logs it and does nothing`);
      }
    }
  }

  checkGraphs(def, states, warn);
  return out.sort((a, b) => (a.severity === b.severity ? 0 : a.severity === 'error' ? -1 : 1));
}

/**
 * Graph lints, per mode with literal transition rows (a mode without any is
 * unchecked altogether, like TBCOMMAND). All warnings: a node may report any
 * state, and transitions out of a state nobody describes are unchecked.
 */
function checkGraphs(def: MachineDefinition, states: Map<string, Set<string>>, warn: (code: string, message: string) => void): void {
  const inModes = (m: string, mode: string): boolean => m === mode || m === ANY;
  const inStates = (s: string, state: string): boolean => s === state || s === ANY;
  const timeoutOf = (mode: string, state: string): TimeoutRow | undefined => {
    for (const [m, s] of [[mode, state], [mode, ANY], [ANY, state], [ANY, ANY]] as const) {
      const row = def.state_timeouts.find((r) => r.op_mode === m && r.state === s);
      if (row !== undefined) return row;
    }
    return undefined;
  };
  // One global row decides, as in the engine (SPEC §4.4): the Machine's own lookup.
  const machine = new Machine(def);
  const triggersOf = (mode: string, state: string): readonly string[] => machine.triggers(ANY, mode, state);

  const graphModes = new Set(def.state_transitions.map((r) => r.op_mode).filter((m) => m !== ANY));
  for (const mode of [...graphModes].sort()) {
    const rows = def.state_transitions.filter((r) => inModes(r.op_mode, mode));
    const graph = new Set(def.state_transitions.filter((r) => r.op_mode === mode).flatMap((r) => [r.state1, r.state2]));
    graph.delete(ANY);

    for (const state of [...(states.get(mode) ?? [])].sort()) {
      // Entered: by another state's transition (a self-loop is a retry, not a way
      // in), a mode transition, a STATE: timeout, or an ISUP-emitting trigger.
      const entered =
        rows.some((r) => inStates(r.state2, state) && r.state1 !== state) ||
        def.mode_transitions.some((r) => inModes(r.op_mode2, mode) && inStates(r.state2, state)) ||
        def.state_timeouts.some((r) => inModes(r.op_mode, mode) && r.action === `STATE:${state}`) ||
        (state === 'ISUP' && def.state_triggers.some((r) => inModes(r.op_mode, mode) && splitTriggers(r.triggers).some((n) => n === 'ISUP' || n === 'CHECKGENISUP')));
      if (!entered) warn('unreachable-state', `${mode}/${state}: no transition, mode transition or timeout leads here`);
    }

    for (const state of [...graph].sort()) {
      const timeout = timeoutOf(mode, state);
      const action = timeout !== undefined && timeout.timeout > 0 ? parseTimeoutAction(timeout.action) : null;
      const leaves =
        rows.some((r) => inStates(r.state1, state) && r.state2 !== state) ||
        def.mode_transitions.some((r) => inModes(r.op_mode1, mode) && inStates(r.state1, state)) ||
        action?.kind === 'REBOOT' ||
        (action?.kind === 'STATE' && action.state !== state) ||
        // REBOOT/POWERCYCLE restart the boot; the phase triggers move the node to another machine.
        triggersOf(mode, state).some((n) => n === 'REBOOT' || n === 'POWERCYCLE' || isPhaseTrigger(n));
      if (!leaves) warn('dead-end-state', `${mode}/${state}: no transition, mode transition, timeout or trigger leads out`);
    }
  }

  // Boot states need a timeout in node modes. A node mode is one a mode
  // transition enters or leaves, or that has a SHUTDOWN or ISUP state; the
  // rest (TBCOMMAND, EXPTSTATE, NODEALLOC, USERSTATUS, ...) are pseudo-modes
  // stated never boots. An explicit 0 row is a decision and passes.
  const nodeModes = new Set(def.mode_transitions.flatMap((r) => [r.op_mode1, r.op_mode2]));
  for (const [mode, s] of states) if (s.has('SHUTDOWN') || s.has('ISUP')) nodeModes.add(mode);
  nodeModes.delete(ANY);
  for (const mode of [...nodeModes].sort()) {
    for (const state of BOOT_STATES) {
      if (states.get(mode)?.has(state) === true && timeoutOf(mode, state) === undefined) {
        warn('boot-state-no-timeout', `${mode}/${state}: boot state without a timeout; a node that hangs here is never noticed`);
      }
    }
  }
}
