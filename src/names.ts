/**
 * Names an operator types — modes, states to wait for, trigger names — are
 * checked against the loaded definitions before anything is applied (SPEC §1
 * "Command-line conventions"), so `set-next-mode pc1 RELAOD` is refused
 * instead of sending a node into a mode no table knows. An event's own state
 * is never checked here: Emulab applies unknown transitions and notifies.
 */
import { StatedError } from './errors.ts';
import { type Machine, classifyTrigger } from './machine.ts';

/** Per Machine (replaced whole on import or SIGHUP), so never stale and never rebuilt per request. */
const modeCache = new WeakMap<Machine, ReadonlySet<string>>();

function modesOf(m: Machine): ReadonlySet<string> {
  let modes = modeCache.get(m);
  if (!modes) modeCache.set(m, (modes = new Set(m.modes())));
  return modes;
}

function suggest(name: string, among: Iterable<string>): string {
  const list = [...among].sort();
  const close = list.filter((x) => x.toUpperCase() === name.toUpperCase() || x.startsWith(name.slice(0, 3)));
  return close.length > 0 ? ` (did you mean ${close.slice(0, 5).join(', ')}?)` : list.length <= 20 ? ` (known: ${list.join(', ')})` : '';
}

/** Throws E_UNKNOWN_NAME unless mode is an op mode the definitions name. */
export function checkMode(m: Machine, mode: string, what = 'mode'): void {
  const modes = modesOf(m);
  if (!modes.has(mode)) throw new StatedError('E_UNKNOWN_NAME', `${what} ${mode}: no such op mode in the loaded definitions${suggest(mode, modes)}`);
}

/** Throws E_UNKNOWN_NAME for a state no table names (a wait for it could never end); `A|B` entries name two. */
export function checkStates(m: Machine, states: readonly string[]): void {
  for (const s of states.flatMap((entry) => entry.split('|'))) {
    if (!m.states.has(s)) throw new StatedError('E_UNKNOWN_NAME', `state ${s}: no table of the loaded definitions names it${suggest(s, m.states)}`);
  }
}

/**
 * The trigger list of a one-shot trigger: only names stated runs — built-ins,
 * Emulab's no-ops and SCRIPT:name (whose `:` the generic name check refuses).
 */
export function triggerNames(v: unknown): string[] {
  if (!Array.isArray(v) || v.length === 0 || v.length > 64) throw new StatedError('E_BAD_REQUEST', 'triggers: expected a list of 1 to 64 trigger names');
  for (const t of v) {
    if (typeof t !== 'string') throw new StatedError('E_BAD_REQUEST', 'triggers: expected strings');
    if (classifyTrigger(t) === 'unknown') {
      throw new StatedError('E_UNKNOWN_NAME', `trigger ${JSON.stringify(t.slice(0, 80))}: not a trigger stated runs (RESET, RELOADDONE, RELOADDONEV2, ISUP, CHECKGENISUP, REBOOT, POWERCYCLE, POWEROFF, EMAILNOTIFY, SCRIPT:name)`);
    }
  }
  return v as string[];
}
