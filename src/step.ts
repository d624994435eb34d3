/**
 * The vocabulary of the engine (SPEC §4): what goes in (an input and its
 * context), what comes out (effects, an outcome), and the Step every rule
 * works on — a mutable copy of one node and the effects so far. Both halves
 * of the engine, state entry (`engine.ts`) and the reboot gatekeeper
 * (`gatekeeper.ts`), build on it, so neither imports the other's internals
 * back. Pure: no I/O, no clock.
 */
import type { Machine } from './machine.ts';
import type { NodeState, RebootState, StatedEvent } from './types.ts';

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

/** A driver's report of an action it ran. */
export type ActionResult = Extract<EngineInput, { kind: 'actionResult' }>;

export type Effect =
  /** An event for the log, in this batch, after the input's own; TBNODESTATE ones re-enter apply. */
  | { t: 'emit'; event: StatedEvent; forced?: boolean }
  /** Run a power action through the node type's driver, after commit. */
  | { t: 'action'; node: string; command: string; attempt: number; started?: number; /** on a retry: why the last attempt failed, or TRIGGER (the retries counter) */ retry?: string }
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

/** Builds a NOTIFY event (SPEC §2): objname the node, eventtype a code. */
export function notify(node: string, code: string, message: string): Effect {
  return { t: 'emit', event: { objtype: 'NOTIFY', objname: node, eventtype: code, message } };
}

/** A state stated puts the node in itself (SPEC §4): logged like any, not judged against the tables. */
export function generated(node: string, state: string): Extract<Effect, { t: 'emit' }> {
  return { t: 'emit', event: { objtype: 'TBNODESTATE', objname: node, eventtype: state }, forced: true };
}

/** One application: a mutable copy of the node and the effects so far. */
export class Step {
  readonly n: NodeState;
  readonly out: Effect[] = [];
  constructor(node: NodeState, readonly ctx: EngineContext) {
    this.n = { ...node };
  }

  done(extra?: Partial<Outcome>): Outcome {
    // No spread on the per-event path: enterState passes only `valid`.
    return extra === undefined ? { node: this.n, effects: this.out } : Object.assign({ node: this.n, effects: this.out }, extra);
  }

  setReboot(r: RebootState): void {
    this.n.reboot = r;
  }

  /** Epoch ms `seconds` from now, scaled (SPEC §1 --time-scale). */
  deadline(seconds: number): number {
    return this.ctx.now + Math.round(seconds * 1000 * this.ctx.timeScale);
  }
}
