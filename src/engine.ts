/**
 * The pure rules of SPEC §4: a node's state and one input in, the node's new
 * state and a list of effects out. No I/O, no clock, no SQLite: every path
 * that changes a node (event, timeout, trigger, command, driver result) comes
 * through `apply`, so every Emulab rule is a unit test of this one function.
 *
 * This module owns entering a state: the transition check, the state's
 * timeout, its triggers in Emulab's order, mode changes and what a timeout
 * does. The drive of a reboot (commands, retries, giving up) is the
 * gatekeeper's (`gatekeeper.ts`); the PXE and secure-boot phases are
 * `phases.ts`'s; the vocabulary both share is `step.ts`'s.
 */
import { actionResult, isRetryAction, replace, requestCommand, stopDriving, timedOut } from './gatekeeper.ts';
import { classifyTrigger, parseTimeoutAction, splitTriggers } from './machine.ts';
import { PXEKERNEL, SECVIOLATION, type PhaseTrigger, isPhaseMode, isPhaseTrigger, isReloadMode, isSecureMode, phaseTarget, reloadReturn } from './phases.ts';
import { type EngineContext, type EngineInput, type Outcome, Step, generated, notify } from './step.ts';
import type { NodeState } from './types.ts';
import { NO_REBOOT } from './types.ts';

// The engine's one entry point for the rest of stated (nodes.ts, tests).
export type { CommandVerdict, Effect, EngineContext, EngineInput, Outcome } from './step.ts';
export { retryNotice } from './gatekeeper.ts';

/** Applies one input to one node. */
export function apply(node: NodeState, input: EngineInput, ctx: EngineContext): Outcome {
  const s = new Step(node, ctx);
  switch (input.kind) {
    case 'state':
      return enterState(s, input.state, input.forced === true);
    case 'opmode':
      // Deprecated in Emulab (SPEC §2), and still an immediate mode change (§4.5).
      s.out.push(notify(node.id, 'DEPRECATED_OPMODE', `${node.id}: TBNODEOPMODE ${input.mode} is deprecated; mode changed`));
      changeMode(s, input.mode, false);
      return s.done();
    case 'control':
      return control(s, input.control);
    case 'timeout':
      return timeout(s);
    case 'failed':
      stopDriving(s);
      return s.done();
    case 'command':
      return requestCommand(s, input.command, input.force);
    case 'actionResult':
      return actionResult(s, input);
  }
}

/**
 * §4.3: a node that reports a state while a reboot stated drives still waits
 * for its SHUTDOWN went down unseen (a hard power cycle says nothing). stated
 * then logs that SHUTDOWN itself, before the reported state, as Emulab's power
 * tool did: a wait for SHUTDOWN,ISUP and the mode transitions at SHUTDOWN
 * (NORMALv2 -> RELOAD for os_load) see the boot in its order.
 */
export function impliedShutdown(n: NodeState, state: string): boolean {
  return n.reboot.awaitingShutdown && state !== 'SHUTDOWN';
}

function enterState(s: Step, state: string, forced: boolean): Outcome {
  // The tables judge what nodes report; a state stated itself forces is not "invalid".
  const { machine } = s.ctx;
  const n = s.n;
  const id = n.id;
  // §4.1: an invalid transition is reported and still applied, as Emulab does.
  const from = n.state;
  const verdict = forced ? 'unchecked' : machine.transition(n.mode, from, state);
  if (verdict === 'invalid') {
    s.out.push(notify(id, 'INVALID_TRANSITION', `${id}: invalid transition ${n.mode}/${from} -> ${state}`));
  }
  n.state = state;
  n.since = s.ctx.now;

  // §4.3: a reboot is settled as soon as the node shows it went down or is
  // booting. A hard power cycle never says SHUTDOWN, so any state the node
  // reports (what mode it is in does not matter: PXE phases have their own)
  // settles it; ISUP ends it below. The state's own timeout then replaces
  // the command's retry timer, so a progressing boot is never cut short.
  if (n.reboot.awaitingShutdown) s.setReboot({ ...n.reboot, awaitingShutdown: false });
  // §4.2: the state's timeout replaces the pending one.
  armTimeout(s);
  // A node that comes up is no longer being driven (SPEC §4, timeout REBOOT).
  if (state === 'ISUP') s.setReboot(NO_REBOOT);

  // Emulab's stateTransition: a node on the secure-boot path may not jump
  // into states its tables do not allow; it goes to SECVIOLATION instead
  // (whose own triggers power it off), and the reported state's triggers
  // do not run.
  if (verdict === 'invalid' && isSecureMode(n.mode) && state !== SECVIOLATION) {
    s.out.push(notify(id, 'SECVIOLATION', `${id}: ${from} -> ${state} is not allowed in ${n.mode}; moved to ${SECVIOLATION}`));
    s.out.push(generated(id, SECVIOLATION));
    return { node: n, effects: s.out, valid: false };
  }

  // §4.4: the node's one-shot triggers, cleared, then one global row.
  if (n.triggers.length > 0) for (const name of takeOneShots(s, state)) trigger(s, name, from);
  for (const name of machine.triggers(id, n.mode, state)) trigger(s, name, from);

  // §4.5: where (mode, state) starts mode transitions, the next op mode takes effect.
  if (n.nextMode !== null && machine.modeTransitionState(n.mode, state)) changeMode(s, n.nextMode, false);
  return { node: n, effects: s.out, valid: verdict !== 'invalid' };
}

