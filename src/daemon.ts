/**
 * Wiring: opens the store, builds the core, hub, auth and server, arms the
 * timer for the next deadline, and handles signals. No rules live here.
 */
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, renameSync, statfsSync, writeFileSync } from 'node:fs';
import type { Server as NetServer } from 'node:net';
import { basename, dirname, join, resolve } from 'node:path';
import { Admin } from './admin.ts';
import { Auth } from './auth.ts';
import { type Config, loadConfig } from './config.ts';
import { Core, type Committed } from './nodes.ts';
import { dashboardPage, tokenForm } from './dashboard/page.ts';
import { StatedError } from './errors.ts';
import { Agents } from './drivers/agents.ts';
import { CommandDriver } from './drivers/command.ts';
import { type Route, Scheduler, cannotRun, routeFor } from './drivers/scheduler.ts';
import type { Effect } from './engine.ts';
import { Hub } from './hub.ts';
import { type Log, makeLog } from './log.ts';
import { Machine } from './machine.ts';
import { Notifier } from './notify.ts';
import { WaitRelay } from './relay.ts';
import { StatedServer } from './server.ts';
import type { Services } from './session.ts';
import { Fleet } from './simulator/fleet.ts';
import { splitListen } from './startup.ts';
import { Store } from './store.ts';
import { Telemetry } from './telemetry.ts';
import { VERSION } from './version.ts';
import { ThreadWriter } from './writer.ts';

export interface DaemonOptions {
  db: string;
  listen: string;
  config?: string;
  simulate?: number;
  timeScale: number;
  debug: boolean;
  log?: Log;
  /** The listen address, already bound (startup.ts): the server takes its handle. */
  listenHandle?: NetServer;
}

const MAX_TIMER_MS = 2 ** 31 - 1;
/** How long a stop may take to commit what is queued. */
const STOP_LIMIT_MS = 30_000;

export class Daemon {
  readonly store: Store;
  readonly core: Core;
  readonly hub: Hub;
  readonly auth: Auth;
  readonly relay = new WaitRelay();
  readonly server: StatedServer;
  readonly agents = new Agents();
  readonly scheduler: Scheduler;
  /** The in-process fleet of `serve --simulate`. */
  readonly fleet: Fleet | null;
  config: Config;
  private routes = new Map<string, Route>();
  private notifier: Notifier;
  private timer: NodeJS.Timeout | null = null;
  private timerAt = Infinity;
  private readonly intervals: NodeJS.Timeout[] = [];
  private readonly log: Log;
  private readonly writer: ThreadWriter;
  private readonly counters = { events: 0, batches: 0, notifies: 0 };
  /** Boot statistics and the labelled /metrics families, fed from each commit. */
  readonly telemetry = new Telemetry((node) => this.core.nodes.get(node)?.type);
  /** Rebuilds since the last commit: the backoff before due timeouts fire again. */
  private rebuilds = 0;
  private stopped = false;
  /** The admin token, when this start created it. */
  createdToken: string | null = null;

