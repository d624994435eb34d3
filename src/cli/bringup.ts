/**
 * Bringing a set of nodes up, as Emulab's os_setup and tbrestart do (SPEC
 * §1): one ISUP wait over the whole set, registered in the same request
 * that starts every node's reboot (a node with a next op mode goes through
 * that mode on the way: its reload); stated does the retries; then a
 * summary of who was reloaded, rebooted, failed (why) or timed out.
 */
import { type Connection, runPlan } from '../client/index.ts';
import { isReloadMode } from '../phases.ts';
import type { FailureReason } from '../types.ts';
import type { NodeView } from '../views.ts';
import { admin, printJson } from './common.ts';
import { usage } from './output.ts';
import { describeFailure } from '../reasons.ts';
import { exitCode, follow, remainingFields, remainingLine } from './progress.ts';
import { waitTtl } from './waitforstate.ts';

export interface BringUpOptions {
  timeoutS: number;
  updateS: number;
  json: boolean;
  /** Failed nodes that still count as success (os_setup --tolerate). */
  tolerate: number;
}

export interface Outcome {
  reloaded: string[];
  rebooted: string[];
  failed: { node: string; reason: FailureReason }[];
  timedOut: string[];
  /** Nodes whose next op mode was cleared after their reload failed. */
  cleared: string[];
  interrupted: boolean;
}

/** The nodes as the daemon has them now, in the order asked. */
export async function nodeViews(conn: Connection, nodes?: string[]): Promise<NodeView[]> {
  if (nodes && nodes.length === 0) return [];
  const st = await conn.request<{ nodes: NodeView[] }>('status', nodes ? { nodes } : {});
  return st.nodes;
}

/** Every node of a project the token can see; none is a usage error (-e PROJECT). */
export async function projectViews(conn: Connection, project: string): Promise<NodeView[]> {
  const views = (await nodeViews(conn)).filter((n) => n.project === project);
  if (views.length === 0) usage(`project ${project} has no nodes you can see`);
  return views;
}

/**
 * Clears a next op mode that a failed reload left behind, so the node's
 * next plain reboot does not reload its disk. Only while it is still the
 * mode we saw (an operator may have chosen another meanwhile). Returns the
 * nodes cleared; a token that may not set modes gets a warning.
 */
export async function clearNextModes(conn: Connection, want: Map<string, string>): Promise<string[]> {
  if (want.size === 0) return [];
  const cleared: string[] = [];
  for (const n of await nodeViews(conn, [...want.keys()])) {
    if (n.nextMode === null || n.nextMode !== want.get(n.node)) continue;
    try {
      await admin(conn, 'node.setNextMode', { node: n.node, mode: null });
      cleared.push(n.node);
    } catch (err) {
      process.stderr.write(`stated: could not clear the next op mode of ${n.node}: ${(err as Error).message}\n`);
    }
  }
  return cleared;
}

/** A gatekeeper's refusal (`E_CODE: message`) as a failure reason. */
export function refusalReason(why: string): FailureReason {
  const i = why.indexOf(': ');
  return i > 0 ? { code: why.slice(0, i), message: why.slice(i + 2) } : { code: 'REFUSED', message: why };
}

