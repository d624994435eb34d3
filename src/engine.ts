/**
 * The pure rules of SPEC §4: a node's state and one input in, the node's new
 * state and a list of effects out. No I/O, no clock, no SQLite: every path
 * that changes a node (event, timeout, trigger, command, driver result) comes
 * through `apply`, so every Emulab rule is a unit test of this one function.
 */
import { type Machine, classifyTrigger, splitTriggers } from './machine.ts';
import type { FailureReason, NodeState, RebootState, StatedEvent } from './types.ts';
import { NO_REBOOT } from './types.ts';

export interface EngineContext {
  machine: Machine;
  /** Epoch ms; the caller's clock. */
  now: number;
  /** Multiplies every timeout (SPEC §1 --time-scale). */
  timeScale: number;
  maxRebootAttempts: number;
  /** Seconds between a failed driver attempt and the next (scaled by timeScale). */
  retryDelay: number;
  /** Node types that cannot send ISUP themselves (the CHECKGENISUP trigger). */
  genIsupTypes: ReadonlySet<string>;
}

export type EngineInput =
  | { kind: 'state'; state: string; /** put there by stated (STATE:X, a mode transition): not checked against the tables */ forced?: boolean }
  | { kind: 'opmode'; mode: string }
  | { kind: 'control'; control: string }
  | { kind: 'timeout' }
  | { kind: 'failed' }
  | { kind: 'command'; command: string; force: boolean }
  | { kind: 'actionResult'; command: string; attempt: number; ok: boolean; message?: string; /** what the driver really did (escalation ladder) */ actual?: string; /** the action's `started` */ started?: number };

export type Effect =
  /** An event for the log, in this batch, after the input's own; TBNODESTATE ones re-enter apply. */
  | { t: 'emit'; event: StatedEvent; forced?: boolean }
  /** Run a power action through the node type's driver, after commit. */
  | { t: 'action'; node: string; command: string; attempt: number; started?: number }
  /** Run an operator script (SCRIPT:name), after commit. */
  | { t: 'script'; node: string; name: string };

export type CommandVerdict = 'accepted' | 'joined' | 'refused';

export interface Outcome {
  node: NodeState;
  effects: Effect[];
  /** For state inputs: the transition verdict (false = logged valid:false). */
  valid?: boolean;
  /** For command inputs. */
  verdict?: CommandVerdict;
  refusal?: string;
}

/** Commands whose success is announced by the node going to SHUTDOWN. */
const REBOOTING = new Set(['REBOOT', 'POWERCYCLE']);

/** Builds a NOTIFY event (SPEC §2): objname the node, eventtype a code. */
export function notify(node: string, code: string, message: string): Effect {
  return { t: 'emit', event: { objtype: 'NOTIFY', objname: node, eventtype: code, message } };
}

function stateEvent(node: string, state: string): Extract<Effect, { t: 'emit' }> {
  return { t: 'emit', event: { objtype: 'TBNODESTATE', objname: node, eventtype: state } };
}

/** Applies one input to one node. */
export function apply(node: NodeState, input: EngineInput, ctx: EngineContext): Outcome {
  const step = new Step(node, ctx);
  switch (input.kind) {
    case 'state':
      return step.enterState(input.state, input.forced === true);
    case 'opmode':
      // Deprecated in Emulab (SPEC §2): the mode changes, the state stays.
      step.n.mode = input.mode;
      step.out.push(notify(node.id, 'DEPRECATED_OPMODE', `${node.id}: TBNODEOPMODE ${input.mode} is deprecated; mode set`));
      return step.done();
    case 'control':
      return step.control(input.control);
    case 'timeout':
      return step.timeout();
    case 'failed':
      // Someone (or we) declared the node lost: stop driving it.
      if (step.n.reboot.command) step.setReboot({ ...step.n.reboot, gaveUp: true, awaitingShutdown: false });
      if (step.n.timeout && isRetryAction(step.n.timeout.action)) step.n.timeout = null;
      return step.done();
    case 'command':
      return step.command(input.command, input.force);
    case 'actionResult':
      return step.actionResult(input);
  }
}

