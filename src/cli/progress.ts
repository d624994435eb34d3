/**
 * Waiting as the CLI shows it: a live bar on a terminal, plain status lines
 * otherwise, then a truthful summary and SPEC §1's exit code.
 */
import type { StateWait, WaitResult } from '../client/index.ts';
import type { FailureReason } from '../types.ts';
import { describeFailure } from '../reasons.ts';
import { duration } from '../timefmt.ts';
import { printJson } from './common.ts';
import { EXIT } from './output.ts';

export interface WatchOptions {
  timeoutS: number;
  updateS: number;
  json: boolean;
  /** Called once SIGINT/SIGTERM are handled: a line a script acts on may only come after that. */
  onWatching?: () => void;
}

function line(r: WaitResult, total: number, leftS: number): string {
  const pending = r.remaining.length > 0 ? ` (${r.remaining.slice(0, 8).join(' ')}${r.remaining.length > 8 ? ' ...' : ''})` : '';
  return `${r.finished.length}/${total} done, ${r.failed.length} failed, ${r.remaining.length} pending${pending}, ${duration(leftS * 1000)} left`;
}

function bar(r: WaitResult, total: number, leftS: number): string {
  const width = 30;
  const done = Math.round((r.finished.length / total) * width);
  const failed = Math.round((r.failed.length / total) * width);
  return `[${'#'.repeat(done)}${'x'.repeat(failed)}${'.'.repeat(Math.max(0, width - done - failed))}] ${line(r, total, leftS)}`;
}

/** What waiting came to: the wait's outcome, and whether a signal cut it short. */
export interface Followed {
  r: WaitResult;
  interrupted: boolean;
}

/** How long a stopped tool tries to end its wait on the daemon before it exits anyway. */
const END_LIMIT_MS = 3000;

/**
 * Waits until every node is settled or the time is up, showing progress;
 * SIGINT/SIGTERM stop it early with the results so far (SPEC §1). Always
 * ends the wait on the daemon, so nothing is left behind for 24 h.
 */