/** Arms the timeout of the node's (mode, state), replacing any (SPEC §4.2). */
function armTimeout(s: Step): void {
  const n = s.n;
  const t = n.state === null ? null : s.ctx.machine.timeout(n.mode, n.state);
  n.timeout = t && n.state !== null ? { at: s.deadline(t.seconds), action: t.action, mode: n.mode, state: n.state } : null;
}

/**
 * The node's one-shot triggers for the state just entered, in Emulab's
 * order ((mode,state), then (`*`,state); `*`-state ones after), removed
 * from the node: each runs once.
 */
function takeOneShots(s: Step, state: string): string[] {
  const n = s.n;
  const names: string[] = [];
  const keep = [];
  for (const pass of [[n.mode, state], ['*', state], [n.mode, '*'], ['*', '*']]) {
    for (const t of n.triggers) {
      if (t.mode === pass[0] && t.state === pass[1]) names.push(...splitTriggers(t.triggers));
    }
  }
  for (const t of n.triggers) {
    if (!((t.mode === n.mode || t.mode === '*') && (t.state === state || t.state === '*'))) keep.push(t);
  }
  if (keep.length !== n.triggers.length) n.triggers = keep;
  return names;
}

/**
 * Moves the node to `mode` (SPEC §4.5, §4.6; Emulab's opModeTransition).
 * The mode_transitions row from (mode, state) towards it, if any, gives
 * the new state, logged as a TBNODESTATE of its own (applied in the new
 * mode: its timeout and triggers); without one the state stays and its
 * timeout in the new mode is armed here. `forced` moves are the
 * phase triggers': no NOTIFY without a row, and the next op mode survives
 * them until reached (stated has no bootinfo: the next op mode is its only
 * record of what the node will boot).
 */
function changeMode(s: Step, mode: string, forced: boolean): void {
  const n = s.n;
  const id = n.id;
  const { machine } = s.ctx;
  const state = n.state;
  const row = state === null ? null : machine.modeTransition(n.mode, state, mode);
  if (!forced && row === null) {
    const why = state !== null && machine.modeTransitionState(n.mode, state) ? `no mode transition from ${n.mode}/${state} to ${mode}` : `${n.mode}/${state} is not a mode transition state`;
    s.out.push(notify(id, 'INVALID_MODE_TRANSITION', `${id}: ${why}; moved to ${mode}/${state} anyway`));
  }
  const old = n.mode;
  // The PXE phase is transparent: the mode a reload returns to is not PXEKERNEL.
  if (old !== PXEKERNEL && mode !== PXEKERNEL) n.prevMode = old;
  if (!isPhaseMode(mode)) n.phaseFrom = null;
  else if (!isPhaseMode(old)) n.phaseFrom = old;
  n.mode = row?.mode ?? mode;
  if (!forced || n.nextMode === n.mode) n.nextMode = null;
  if (row !== null) {
    // Logged even when the state stays: the log then shows the new mode.
    s.out.push(generated(id, row.state));
  } else if (n.timeout?.mode !== 'TBCOMMAND') {
    // A command's own retry timer is not the state's: it stays.
    armTimeout(s);
  }
}

/** The PXEBOOT, BOOTING and SECUREBOOT triggers (SPEC §4.6). */
function phase(s: Step, name: PhaseTrigger, from: string | null): void {
  const n = s.n;
  const target = phaseTarget(name, n, from);
  if (target === 'lost') {
    s.out.push(notify(n.id, 'PXE_NO_MODE', `${n.id}: BOOTING in ${PXEKERNEL} with no next op mode and no mode it came from; it stays in ${PXEKERNEL}`));
  } else if (target !== null) {
    changeMode(s, target, true);
  }
}

