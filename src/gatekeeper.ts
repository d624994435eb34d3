/**
 * The reboot gatekeeper (SPEC §4.3): the drive of one node's power command
 * from request to ISUP or TBFAILED. It decides whether a command starts,
 * joins the reboot in progress or is refused; starts the driver's actions;
 * reads their results; retries a drive that stalls (the REBOOT and CMDRETRY
 * timeouts, a failed driver) with a REBOOT_RETRY NOTIFY each time; and gives
 * up after maxRebootAttempts with TBFAILED. Rules on a Step: pure, no I/O.
 */
import { PXEKERNEL } from './phases.ts';
import { type ActionResult, type Effect, type Outcome, type Step, generated, notify } from './step.ts';
import type { FailureReason, NodeState } from './types.ts';
import { NO_REBOOT } from './types.ts';

/**
 * Commands that bring a node up, settled when it shows it went down or is
 * booting (SPEC §4.3); a REBOOT joins any of them in progress.
 */
export const REBOOTING: ReadonlySet<string> = new Set(['REBOOT', 'POWERCYCLE', 'POWERON']);
/** Commands that join a reboot in progress instead of starting another. */
const JOINS = new Set(['REBOOT', 'POWERCYCLE']);

/**
 * The NOTIFY code of a retry (SPEC §4.3: each retry raises a NOTIFY, attempt
 * n of max). Every retry of a node's boot, whatever set it off, goes through
 * retryNotice, so operators and tests see one code.
 */
export const REBOOT_RETRY = 'REBOOT_RETRY';

/** The NOTIFY of a retry: attempt `attempt` of `max`, and why the last one did not do. */
export function retryNotice(node: string, command: string, attempt: number, max: number, why: string): Effect {
  return notify(node, REBOOT_RETRY, `${node}: ${why}; ${command} attempt ${attempt} of ${max}`);
}

/** The timeout actions that belong to a drive: the state's REBOOT, the command's CMDRETRY. */
export function isRetryAction(action: string): boolean {
  return action === 'REBOOT' || action === 'CMDRETRY';
}

/**
 * Will stated act on the node by itself (SPEC §4.3)? An action in flight, or
 * a pending REBOOT/CMDRETRY timeout of a reboot it drives. Only then does a
 * new REBOOT join; a node sitting where stated will do nothing gets a new one.
 */
function willAct(n: NodeState): boolean {
  const r = n.reboot;
  if (r.command === null || r.gaveUp) return false;
  return r.inFlight || (n.timeout !== null && isRetryAction(n.timeout.action));
}

/** An operator's (or a client's) command: accepted, joined or refused. */
export function requestCommand(s: Step, command: string, force: boolean): Outcome {
  const r = s.n.reboot;
  // The gatekeeper: a reboot stated is still driving is joined, not doubled.
  // One that stalled where stated will do nothing more is over: a new
  // command starts afresh (SPEC §4.3).
  if (!force && willAct(s.n)) {
    // Only a reboot joins a reboot (SPEC §4); any other command would be lost, so it is refused.
    if (JOINS.has(command) && REBOOTING.has(r.command!)) return s.done({ verdict: 'joined' });
    return s.done({ verdict: 'refused', refusal: `E_CONFLICT: ${r.command} in progress (attempt ${r.attempts}); force to override` });
  }
  startAction(s, command, 1);
  return s.done({ verdict: 'accepted' });
}

/**
 * A command from the node's triggers: it replaces whatever is in progress
 * (the scheduler still runs one action at a time per node). A reboot still
 * in progress counts on, so a node that wedges on every boot is given up
 * after maxRebootAttempts instead of being power-cycled forever.
 */
export function replace(s: Step, command: string): void {
  const n = s.n;
  const r = n.reboot;
  const ongoing = r.command !== null && !r.gaveUp && command !== 'POWEROFF';
  if (!ongoing) {
    startAction(s, command, 1);
    return;
  }
  const where = `${n.mode}/${n.state ?? '-'}`;
  if (r.attempts >= s.ctx.maxRebootAttempts) {
    giveUp(s, 'RECOVERY_FAILED', n.mode, n.state ?? '-');
    return;
  }
  s.out.push(retryNotice(n.id, command, r.attempts + 1, s.ctx.maxRebootAttempts, `trigger ${command} in ${where}`));
  startAction(s, command, r.attempts + 1, r.seq, 'TRIGGER');
}

/** Someone (or we) declared the node lost (TBFAILED): stop driving it. */
export function stopDriving(s: Step): void {
  // Not in flight either: a restart must not run the lost node's action again, and its late result is ignored.
  if (s.n.reboot.command) s.setReboot({ ...s.n.reboot, gaveUp: true, awaitingShutdown: false, inFlight: false });
  if (s.n.timeout && isRetryAction(s.n.timeout.action)) s.n.timeout = null;
}

/** A REBOOT (the state's) or CMDRETRY (the command's) timeout of `mode`/`state` fired. */
export function timedOut(s: Step, action: 'REBOOT' | 'CMDRETRY', mode: string, state: string): void {
  const code = action === 'REBOOT' ? 'TIMEOUT_IN_STATE' : s.n.reboot.lastError ?? 'COMMAND_TIMEOUT';
  retry(s, code, mode, state);
}

