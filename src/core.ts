/**
 * The one writer. Every input — an event from a socket, a timeout that
 * expired, a driver's result, an operator's change — is a job in one queue;
 * each tick turns the queue into batches of at most MAX_BATCH jobs, each one
 * SQLite transaction (group commit). With a writer thread (writer.ts) a
 * batch's writes are recorded here and committed there while the next batch
 * is built. Only after the commit are senders acknowledged, subscribers and
 * waiters pushed, and effects run. Memory (nodes, seq, timers, waits)
 * mirrors SQLite and is rebuilt from it if a batch ever fails.
 */
import { apply, type CommandVerdict, type Effect, type EngineContext, type EngineInput } from './engine.ts';
import { StatedError, asStatedError } from './errors.ts';
import { Machine } from './machine.ts';
import type { RecordedBatch, Store } from './store.ts';
import { Timers } from './timers.ts';
import type { LoggedEvent, NodeState, StatedEvent } from './types.ts';
import { NO_REBOOT } from './types.ts';
import { Waits, type WaitUpdate } from './waits.ts';
import type { Ops } from './writes.ts';

export interface CoreConfig {
  timeScale: number;
  maxRebootAttempts: number;
  /** Seconds between a failed driver attempt and the next. */
  retryDelay: number;
  genIsupTypes: string[];
  /** Seconds: deadlines overdue by more than this are dropped, not fired (SPEC §4 timeouts). */
  staleTimeoutAge: number;
}

/** What one committed batch hands to the outside world. */
export interface Committed {
  events: LoggedEvent[];
  waits: WaitUpdate[];
  effects: Effect[];
}

export interface EventResult {
  seq: number;
  duplicate: boolean;
  /** For TBCOMMAND: per node, accepted / joined / refused. */
  nodes?: Record<string, CommandVerdict>;
  /** For refused nodes: why, as `E_CODE: message`. */
  refusals?: Record<string, string>;
  /** false when a TBNODESTATE's transition was not in the tables (applied all the same, SPEC §4.1). */
  valid?: false;
}

/** Called once a job's batch has committed (err null) or the job or its batch failed. */
export type JobDone<T> = (err: unknown, value: T | undefined) => void;

export interface JobOptions {
  /** The job checks everything before its first write: no savepoint needed (the event hot path). */
  checksFirst?: boolean;
  /**
   * The job runs only when every earlier batch has committed, on the core's
   * own connection: for writes the writer thread does not carry (tokens,
   * definitions), and for reads that must show only what is durable.
   */
  exclusive?: boolean;
}

interface Job {
  fn: (core: Core) => unknown;
  checksFirst: boolean;
  exclusive: boolean;
  done: JobDone<never>;
  /** Filled in by the batch: the job's outcome, reported after the commit. */
  failed: boolean;
  value: unknown;
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

/** Batches handed to the writer and not yet committed: one committing, one waiting. */
const MAX_IN_FLIGHT = 2;

/**
 * Most jobs in one pipelined batch. Without a bound a burst becomes one batch
 * that the writer then commits while this thread waits for the next burst —
 * which only comes once that commit is acknowledged; a bounded batch keeps
 * both threads busy (bench/run.ts: ratio 0.4 unbounded, 0.5-0.7 at 1000) and
 * bounds the wait of the first event of a burst for its acknowledgement.
 */
const MAX_BATCH = 1000;

/** A guard against definitions whose triggers feed each other forever. */
const MAX_CHAIN = 256;

export class Core {
  readonly nodes = new Map<string, NodeState>();
  readonly timers = new Timers();
  readonly waits: Waits;
  machine!: Machine;
  /** The last seq assigned (memory; with a writer thread, maybe not yet committed). */
  seq = 0;
  /** The last seq known committed: what the outside world is shown as the log's head. */
  committedSeq = 0;
  /** Called after every commit; the daemon fans out from here. */
  onCommit: (c: Committed) => void = () => {};
  /**
   * Called once memory has been rebuilt from SQLite after a lost batch: the
   * deadlines it held may now be due (the daemon fires them and re-arms).
   */
  onRebuilt: (err: Error) => void = () => {};
  /** When false (unit tests), nothing ticks by itself: call tick(). */
  autoTick = true;
  /**
   * Why no driver can run actions for the node, or null if one can (the
   * daemon's drivers decide; SPEC §4 E_NO_DRIVER). Consulted per command, never per event.
   */
  noDriver: (n: NodeState, command: string) => string | null = () => null;

