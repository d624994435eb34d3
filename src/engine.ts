/**
 * The pure rules of SPEC §4: a node's state and one input in, the node's new
 * state and a list of effects out. No I/O, no clock, no SQLite: every path
 * that changes a node (event, timeout, trigger, command, driver result) comes
 * through `apply`, so every Emulab rule is a unit test of this one function.
 */
import { type Machine, classifyTrigger, parseTimeoutAction, splitTriggers } from './machine.ts';
import { PXEKERNEL, SECVIOLATION, type PhaseTrigger, isPhaseMode, isPhaseTrigger, isReloadMode, isSecureMode, phaseTarget, reloadReturn } from './phases.ts';
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
  /**
   * Seconds (scaled by timeScale): a deadline overdue by more than this when
   * it fires (the daemon was down) is dropped with a NOTIFY; 0 drops none.
   */
  staleTimeoutAge: number;
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
  | { t: 'action'; node: string; command: string; attempt: number; started?: number; /** on a retry: why the last attempt failed (stats) */ retry?: string }
  /** Run an operator script (SCRIPT:name), after commit. */
  | { t: 'script'; node: string; name: string }
  /** A line for the daemon's debug log (an Emulab trigger stated has nothing to do for). */
  | { t: 'log'; node: string; message: string };

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
      // Deprecated in Emulab (SPEC §2), and still an immediate mode change (§4.5).
      step.out.push(notify(node.id, 'DEPRECATED_OPMODE', `${node.id}: TBNODEOPMODE ${input.mode} is deprecated; mode changed`));
      step.changeMode(input.mode, false);
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
    const from = n.state;
    const verdict = forced ? 'unchecked' : machine.transition(n.mode, from, state);
    if (verdict === 'invalid') {
      this.out.push(notify(id, 'INVALID_TRANSITION', `${id}: invalid transition ${n.mode}/${from} -> ${state}`));
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
    this.armTimeout();
    // A node that comes up is no longer being driven (SPEC §4, timeout REBOOT).
    if (state === 'ISUP') this.setReboot(NO_REBOOT);

    // Emulab's stateTransition: a node on the secure-boot path may not jump
    // into states its tables do not allow; it goes to SECVIOLATION instead
    // (whose own triggers power it off), and the reported state's triggers
    // do not run.
    if (verdict === 'invalid' && isSecureMode(n.mode) && state !== SECVIOLATION) {
      this.out.push(notify(id, 'SECVIOLATION', `${id}: ${from} -> ${state} is not allowed in ${n.mode}; moved to ${SECVIOLATION}`));
      this.out.push(generated(id, SECVIOLATION));
      return { node: n, effects: this.out, valid: false };
    }

    // §4.4: the node's one-shot triggers, cleared, then one global row.
    if (n.triggers.length > 0) for (const name of this.takeOneShots(state)) this.trigger(name, from);
    for (const name of machine.triggers(id, n.mode, state)) this.trigger(name, from);

    // §4.5: where (mode, state) starts mode transitions, the next op mode takes effect.
    if (n.nextMode !== null && machine.modeTransitionState(n.mode, state)) this.changeMode(n.nextMode, false);
    return { node: n, effects: this.out, valid: verdict !== 'invalid' };
  }

  /** Arms the timeout of the node's (mode, state), replacing any (SPEC §4.2). */
  private armTimeout(): void {
    const n = this.n;
    const t = n.state === null ? null : this.ctx.machine.timeout(n.mode, n.state);
    n.timeout = t && n.state !== null ? { at: this.deadline(t.seconds), action: t.action, mode: n.mode, state: n.state } : null;
  }

  /**
   * The node's one-shot triggers for the state just entered, in Emulab's
   * order ((mode,state), then (`*`,state); `*`-state ones after), removed
   * from the node: each runs once.
   */
  private takeOneShots(state: string): string[] {
    const n = this.n;
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
  changeMode(mode: string, forced: boolean): void {
    const n = this.n;
    const id = n.id;
    const { machine } = this.ctx;
    const state = n.state;
    const row = state === null ? null : machine.modeTransition(n.mode, state, mode);
    if (!forced && row === null) {
      const why = state !== null && machine.modeTransitionState(n.mode, state) ? `no mode transition from ${n.mode}/${state} to ${mode}` : `${n.mode}/${state} is not a mode transition state`;
      this.out.push(notify(id, 'INVALID_MODE_TRANSITION', `${id}: ${why}; moved to ${mode}/${state} anyway`));
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
      this.out.push(generated(id, row.state));
    } else if (n.timeout?.mode !== 'TBCOMMAND') {
      // A command's own retry timer is not the state's: it stays.
      this.armTimeout();
    }
  }

  /** The PXEBOOT, BOOTING and SECUREBOOT triggers (SPEC §4.6). */
  private phase(name: PhaseTrigger, from: string | null): void {
    const n = this.n;
    const target = phaseTarget(name, n, from);
    if (target === 'lost') {
      this.out.push(notify(n.id, 'PXE_NO_MODE', `${n.id}: BOOTING in ${PXEKERNEL} with no next op mode and no mode it came from; it stays in ${PXEKERNEL}`));
    } else if (target !== null) {
      this.changeMode(target, true);
    }
  }

  trigger(name: string, from: string | null = this.n.state): void {
    const n = this.n;
    const id = n.id;
    if (isPhaseTrigger(name)) {
      this.phase(name, from);
      return;
    }
    // Emulab's triggers for things outside stated (port registration, PXE boot paths, MFS mail).
    if (classifyTrigger(name) === 'noop') {
      this.out.push({ t: 'log', node: id, message: `${id}: trigger ${name} in ${n.mode}/${n.state}: Emulab work outside stated, nothing to do` });
      return;
    }
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
        // operator already chose its next mode. On a node that is not
        // reloading it changes nothing (Emulab's control only clears reload
        // bookkeeping), so no later SHUTDOWN switches its mode. A next mode
        // that is the reload mode itself (set on a node already reloading)
        // would reload it again at every boot, RELOAD/ISUP rebooting it into
        // the next: not a choice, so it is replaced too.
        if (isReloadMode(n.mode) && (n.nextMode === null || n.nextMode === n.mode)) n.nextMode = reloadReturn(n);
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
    // Emulab ignored ancient deadlines at start: after a long outage the
    // node's state is stale, and acting on it would power-cycle a fleet.
    const overdue = this.ctx.now - t.at;
    const stale = this.ctx.staleTimeoutAge * 1000 * this.ctx.timeScale;
    if (stale > 0 && overdue > stale) {
      this.out.push(notify(n.id, 'STALE_TIMEOUT', `${n.id}: ${t.action || 'timeout'} of ${where} was due ${Math.round(overdue / 1000)} s ago, more than staleTimeoutAge; dropped`));
      // A drive whose retry is dropped is over: a new command starts afresh.
      if (isRetryAction(t.action)) this.setReboot(NO_REBOOT);
      return this.done();
    }
    const action = parseTimeoutAction(t.action);
    if (action === null) {
      this.out.push(notify(n.id, 'UNKNOWN_ACTION', `${n.id}: unknown timeout action ${t.action} in ${where}`));
    } else if (action.kind === 'NOTIFY') {
      this.out.push(notify(n.id, 'TIMEOUT', `${n.id}: timed out in ${where}`));
    } else if (action.kind === 'STATE') {
      // Definitions may change under a pending deadline: force only a state the tables know.
      if (this.ctx.machine.hasState(action.state)) this.out.push(generated(n.id, action.state));
      else this.out.push(notify(n.id, 'UNKNOWN_ACTION', `${n.id}: timeout action ${t.action} in ${where} names a state no table knows; not forced`));
    } else if (action.kind === 'REBOOT' || action.kind === 'CMDRETRY') {
      const code = action.kind === 'REBOOT' ? 'TIMEOUT_IN_STATE' : n.reboot.lastError ?? 'COMMAND_TIMEOUT';
      this.retry(code, t.mode, t.state);
    }
    return this.done();
  }

  /** A stated-driven command did not get its node where it should: again, or give up. */
  private retry(code: string, mode: string, state: string, message?: string): void {
    const n = this.n;
    const r = n.reboot;
    if (!r.command && state === 'PXEWAKEUP' && mode === PXEKERNEL) {
      // Emulab's stated wakes a node that did not answer its PXE wakeup
      // itself (handleCtrlEvent): nobody else is driving it.
      this.out.push(notify(n.id, 'TIMEOUT', `${n.id}: timed out in ${mode}/${state}; rebooting it`));
      this.startAction('REBOOT', 1);
      return;
    }
    if (!r.command || r.gaveUp) {
      // Down under its user's control: only reported (SPEC §4).
      this.out.push(notify(n.id, 'TIMEOUT', `${n.id}: timed out in ${mode}/${state} (${code}); not driven by stated, not retried`));
      return;
    }
    if (r.attempts < this.ctx.maxRebootAttempts) {
      // A node powered on that then wedges is on: only a power cycle boots it again.
      const again = r.command === 'POWERON' ? 'POWERCYCLE' : r.command;
      this.out.push(retryNotice(n.id, again, r.attempts + 1, this.ctx.maxRebootAttempts, `${code} in ${mode}/${state}`));
      this.startAction(again, r.attempts + 1, r.seq, code);
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

  /** `seq`: where the reboot began (kept across its retries; absent: here); `retry`: why the last attempt failed (stats). */
  private startAction(command: string, attempt: number, seq?: number, retry?: string): void {
    // The command's own timeout starts when the driver reports it done.
    const started = this.ctx.now;
    const from = seq ?? this.ctx.seq;
    this.setReboot({
      command, attempts: attempt, awaitingShutdown: REBOOTING.has(command), gaveUp: false, inFlight: true, lastError: null, started,
      ...(from === undefined ? {} : { seq: from }),
    });
    this.n.timeout = null;
    this.out.push(retry === undefined ? { t: 'action', node: this.n.id, command, attempt, started } : { t: 'action', node: this.n.id, command, attempt, started, retry });
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
