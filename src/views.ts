/** How nodes look from outside (status, GET /v1/nodes): one shape for every reader. */
import type { NodeState } from './types.ts';

export interface NodeView {
  node: string;
  type: string;
  project: string | null;
  mode: string;
  state: string | null;
  since: number;
  nextMode: string | null;
  timeout: { at: number; action: string; mode: string; state: string } | null;
  reboot: {
    command: string | null; attempts: number; awaitingShutdown: boolean; gaveUp: boolean; inFlight: boolean; lastError: string | null;
    /** The action in flight waits for its power agent to connect (SPEC §4). */
    waitingForDriver: boolean;
  };
  triggers: { mode: string; state: string; triggers: string }[];
}

/** `waiting`: the nodes whose action waits for its driver (the drivers know, not the node's row). */
export function nodeView(n: NodeState, waiting?: { has(node: string): boolean }): NodeView {
  return {
    node: n.id, type: n.type, project: n.project, mode: n.mode, state: n.state, since: n.since,
    nextMode: n.nextMode, timeout: n.timeout,
    reboot: { ...n.reboot, waitingForDriver: n.reboot.inFlight && waiting?.has(n.id) === true },
    triggers: n.triggers,
  };
}