  private queue: Job[] = [];
  private scheduled = false;
  /** A pipelined batch failed: no new batch until the ones in flight are answered and memory is rebuilt. */
  private broken: Error | null = null;
  private pending: { event: StatedEvent; forced: boolean }[] = [];
  private out: Committed = { events: [], waits: [], effects: [] };
  private dirty = new Set<string>();
  private dirtyTriggers = new Set<string>();
  /**
   * Runs one job in a savepoint of the open batch. Built once: db.transaction()
   * builds four wrapper functions per call, which cost more than the job itself
   * (bench/run.ts: 5 us of the daemon's 27 us per event).
   */
  private readonly inSavepoint: (job: Job) => unknown;
  private readonly genIsup: ReadonlySet<string>;
  private readonly ctxCache: EngineContext;

  constructor(
    readonly store: Store,
    readonly config: CoreConfig,
    readonly clock: () => number = Date.now,
    /** null: every batch commits at once on the store's connection (tests, tools). */
    private readonly writer: BatchWriter | null = null,
  ) {
    this.waits = new Waits(store);
    this.inSavepoint = store.db.transaction((job: Job) => {
      const v = job.fn(this);
      this.settle();
      return v;
    });
    this.genIsup = new Set(config.genIsupTypes);
    this.load();
    this.ctxCache = {
      machine: this.machine, now: 0, timeScale: config.timeScale, maxRebootAttempts: config.maxRebootAttempts,
      retryDelay: config.retryDelay, genIsupTypes: this.genIsup, staleTimeoutAge: config.staleTimeoutAge, seq: 0,
    };
  }

  /** (Re)builds every in-memory index from SQLite. */
  load(): void {
    this.machine = new Machine(this.store.loadDefinition());
    this.nodes.clear();
    for (const n of this.store.loadNodes()) this.nodes.set(n.id, n);
    this.seq = this.store.maxSeq();
    this.committedSeq = this.seq;
    this.waits.load();
    this.timers.compact(this.liveDeadlines());
  }

  private *liveDeadlines(): Iterable<{ at: number; node: string }> {
    for (const n of this.nodes.values()) if (n.timeout) yield { at: n.timeout.at, node: n.id };
  }