  constructor(readonly opts: DaemonOptions) {
    this.log = opts.log ?? makeLog('text');
    this.config = loadConfig(opts.config);
    this.store = new Store(opts.db, { synchronous: this.config.synchronous });
    this.writer = new ThreadWriter(opts.db, {
      synchronous: this.config.synchronous,
      onFatal: (err) => {
        this.log(`stated: E_INTERNAL: ${err.message}`);
        process.exit(70);
      },
      onCommitted: (ms) => this.telemetry.commitLatency(ms),
    });
    this.core = new Core(this.store, {
      timeScale: opts.timeScale,
      maxRebootAttempts: this.config.maxRebootAttempts,
      retryDelay: this.config.retryDelay,
      genIsupTypes: this.config.genIsupTypes,
      staleTimeoutAge: this.config.staleTimeoutAge,
    }, Date.now, this.writer);
    this.auth = new Auth(this.store.db, process.env.STATED_TOKEN);
    this.hub = new Hub(this.store, () => this.core.committedSeq, {
      maxBuffered: this.config.subscriberBuffer,
      heartbeatMs: this.config.heartbeatInterval * 1000,
      replayChunk: 1000,
    });
    this.notifier = this.makeNotifier();
    this.fleet = opts.simulate
      ? new Fleet((node, state) => this.core.run((c) => c.applyEvent({ objtype: 'TBNODESTATE', objname: node, eventtype: state })))
      : null;
    this.scheduler = new Scheduler(this.core, (type) => this.route(type), this.log);
    const svc: Services = {
      core: this.core, hub: this.hub, auth: this.auth, relay: this.relay,
      admin: new Admin(this.core, this.auth, () => this.server.closeRevoked()), log: this.log, agents: this.agents,
    };
    this.server = new StatedServer(svc, {
      metrics: () => this.metrics(),
      stats: (since) => this.telemetry.stats.report(since, Date.now()),
      dashboard: (ok) => (ok ? dashboardPage(this.config) : tokenForm()),
    });
    // Once, from the SHUTDOWN/ISUP/TBFAILED rows and retry notices only (a partial index), never the whole log.
    this.telemetry.load(this.store.statsEvents());
    this.core.onCommit = (c) => this.committed(c);
    this.core.noDriver = (n, command) => this.noDriver(n.id, n.type, command);
    this.core.onRebuilt = (err) => {
      if (this.stopped) return;
      const code = (err as { code?: string }).code ?? 'E_INTERNAL';
      this.log(`${code}: a batch was not committed (${err.message}); its senders got the error, state was rebuilt from the database`, 'error');
      // The lost batch may have held a timeout's firing: what is due fires again, after
      // 0.1 s, doubling to 5 s while the store keeps failing (never a tight loop).
      const delay = Math.min(100 * 2 ** this.rebuilds++, 5000);
      if (this.timer) clearTimeout(this.timer);
      this.timerAt = Date.now() + delay;
      this.timer = setTimeout(() => this.onTimer(), delay);
    };
  }

  /** The driver for a node type, cached until the config reloads. */
  private route(type: string): Route {
    let r = this.routes.get(type);
    if (!r) {
      r = routeFor(type, this.config.drivers, {
        command: (cfg) => new CommandDriver(cfg.commands ?? {}, this.log),
        agents: this.agents,
        simulator: this.fleet,
      }, this.opts.timeScale);
      this.routes.set(type, r);
    }
    return r;
  }

  /** Why nothing can run `command` for the node (SPEC §4 E_NO_DRIVER), or null. */
  private noDriver(node: string, type: string, command: string): string | null {
    const r = this.route(type);
    if (r.driver !== this.agents) return cannotRun(r, command); // a command template (has it one?) or the in-process fleet
    return this.agents.missing(node, type);
  }

  private makeNotifier(): Notifier {
    return new Notifier({
      windowMs: this.config.digestWindow * 1000 * this.opts.timeScale,
      command: this.config.notifyCommand,
      log: this.log,
    });
  }

  /** Starts listening; resolves with the bound address. */
  async start(): Promise<{ host: string; port: number }> {
    const drivers = Object.entries(this.config.drivers).map(([type, d]) => `${type}=${(d as { kind: string }).kind}`);
    if (this.fleet) drivers.push('sim=simulator');
    this.log(`stated ${VERSION} starting: database ${resolve(this.opts.db)}, listen ${this.opts.listen}, drivers: ${drivers.length > 0 ? drivers.join(' ') : 'none configured (power agents)'}`);
    this.ensureAdminToken();
    if (this.opts.simulate) await this.addSimulatedNodes(this.opts.simulate);
    // Serve only once the writer can commit (and the addon's temp copy is gone).
    await this.writer.ready;
    const [host, portText] = splitListen(this.opts.listen);
    const addr = await this.server.listen(host, Number(portText), this.opts.listenHandle);
    // Agents reconnecting after a restart get this long before their nodes count as driverless.
    this.agents.startGrace(this.config.agentGrace * 1000 * this.opts.timeScale);
    // Overdue deadlines (the daemon was down) fire at once, oldest first;
    // actions the last run started but never heard back from run again.
    this.core.fireDue();
    for (const eff of this.core.inFlightActions()) this.effect(eff);
    this.armTimer();
    const every = (ms: number, fn: () => void): void => {
      const t = setInterval(fn, ms);
      t.unref();
      this.intervals.push(t);
    };
    every(Math.max(100, (this.config.heartbeatInterval * 1000) / 2), () => this.hub.heartbeat());
    every(this.config.sweepInterval * 1000, () => this.sweep());
    this.log(`stated: listening on http://${addr.host}:${addr.port}`);
    return addr;
  }

