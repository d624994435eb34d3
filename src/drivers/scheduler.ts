/**
 * Runs driver actions: never two on one node at once, at most `concurrency`
 * per driver at once (the rest queue, so a 500-node reboot does not hit every
 * power controller together), a time limit on each, and the result back into
 * the core as an input of its own.
 */
import { randomBytes } from 'node:crypto';
import type { DriverConfig } from '../config.ts';
import type { Core } from '../nodes.ts';
import type { Action, Driver } from './action.ts';

/** About 10 s of retries: a lost batch is rebuilt within one commit; a store that keeps failing is not. */
const RECORD_RETRY_MS = [100, 500, 1000, 2000, 5000];

export interface Route {
  driver: Driver;
  /** Which queue and limit the action counts against. */
  key: string;
  concurrency: number;
  timeoutMs: number;
  ladder: Record<string, string[]> | undefined;
}

interface Lane {
  active: number;
  queue: Action[];
}

export class Scheduler {
  private readonly busy = new Set<string>();
  /** The next action per busy node; a newer one replaces an older one. */
  private readonly next = new Map<string, Action>();
  private readonly lanes = new Map<string, Lane>();
  private readonly routes = new Map<string, Route>();
  /** The action running per node, and those a newer action for their node made stale. */
  private readonly running = new Map<string, string>();
  private readonly superseded = new Set<string>();
  private stopped = false;

  constructor(
    private readonly core: Core,
    private readonly route: (type: string) => Route,
    private readonly log: (line: string) => void,
    /** Waits before trying again to record a result whose batch was lost. */
    private readonly recordRetryMs: readonly number[] = RECORD_RETRY_MS,
  ) {}

  /** The daemon is stopping: results not yet recorded are not tried again. */
  stop(): void {
    this.stopped = true;
  }

  /** Actions running or queued (for metrics and the dashboard). */
  get pending(): number {
    let n = this.next.size;
    for (const l of this.lanes.values()) n += l.active + l.queue.length;
    return n;
  }

  /** Takes an `action` effect from a committed batch. */
  submit(nodeId: string, command: string, attempt: number, started?: number): void {
    const n = this.core.nodes.get(nodeId);
    if (!n) return;
    const r = this.route(n.type);
    const why = cannotRun(r, command);
    if (why !== null) return this.unrunnable(nodeId, command, attempt, started, why);
    const ladder = r.ladder?.[command];
    const actual = ladder && ladder.length > 0 ? ladder[Math.min(attempt, ladder.length) - 1]! : command;
    const a: Action = {
      id: `a${randomBytes(6).toString('hex')}`, node: nodeId, type: n.type, command: actual, requested: command,
      attempt, mode: n.mode, nextMode: n.nextMode, ...(started === undefined ? {} : { started }),
    };
    this.routes.set(a.id, r);
    if (this.busy.has(nodeId)) {
      // The running action's answer is no longer about the node's current attempt
      // (a forced reboot restarts at attempt 1, so the engine cannot tell them apart).
      const cur = this.running.get(nodeId);
      if (cur) this.superseded.add(cur);
      const old = this.next.get(nodeId);
      if (old) this.routes.delete(old.id);
      this.next.set(nodeId, a);
      return;
    }
    this.enqueue(a, r);
  }

  /**
   * An action its driver can never run (a trigger's POWEROFF where the
   * config has no template for it): trying again cannot help, so the node's
   * drive ends at once — a NOTIFY saying why and a TBFAILED (reason
   * NO_DRIVER) — instead of failing DRIVER_FAILED maxRebootAttempts times.
   * Operator commands never get here: the core refuses them (E_NO_DRIVER).
   */
  private unrunnable(node: string, command: string, attempt: number, started: number | undefined, why: string): void {
    this.core.run((c) => {
      const r = c.nodes.get(node)?.reboot;
      // Only the drive this action was for: a newer command (a forced reboot) is not ended by it.
      if (!r || r.command !== command || r.attempts !== attempt || r.started !== started || r.gaveUp) return;
      const message = `${command} cannot run: ${why}; not retried`;
      c.applyEvent({ objtype: 'NOTIFY', objname: node, eventtype: 'NO_DRIVER', message: `${node}: ${message}` });
      c.applyEvent({
        objtype: 'TBFAILED', objname: node, eventtype: command,
        reason: { code: 'NO_DRIVER', mode: 'TBCOMMAND', state: command, attempts: attempt, message: why },
        message: `${node}: ${message}`,
      });
    }).catch((err: unknown) => this.log(`stated: could not record that ${command} cannot run for ${node} (${why}): ${(err as Error).message}`));
  }

  private lane(key: string): Lane {
    let l = this.lanes.get(key);
    if (!l) this.lanes.set(key, (l = { active: 0, queue: [] }));
    return l;
  }