  /**
   * Queues a job for the next batch; resolves after its batch commits. A job
   * that throws a StatedError has its writes rolled back alone (a savepoint);
   * `checksFirst` says it validates before writing anything, which saves the
   * savepoint's two statements on the event hot path.
   */
  run<T>(fn: (core: Core) => T, opts: JobOptions = {}): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.submit(fn, opts, (err, value) => (err === null ? resolve(value as T) : reject(err)));
    });
  }

  /** A read of memory that shows only what is committed (an exclusive job that writes nothing). */
  read<T>(fn: (core: Core) => T): Promise<T> {
    return this.run(fn, { checksFirst: true, exclusive: true });
  }

  /** As run(), with a callback: the event hot path spends no promise per event. */
  submit<T>(fn: (core: Core) => T, opts: JobOptions, done: JobDone<T>): void {
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
  private take(test: (j: Job) => boolean, max = Infinity): Job[] {
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
  private runHere(jobs: Job[]): boolean {
    try {
      this.store.transaction(() => {
        for (const job of jobs) this.runJob(job);
        this.saveDirty();
      });
    } catch (err) {
      // The batch is gone: SQLite rolled back, so memory must follow.
      this.reset();
      this.load();
      const e = asStatedError(err);
      for (const job of jobs) job.done(e, undefined);
      this.onRebuilt(e);
      this.schedule();
      return false;
    }
    const committed = this.out;
    this.reset();
    this.committedSeq = this.seq;
    this.finish(jobs, committed);
    return true;
  }

  /**
   * Records the jobs' writes and hands them to the writer; acknowledges when
   * it reports the commit. False if the batch could not even be built.
   */
  private runPipelined(w: BatchWriter, jobs: Job[]): boolean {
    let batch: RecordedBatch;
    this.store.record();
    try {
      for (const job of jobs) this.runJob(job);
      this.saveDirty();
      batch = this.store.takeBatch();
    } catch (err) {
      // Memory may be half-changed and batches before this one are still in
      // flight: stop, and rebuild from SQLite once they are answered.
      this.store.takeBatch();
      this.reset();
      const e = asStatedError(err);
      for (const job of jobs) job.done(e, undefined);
      this.broke(e);
      return false;
    }
    const committed = this.out;
    const seq = this.seq;
    this.reset();
    w.write(batch.ops, (err) => {
      if (err !== null) {
        const e = asStatedError(err);
        for (const job of jobs) job.done(e, undefined);
        this.broke(e);
        return;
      }
      this.store.committed(batch);
      this.committedSeq = seq;
      this.finish(jobs, committed);
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
    this.load();
    this.onRebuilt(cause);
    this.schedule();
  }

  private saveDirty(): void {
    for (const id of this.dirty) {
      const n = this.nodes.get(id);
      if (n) this.store.saveNode(n);
    }
    for (const id of this.dirtyTriggers) {
      const n = this.nodes.get(id);
      if (n) this.store.saveTriggers(n);
    }
  }

  private finish(jobs: Job[], committed: Committed): void {
    for (const job of jobs) {
      if (job.failed) job.done(job.value, undefined);
      else job.done(null, job.value as never);
    }
    this.onCommit(committed);
  }

  private reset(): void {
    this.out = { events: [], waits: [], effects: [] };
    this.dirty.clear();
    this.dirtyTriggers.clear();
    this.pending = [];
  }

  /**
   * Runs one job in a savepoint. A StatedError thrown by validation (before
   * anything changed) rolls back only this job; anything else fails the batch.
   */
  private runJob(job: Job): void {
    // Every write an event makes follows its seq, so an unchanged seq means nothing was logged.
    const mark = this.seq;
    const recorded = this.store.mark;
    try {
      // Recorded writes need no savepoint: a failed job's ops are cut off below.
      job.value = job.checksFirst || this.store.isRecording ? this.runPlain(job) : this.inSavepoint(job);
    } catch (err) {
      if (!(err instanceof StatedError) || this.seq !== mark) throw err;
      this.store.truncate(recorded);
      this.pending = [];
      job.failed = true;
      job.value = err;
    }
  }

  private runPlain(job: Job): unknown {
    const v = job.fn(this);
    this.settle();
    return v;
  }

  // --- inside a batch ---------------------------------------------------------

  now(): number {
    return this.clock();
  }

  node(id: string): NodeState {
    const n = this.nodes.get(id);
    if (!n) throw new StatedError('E_UNKNOWN_NODE', `unknown node ${id}`);
    return n;
  }

  /** Throws E_UNKNOWN_NODE unless every node an event names exists (validate before applying). */
  checkEvent(e: StatedEvent): void {
    if (e.objtype === 'NOTIFY') return;
    for (const id of e.objtype === 'TBCOMMAND' ? e.objname.split(',') : [e.objname]) this.node(id);
  }

  /**
   * Applies one event and everything it sets off; returns its seq. With an
   * actor, commands and client-sent TBFAILEDs are audited in the same batch.
   */
  applyEvent(e: StatedEvent, force = false, actor?: { id: string; role: string }): EventResult {
    if (e.id !== undefined) {
      const seq = this.store.seqForClientId(e.id);
      if (seq !== null) return { seq, duplicate: true };
    }
    this.checkEvent(e);
    const result = this.logAndApply(e, false, force);
    if (actor && (e.objtype === 'TBCOMMAND' || e.objtype === 'TBFAILED')) {
      this.store.audit(this.clock(), actor, `${e.objtype === 'TBCOMMAND' ? 'command' : 'tbfailed'}.${e.eventtype}`,
        { nodes: e.objname.split(','), force, seq: result.seq, verdicts: result.nodes });
    }
    this.settle();
    return result;
  }

  /**
   * A wait registered by a REBOOT that joined a reboot in progress counts
   * from where that reboot started (SPEC §3), so `node_reboot -w` joining
   * after the SHUTDOWN still completes: the node's events since then are
   * replayed into the wait. Reads the log: only in an exclusive job.
   */
  catchUpJoined(wait: string, verdicts: Record<string, CommandVerdict>, waitStart: number): void {
    if (this.store.isRecording) throw new Error('catchUpJoined needs the committed log: run it as an exclusive job');
    for (const id in verdicts) {
      if (verdicts[id] !== 'joined') continue;
      const from = this.nodes.get(id)?.reboot.seq;
      if (from === undefined || from >= waitStart) continue;
      const events = this.store.historyAfter(id, from, 10_000).filter((le) => le.seq <= waitStart);
      const updates = this.waits.replay(wait, id, events);
      if (updates.length > 0) this.out.waits.push(...updates);
    }
  }

  /** Applies a non-event input (timeout, driver result) to one node. */
  applyInput(id: string, input: EngineInput): void {
    const n = this.nodes.get(id);
    if (!n) return;
    this.handle(n, input);
    this.settle();
  }

  private ctx(seq: number): EngineContext {
    // One object reused: apply() only reads it, and this is the hot path.
    const c = this.ctxCache;
    c.machine = this.machine;
    c.now = this.clock();
    c.seq = seq;
    return c;
  }

  /** `seq`: the input's place in the log (its event's seq, or the last one for inputs with no event). */
  private handle(n: NodeState, input: EngineInput, seq = this.seq): ReturnType<typeof apply> {
    const outcome = apply(n, input, this.ctx(seq));
    const next = outcome.node;
    if (next.timeout && next.timeout.at !== n.timeout?.at) this.timers.add(next.id, next.timeout.at);
    if (next.triggers !== n.triggers) this.dirtyTriggers.add(next.id);
    this.nodes.set(next.id, next);
    this.dirty.add(next.id);
    for (const eff of outcome.effects) {
      if (eff.t === 'emit') this.pending.push({ event: eff.event, forced: eff.forced === true });
      else this.out.effects.push(eff);
    }
    return outcome;
  }

  private logAndApply(e: StatedEvent, forced: boolean, force: boolean): EventResult {
    const result: EventResult = { seq: 0, duplicate: false };
    const n = this.nodes.get(e.objname);
    switch (e.objtype) {
      case 'TBNODESTATE':
        if (n) {
          e.mode = n.mode;
          const o = this.handle(n, { kind: 'state', state: e.eventtype, forced }, this.seq + 1);
          if (o.valid === false) e.valid = result.valid = false;
        }
        break;
      case 'TBNODEOPMODE':
        if (n) this.handle(n, { kind: 'opmode', mode: e.eventtype }, this.seq + 1);
        break;
      case 'TBCONTROL':
        if (n) this.handle(n, { kind: 'control', control: e.eventtype }, this.seq + 1);
        break;
      case 'TBFAILED':
        if (n) this.handle(n, { kind: 'failed' });
        break;
      case 'TBCOMMAND': {
        result.nodes = {};
        for (const id of e.objname.split(',')) {
          const node = this.node(id);
          // A node no driver can reach is refused at once, not after every attempt timed out (SPEC §4).
          const missing = this.noDriver(node, e.eventtype);
          if (missing !== null) {
            result.nodes[id] = 'refused';
            (result.refusals ??= {})[id] = `E_NO_DRIVER: ${missing}`;
            continue;
          }
          const o = this.handle(node, { kind: 'command', command: e.eventtype, force }, this.seq + 1);
          result.nodes[id] = o.verdict ?? 'refused';
          if (o.refusal) (result.refusals ??= {})[id] = o.refusal;
        }
        break;
      }
    }
    const seq = ++this.seq;
    const time = this.clock();
    this.store.insertEvent(seq, time, e);
    this.out.events.push({ seq, time, event: e });
    const updates = this.waits.onEvent(seq, e);
    if (updates.length > 0) this.out.waits.push(...updates);
    result.seq = seq;
    return result;
  }

  /** Logs and applies the events that inputs emitted, in order, each with its own seq. */
  private settle(): void {
    let count = 0;
    while (this.pending.length > 0) {
      const { event, forced } = this.pending.shift()!;
      if (++count > MAX_CHAIN) {
        this.pending = [];
        this.logAndApply({ objtype: 'NOTIFY', objname: event.objname, eventtype: 'TRIGGER_LOOP',
          message: `${event.objname}: more than ${MAX_CHAIN} generated events from one input; stopped` }, false, false);
        return;
      }
      this.logAndApply(event, forced, false);
    }
  }

  /** Adds a node (inside a batch). */
  addNode(id: string, opts: { type?: string; mode?: string; state?: string | null; project?: string | null }): NodeState {
    if (this.nodes.has(id)) throw new StatedError('E_CONFLICT', `node ${id} exists`);
    const n: NodeState = {
      id, type: opts.type ?? 'pc', project: opts.project ?? null, mode: opts.mode ?? 'NORMALv2',
      state: opts.state ?? null, since: this.clock(), nextMode: null, prevMode: null, phaseFrom: null, timeout: null,
      reboot: NO_REBOOT, triggers: [],
    };
    this.nodes.set(id, n);
    this.dirty.add(id);
    return n;
  }

  removeNode(id: string): void {
    this.node(id);
    this.nodes.delete(id);
    this.dirty.delete(id);
    this.dirtyTriggers.delete(id);
    this.store.deleteNode(id);
  }

  /** Replaces a node's fields that an operator may set directly. */
  updateNode(id: string, change: Partial<Pick<NodeState, 'nextMode' | 'triggers' | 'project' | 'type'>>): NodeState {
    const n = { ...this.node(id), ...change };
    this.nodes.set(id, n);
    this.dirty.add(id);
    if (change.triggers) this.dirtyTriggers.add(id);
    return n;
  }

  /**
   * `stated node clear`: forgets the node's reboot bookkeeping — a gave-up
   * (TBFAILED) reboot, its attempts — so it is an ordinary node again without
   * a reboot. Refused while a power action runs: its result is still to come.
   */
  clearFailure(id: string): NodeState {
    const n = this.node(id);
    if (n.reboot.inFlight) throw new StatedError('E_CONFLICT', `${id}: a ${n.reboot.command ?? 'power'} action is running; clear it once the driver answered`);
    const next: NodeState = { ...n, reboot: NO_REBOOT };
    this.nodes.set(id, next);
    this.dirty.add(id);
    return next;
  }

  // --- outside a batch --------------------------------------------------------

  /** Queues a timeout input for every node whose deadline has passed. */
  fireDue(): void {
    const now = this.clock();
    const due = this.timers.popDue(now, (d) => this.nodes.get(d.node)?.timeout?.at === d.at);
    for (const d of due) {
      void this.run((core) => {
        // Still the same deadline? An event in between may have replaced it.
        if (core.nodes.get(d.node)?.timeout?.at === d.at) core.applyInput(d.node, { kind: 'timeout' });
      }).catch(() => {});
    }
    if (this.timers.size > 2 * this.nodes.size + 1024) this.timers.compact(this.liveDeadlines());
  }

  /** Driver actions that were started but never reported (the daemon died): run them again, same attempt. */
  inFlightActions(): Effect[] {
    const out: Effect[] = [];
    for (const n of this.nodes.values()) {
      const r = n.reboot;
      if (r.inFlight && r.command) out.push({ t: 'action', node: n.id, command: r.command, attempt: r.attempts, ...(r.started === undefined ? {} : { started: r.started }) });
    }
    return out;
  }

  /** Swaps in new definitions (SIGHUP, machine import). */
  setMachine(m: Machine): void {
    this.machine = m;
  }
}