/** Reboots every node (reloading those with a next op mode) under one ISUP wait; returns what came of it. */
export async function bringUp(conn: Connection, views: NodeView[], opts: BringUpOptions): Promise<Outcome> {
  // The mode each reloading node is headed for: judged again after the wait.
  const reloadMode = new Map(views.filter((n) => n.nextMode !== null).map((n) => [n.node, n.nextMode!] as const));
  const ttl = waitTtl(opts.timeoutS);
  const { wait, refused } = await runPlan(conn, { states: ['ISUP'], actions: Object.fromEntries(views.map((n) => [n.node, 'REBOOT'])), ttl });
  const reloading = views.filter((n) => reloadMode.has(n.node) && !(n.node in refused)).map((n) => n.node);
  const rebooting = views.filter((n) => !reloadMode.has(n.node) && !(n.node in refused)).map((n) => n.node);
  if (reloading.length > 0) process.stderr.write(`reloading ${reloading.length}: ${reloading.join(' ')}\n`);
  if (rebooting.length > 0) process.stderr.write(`rebooting ${rebooting.length}: ${rebooting.join(' ')}\n`);
  for (const [n, why] of Object.entries(refused)) process.stderr.write(`refused ${n}: ${why}\n`);

  const { r, interrupted } = await follow(wait, { timeoutS: opts.timeoutS, updateS: opts.updateS, json: opts.json });
  const failed: Outcome['failed'] = [];
  for (const [node, why] of Object.entries(refused)) failed.push({ node, reason: refusalReason(why) });
  for (const node of r.failed) failed.push({ node, reason: r.failures[node] ?? { code: 'TBFAILED' } });
  // ISUP alone does not say the node went through its next mode: one that
  // never took the mode transition is up still headed for it; one that booted
  // its old disk instead of the reload image (RELOAD's TBSETUP -> ISUP,
  // "FailedBoot") is up still in the reload mode, which RELOADDONE would
  // have closed. Counted failed, as Emulab's os_setup does.
  const up = new Set(r.finished);
  const reloaded: string[] = [];
  const rebooted = rebooting.filter((n) => up.has(n));
  const upReloading = reloading.filter((n) => up.has(n));
  for (const n of await nodeViews(conn, upReloading)) {
    const target = reloadMode.get(n.node)!;
    if (n.nextMode === target || (n.mode === target && isReloadMode(target))) {
      failed.push({ node: n.node, reason: { code: 'RELOAD_FAILED', mode: n.mode, ...(n.state ? { state: n.state } : {}), message: `up without finishing its ${target}` } });
    } else reloaded.push(n.node);
  }
  const lost = new Map<string, string>();
  for (const f of failed) if (reloadMode.has(f.node)) lost.set(f.node, reloadMode.get(f.node)!);
  if (!interrupted) for (const n of r.remaining) if (reloadMode.has(n)) lost.set(n, reloadMode.get(n)!);
  const cleared = await clearNextModes(conn, lost);
  return { reloaded, rebooted, failed, timedOut: r.remaining, cleared, interrupted };
}

/** Prints the outcome (table or --json) and returns the exit code (SPEC §1 os_setup). */
export function report(o: Outcome, opts: BringUpOptions): number {
  // Failures within --tolerate count as none; then the same rule as every waiting command.
  const code = exitCode(o.failed.length > opts.tolerate ? o.failed.length : 0, o.timedOut.length, o.interrupted);
  if (opts.json) {
    printJson({ reloaded: o.reloaded, rebooted: o.rebooted, failed: o.failed, ...remainingFields(o.timedOut, o.interrupted), nextModeCleared: o.cleared, exit: code });
    return code;
  }
  const out = (text: string): void => void process.stdout.write(`${text}\n`);
  const list = (l: string[]): string => (l.length > 0 ? `: ${l.join(' ')}` : '');
  out(`reloaded ${o.reloaded.length}${list(o.reloaded)}`);
  out(`rebooted ${o.rebooted.length}${list(o.rebooted)}`);
  if (o.failed.length > 0) {
    const within = o.failed.length <= opts.tolerate;
    out(`failed ${o.failed.length}${opts.tolerate > 0 ? ` (${within ? '' : 'only '}${opts.tolerate} tolerated)` : ''}:`);
    for (const f of o.failed) out(`  ${f.node}: ${describeFailure(f.reason)}`);
  }
  const rest = remainingLine(o.timedOut, o.interrupted, opts.timeoutS);
  if (rest !== null) out(rest);
  if (o.cleared.length > 0) out(`next op mode cleared${list(o.cleared)}`);
  return code;
}
