/**
 * The job pipeline: the one writer. Every input is a job in one queue; each
 * tick turns the queue into batches of at most MAX_BATCH jobs, each one SQLite
 * transaction (group commit). With a writer thread (writer.ts) a batch's
 * writes are recorded here and committed there while the next batch is built.
 * Only after the commit are jobs answered and the batch's output handed on.
 *
 * What a job does is the domain's business (nodes.ts); the pipeline only asks
 * it, through BatchDomain, to settle a job, flush a batch, hand over or drop
 * the batch's output, and rebuild from SQLite after a batch was lost.
 */
import { StatedError, asStatedError } from './errors.ts';
import type { RecordedBatch, Store } from './store.ts';
import type { Ops } from './writes.ts';

/** Called once a job's batch has committed (err null) or the job or its batch failed. */
export type JobDone<T> = (err: unknown, value: T | undefined) => void;

export interface JobOptions {
  /** The job checks everything before its first write: no savepoint needed (the event hot path). */
  checksFirst?: boolean;
  /**
   * The job runs only when every earlier batch has committed, on the store's
   * own connection: for writes the writer thread does not carry (tokens,
   * definitions), and for reads that must show only what is durable.
   */
  exclusive?: boolean;
}

/**
 * Commits recorded batches elsewhere (writer.ts: a worker thread), in order,
 * so that SQLite's work on one batch overlaps the building of the next.
 */
export interface BatchWriter {
  /** Commits one batch as one transaction; `done` is called once, in submission order. */
  write(ops: Ops, done: (err: Error | null) => void): void;
  /** Batches written and not yet reported. */
  readonly inFlight: number;
}

/** What the pipeline asks of the domain its jobs change (nodes.ts's Core). */
export interface BatchDomain<Out> {
  /**
   * The last seq assigned; every write a job makes follows a new seq, so a
   * job that failed without moving it wrote nothing that must stay.
   */
  readonly seq: number;
  /** Finishes the job just run: what it set off is applied inside the same job. */
  settle(): void;
  /** Forgets what a refused job left to settle. */
  dropPending(): void;
  /** Writes what the batch changed in memory, as the batch's last writes. */
  flush(): void;
  /** The batch's output; the next batch starts empty. */
  takeOutput(): Out;
  /** Drops the batch's output: the batch is lost. */
  discard(): void;
  /** (Re)builds memory from SQLite: after a lost batch, what is committed. */
  load(): void;
  /** Called after every commit, once the batch's jobs are answered. */
  onCommit(out: Out): void;
  /** Called once memory has been rebuilt after a lost batch. */
  onRebuilt(err: Error): void;
}

/** The store's batch calls: all the pipeline needs of it. */
export type BatchStore = Pick<Store, 'db' | 'transaction' | 'record' | 'takeBatch' | 'committed' | 'rolledBack' | 'mark' | 'truncate' | 'isRecording'>;

interface Job<D> {
  fn: (domain: D) => unknown;
  checksFirst: boolean;
  exclusive: boolean;
  done: JobDone<never>;
  /** Filled in by the batch: the job's outcome, reported after the commit. */
  failed: boolean;
  value: unknown;
}

/** Batches handed to the writer and not yet committed: one committing, one waiting. */
const MAX_IN_FLIGHT = 2;

/**
 * Most jobs in one pipelined batch. Without a bound a burst becomes one batch
 * that the writer then commits while this thread waits for the next burst —
 * which only comes once that commit is acknowledged; a bounded batch keeps
 * both threads busy and bounds the wait of the first event of a burst for its
 * acknowledgement. bench/run.ts: 3000 takes ~20% less CPU per event than 1000
 * (fewer commits) at the same or better throughput; 5000 measured the same as 3000.
 */
export const MAX_BATCH = 3000;

export class Pipeline<D extends BatchDomain<Out>, Out> {
  /** The domain's seq as of the last commit: what the outside world is shown as the log's head. */
  committedSeq: number;
  /** When false (unit tests), nothing ticks by itself: call tick(). */
  autoTick = true;

  private queue: Job<D>[] = [];
  private scheduled = false;
  /** A pipelined batch failed: no new batch until the ones in flight are answered and memory is rebuilt. */
  private broken: Error | null = null;
  /**
   * Runs one job in a savepoint of the open batch. Built once: db.transaction()
   * builds four wrapper functions per call, which cost more than the job itself
   * (bench/run.ts: 5 us of the daemon's 27 us per event).
   */
  private readonly inSavepoint: (job: Job<D>) => unknown;

  constructor(
    private readonly store: BatchStore,
    private readonly domain: D,
    /** null: every batch commits at once on the store's connection (tests, tools). */
    private readonly writer: BatchWriter | null = null,
  ) {
    this.committedSeq = domain.seq;
    this.inSavepoint = store.db.transaction((job: Job<D>) => this.runPlain(job));
  }