/** Runs one trigger (SPEC §4.4); `from`: the state the node just left. */
function trigger(s: Step, name: string, from: string | null): void {
  const n = s.n;
  const id = n.id;
  if (isPhaseTrigger(name)) {
    phase(s, name, from);
    return;
  }
  if (name.startsWith('SCRIPT:')) {
    s.out.push({ t: 'script', node: id, name: name.slice(7) });
    return;
  }
  switch (name) {
    case 'RESET':
      s.setReboot(NO_REBOOT);
      return;
    case 'RELOADDONE':
    case 'RELOADDONEV2':
      // Close the reload: send the node back where it came from, unless an
      // operator already chose its next mode. On a node that is not
      // reloading it changes nothing (Emulab's control only clears reload
      // bookkeeping), so no later SHUTDOWN switches its mode. A next mode
      // that is the reload mode itself (set on a node already reloading)
      // would reload it again at every boot, RELOAD/ISUP rebooting it into
      // the next: not a choice, so it is replaced too.
      if (isReloadMode(n.mode) && (n.nextMode === null || n.nextMode === n.mode)) n.nextMode = reloadReturn(n);
      return;
    case 'ISUP':
      s.out.push(generated(id, 'ISUP'));
      return;
    case 'CHECKGENISUP':
      if (s.ctx.genIsupTypes.has(n.type)) s.out.push(generated(id, 'ISUP'));
      return;
    case 'REBOOT':
    case 'POWERCYCLE':
    case 'POWEROFF':
      // Recovery from the tables is stated's own: it replaces, never joins (SPEC §4.4).
      replace(s, name);
      return;
    case 'EMAILNOTIFY':
      s.out.push(notify(id, 'EMAILNOTIFY', `${id} entered ${n.mode}/${n.state}`));
      return;
    default:
      // Emulab's triggers for things outside stated (port registration, PXE boot paths, MFS mail):
      // looked up only here, off the path of the triggers stated runs.
      if (classifyTrigger(name) === 'noop') {
        s.out.push({ t: 'log', node: id, message: `${id}: trigger ${name} in ${n.mode}/${n.state}: Emulab work outside stated, nothing to do` });
        return;
      }
      s.out.push(notify(id, 'UNKNOWN_TRIGGER', `${id}: unknown trigger ${name} in ${n.mode}/${n.state}`));
  }
}

function control(s: Step, control: string): Outcome {
  switch (control) {
    case 'RESET':
    case 'RELOADDONE':
    case 'RELOADDONEV2':
      trigger(s, control, s.n.state);
      return s.done();
    case 'TIMEOUT':
      return timeout(s);
    default:
      s.out.push(notify(s.n.id, 'UNKNOWN_CONTROL', `${s.n.id}: unknown control event ${control}`));
      return s.done();
  }
}

/** The node's pending deadline fired (SPEC §4.2): its action, unless stale. */
function timeout(s: Step): Outcome {
  const n = s.n;
  const t = n.timeout;
  if (!t) return s.done();
  n.timeout = null;
  const where = `${t.mode}/${t.state}`;
  // Emulab ignored ancient deadlines at start: after a long outage the
  // node's state is stale, and acting on it would power-cycle a fleet.
  const overdue = s.ctx.now - t.at;
  const stale = s.ctx.staleTimeoutAge * 1000 * s.ctx.timeScale;
  if (stale > 0 && overdue > stale) {
    s.out.push(notify(n.id, 'STALE_TIMEOUT', `${n.id}: ${t.action || 'timeout'} of ${where} was due ${Math.round(overdue / 1000)} s ago, more than staleTimeoutAge; dropped`));
    // A drive whose retry is dropped is over: a new command starts afresh.
    if (isRetryAction(t.action)) s.setReboot(NO_REBOOT);
    return s.done();
  }
  const action = parseTimeoutAction(t.action);
  if (action === null) {
    s.out.push(notify(n.id, 'UNKNOWN_ACTION', `${n.id}: unknown timeout action ${t.action} in ${where}`));
  } else if (action.kind === 'NOTIFY') {
    s.out.push(notify(n.id, 'TIMEOUT', `${n.id}: timed out in ${where}`));
  } else if (action.kind === 'STATE') {
    // Definitions may change under a pending deadline: force only a state the tables know.
    if (s.ctx.machine.states.has(action.state)) s.out.push(generated(n.id, action.state));
    else s.out.push(notify(n.id, 'UNKNOWN_ACTION', `${n.id}: timeout action ${t.action} in ${where} names a state no table knows; not forced`));
  } else if (action.kind === 'REBOOT' || action.kind === 'CMDRETRY') {
    // The drive of a reboot stalled: the gatekeeper retries it or gives up.
    timedOut(s, action.kind, t.mode, t.state);
  }
  return s.done();
}
