/**
 * Waiting as the CLI shows it: a live bar on a terminal, plain status lines
 * otherwise, then a truthful summary and SPEC §1's exit code.
 */
import type { StateWait, WaitResult } from '../client/index.ts';
import type { FailureReason } from '../types.ts';
import { printJson } from './common.ts';
import { EXIT } from './output.ts';
import { duration } from './status.ts';

export interface WatchOptions {
  timeoutS: number;
  updateS: number;
  json: boolean;
}

function reasonText(r: FailureReason | undefined): string {
  if (!r) return 'TBFAILED';
  const where = r.mode && r.state ? ` in ${r.mode}/${r.state}` : '';
  const tries = r.attempts ? ` after ${r.attempts} attempt(s)` : '';
  return `${r.code}${where}${tries}${r.message ? `: ${r.message}` : ''}`;
}

function line(r: WaitResult, total: number, leftS: number): string {
  const pending = r.remaining.length > 0 ? ` (${r.remaining.slice(0, 8).join(' ')}${r.remaining.length > 8 ? ' ...' : ''})` : '';
  return `${r.finished.length}/${total} done, ${r.failed.length} failed, ${r.remaining.length} pending${pending}, ${duration(Math.max(0, Math.ceil(leftS)) * 1000)} left`;
}

function bar(r: WaitResult, total: number, leftS: number): string {
  const width = 30;
  const done = Math.round((r.finished.length / total) * width);
  const failed = Math.round((r.failed.length / total) * width);
  return `[${'#'.repeat(done)}${'x'.repeat(failed)}${'.'.repeat(Math.max(0, width - done - failed))}] ${line(r, total, leftS)}`;
}

/** Waits, reports, ends the wait; returns the exit code (0 done, 1 failed, 2 timed out). */
export async function watch(w: StateWait, opts: WatchOptions): Promise<number> {
  const total = w.nodes.length;
  const deadline = Date.now() + opts.timeoutS * 1000;
  const tty = process.stdout.isTTY === true && !opts.json;
  const out = (text: string): void => {
    if (opts.json) process.stderr.write(`${text}\n`);
    else process.stdout.write(`${text}\n`);
  };
  let r: WaitResult = { finished: [], failed: [], remaining: [...w.nodes], failures: {} };
  // On a terminal the bar moves with every push, not only every -u seconds.
  let live = true;
  if (tty) {
    void (async () => {
      for await (const u of w.progress()) {
        if (!live) return;
        if (u.type === 'done') r = { ...r, finished: [...r.finished, u.node], remaining: r.remaining.filter((n) => n !== u.node) };
        if (u.type === 'failed') r = { ...r, failed: [...r.failed, u.node], remaining: r.remaining.filter((n) => n !== u.node) };
        process.stdout.write(`\r${bar(r, total, (deadline - Date.now()) / 1000)}\x1b[K`);
      }
    })();
  }
  for (;;) {
    const leftS = (deadline - Date.now()) / 1000;
    if (leftS <= 0) break;
    r = await w.waitForState({ timeout: Math.max(0.05, Math.min(opts.updateS, leftS)) });
    if (r.remaining.length === 0) break;
    const left = (deadline - Date.now()) / 1000;
    if (tty) process.stdout.write(`\r${bar(r, total, left)}\x1b[K`);
    else out(`waiting for ${w.states.join(',')}: ${line(r, total, left)}`);
  }
  live = false;
  if (tty) process.stdout.write('\n');
  await w.endStateWait().catch(() => {});
  const code = r.failed.length > 0 ? EXIT.FAILED : r.remaining.length > 0 ? EXIT.TIMEOUT : EXIT.OK;
  if (opts.json) {
    printJson({ states: w.states, finished: r.finished, failed: r.failed, timedOut: r.remaining, failures: r.failures, exit: code });
    return code;
  }
  out(`finished ${r.finished.length}/${total}${r.finished.length > 0 ? `: ${r.finished.join(' ')}` : ''}`);
  if (r.failed.length > 0) {
    out(`failed ${r.failed.length}:`);
    for (const n of r.failed) out(`  ${n}: ${reasonText(r.failures[n])}`);
  }
  if (r.remaining.length > 0) out(`timed out ${r.remaining.length} after ${opts.timeoutS}s: ${r.remaining.join(' ')}`);
  return code;
}
