/**
 * The writer thread: commits the event path's batches on a second core.
 *
 * The core records a batch's writes (writes.ts) instead of running them, hands
 * them here and builds the next batch while SQLite commits this one; senders
 * are acknowledged only when the commit is reported. Batches commit in the
 * order they were written, each in one transaction. A batch that fails makes
 * the thread refuse the ones already sent after it (same generation), so
 * nothing built on lost state lands; the core then rebuilds its memory from
 * SQLite and writes the next batches under a new generation.
 */
import { Worker } from 'node:worker_threads';
import source from 'virtual:writer-worker';
import type { BatchWriter } from './pipeline.ts';
import { releaseAddonFile, sqliteAddonFile } from './native.ts';
import type { WriterInit, WriterReply, WriterRequest } from './writer-worker.ts';
import type { Ops } from './writes.ts';

export interface ThreadWriterOptions {
  synchronous?: 'FULL' | 'NORMAL';
  /** The thread is gone (crashed, or could not open the database): nothing more can be made durable. */
  onFatal: (err: Error) => void;
  /** Each committed batch's latency, ms: from handing it over to its commit being reported (/metrics). */
  onCommitted?: (ms: number) => void;
}

export class ThreadWriter implements BatchWriter {
  private readonly worker: Worker;
  private readonly waiting: ((err: Error | null) => void)[] = [];
  /** performance.now() at each waiting batch's hand-over, in the same order. */
  private readonly sentAt: number[] = [];
  private gen = 0;
  private dead: Error | null = null;
  private closing = false;
  private exited: Promise<void>;
  private markReady!: (err: Error | null) => void;
  /** Settles once the thread has opened the database and loaded the addon (or died trying). */
  readonly ready: Promise<void>;

  constructor(db: string, private readonly opts: ThreadWriterOptions) {
    this.ready = new Promise((resolve, reject) => {
      this.markReady = (err) => (err ? reject(err) : resolve());
    });
    this.ready.catch(() => {}); // a death is reported through onFatal as well
    const init: WriterInit = { db, synchronous: opts.synchronous ?? 'FULL', addon: sqliteAddonFile() };
    this.worker = new Worker(source, { eval: true, workerData: init, stdout: false, stderr: false });
    this.worker.on('message', (m: WriterReply) => this.onReply(m));
    this.worker.on('error', (err) => this.die(err));
    this.exited = new Promise((resolve) => {
      this.worker.once('exit', (code) => {
        this.die(new Error(`the writer thread exited (code ${code})`));
        resolve();
      });
    });
  }

  get inFlight(): number {
    return this.waiting.length;
  }

  write(ops: Ops, done: (err: Error | null) => void): void {
    if (this.dead) {
      const err = this.dead;
      queueMicrotask(() => done(err)); // never re-entrant: the caller is mid-tick
      return;
    }
    this.waiting.push(done);
    this.sentAt.push(performance.now());
    this.worker.postMessage({ gen: this.gen, ops } satisfies WriterRequest);
  }

  /** Stops the thread once what was written is answered. */
  async close(): Promise<void> {
    this.closing = true;
    if (!this.dead) this.worker.postMessage({ close: true } satisfies WriterRequest);
    await this.exited;
  }

  private onReply(m: WriterReply): void {
    if ('ready' in m) {
      releaseAddonFile();
      this.markReady(null);
      return;
    }
    if ('fatal' in m) {
      this.die(new Error(m.fatal));
      return;
    }
    const done = this.waiting.shift();
    const sent = this.sentAt.shift();
    if (m.ok && sent !== undefined) this.opts.onCommitted?.(performance.now() - sent);
    if (!m.ok) this.gen = Math.max(this.gen, m.gen + 1); // what is written from now on may land again
    done?.(m.ok ? null : new Error(m.refused ? m.error : `the batch was not committed: ${m.error}`));
  }

  private die(err: Error): void {
    if (this.dead) return;
    this.dead = err;
    this.markReady(err);
    // One at a time, so inFlight counts the ones still unanswered: the core rebuilds once, after the last.
    this.sentAt.length = 0;
    for (let done = this.waiting.shift(); done; done = this.waiting.shift()) done(err);
    if (!this.closing) this.opts.onFatal(err);
  }
}
