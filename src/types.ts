/** Shared value types. Shapes on the wire are validated in protocol.ts. */

/** Emulab's event tuple. `message`/`reason` ride along on NOTIFY and TBFAILED. */
export interface StatedEvent {
  objtype: string;
  objname: string;
  eventtype: string;
  id?: string;
  message?: string;
  reason?: FailureReason;
  /** The op mode a TBNODESTATE was applied in, filled in by the daemon. */
  mode?: string;
  /** false when the transition was not in state_transitions (SPEC §4.1). */
  valid?: boolean;
}

export interface FailureReason {
  code: string;
  mode?: string;
  state?: string;
  attempts?: number;
  message?: string;
}

/** One committed row of the event log. */
export interface LoggedEvent {
  seq: number;
  time: number;
  event: StatedEvent;
}

// --- machine definitions, shaped as Emulab's four tables -------------------

export interface TransitionRow { op_mode: string; state1: string; state2: string; label: string }
export interface TimeoutRow { op_mode: string; state: string; timeout: number; action: string }
export interface TriggerRow { node_id: string; op_mode: string; state: string; triggers: string }
export interface ModeTransitionRow { op_mode1: string; state1: string; op_mode2: string; state2: string; label: string }

export interface MachineDefinition {
  state_transitions: TransitionRow[];
  state_timeouts: TimeoutRow[];
  state_triggers: TriggerRow[];
  mode_transitions: ModeTransitionRow[];
}

// --- nodes -----------------------------------------------------------------

/** A pending timeout: an absolute deadline (epoch ms) and what to do then. */
export interface PendingTimeout {
  at: number;
  action: string;
  mode: string;
  state: string;
}

/** A one-shot trigger attached to one node (SPEC §4.4). */
export interface OneShotTrigger {
  mode: string;
  state: string;
  triggers: string;
}

/** Reboot bookkeeping for a node whose power stated is driving. */
export interface RebootState {
  /** The command stated is driving (REBOOT, POWERCYCLE, ...), or null. */
  command: string | null;
  /** Attempts made for the current drive, kept across restarts. */
  attempts: number;
  /** Waiting for SHUTDOWN to settle the command. */
  awaitingShutdown: boolean;
  /** Gave up (TBFAILED sent); no retries until the node reaches ISUP. */
  gaveUp: boolean;
  /** A driver action was started and has not reported; re-run after a restart. */
  inFlight: boolean;
  /** Why the last attempt failed (a FailureReason code), for the final TBFAILED. */
  lastError: string | null;
  /**
   * When the current action started (ms): a result must name it, so a late one
   * (recorded again after a lost batch) cannot settle a newer action of the
   * same command and attempt, as a forced reboot's. Absent in rows written
   * before it existed.
   */
  started?: number;
  /**
   * The log position the reboot started after (kept across its retries): a
   * wait registered by a REBOOT that joins it counts from there. Absent in
   * rows written before it existed.
   */
  seq?: number;
}

export interface NodeState {
  id: string;
  type: string;
  project: string | null;
  mode: string;
  state: string | null;
  since: number;
  nextMode: string | null;
  /** The mode the node left at its last mode transition (where a reload returns). */
  prevMode: string | null;
  /** The mode a node in a boot phase machine (PXEKERNEL, SECUREBOOT, SECURELOAD) came from (SPEC §4.6). */
  phaseFrom: string | null;
  timeout: PendingTimeout | null;
  reboot: RebootState;
  triggers: OneShotTrigger[];
}

export const NO_REBOOT: RebootState = Object.freeze({
  command: null,
  attempts: 0,
  awaitingShutdown: false,
  gaveUp: false,
  inFlight: false,
  lastError: null,
}) as RebootState;
