/** What a driver is asked to do and what it answers (SPEC §4, commands and the gatekeeper). */

export interface Action {
  /** Unique per run, so a late answer can be told from a current one. */
  id: string;
  node: string;
  type: string;
  /** The command to carry out (after the escalation ladder). */
  command: string;
  /** The command stated is driving (REBOOT for a ladder step POWERCYCLE). */
  requested: string;
  attempt: number;
  /** When stated started it (the node's reboot state names it): carried back with the result. */
  started?: number;
  /** The node's op mode and next op mode, so a simulator can pick its boot sequence. */
  mode: string;
  nextMode: string | null;
}

export interface ActionResult {
  ok: boolean;
  message?: string;
}

/** One way of running power actions for a node type. */
export interface Driver {
  readonly name: string;
  run(a: Action, timeoutMs: number): Promise<ActionResult>;
  /** Why this driver can never run `command` (a command template it lacks), or null; absent: it runs any. */
  cannotRun?(command: string): string | null;
}