  private ensureAdminToken(): void {
    if (this.auth.count > 0) return;
    const file = `${this.opts.db}.token`;
    const { token } = this.auth.create('admin', {}, Date.now());
    // Written aside and renamed: a script polling for the file never reads it half-written.
    writeFileSync(`${file}.tmp`, `${token}\n`, { mode: 0o600 });
    chmodSync(`${file}.tmp`, 0o600);
    renameSync(`${file}.tmp`, file);
    this.createdToken = token;
    this.log(`stated: created an admin token in ${file}`);
  }

  private async addSimulatedNodes(n: number): Promise<void> {
    await this.core.run((c) => {
      for (let i = 1; i <= n; i++) {
        const id = `sim${i}`;
        if (!c.nodes.has(id)) c.addNode(id, { type: 'sim', mode: 'NORMALv2', state: 'ISUP', project: 'demo' });
      }
    });
  }

  /** After each commit: acknowledge happened already; fan out and run effects. */
  private committed(c: Committed): void {
    if (c.events.length > 0) this.rebuilds = 0; // the store writes again
    this.counters.batches++;
    this.counters.events += c.events.length;
    this.hub.publish(c.events);
    if (c.waits.length > 0) this.relay.deliver(c.waits);
    for (const le of c.events) {
      const t = le.event.objtype;
      if (t === 'NOTIFY' || t === 'TBFAILED') {
        if (t === 'NOTIFY') this.counters.notifies++;
        this.notifier.add(le);
      }
      if (this.opts.debug) this.log(`#${le.seq} ${le.event.objtype} ${le.event.objname} ${le.event.eventtype}`, 'debug');
    }
    this.telemetry.committed(c);
    for (const eff of c.effects) this.effect(eff);
    this.armTimer();
  }

  private effect(eff: Effect): void {
    if (eff.t === 'script') this.runScript(eff.node, eff.name);
    else if (eff.t === 'action') this.scheduler.submit(eff.node, eff.command, eff.attempt, eff.started);
    else if (eff.t === 'log' && this.opts.debug) this.log(`stated: ${eff.message}`);
  }