function isRetryAction(action: string): boolean {
  return action === 'REBOOT' || action === 'CMDRETRY';
}

/** One application: a mutable copy of the node and the effects so far. */
class Step {
  readonly n: NodeState;
  readonly out: Effect[] = [];
  constructor(node: NodeState, private readonly ctx: EngineContext) {
    this.n = { ...node };
  }

  done(extra?: Partial<Outcome>): Outcome {
    // No spread on the per-event path: enterState passes only `valid`.
    return extra === undefined ? { node: this.n, effects: this.out } : Object.assign({ node: this.n, effects: this.out }, extra);
  }

  setReboot(r: RebootState): void {
    this.n.reboot = r;
  }

  private deadline(seconds: number): number {
    return this.ctx.now + Math.round(seconds * 1000 * this.ctx.timeScale);
  }

  enterState(state: string, forced: boolean): Outcome {
    // The tables judge what nodes report; a state stated itself forces is not "invalid".
    const { machine } = this.ctx;
    const n = this.n;
    const id = n.id;
    // §4.1: an invalid transition is reported and still applied, as Emulab does.
    const verdict = forced ? 'unchecked' : machine.transition(n.mode, n.state, state);
    if (verdict === 'invalid') {
      this.out.push(notify(id, 'INVALID_TRANSITION', `${id}: invalid transition ${n.mode}/${n.state} -> ${state}`));
    }
    const commandPending = n.reboot.command !== null && n.reboot.awaitingShutdown;
    n.state = state;
    n.since = this.ctx.now;

    // §4.3: a pending reboot is settled by SHUTDOWN; any other state is odd,
    // and the command's own timeout (CMDRETRY) stays armed.
    let keepTimeout = false;
    if (commandPending) {
      if (state === 'SHUTDOWN') this.setReboot({ ...n.reboot, awaitingShutdown: false });
      else {
        // ISUP ends the drive below; its CMDRETRY must not outlive it.
        keepTimeout = state !== 'ISUP';
        this.out.push(notify(id, 'UNEXPECTED_STATE', `${id}: went to ${state} while ${n.reboot.command} awaited SHUTDOWN`));
      }
    }
    // §4.2: the state's timeout replaces the pending one.
    if (!keepTimeout) {
      const t = machine.timeout(n.mode, state);
      n.timeout = t ? { at: this.deadline(t.seconds), action: t.action, mode: n.mode, state } : null;
    }
    // A node that comes up is no longer being driven (SPEC §4, timeout REBOOT).
    if (state === 'ISUP') this.setReboot(NO_REBOOT);

    // §4.4: global triggers, then the node's one-shots, which are then cleared.
    let names = machine.triggers(id, n.mode, state);
    if (n.triggers.length > 0) {
      const all = [...names]; // the machine's list is shared
      const keep = [];
      for (const t of n.triggers) {
        if ((t.mode === n.mode || t.mode === '*') && (t.state === state || t.state === '*')) {
          for (const name of splitTriggers(t.triggers)) if (!all.includes(name)) all.push(name);
        } else keep.push(t);
      }
      n.triggers = keep;
      names = all;
    }
    // RESET first: it clears the counters of the boot that just ended, and must
    // not undo a REBOOT that a trigger of the same row starts (RELOAD/ISUP
    // runs REBOOT plus the (*,ISUP) RESET under SPEC §4.4's union of rows).
    if (names.includes('RESET')) this.trigger('RESET');
    for (const name of names) if (name !== 'RESET') this.trigger(name);

    // §4.5: a mode transition into the node's next op mode.
    if (n.nextMode) {
      const mt = machine.modeTransition(n.mode, n.state ?? state, n.nextMode);
      if (mt) {
        n.prevMode = n.mode;
        n.mode = mt.mode;
        n.nextMode = null;
        // Logged as a TBNODESTATE of its own (SPEC §4), applied in the new mode.
        this.out.push({ ...stateEvent(id, mt.state), forced: true });
      }
    }
    return { node: n, effects: this.out, valid: verdict !== 'invalid' };
  }