/** A stated-driven command did not get its node where it should: again, or give up. */
function retry(s: Step, code: string, mode: string, state: string, message?: string): void {
  const n = s.n;
  const r = n.reboot;
  if (!r.command && state === 'PXEWAKEUP' && mode === PXEKERNEL) {
    // Emulab's stated wakes a node that did not answer its PXE wakeup
    // itself (handleCtrlEvent): nobody else is driving it.
    s.out.push(notify(n.id, 'TIMEOUT', `${n.id}: timed out in ${mode}/${state}; rebooting it`));
    startAction(s, 'REBOOT', 1);
    return;
  }
  if (!r.command || r.gaveUp) {
    // Down under its user's control: only reported (SPEC §4).
    s.out.push(notify(n.id, 'TIMEOUT', `${n.id}: timed out in ${mode}/${state} (${code}); not driven by stated, not retried`));
    return;
  }
  if (r.attempts < s.ctx.maxRebootAttempts) {
    // A node powered on that then wedges is on: only a power cycle boots it again.
    const again = r.command === 'POWERON' ? 'POWERCYCLE' : r.command;
    s.out.push(retryNotice(n.id, again, r.attempts + 1, s.ctx.maxRebootAttempts, `${code} in ${mode}/${state}`));
    startAction(s, again, r.attempts + 1, r.seq, code);
    return;
  }
  giveUp(s, code, mode, state, message);
}

function giveUp(s: Step, code: string, mode: string, state: string, message?: string): void {
  const n = s.n;
  const r = n.reboot;
  const reason: FailureReason = { code, mode, state, attempts: r.attempts };
  if (message) reason.message = message;
  s.setReboot({ ...r, gaveUp: true, awaitingShutdown: false, inFlight: false, lastError: code });
  n.timeout = null;
  s.out.push({
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

/** `seq`: where the reboot began (kept across its retries; absent: here); `retry`: why the last attempt failed, or TRIGGER (the retries counter). */
function startAction(s: Step, command: string, attempt: number, seq?: number, retry?: string): void {
  // The command's own timeout starts when the driver reports it done.
  const started = s.ctx.now;
  const from = seq ?? s.ctx.seq;
  s.setReboot({
    command, attempts: attempt, awaitingShutdown: REBOOTING.has(command), gaveUp: false, inFlight: true, lastError: null, started,
    ...(from === undefined ? {} : { seq: from }),
  });
  s.n.timeout = null;
  s.out.push(retry === undefined ? { t: 'action', node: s.n.id, command, attempt, started } : { t: 'action', node: s.n.id, command, attempt, started, retry });
}

/** What the driver reports of an action it ran. */
export function actionResult(s: Step, input: ActionResult): Outcome {
  const n = s.n;
  const r = n.reboot;
  const { command, ok, message } = input;
  // A result for an attempt that is no longer current (superseded, forced) changes nothing.
  if (r.command !== command || r.attempts !== input.attempt || !r.inFlight) return s.done();
  if (input.started !== undefined && r.started !== undefined && input.started !== r.started) return s.done();
  s.setReboot({ ...r, inFlight: false });
  if (!ok) {
    s.out.push(notify(n.id, 'DRIVER_FAILED', `${n.id}: ${command} attempt ${r.attempts} failed: ${message ?? 'no reason given'}`));
    // The node already showed it is booting: the driver's word does not cut that boot short (SPEC §4.3).
    if (REBOOTING.has(command) && !r.awaitingShutdown) return s.done();
    if (r.attempts >= s.ctx.maxRebootAttempts) {
      giveUp(s, 'DRIVER_FAILED', 'TBCOMMAND', command, message);
      return s.done();
    }
    // Try again after the retry delay, through the durable timer (CMDRETRY).
    s.setReboot({ ...n.reboot, lastError: 'DRIVER_FAILED' });
    n.timeout = { at: s.deadline(s.ctx.retryDelay), action: 'CMDRETRY', mode: 'TBCOMMAND', state: command };
    return s.done();
  }
  if (command === 'POWEROFF') {
    s.setReboot(NO_REBOOT);
    s.out.push(generated(n.id, 'POWEROFF'));
    return s.done();
  }
  if (command === 'POWERON') {
    // Powering on a node that is on does nothing; one that was off now
    // boots, and stated drives that boot (Emulab's power tool logs SHUTDOWN).
    if (n.state !== 'POWEROFF' || !r.awaitingShutdown) {
      if (r.awaitingShutdown) s.setReboot(NO_REBOOT);
      return s.done();
    }
    s.out.push(generated(n.id, 'SHUTDOWN'));
    return s.done();
  }
  if (command === 'POWERCYCLE' || input.actual === 'POWERCYCLE') {
    // A power-cycled node cannot say SHUTDOWN; stated says it (as Emulab's power did).
    if (r.awaitingShutdown) s.out.push(generated(n.id, 'SHUTDOWN'));
    return s.done();
  }
  // REBOOT: SHUTDOWN must now come in time (TBCOMMAND row, CMDRETRY).
  const t = s.ctx.machine.timeout('TBCOMMAND', command);
  if (r.awaitingShutdown && t) {
    n.timeout = { at: s.deadline(t.seconds), action: t.action, mode: 'TBCOMMAND', state: command };
  }
  return s.done();
}
