/**
 * The node domain: every node's state in memory (mirroring SQLite), its
 * deadlines and the waits on it, changed only by applying inputs through the
 * pure engine (engine.ts). An input's emitted events are logged and applied
 * in the same job, each with its own seq; what a batch logged, the wait
 * updates and the effects to run are its output, handed on once it commits.
 *
 * Core is also the door to the job pipeline (pipeline.ts) that runs every
 * change as a job in a batch: callers hold one object, `core`, and run jobs
 * on it with core.run(fn) / core.submit(fn); fn gets the Core back.
 */
import { apply, type CommandVerdict, type Effect, type EngineContext, type EngineInput, impliedShutdown } from './engine.ts';
import { StatedError } from './errors.ts';
import { Machine } from './machine.ts';
import { Pipeline, type BatchDomain, type BatchWriter, type JobDone, type JobOptions } from './pipeline.ts';
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

/** A guard against definitions whose triggers feed each other forever. */
const MAX_CHAIN = 256;

/** Every node in memory, and the door to the pipeline that runs jobs on them. */
export class Core implements BatchDomain<Committed> {
  readonly nodes = new Map<string, NodeState>();
  readonly timers = new Timers();
  readonly waits: Waits;
  machine!: Machine;
  /** The last seq assigned (memory; with a writer thread, maybe not yet committed). */
  seq = 0;
  /** Called after every commit; the daemon fans out from here. */
  onCommit: (c: Committed) => void = () => {};
  /**
   * Called once memory has been rebuilt from SQLite after a lost batch: the
   * deadlines it held may now be due (the daemon fires them and re-arms).
   */
  onRebuilt: (err: Error) => void = () => {};
  /**
   * Why no driver can run actions for the node, or null if one can (the
   * daemon's drivers decide; SPEC §4 E_NO_DRIVER). Consulted per command, never per event.
   */
  noDriver: (n: NodeState, command: string) => string | null = () => null;

  private readonly pipeline: Pipeline<Core, Committed>;
  private pending: { event: StatedEvent; forced: boolean }[] = [];
  private out: Committed = { events: [], waits: [], effects: [] };
  private dirty = new Set<string>();
  private dirtyTriggers = new Set<string>();
  private readonly genIsup: ReadonlySet<string>;
  private readonly ctxCache: EngineContext;

  constructor(
    readonly store: Store,
    readonly config: CoreConfig,
    readonly clock: () => number = Date.now,
    /** null: every batch commits at once on the store's connection (tests, tools). */
    writer: BatchWriter | null = null,
  ) {
    this.waits = new Waits(store);
    this.genIsup = new Set(config.genIsupTypes);
    this.load();
    this.ctxCache = {
      machine: this.machine, now: 0, timeScale: config.timeScale, maxRebootAttempts: config.maxRebootAttempts,
      retryDelay: config.retryDelay, genIsupTypes: this.genIsup, staleTimeoutAge: config.staleTimeoutAge, seq: 0,
    };
    this.pipeline = new Pipeline<Core, Committed>(store, this, writer);
  }

  // --- jobs: run by the pipeline, in batches --------------------------------

  /** Queues a job for the next batch; resolves after its batch commits (pipeline.ts). */
  run<T>(fn: (core: Core) => T, opts: JobOptions = {}): Promise<T> {
    return this.pipeline.run(fn, opts);
  }

  /** A read of memory that shows only what is committed (an exclusive job that writes nothing). */
  read<T>(fn: (core: Core) => T): Promise<T> {
    return this.run(fn, { checksFirst: true, exclusive: true });
  }

  /** As run(), with a callback: the event hot path spends no promise per event. */
  submit<T>(fn: (core: Core) => T, opts: JobOptions, done: JobDone<T>): void {
    this.pipeline.submit(fn, opts, done);
  }

  /** Runs the queued jobs now (autoTick off: unit tests). */
  tick(): void {
    this.pipeline.tick();
  }

  /** Resolves once every queued job has committed (a clean stop). */
  drain(): Promise<void> {
    return this.pipeline.drain();
  }

  /** True when nothing is queued or being committed. */
  get idle(): boolean {
    return this.pipeline.idle;
  }

