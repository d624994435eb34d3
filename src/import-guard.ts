/**
 * What a `machine import` may not take away from a running daemon (SPEC §5:
 * imports never leave the daemon without a working machine). The linter
 * (machine-check.ts) judges a file alone; these rules compare it with the
 * definitions loaded now and the nodes that use them, so a partial file (a
 * one-row fix, a file that lost its timeouts) cannot quietly strip the
 * machine the nodes run on. Each finding is an error: the import is refused
 * with the list, the old definitions stay.
 *
 * The rules, kept simple enough to say in one line each:
 * - MODE_IN_USE: a mode some node is in or headed for (its next op mode) has
 *   no state_transitions in the file.
 * - TIMEOUTS_DROPPED: such a mode — or TBCOMMAND, whose rows time every
 *   command's retry, as soon as there is a node — has timeouts now (a row of
 *   its own or of mode `*` with seconds > 0) and none in the file: its hangs
 *   would go unnoticed and its reboots never be retried.
 * - PHASE_TRIGGER_DROPPED: a global trigger row of the loaded definitions
 *   runs PXEBOOT, BOOTING, SECUREBOOT, RELOADDONE or RELOADDONEV2 (the boot
 *   phases and the end of a reload), and in the file that (mode, state) —
 *   for a mode `*` or a mode the file still defines — no longer runs it.
 */
import { ANY, Machine, type Problem, definedModes, splitTriggers } from './machine.ts';
import { COMMAND_MODE } from './machine-check.ts';
import { isPhaseTrigger } from './phases.ts';
import type { MachineDefinition, NodeState } from './types.ts';

/** Global triggers the boot phases and reloads rely on (SPEC §4.4, §4.6). */
const PHASE_TRIGGERS: readonly string[] = ['PXEBOOT', 'BOOTING', 'SECUREBOOT', 'RELOADDONE', 'RELOADDONEV2'];

/** Why importing def over current, with these nodes, would leave a broken machine: [] when it would not. */
export function importRefusals(current: MachineDefinition, def: MachineDefinition, nodes: Iterable<NodeState>): Problem[] {
  const users = modeUsers(nodes);
  return [...modesLeftBare(def, users), ...timeoutsDropped(current, def, users), ...phaseTriggersDropped(current, def)];
}

/** Mode -> the nodes in it or headed for it, sorted by mode. */
function modeUsers(nodes: Iterable<NodeState>): Map<string, string[]> {
  const users = new Map<string, string[]>();
  for (const n of nodes) {
    for (const mode of n.nextMode === null || n.nextMode === n.mode ? [n.mode] : [n.mode, n.nextMode]) {
      let list = users.get(mode);
      if (!list) users.set(mode, list = []);
      list.push(n.id);
    }
  }
  return new Map([...users].sort(([a], [b]) => a.localeCompare(b)));
}

function named(ids: string[]): string {
  return `${ids.length} node(s) use it: ${ids.slice(0, 10).join(' ')}${ids.length > 10 ? ' ...' : ''}`;
}

function error(code: string, message: string): Problem {
  return { severity: 'error', code, message };
}

function modesLeftBare(def: MachineDefinition, users: Map<string, string[]>): Problem[] {
  const covered = new Set(def.state_transitions.map((r) => r.op_mode));
  if (covered.has(ANY)) return []; // a wildcard row serves every mode
  return [...users].filter(([mode]) => !covered.has(mode))
    .map(([mode, ids]) => error('MODE_IN_USE', `${mode} has no state_transitions, but ${named(ids)}`));
}

/** Timeout rows that apply to mode (its own and mode `*`) and time something out. */
function timeoutsFor(def: MachineDefinition, mode: string): number {
  return def.state_timeouts.filter((r) => (r.op_mode === mode || r.op_mode === ANY) && r.timeout > 0).length;
}

function timeoutsDropped(current: MachineDefinition, def: MachineDefinition, users: Map<string, string[]>): Problem[] {
  const out: Problem[] = [];
  const check = (mode: string, who: string): void => {
    const now = timeoutsFor(current, mode);
    if (now > 0 && timeoutsFor(def, mode) === 0) {
      out.push(error('TIMEOUTS_DROPPED', `${mode} has ${now} timeout(s) now and none in the file (a hang would go unnoticed, nothing retried), but ${who}`));
    }
  };
  if (users.size > 0 && !users.has(COMMAND_MODE)) {
    const all = new Set([...users.values()].flat());
    check(COMMAND_MODE, `every command is timed by it (${all.size} node(s))`);
  }
  for (const [mode, ids] of users) check(mode, named(ids));
  return out;
}

function phaseTriggersDropped(current: MachineDefinition, def: MachineDefinition): Problem[] {
  const next = new Machine(def);
  const kept = new Set(definedModes(def));
  const out: Problem[] = [];
  for (const r of current.state_triggers) {
    if (r.node_id !== ANY || (r.op_mode !== ANY && !kept.has(r.op_mode))) continue;
    const now = next.triggers(ANY, r.op_mode, r.state);
    for (const name of splitTriggers(r.triggers)) {
      if (!PHASE_TRIGGERS.includes(name) || now.includes(name)) continue;
      out.push(error('PHASE_TRIGGER_DROPPED', `state_triggers ${r.op_mode}/${r.state} runs ${name} now; the file drops it (${isPhaseTrigger(name) ? 'the boot phases need it' : 'reloads would never close'})`));
    }
  }
  return out;
}
