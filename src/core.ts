/**
 * The one writer. Every input — an event from a socket, a timeout that
 * expired, a driver's result, an operator's change — is a job in one queue;
 * each tick drains the queue into one SQLite transaction (group commit), and
 * only after the commit are senders acknowledged, subscribers and waiters
 * pushed, and effects run. Memory (nodes, seq, timers, waits) mirrors SQLite
 * and is rebuilt from it if a batch ever fails.
 */
import { apply, type CommandVerdict, type Effect, type EngineContext, type EngineInput } from './engine.ts';
import { StatedError, asStatedError } from './errors.ts';
import { Machine } from './machine.ts';
import type { Store } from './store.ts';
import { Timers } from './timers.ts';
import type { LoggedEvent, NodeState, StatedEvent } from './types.ts';
import { NO_REBOOT } from './types.ts';
import { Waits, type WaitUpdate } from './waits.ts';

export interface CoreConfig {
  timeScale: number;
  maxRebootAttempts: number;
  /** Seconds between a failed driver attempt and the next. */
  retryDelay: number;
  genIsupTypes: string[];
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
}

/** Called once a job's batch has committed (err null) or the job or its batch failed. */
export type JobDone<T> = (err: unknown, value: T | undefined) => void;

interface Job {
  fn: (core: Core) => unknown;
  /** The job checks everything before its first write: no savepoint needed (the event hot path). */
  checksFirst: boolean;
  done: JobDone<never>;
  /** Filled in by the batch: the job's outcome, reported after the commit. */
  failed: boolean;
  value: unknown;
}

/** A guard against definitions whose triggers feed each other forever. */
const MAX_CHAIN = 256;

export class Core {
  readonly nodes = new Map<string, NodeState>();
  readonly timers = new Timers();
  readonly waits: Waits;
  machine!: Machine;
  seq = 0;
  /** Called after every commit; the daemon fans out from here. */
  onCommit: (c: Committed) => void = () => {};
  /** When false (unit tests), nothing ticks by itself: call tick(). */
  autoTick = true;

  private queue: Job[] = [];
  private scheduled = false;
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
  ) {
    this.waits = new Waits(store.db);
    this.inSavepoint = store.db.transaction((job: Job) => {
      const v = job.fn(this);
      this.settle();
      return v;
    });
    this.genIsup = new Set(config.genIsupTypes);
    this.load();
    this.ctxCache = {
      machine: this.machine, now: 0, timeScale: config.timeScale, maxRebootAttempts: config.maxRebootAttempts,
      retryDelay: config.retryDelay, genIsupTypes: this.genIsup,
    };
  }

  /** (Re)builds every in-memory index from SQLite. */
  load(): void {
    this.machine = new Machine(this.store.loadDefinition());
    this.nodes.clear();
    for (const n of this.store.loadNodes()) this.nodes.set(n.id, n);
    this.seq = this.store.maxSeq();
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
  run<T>(fn: (core: Core) => T, opts: { checksFirst?: boolean } = {}): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.submit(fn, opts, (err, value) => (err === null ? resolve(value as T) : reject(err)));
    });
  }

  /** As run(), with a callback: the event hot path spends no promise per event. */
  submit<T>(fn: (core: Core) => T, opts: { checksFirst?: boolean }, done: JobDone<T>): void {
    this.queue.push({ fn, checksFirst: opts.checksFirst === true, done: done as JobDone<never>, failed: false, value: undefined });
    if (this.autoTick && !this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.tick());
    }
  }

  /** Drains the queue into one transaction, then acknowledges and fans out. */
  tick(): void {
    this.scheduled = false;
    const jobs = this.queue;
    if (jobs.length === 0) return;
    this.queue = [];
    try {
      this.store.transaction(() => {
        for (const job of jobs) this.runJob(job);
        for (const id of this.dirty) {
          const n = this.nodes.get(id);
          if (n) this.store.saveNode(n);
        }
        for (const id of this.dirtyTriggers) {
          const n = this.nodes.get(id);
          if (n) this.store.saveTriggers(n);
        }
      });
    } catch (err) {
      // The batch is gone: SQLite rolled back, so memory must follow.
      this.reset();
      this.load();
      const e = asStatedError(err);
      for (const job of jobs) job.done(e, undefined);
      return;
    }
    const committed = this.out;
    this.reset();
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
    try {
      job.value = job.checksFirst ? this.runPlain(job) : this.inSavepoint(job);
    } catch (err) {
      if (!(err instanceof StatedError) || this.seq !== mark) throw err;
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

  /** Applies a non-event input (timeout, driver result) to one node. */
  applyInput(id: string, input: EngineInput): void {
    const n = this.nodes.get(id);
    if (!n) return;
    this.handle(n, input);
    this.settle();
  }

  private ctx(): EngineContext {
    // One object reused: apply() only reads it, and this is the hot path.
    const c = this.ctxCache;
    c.machine = this.machine;
    c.now = this.clock();
    return c;
  }

  private handle(n: NodeState, input: EngineInput): ReturnType<typeof apply> {
    const outcome = apply(n, input, this.ctx());
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
          const o = this.handle(n, { kind: 'state', state: e.eventtype, forced });
          if (o.valid === false) e.valid = false;
        }
        break;
      case 'TBNODEOPMODE':
        if (n) this.handle(n, { kind: 'opmode', mode: e.eventtype });
        break;
      case 'TBCONTROL':
        if (n) this.handle(n, { kind: 'control', control: e.eventtype });
        break;
      case 'TBFAILED':
        if (n) this.handle(n, { kind: 'failed' });
        break;
      case 'TBCOMMAND': {
        result.nodes = {};
        for (const id of e.objname.split(',')) {
          const o = this.handle(this.node(id), { kind: 'command', command: e.eventtype, force });
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
      state: opts.state ?? null, since: this.clock(), nextMode: null, prevMode: null, timeout: null,
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
      if (r.inFlight && r.command) out.push({ t: 'action', node: n.id, command: r.command, attempt: r.attempts });
    }
    return out;
  }

  /** Swaps in new definitions (SIGHUP, machine import). */
  setMachine(m: Machine): void {
    this.machine = m;
  }
}