  trigger(name: string): void {
    const n = this.n;
    const id = n.id;
    // Emulab's bookkeeping triggers (PXEBOOT, CHECKPORTREG, ...) have nothing to do here.
    if (classifyTrigger(name) === 'noop') return;
    if (name.startsWith('SCRIPT:')) {
      this.out.push({ t: 'script', node: id, name: name.slice(7) });
      return;
    }
    switch (name) {
      case 'RESET':
        this.setReboot(NO_REBOOT);
        return;
      case 'RELOADDONE':
      case 'RELOADDONEV2':
        // Close the reload: send the node back where it came from, unless an
        // operator already chose its next mode. A next mode that is the reload
        // mode itself (set on a node already reloading) would reload it again
        // at every boot, RELOAD/ISUP rebooting it into the next: not a choice.
        if (!n.nextMode || n.nextMode === n.mode) n.nextMode = n.prevMode && !n.prevMode.startsWith('RELOAD') ? n.prevMode : 'NORMALv2';
        return;
      case 'ISUP':
        this.out.push(stateEvent(id, 'ISUP'));
        return;
      case 'CHECKGENISUP':
        if (this.ctx.genIsupTypes.has(n.type)) this.out.push(stateEvent(id, 'ISUP'));
        return;
      case 'REBOOT':
      case 'POWERCYCLE':
      case 'POWEROFF':
        this.command(name, false);
        return;
      case 'EMAILNOTIFY':
        this.out.push(notify(id, 'EMAILNOTIFY', `${id} entered ${n.mode}/${n.state}`));
        return;
      default:
        this.out.push(notify(id, 'UNKNOWN_TRIGGER', `${id}: unknown trigger ${name} in ${n.mode}/${n.state}`));
    }
  }

  control(control: string): Outcome {
    switch (control) {
      case 'RESET':
      case 'RELOADDONE':
      case 'RELOADDONEV2':
        this.trigger(control);
        return this.done();
      case 'TIMEOUT':
        return this.timeout();
      default:
        this.out.push(notify(this.n.id, 'UNKNOWN_CONTROL', `${this.n.id}: unknown control event ${control}`));
        return this.done();
    }
  }

  timeout(): Outcome {
    const n = this.n;
    const t = n.timeout;
    if (!t) return this.done();
    n.timeout = null;
    const where = `${t.mode}/${t.state}`;
    if (t.action === '' ) return this.done();
    if (t.action === 'NOTIFY') {
      this.out.push(notify(n.id, 'TIMEOUT', `${n.id}: timed out in ${where}`));
    } else if (t.action.startsWith('STATE:')) {
      this.out.push({ ...stateEvent(n.id, t.action.slice(6)), forced: true });
    } else if (isRetryAction(t.action)) {
      const code = t.action === 'REBOOT' ? 'TIMEOUT_IN_STATE' : n.reboot.lastError ?? 'COMMAND_TIMEOUT';
      this.retry(code, t.mode, t.state);
    } else {
      this.out.push(notify(n.id, 'UNKNOWN_ACTION', `${n.id}: unknown timeout action ${t.action} in ${where}`));
    }
    return this.done();
  }

  /** A stated-driven command did not get its node where it should: again, or give up. */
  private retry(code: string, mode: string, state: string, message?: string): void {
    const n = this.n;
    const r = n.reboot;
    if (!r.command || r.gaveUp) {
      // Down under its user's control: only reported (SPEC §4).
      this.out.push(notify(n.id, 'TIMEOUT', `${n.id}: timed out in ${mode}/${state} (${code}); not driven by stated, not retried`));
      return;
    }
    if (r.attempts < this.ctx.maxRebootAttempts) {
      this.startAction(r.command, r.attempts + 1);
      return;
    }
    this.giveUp(code, mode, state, message);
  }