  private runScript(node: string, name: string): void {
    const dir = this.config.scriptDir;
    const fail = (why: string): void => {
      this.core.run((c) => c.applyEvent({ objtype: 'NOTIFY', objname: node, eventtype: 'SCRIPT_FAILED', message: `${node}: SCRIPT:${name}: ${why}` }))
        .catch((err: unknown) => this.log(`stated: could not log SCRIPT_FAILED for ${node}: ${(err as Error).message}; ${why}`));
    };
    // The name comes from definitions; still, it may not climb out of the script directory.
    if (!dir) return fail('no scriptDir configured');
    if (basename(name) !== name || name.startsWith('.')) return fail('bad script name');
    const path = join(dir, name);
    if (!existsSync(path)) return fail(`${path} does not exist`);
    const child = spawn(path, [node], { stdio: ['ignore', 'pipe', 'pipe'], timeout: this.config.scriptTimeout * 1000 });
    let out = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { out += d.toString(); });
    child.on('error', (err) => fail(err.message));
    child.on('exit', (code, signal) => {
      this.log(`stated: SCRIPT:${name} ${node} exited ${code ?? signal}: ${out.trim().slice(0, 2000)}`);
      if (code !== 0) fail(signal ? `killed by ${signal} (time limit ${this.config.scriptTimeout}s)` : `exit ${code}`);
    });
  }

  /** Arms one real timer for the earliest deadline. */
  private armTimer(): void {
    if (this.stopped) return;
    const next = this.core.timers.peek();
    if (next === null) return;
    // While backing off after a rebuild, commits (reads, say) do not pull the firing earlier.
    if (this.timer && (this.timerAt <= next || this.rebuilds > 0)) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = next;
    this.timer = setTimeout(() => this.onTimer(), Math.min(Math.max(0, next - Date.now()), MAX_TIMER_MS));
  }

  private onTimer(): void {
    this.timer = null;
    this.timerAt = Infinity;
    if (this.stopped) return;
    this.core.fireDue();
    this.armTimer();
  }

  /** Retention of the event log and expiry of abandoned waits (never per event). */
  sweep(): void {
    const cfg = this.config;
    const now = Date.now();
    void this.core.run((c) => {
      // Whichever bound is tighter: the count or the age (SPEC §5).
      const through = Math.max(c.seq - cfg.retentionEvents, c.store.lastSeqBefore(now - cfg.retentionDays * 86_400_000));
      c.store.trim(through, 50_000, c.seq);
      this.telemetry.stats.prune(now - cfg.retentionDays * 86_400_000);
      const expired = c.waits.expired(now);
      for (const id of expired) c.waits.end(id);
      return expired;
    }).then((expired) => {
      for (const id of expired) this.relay.poke(id);
    }, (err: unknown) => this.log(`stated: sweep failed: ${(err as Error).message}`));
  }

  /** SIGHUP: re-read the config file and the definitions. */
  async reload(): Promise<void> {
    this.config = loadConfig(this.opts.config);
    this.routes = new Map();
    this.notifier.flush();
    this.notifier = this.makeNotifier();
    await this.core.run((c) => c.setMachine(new Machine(c.store.loadDefinition())), { exclusive: true });
    this.log('stated: reloaded config and machine definitions');
  }

  /** Drains and stops: pending jobs commit, connections close, the store closes. */
  async stop(limitMs = STOP_LIMIT_MS): Promise<void> {
    this.stopped = true;
    for (const t of this.intervals) clearInterval(t);
    if (this.timer) clearTimeout(this.timer);
    await this.server.close();
    this.fleet?.stop();
    this.scheduler.stop();
    // A commit that hangs (a lock held elsewhere, a dead disk) must not hang the stop.
    let limit: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      limit = setTimeout(() => reject(new StatedError('E_UNAVAILABLE',
        `stop: the pending commits were not done after ${limitMs / 1000} s`)), limitMs);
    });
    try {
      await Promise.race([(async () => {
        await this.core.drain();
        await this.writer.close();
      })(), late]);
    } finally {
      clearTimeout(limit);
      this.notifier.flush();
    }
    this.store.close();
    this.log(`stopped at seq ${this.core.committedSeq}`);
  }

  /** Free bytes on the database's file system (for /metrics): a full disk stops every write. */
  private fsFree(): number {
    try {
      const s = statfsSync(dirname(resolve(this.opts.db)));
      return s.bavail * s.bsize;
    } catch {
      return -1;
    }
  }

  metrics(): string {
    const lines = [
      ['stated_events_total', 'counter', 'events committed to the log', this.counters.events],
      ['stated_batches_total', 'counter', 'transactions committed', this.counters.batches],
      ['stated_notify_total', 'counter', 'NOTIFY events', this.counters.notifies],
      ['stated_seq', 'gauge', 'last committed seq', this.core.committedSeq],
      ['stated_waits', 'gauge', 'open waits', this.core.waits.size],
      ['stated_subscriptions', 'gauge', 'open subscriptions', this.hub.size],
      ['stated_connections', 'gauge', 'open WebSocket connections', this.server.sessions.size],
      ['stated_actions_pending', 'gauge', 'driver actions running or queued', this.scheduler.pending],
      ['stated_db_fs_free_bytes', 'gauge', "bytes free to stated on the database's file system (-1: unknown)", this.fsFree()],
    ] as const;
    return lines.map(([n, t, h, v]) => `# HELP ${n} ${h}\n# TYPE ${n} ${t}\n${n} ${v}\n`).join('') + this.telemetry.render(this.core.nodes.values());
  }
}
