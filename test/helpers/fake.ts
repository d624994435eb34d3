/**
 * Unit-test fixtures: a fake clock, Emulab's shipped machine, bare nodes and
 * engine contexts, and a Core on a fresh temp-file Store that only moves when
 * the test calls tick().
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after } from 'node:test';
import { Core, type Committed, type CoreConfig } from '../../src/nodes.ts';
import type { EngineContext } from '../../src/engine.ts';
import { Machine, parseEmulabSql } from '../../src/machine.ts';
import { Store } from '../../src/store.ts';
import type { NodeState, StatedEvent } from '../../src/types.ts';
import { NO_REBOOT } from '../../src/types.ts';

/** 2023-11-14T22:13:20Z: a round epoch ms, far from 0 so a missing `now +` shows. */
export const T0 = 1_700_000_000_000;

/** A clock that moves only when told to. */
export class FakeClock {
  constructor(public t: number = T0) {}
  readonly now = (): number => this.t;
  advance(ms: number): number {
    this.t += ms;
    return this.t;
  }
}

/** Emulab's default tables, as migration 002 ships them (tests run from the repo root). */
export const EMULAB = new Machine(parseEmulabSql(fs.readFileSync('migrations/002_emulab_defaults.sql', 'utf8')));

/** An engine context on Emulab's tables at T0, scale 1, 3 attempts, 10 s retry delay. */
export function engineCtx(over: Partial<EngineContext> = {}): EngineContext {
  return { machine: EMULAB, now: T0, timeScale: 1, maxRebootAttempts: 3, retryDelay: 10, genIsupTypes: new Set(), staleTimeoutAge: 7 * 86_400, ...over };
}

/** A pc in NORMALv2/ISUP, idle, unless overridden. */
export function makeNode(over: Partial<NodeState> = {}): NodeState {
  return {
    id: 'pc1', type: 'pc', project: null, mode: 'NORMALv2', state: 'ISUP', since: T0, nextMode: null,
    prevMode: null, phaseFrom: null, timeout: null, reboot: NO_REBOOT, triggers: [], ...over,
  };
}

/** A fresh directory removed when the test file ends. */
export function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stated-unit-'));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export const CORE_CONFIG: CoreConfig = { timeScale: 1, maxRebootAttempts: 3, retryDelay: 10, genIsupTypes: [], staleTimeoutAge: 7 * 86_400 };

export interface TestCore {
  core: Core;
  store: Store;
  clock: FakeClock;
  /** Every commit onCommit saw, in order. */
  commits: Committed[];
  /** Queues fn, ticks once, and returns fn's result (or throws its error). */
  step<T>(fn: (c: Core) => T): Promise<T>;
  /** Applies one event in its own batch; returns that batch's commit. */
  send(e: StatedEvent): Promise<Committed>;
  /** fireDue + tick; returns the commit, or null when nothing was due. */
  fire(): Promise<Committed | null>;
  /** Closes the store and opens a new Store and Core on the same file: a restart. */
  restart(clock?: FakeClock): TestCore;
}

/** A Core on `file` (default: a new temp file) with autoTick off and a fake clock. */
export function makeCore(file?: string, clock = new FakeClock(), config: Partial<CoreConfig> = {}): TestCore {
  const dbPath = file ?? path.join(tempDir(), 'stated.db');
  const store = new Store(dbPath);
  const core = new Core(store, { ...CORE_CONFIG, ...config }, clock.now);
  core.autoTick = false;
  const commits: Committed[] = [];
  core.onCommit = (c) => commits.push(c);
  const tc: TestCore = {
    core, store, clock, commits,
    step(fn) {
      const p = core.run(fn);
      core.tick();
      return p;
    },
    async send(e) {
      const before = commits.length;
      await tc.step((c) => c.applyEvent(e));
      return commits[before]!;
    },
    async fire() {
      const before = commits.length;
      core.fireDue();
      core.tick();
      await new Promise((r) => setImmediate(r));
      return commits[before] ?? null;
    },
    restart(next = clock) {
      store.close();
      return makeCore(dbPath, next, config);
    },
  };
  return tc;
}

/** A TBNODESTATE event. */
export const st = (node: string, state: string, id?: string): StatedEvent =>
  id === undefined ? { objtype: 'TBNODESTATE', objname: node, eventtype: state } : { objtype: 'TBNODESTATE', objname: node, eventtype: state, id };

/** (objtype, objname, eventtype) of each committed event, for compact assertions. */
export const tuples = (c: Committed | null): string[] =>
  (c?.events ?? []).map((le) => `${le.event.objtype} ${le.event.objname} ${le.event.eventtype}`);
