/**
 * A plan: per-node actions under one wait, in one request (what os_setup,
 * os_load and tbrestart use). The daemon registers the wait and issues the
 * commands in one transaction, so no state a node reaches can fall between
 * them; a node the gatekeeper refuses is taken out of the wait at once, so
 * nobody waits out a node that was never started.
 */
import type { Connection } from './connection.ts';
import { StateWait } from './statewait.ts';

export type PlanCommand = 'REBOOT' | 'POWERCYCLE' | 'POWERON' | 'POWEROFF';

export interface Plan {
  /** The states every node must pass, in order (an entry `A|B`: either). */
  states: string[];
  /** Node -> what to do with it; null: only wait for it. */
  actions: Record<string, PlanCommand | null>;
  /** Seconds the daemon keeps the wait after its last attach. */
  ttl?: number;
  /** Past the gatekeeper (admin). */
  force?: boolean;
}

export interface Started {
  wait: StateWait;
  /** Node -> accepted | joined (a reboot already in progress). */
  started: Record<string, 'accepted' | 'joined'>;
  /** Node -> why the gatekeeper refused it (`E_CODE: message`); no longer in the wait. */
  refused: Record<string, string>;
}

/** Registers one wait over every node of the plan and starts its actions, in one request. */
export async function runPlan(conn: Connection, plan: Plan): Promise<Started> {
  const nodes = Object.keys(plan.actions);
  const actions: Record<string, string> = {};
  for (const [node, cmd] of Object.entries(plan.actions)) if (cmd !== null) actions[node] = cmd;
  const opts = { ...(plan.ttl === undefined ? {} : { ttl: plan.ttl }), ...(plan.force ? { force: true } : {}) };
  const wait = Object.keys(actions).length === 0
    ? await StateWait.init(conn, plan.states, nodes, opts)
    : await StateWait.init(conn, plan.states, nodes, { ...opts, actions });
  const started: Started['started'] = {};
  const refused: Started['refused'] = { ...wait.command?.refusals };
  for (const [node, verdict] of Object.entries(wait.command?.nodes ?? {})) {
    if (verdict === 'accepted' || verdict === 'joined') started[node] = verdict;
    else refused[node] ??= 'refused';
  }
  for (const node of Object.keys(refused)) await wait.cancelWait(node);
  return { wait, started, refused };
}