  /**
   * Queues a job for the next batch; resolves after its batch commits. A job
   * that throws a StatedError has its writes rolled back alone (a savepoint);
   * `checksFirst` says it validates before writing anything, which saves the
   * savepoint's two statements on the event hot path.
   */
  run<T>(fn: (domain: D) => T, opts: JobOptions = {}): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.submit(fn, opts, (err, value) => (err === null ? resolve(value as T) : reject(err)));
    });
  }

  /** As run(), with a callback: the event hot path spends no promise per event. */
  submit<T>(fn: (domain: D) => T, opts: JobOptions, done: JobDone<T>): void {
    this.queue.push({
      fn, checksFirst: opts.checksFirst === true, exclusive: opts.exclusive === true,
      done: done as JobDone<never>, failed: false, value: undefined,
    });
    this.schedule();
  }

  private schedule(): void {
    if (this.autoTick && !this.scheduled && this.queue.length > 0) {
      this.scheduled = true;
      setImmediate(() => this.tick());
    }
  }

  /** True when nothing is queued or being committed. */
  get idle(): boolean {
    return this.queue.length === 0 && (this.writer === null || this.writer.inFlight === 0);
  }

  /** Resolves once every queued job has committed (a clean stop). */
  async drain(): Promise<void> {
    while (!this.idle) {
      this.tick();
      if (this.idle) return;
      await new Promise((r) => setTimeout(r, 2));
    }
  }

  /**
   * Drains the queue into batches. Without a writer thread: one transaction
   * here, then acknowledge and fan out. With one: runs of ordinary jobs are
   * recorded and handed over (at most MAX_IN_FLIGHT at once; the next tick
   * comes with a commit), and an exclusive job waits until all of them have
   * committed, then runs here as a batch of its own.
   */
  tick(): void {
    this.scheduled = false;
    const w = this.writer;
    while (this.queue.length > 0) {
      if (w === null) {
        // One batch per tick: what its acknowledgements queue goes in the next.
        this.runHere(this.take(() => true));
        return;
      }
      if (this.broken !== null || w.inFlight >= MAX_IN_FLIGHT) return;
      let ok: boolean;
      if (this.queue[0]!.exclusive) {
        if (w.inFlight > 0) return;
        ok = this.runHere(this.take((j) => j.exclusive));
      } else {
        ok = this.runPipelined(w, this.take((j) => !j.exclusive, MAX_BATCH));
      }
      // After a rebuild the rest waits for the next turn of the event loop:
      // a store that keeps failing must never hold this loop.
      if (!ok) return;
    }
  }

  /** Removes and returns the queue's leading jobs that pass `test`. */
  private take(test: (j: Job<D>) => boolean, max = Infinity): Job<D>[] {
    let n = 0;
    while (n < this.queue.length && n < max && test(this.queue[n]!)) n++;
    if (n === this.queue.length) {
      const all = this.queue;
      this.queue = [];
      return all;
    }
    return this.queue.splice(0, n);
  }

  /** One transaction on the store's own connection, committed before this returns; false if it was lost. */
  private runHere(jobs: Job<D>[]): boolean {
    const d = this.domain;
    try {
      this.store.transaction(() => {
        for (const job of jobs) this.runJob(job);
        d.flush();
      });
    } catch (err) {
      // The batch is gone: SQLite rolled back, so memory must follow.
      d.discard();
      this.rebuild();
      const e = asStatedError(err);
      for (const job of jobs) job.done(e, undefined);
      d.onRebuilt(e);
      this.schedule();
      return false;
    }
    const out = d.takeOutput();
    this.committedSeq = d.seq;
    this.finish(jobs, out);
    return true;
  }

  /**
   * Records the jobs' writes and hands them to the writer; acknowledges when
   * it reports the commit. False if the batch could not even be built.
   */
  private runPipelined(w: BatchWriter, jobs: Job<D>[]): boolean {
    const d = this.domain;
    let batch: RecordedBatch;
    this.store.record();
    try {
      for (const job of jobs) this.runJob(job);
      d.flush();
      batch = this.store.takeBatch();
    } catch (err) {
      // Memory may be half-changed and batches before this one are still in
      // flight: stop, and rebuild from SQLite once they are answered.
      this.store.takeBatch();
      d.discard();
      const e = asStatedError(err);
      for (const job of jobs) job.done(e, undefined);
      this.broke(e);
      return false;
    }
    const seq = d.seq;
    const out = d.takeOutput();
    w.write(batch.ops, (err) => {
      if (err !== null) {
        const e = asStatedError(err);
        for (const job of jobs) job.done(e, undefined);
        this.broke(e);
        return;
      }
      this.store.committed(batch);
      this.committedSeq = seq;
      this.finish(jobs, out);
      if (this.broken !== null) this.broke(this.broken);
      else this.tick();
    });
    return true;
  }

  /** After a lost pipelined batch: the batches after it are refused too; once all are answered, reload. */
  private broke(err: Error): void {
    this.broken ??= err; // the first loss is the cause; the refusals behind it only follow from it
    if (this.writer !== null && this.writer.inFlight > 0) return; // the last answer calls again
    const cause = this.broken;
    this.broken = null;
    this.store.rolledBack();
    this.rebuild();
    this.domain.onRebuilt(cause);
    this.schedule();
  }

  /** Memory from SQLite; nothing newer than it is committed. */
  private rebuild(): void {
    this.domain.load();
    this.committedSeq = this.domain.seq;
  }

  private finish(jobs: Job<D>[], out: Out): void {
    for (const job of jobs) {
      if (job.failed) job.done(job.value, undefined);
      else job.done(null, job.value as never);
    }
    this.domain.onCommit(out);
  }

  /**
   * Runs one job in a savepoint. A StatedError thrown by validation (before
   * anything changed) rolls back only this job; anything else fails the batch.
   */
  private runJob(job: Job<D>): void {
    const mark = this.domain.seq;
    const recorded = this.store.mark;
    try {
      // Recorded writes need no savepoint: a failed job's ops are cut off below.
      job.value = job.checksFirst || this.store.isRecording ? this.runPlain(job) : this.inSavepoint(job);
    } catch (err) {
      if (!(err instanceof StatedError) || this.domain.seq !== mark) throw err;
      this.store.truncate(recorded);
      this.domain.dropPending();
      job.failed = true;
      job.value = err;
    }
  }

  private runPlain(job: Job<D>): unknown {
    const v = job.fn(this.domain);
    this.domain.settle();
    return v;
  }
}
