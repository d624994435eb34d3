/**
 * The outbound notification digest (SPEC §4): every NOTIFY is in the event
 * log at once; what goes out to people is throttled as Emulab's mail was —
 * identical messages within the window fold into one line with a count.
 */
import { spawn } from 'node:child_process';
import type { LoggedEvent } from './types.ts';

interface Pending {
  line: string;
  count: number;
  first: number;
  last: number;
}

export interface NotifierOptions {
  /** Digest window, ms (already scaled by --time-scale). */
  windowMs: number;
  /** argv of a program that reads each digest line on stdin; none = log only. */
  command: string[] | null;
  log: (line: string) => void;
}

export class Notifier {
  private readonly pending = new Map<string, Pending>();
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly opts: NotifierOptions) {}

  /** Takes committed NOTIFY and TBFAILED events. */
  add(le: LoggedEvent): void {
    const e = le.event;
    // Messages are written to stand alone (`pc1: ...`); the line names the node once.
    const text = e.message !== undefined && e.message.startsWith(`${e.objname}: `) ? e.message.slice(e.objname.length + 2) : e.message;
    const line = e.objtype === 'TBFAILED'
      ? `TBFAILED ${e.objname} ${e.eventtype}: ${text ?? e.reason?.code ?? ''}`
      : `NOTIFY ${e.eventtype} ${e.objname}: ${text ?? ''}`;
    const p = this.pending.get(line);
    if (p) {
      p.count++;
      p.last = le.time;
      return;
    }
    this.pending.set(line, { line, count: 1, first: le.time, last: le.time });
    this.timer ??= setTimeout(() => this.flush(), this.opts.windowMs);
  }

  /** Writes every folded line out now. */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    for (const p of this.pending.values()) {
      const text = p.count === 1 ? p.line
        : `${p.line} (x${p.count}, ${new Date(p.first).toISOString()} .. ${new Date(p.last).toISOString()})`;
      this.opts.log(`stated: ${text}`);
      if (this.opts.command && this.opts.command.length > 0) this.pipe(text);
    }
    this.pending.clear();
  }

  private pipe(text: string): void {
    const [cmd, ...args] = this.opts.command!;
    const child = spawn(cmd!, args, { stdio: ['pipe', 'ignore', 'pipe'], timeout: 30_000 });
    child.on('error', (err) => this.opts.log(`stated: notifyCommand failed: ${err.message}`));
    child.stderr.on('data', (d: Buffer) => this.opts.log(`stated: notifyCommand: ${d.toString().trim()}`));
    child.stdin.on('error', () => {});
    child.stdin.end(`${text}\n`);
  }
}