  private enqueue(a: Action, r: Route): void {
    this.busy.add(a.node);
    const lane = this.lane(r.key);
    if (lane.active < r.concurrency) this.start(a, r, lane);
    else lane.queue.push(a);
  }

  private start(a: Action, r: Route, lane: Lane): void {
    lane.active++;
    this.running.set(a.node, a.id);
    // The slot limits what runs against the power controllers: it frees when the
    // driver answers, not when the answer is recorded (which may take retries).
    let slotFreed = false;
    const freeSlot = (): void => {
      if (slotFreed) return;
      slotFreed = true;
      lane.active--;
      const queued = lane.queue.shift();
      if (queued) {
        this.busy.add(queued.node);
        this.start(queued, this.routes.get(queued.id) ?? r, lane);
      }
    };
    // A driver that throws instead of rejecting is a failed attempt too, not a crash of the commit that started it.
    Promise.resolve()
      .then(() => r.driver.run(a, r.timeoutMs))
      .catch((err: unknown) => ({ ok: false, message: `driver error: ${(err as Error).message}` }))
      .then(async (res) => {
        this.routes.delete(a.id);
        freeSlot();
        const input = {
          kind: 'actionResult' as const, command: a.requested, attempt: a.attempt, ok: res.ok, actual: a.command,
          ...(res.message === undefined ? {} : { message: res.message }),
          ...(a.started === undefined ? {} : { started: a.started }),
        };
        // Only this result re-arms the node's reboot: were it lost with its batch, the node
        // would stay "rebooting" for good. The node stays busy meanwhile, so a newer action
        // still supersedes it, and the result names its action's start, so the engine
        // ignores it should a newer action of the same attempt (a forced reboot) be current.
        for (let i = 0; ; i++) {
          if (this.superseded.delete(a.id)) return;
          if (i > 0 && this.stopped) {
            this.log(`stated: stopping: the ${a.command} result for ${a.node} was not recorded; the action runs again at the next start`);
            return;
          }
          try {
            await this.core.run((c) => c.applyInput(a.node, input));
            return;
          } catch (err) {
            const why = `could not record ${a.command} result for ${a.node}: ${(err as Error).message}`;
            if (i >= this.recordRetryMs.length) {
              this.log(`stated: E_INTERNAL: ${why}; gave up, the node's reboot resumes at the next start`);
              return;
            }
            this.log(`stated: ${why}; trying again in ${this.recordRetryMs[i]} ms`);
            await new Promise((r) => setTimeout(r, this.recordRetryMs[i]).unref());
          }
        }
      })
      .finally(() => {
        freeSlot();
        this.running.delete(a.node);
        this.busy.delete(a.node);
        const mine = this.next.get(a.node);
        if (mine) {
          this.next.delete(a.node);
          this.enqueue(mine, this.routes.get(mine.id) ?? r);
        }
      });
  }
}

/**
 * Why the route's driver can never run `command` — every step of its
 * escalation ladder counted, as any attempt may run one — or null. Only a
 * `command` driver can say (a template it lacks); agents and the simulator
 * run any command.
 */
export function cannotRun(r: Route, command: string): string | null {
  if (!r.driver.cannotRun) return null;
  const ladder = r.ladder?.[command];
  for (const step of ladder && ladder.length > 0 ? ladder : [command]) {
    const why = r.driver.cannotRun(step);
    if (why !== null) return `${step === command ? why : `${command} escalates to ${step}: ${why}`} (drivers.${r.key.slice(r.key.indexOf(':') + 1)} in the config)`;
  }
  return null;
}

/** Builds the route for a node type from the config's drivers (SPEC §4: template, agent, simulator). */
export function routeFor(
  type: string,
  drivers: Record<string, DriverConfig>,
  make: { command: (cfg: DriverConfig) => Driver; agents: Driver; simulator: Driver | null },
  timeScale: number,
): Route {
  const cfg = drivers[type] ?? drivers['*'];
  const timeoutMs = Math.max(50, (cfg?.timeout ?? 60) * 1000 * timeScale);
  const concurrency = cfg?.concurrency ?? 16;
  if (!cfg) {
    // Unconfigured: the in-process simulator drives its own nodes; anything else needs an agent.
    const driver = type === 'sim' && make.simulator ? make.simulator : make.agents;
    return { driver, key: `${driver.name}:${type}`, concurrency, timeoutMs, ladder: undefined };
  }
  const driver = cfg.kind === 'command' ? make.command(cfg) : cfg.kind === 'simulator' && make.simulator ? make.simulator : make.agents;
  return { driver, key: `${driver.name}:${drivers[type] ? type : '*'}`, concurrency, timeoutMs, ladder: cfg.ladder };
}