  /** The last seq known committed: what the outside world is shown as the log's head. */
  get committedSeq(): number {
    return this.pipeline.committedSeq;
  }

  /** When false (unit tests), nothing ticks by itself: call tick(). */
  get autoTick(): boolean {
    return this.pipeline.autoTick;
  }

  set autoTick(on: boolean) {
    this.pipeline.autoTick = on;
  }

  // --- the pipeline's hooks (BatchDomain) -------------------------------------

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

  /** Logs and applies the events that inputs emitted, in order, each with its own seq. */
  settle(): void {
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

  /** A refused job's emitted events die with it. */
  dropPending(): void {
    this.pending = [];
  }

  /** Saves the nodes the batch changed: once per batch, however many events touched them. */
  flush(): void {
    for (const id of this.dirty) {
      const n = this.nodes.get(id);
      if (n) this.store.saveNode(n);
    }
    for (const id of this.dirtyTriggers) {
      const n = this.nodes.get(id);
      if (n) this.store.saveTriggers(n);
    }
  }

  /** What the batch logged, the wait updates and the effects: handed on once it commits. */
  takeOutput(): Committed {
    const out = this.out;
    this.discard();
    return out;
  }

  /** Starts the next batch empty (after a commit, or a loss). */
  discard(): void {
    this.out = { events: [], waits: [], effects: [] };
    this.dirty.clear();
    this.dirtyTriggers.clear();
    this.pending = [];
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

  private ctx(seq: number, now: number): EngineContext {
    // One object reused: apply() only reads it, and this is the hot path.
    const c = this.ctxCache;
    c.machine = this.machine;
    c.now = now;
    c.seq = seq;
    return c;
  }

  /** `seq`: the input's place in the log (its event's seq, or the last one for inputs with no event). */
  private handle(n: NodeState, input: EngineInput, seq = this.seq, now = this.clock()): ReturnType<typeof apply> {
    const outcome = apply(n, input, this.ctx(seq, now));
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
    // One reading of the clock: a timeout armed by this event counts from the time it is logged at.
    let time = this.clock();
    let n = this.nodes.get(e.objname);
    switch (e.objtype) {
      case 'TBNODESTATE':
        if (n && !forced && impliedShutdown(n, e.eventtype)) {
          // Its SHUTDOWN and all it sets off come first, in their own seqs. A reported state
          // comes from applyEvent with nothing pending, so settle() runs only SHUTDOWN's own.
          this.logAndApply({ objtype: 'TBNODESTATE', objname: n.id, eventtype: 'SHUTDOWN' }, true, false);
          this.settle();
          n = this.nodes.get(e.objname);
          time = this.clock();
        }
        if (n) {
          e.mode = n.mode;
          const o = this.handle(n, { kind: 'state', state: e.eventtype, forced }, this.seq + 1, time);
          if (o.valid === false) e.valid = result.valid = false;
        }
        break;
      case 'TBNODEOPMODE':
        if (n) this.handle(n, { kind: 'opmode', mode: e.eventtype }, this.seq + 1, time);
        break;
      case 'TBCONTROL':
        if (n) this.handle(n, { kind: 'control', control: e.eventtype }, this.seq + 1, time);
        break;
      case 'TBFAILED':
        if (n) this.handle(n, { kind: 'failed' }, this.seq, time);
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
          const o = this.handle(node, { kind: 'command', command: e.eventtype, force }, this.seq + 1, time);
          result.nodes[id] = o.verdict ?? 'refused';
          if (o.refusal) (result.refusals ??= {})[id] = o.refusal;
        }
        break;
      }
    }
    const seq = ++this.seq;
    this.store.insertEvent(seq, time, e);
    this.out.events.push({ seq, time, event: e });
    const updates = this.waits.onEvent(seq, e);
    if (updates.length > 0) this.out.waits.push(...updates);
    result.seq = seq;
    return result;
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
      if (r.inFlight && r.command && !r.gaveUp) out.push({ t: 'action', node: n.id, command: r.command, attempt: r.attempts, ...(r.started === undefined ? {} : { started: r.started }) });
    }
    return out;
  }

  /** Swaps in new definitions (SIGHUP, machine import). */
  setMachine(m: Machine): void {
    this.machine = m;
  }
}