export async function follow(w: StateWait, opts: WatchOptions): Promise<Followed> {
  const total = w.nodes.length;
  const deadline = Date.now() + opts.timeoutS * 1000;
  const tty = process.stdout.isTTY === true && !opts.json;
  const out = (text: string): void => {
    if (opts.json) process.stderr.write(`${text}\n`);
    else process.stdout.write(`${text}\n`);
  };
  let r: WaitResult = { finished: [], failed: [], remaining: [...w.nodes], failures: {} };
  let interrupt: () => void = () => {};
  const interrupted = new Promise<'interrupted'>((resolve) => { interrupt = () => resolve('interrupted'); });
  let stopping = false;
  const onSignal = (): void => {
    // A second signal while the wait is being ended: the operator means it.
    if (stopping) process.exit(EXIT.INTERRUPTED);
    stopping = true;
    interrupt();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  opts.onWatching?.();
  // A failure is said the moment the daemon pushes it, not at the next -u
  // tick nor in the summary only; on a terminal the bar moves with every push.
  let live = true;
  const said = new Set<string>();
  const sayFailed = (node: string, reason: Parameters<typeof describeFailure>[0]): void => {
    said.add(node);
    process.stderr.write(`${tty ? '\r\x1b[K' : ''}failed ${node}: ${describeFailure(reason)}\n`);
  };
  void (async () => {
    for await (const u of w.progress()) {
      if (!live) return;
      if (u.type === 'failed') sayFailed(u.node, u.reason);
      if (!tty) continue;
      if (u.type === 'done') r = { ...r, finished: [...r.finished, u.node], remaining: r.remaining.filter((n) => n !== u.node) };
      if (u.type === 'failed') r = { ...r, failed: [...r.failed, u.node], remaining: r.remaining.filter((n) => n !== u.node) };
      process.stdout.write(`\r${bar(r, total, (deadline - Date.now()) / 1000)}\x1b[K`);
    }
  })();
  try {
    while (!stopping) {
      const leftS = (deadline - Date.now()) / 1000;
      if (leftS <= 0) break;
      const got = await Promise.race([w.waitForState({ timeout: Math.max(0.05, Math.min(opts.updateS, leftS)) }), interrupted]);
      if (got === 'interrupted') break;
      r = got;
      if (r.remaining.length === 0) break;
      const left = (deadline - Date.now()) / 1000;
      if (tty) process.stdout.write(`\r${bar(r, total, left)}\x1b[K`);
      else out(`waiting for ${w.states.join(',')}: ${line(r, total, left)}`);
    }
    live = false;
    // The result can come in before the push of the last failure is read: say those too.
    for (const node of r.failed) if (!said.has(node)) sayFailed(node, r.failures[node]);
    if (tty) process.stdout.write('\n');
    // Stopped by a signal: the daemon's record is the summary so far (pushes may not all have come in).
    if (stopping) r = await limited(w.snapshot()) ?? r;
    await limited(w.endStateWait());
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  return { r, interrupted: stopping };
}

/** The promise's value, or undefined if it fails or takes longer than END_LIMIT_MS. */
async function limited<T>(p: Promise<T>): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const cut = new Promise<undefined>((resolve) => { timer = setTimeout(() => resolve(undefined), END_LIMIT_MS); });
  try {
    return await Promise.race([p.catch(() => undefined), cut]);
  } finally {
    clearTimeout(timer);
  }
}

/** What a summary covers besides the wait's own result. */
export interface SummaryOptions extends WatchOptions {
  /** Nodes the command was refused for (never in the wait): failed, with the refusal's code. */
  refused?: Record<string, FailureReason>;
}

/**
 * The exit code of a waiting command (SPEC §1, README "Exit codes"): a
 * failed or refused node dominates timeouts, as in os_setup's report.
 */
export function exitCode(failed: number, timedOut: number, interrupted: boolean): number {
  return interrupted ? EXIT.INTERRUPTED : failed > 0 ? EXIT.FAILED : timedOut > 0 ? EXIT.TIMEOUT : EXIT.OK;
}

/** The nodes a wait did not get, as --json says them: timed out, or still awaited when a signal stopped it. */
export function remainingFields(remaining: string[], interrupted: boolean): { timedOut: string[]; interrupted?: string[] } {
  return interrupted ? { timedOut: [], interrupted: remaining } : { timedOut: remaining };
}

/** The same as a summary line, or null when there are none. */
export function remainingLine(remaining: string[], interrupted: boolean, timeoutS: number): string | null {
  if (remaining.length === 0) return null;
  const what = interrupted ? `interrupted, still waiting for ${remaining.length}` : `timed out ${remaining.length} after ${timeoutS}s`;
  return `${what}: ${remaining.join(' ')}`;
}

/** Prints the summary (table or --json) of a wait over `total` nodes; returns the exit code. */
export function summarize(states: string[], total: number, r: WaitResult, interrupted: boolean, opts: SummaryOptions): number {
  const refused = opts.refused ?? {};
  const failed = [...Object.keys(refused), ...r.failed];
  const failures = { ...refused, ...r.failures };
  const out = (text: string): void => {
    if (opts.json) process.stderr.write(`${text}\n`);
    else process.stdout.write(`${text}\n`);
  };
  const code = exitCode(failed.length, r.remaining.length, interrupted);
  if (opts.json) {
    printJson({ states, finished: r.finished, failed, ...remainingFields(r.remaining, interrupted), failures, exit: code });
    return code;
  }
  out(`finished ${r.finished.length}/${total}${r.finished.length > 0 ? `: ${r.finished.join(' ')}` : ''}`);
  if (failed.length > 0) {
    out(`failed ${failed.length}:`);
    for (const n of failed) out(`  ${n}: ${n in refused ? 'refused ' : ''}${describeFailure(failures[n])}`);
  }
  const rest = remainingLine(r.remaining, interrupted, opts.timeoutS);
  if (rest !== null) out(rest);
  return code;
}

/** Waits, reports, ends the wait; returns the exit code (0 done, 1 failed or refused, 2 timed out, 130 interrupted). */
export async function watch(w: StateWait, opts: SummaryOptions): Promise<number> {
  const refused = opts.refused ?? {};
  if (w.nodes.every((n) => n in refused)) {
    // Every node refused: nothing to wait for, and no wait left behind.
    await w.endStateWait();
    return summarize(w.states, w.nodes.length, { finished: [], failed: [], remaining: [], failures: {} }, false, opts);
  }
  const { r, interrupted } = await follow(w, opts);
  return summarize(w.states, w.nodes.length, r, interrupted, opts);
}
