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
  /**
   * The log position of the input: the seq its event gets, or the last seq
   * for inputs with no event (timeouts, driver results). A reboot records
   * where it started, so a wait that joins it counts from there (SPEC §3).
   */
  seq?: number;
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

/**
 * Commands that bring a node up, settled when it shows it went down or is
 * booting (SPEC §4.3); a REBOOT joins any of them in progress.
 */
const REBOOTING = new Set(['REBOOT', 'POWERCYCLE', 'POWERON']);
/** Commands that join a reboot in progress instead of starting another. */
const JOINS = new Set(['REBOOT', 'POWERCYCLE']);

/**
 * The NOTIFY code of a retry (SPEC §4.3: each retry raises a NOTIFY, attempt
 * n of max). Every retry of a node's boot, whatever set it off, goes through
 * retryNotice, so operators and tests see one code.
 */
export const REBOOT_RETRY = 'REBOOT_RETRY';

export function retryNotice(node: string, command: string, attempt: number, max: number, why: string): Effect {
  return notify(node, REBOOT_RETRY, `${node}: ${why}; ${command} attempt ${attempt} of ${max}`);
}

/** Builds a NOTIFY event (SPEC §2): objname the node, eventtype a code. */
export function notify(node: string, code: string, message: string): Effect {
  return { t: 'emit', event: { objtype: 'NOTIFY', objname: node, eventtype: code, message } };
}

/** A state stated puts the node in itself (SPEC §4): logged like any, not judged against the tables. */
function generated(node: string, state: string): Extract<Effect, { t: 'emit' }> {
  return { t: 'emit', event: { objtype: 'TBNODESTATE', objname: node, eventtype: state }, forced: true };
}

/**
 * Will stated act on the node by itself (SPEC §4.3)? An action in flight, or
 * a pending REBOOT/CMDRETRY timeout of a reboot it drives. Only then does a
 * new REBOOT join; a node sitting where stated will do nothing gets a new one.
 */
export function willAct(n: NodeState): boolean {
  const r = n.reboot;
  if (r.command === null || r.gaveUp) return false;
  return r.inFlight || (n.timeout !== null && isRetryAction(n.timeout.action));
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
    n.state = state;
    n.since = this.ctx.now;

    // §4.3: a reboot is settled as soon as the node shows it went down or is
    // booting. A hard power cycle never says SHUTDOWN, so any state the node
    // reports (what mode it is in does not matter: PXE phases have their own)
    // settles it; ISUP ends it below. The state's own timeout then replaces
    // the command's retry timer, so a progressing boot is never cut short.
    if (n.reboot.awaitingShutdown) this.setReboot({ ...n.reboot, awaitingShutdown: false });
    // §4.2: the state's timeout replaces the pending one.
    const t = machine.timeout(n.mode, state);
    n.timeout = t ? { at: this.deadline(t.seconds), action: t.action, mode: n.mode, state } : null;
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
        this.out.push(generated(id, mt.state));
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
        // operator already chose its next mode.
        if (!n.nextMode) n.nextMode = n.prevMode && !n.prevMode.startsWith('RELOAD') ? n.prevMode : 'NORMALv2';
        return;
      case 'ISUP':
        this.out.push(generated(id, 'ISUP'));
        return;
      case 'CHECKGENISUP':
        if (this.ctx.genIsupTypes.has(n.type)) this.out.push(generated(id, 'ISUP'));
        return;
      case 'REBOOT':
      case 'POWERCYCLE':
      case 'POWEROFF':
        // Recovery from the tables is stated's own: it replaces, never joins (SPEC §4.4).
        this.replace(name);
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
      this.out.push(generated(n.id, t.action.slice(6)));
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
      // A node powered on that then wedges is on: only a power cycle boots it again.
      const again = r.command === 'POWERON' ? 'POWERCYCLE' : r.command;
      this.out.push(retryNotice(n.id, again, r.attempts + 1, this.ctx.maxRebootAttempts, `${code} in ${mode}/${state}`));
      this.startAction(again, r.attempts + 1, r.seq);
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

  /** `seq`: where the reboot began (kept across its retries); absent: here. */
  private startAction(command: string, attempt: number, seq?: number): void {
    // The command's own timeout starts when the driver reports it done.
    const started = this.ctx.now;
    const from = seq ?? this.ctx.seq;
    this.setReboot({
      command, attempts: attempt, awaitingShutdown: REBOOTING.has(command), gaveUp: false, inFlight: true, lastError: null, started,
      ...(from === undefined ? {} : { seq: from }),
    });
    this.n.timeout = null;
    this.out.push({ t: 'action', node: this.n.id, command, attempt, started });
  }

  command(command: string, force: boolean): Outcome {
    const r = this.n.reboot;
    // The gatekeeper: a reboot stated is still driving is joined, not doubled.
    // One that stalled where stated will do nothing more is over: a new
    // command starts afresh (SPEC §4.3).
    if (!force && willAct(this.n)) {
      // Only a reboot joins a reboot (SPEC §4); any other command would be lost, so it is refused.
      if (JOINS.has(command) && REBOOTING.has(r.command!)) return this.done({ verdict: 'joined' });
      return this.done({ verdict: 'refused', refusal: `E_CONFLICT: ${r.command} in progress (attempt ${r.attempts}); force to override` });
    }
    this.startAction(command, 1);
    return this.done({ verdict: 'accepted' });
  }

  /**
   * A command from the node's triggers: it replaces whatever is in progress
   * (the scheduler still runs one action at a time per node). A reboot still
   * in progress counts on, so a node that wedges on every boot is given up
   * after maxRebootAttempts instead of being power-cycled forever.
   */
  private replace(command: string): void {
    const n = this.n;
    const r = n.reboot;
    const ongoing = r.command !== null && !r.gaveUp && command !== 'POWEROFF';
    if (!ongoing) {
      this.startAction(command, 1);
      return;
    }
    const where = `${n.mode}/${n.state ?? '-'}`;
    if (r.attempts >= this.ctx.maxRebootAttempts) {
      this.giveUp('RECOVERY_FAILED', n.mode, n.state ?? '-');
      return;
    }
    this.out.push(retryNotice(n.id, command, r.attempts + 1, this.ctx.maxRebootAttempts, `trigger ${command} in ${where}`));
    this.startAction(command, r.attempts + 1, r.seq);
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
      // The node already showed it is booting: the driver's word does not cut that boot short (SPEC §4.3).
      if (REBOOTING.has(command) && !r.awaitingShutdown) return this.done();
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
      this.out.push(generated(n.id, 'POWEROFF'));
      return this.done();
    }
    if (command === 'POWERON') {
      // Powering on a node that is on does nothing; one that was off now
      // boots, and stated drives that boot (Emulab's power tool logs SHUTDOWN).
      if (n.state !== 'POWEROFF' || !r.awaitingShutdown) {
        if (r.awaitingShutdown) this.setReboot(NO_REBOOT);
        return this.done();
      }
      this.out.push(generated(n.id, 'SHUTDOWN'));
      return this.done();
    }
    if (command === 'POWERCYCLE' || input.actual === 'POWERCYCLE') {
      // A power-cycled node cannot say SHUTDOWN; stated says it (as Emulab's power did).
      if (r.awaitingShutdown) this.out.push(generated(n.id, 'SHUTDOWN'));
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