  private giveUp(code: string, mode: string, state: string, message?: string): void {
    const n = this.n;
    const r = n.reboot;
    const reason: FailureReason = { code, mode, state, attempts: r.attempts };
    if (message) reason.message = message;
    this.setReboot({ ...r, gaveUp: true, awaitingShutdown: false, inFlight: false, lastError: code });
    n.timeout = null;
    this.out.push({
      t: 'emit',
      event: {
        objtype: 'TBFAILED',
        objname: n.id,
        eventtype: r.command ?? 'REBOOT',
        reason,
        message: `${n.id}: ${r.command} failed after ${r.attempts} attempt(s): ${code} in ${mode}/${state}${message ? ` (${message})` : ''}`,
      },
    });
  }

  private startAction(command: string, attempt: number): void {
    // The command's own timeout starts when the driver reports it done.
    const started = this.ctx.now;
    this.setReboot({ command, attempts: attempt, awaitingShutdown: REBOOTING.has(command), gaveUp: false, inFlight: true, lastError: null, started });
    this.n.timeout = null;
    this.out.push({ t: 'action', node: this.n.id, command, attempt, started });
  }

  command(command: string, force: boolean): Outcome {
    const r = this.n.reboot;
    // The gatekeeper: a reboot already in progress is joined, not doubled.
    if (r.command !== null && !r.gaveUp && !force) {
      // Only a reboot joins a reboot (SPEC §4); any other command would be lost, so it is refused.
      if (REBOOTING.has(command) && REBOOTING.has(r.command)) return this.done({ verdict: 'joined' });
      return this.done({ verdict: 'refused', refusal: `E_CONFLICT: ${r.command} in progress (attempt ${r.attempts}); force to override` });
    }
    this.startAction(command, 1);
    return this.done({ verdict: 'accepted' });
  }

  actionResult(input: Extract<EngineInput, { kind: 'actionResult' }>): Outcome {
    const n = this.n;
    const r = n.reboot;
    const { command, ok, message } = input;
    // A result for an attempt that is no longer current (superseded, forced) changes nothing.
    if (r.command !== command || r.attempts !== input.attempt || !r.inFlight) return this.done();
    if (input.started !== undefined && r.started !== undefined && input.started !== r.started) return this.done();
    this.setReboot({ ...r, inFlight: false });
    if (!ok) {
      this.out.push(notify(n.id, 'DRIVER_FAILED', `${n.id}: ${command} attempt ${r.attempts} failed: ${message ?? 'no reason given'}`));
      if (r.attempts >= this.ctx.maxRebootAttempts) {
        this.giveUp('DRIVER_FAILED', 'TBCOMMAND', command, message);
        return this.done();
      }
      // Try again after the retry delay, through the durable timer (CMDRETRY).
      this.setReboot({ ...n.reboot, lastError: 'DRIVER_FAILED' });
      n.timeout = { at: this.deadline(this.ctx.retryDelay), action: 'CMDRETRY', mode: 'TBCOMMAND', state: command };
      return this.done();
    }
    if (command === 'POWEROFF') {
      this.setReboot(NO_REBOOT);
      this.out.push(stateEvent(n.id, 'POWEROFF'));
      return this.done();
    }
    if (command === 'POWERON') {
      this.setReboot(NO_REBOOT);
      return this.done();
    }
    if (command === 'POWERCYCLE' || input.actual === 'POWERCYCLE') {
      // A power-cycled node cannot say SHUTDOWN; stated says it (as Emulab's power did).
      this.out.push(stateEvent(n.id, 'SHUTDOWN'));
      return this.done();
    }
    // REBOOT: SHUTDOWN must now come in time (TBCOMMAND row, CMDRETRY).
    const t = this.ctx.machine.timeout('TBCOMMAND', command);
    if (r.awaitingShutdown && t) {
      n.timeout = { at: this.deadline(t.seconds), action: t.action, mode: 'TBCOMMAND', state: command };
    }
    return this.done();
  }
}
