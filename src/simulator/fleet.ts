/**
 * Simulated nodes: each answers a power action as real hardware would,
 * then reports a boot sequence for its mode. Some nodes are chosen to wedge
 * (stop in BOOTING on every boot) or to fail to power (the action fails).
 * The same fleet runs in-process (`serve --simulate`) and as a separate power
 * agent (`stated simulate`); only how it sends events differs.
 */
import type { Action, ActionResult, Driver } from '../drivers/action.ts';

export interface FleetOptions {
  /** Fraction of nodes whose power control fails. */
  failRate: number;
  /** Fraction of nodes that wedge in BOOTING on every boot. */
  wedgeRate: number;
  /** Boot speed multiplier: 2 = twice as fast. */
  speed: number;
  /** Milliseconds between two boot states at speed 1. */
  stepMs: number;
}

export const FLEET_DEFAULTS: FleetOptions = { failRate: 0, wedgeRate: 0, speed: 1, stepMs: 100 };

/*
 * What a node reports, as the shipped tables (migration 002) expect it. Its
 * PXEBOOTING and BOOTING pass through Emulab's PXEKERNEL machine (the
 * PXEBOOT and BOOTING triggers move it there and back), so the sequence is
 * the same in every mode it boots. NORMALv2: SHUTDOWN -> PXEBOOTING ->
 * (PXEKERNEL) BOOTING -> TBSETUP -> ISUP.
 */
const BOOT = ['PXEBOOTING', 'BOOTING', 'TBSETUP', 'ISUP'];
/*
 * RELOAD: the reload MFS sets up, loads and reports RELOADDONE, which closes
 * the reload (RELOAD/RELOADDONE -> NORMALv2/SHUTDOWN); then it reboots the
 * node into the new image, which says SHUTDOWN again (SHUTDOWN->SHUTDOWN
 * 'Retry') and boots normally.
 */
const RELOAD = ['PXEBOOTING', 'BOOTING', 'RELOADSETUP', 'RELOADING', 'RELOADDONE', 'SHUTDOWN'];

/** A stable pick per node name, so a node is always (or never) wedged/failing. */
function pick(node: string, salt: string, rate: number): boolean {
  if (rate <= 0) return false;
  let h = 2166136261;
  for (const c of `${salt}:${node}`) h = Math.imul(h ^ c.charCodeAt(0), 16777619);
  return ((h >>> 0) % 10_000) / 10_000 < rate;
}

export class Fleet implements Driver {
  readonly name = 'simulator';
  private readonly timers = new Set<NodeJS.Timeout>();
  /** Bumped per node on every action: an older boot sequence stops. */
  private readonly generation = new Map<string, number>();

  constructor(
    private readonly send: (node: string, state: string) => Promise<unknown>,
    private readonly opts: FleetOptions = FLEET_DEFAULTS,
  ) {}

  wedges(node: string): boolean {
    return pick(node, 'wedge', this.opts.wedgeRate);
  }

  failsPower(node: string): boolean {
    return pick(node, 'fail', this.opts.failRate);
  }

  private get step(): number {
    return this.opts.stepMs / this.opts.speed;
  }

  run(a: Action): Promise<ActionResult> {
    const gen = (this.generation.get(a.node) ?? 0) + 1;
    this.generation.set(a.node, gen);
    if (this.failsPower(a.node)) return this.later({ ok: false, message: 'simulated power controller failure' });
    if (a.command === 'POWEROFF') return this.later({ ok: true });
    const reload = a.nextMode === 'RELOAD' || a.mode === 'RELOAD';
    // REBOOT: the node shuts down cleanly and says so; after a power cycle stated says SHUTDOWN itself.
    const seq = [
      ...(a.command === 'REBOOT' ? ['SHUTDOWN'] : []),
      ...(reload ? [...RELOAD, ...BOOT] : BOOT),
    ];
    this.play(a.node, gen, seq);
    return this.later({ ok: true });
  }

  private later<T>(v: T): Promise<T> {
    return new Promise((resolve) => this.after(this.step / 2, () => resolve(v)));
  }

  private after(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    this.timers.add(t);
  }

  private play(node: string, gen: number, states: string[]): void {
    let i = 0;
    const next = (): void => {
      if (this.generation.get(node) !== gen || i >= states.length) return;
      const state = states[i++]!;
      void this.send(node, state).catch(() => {});
      // A wedged node hangs in BOOTING: stated's REBOOT timeout must catch it.
      if (state === 'BOOTING' && this.wedges(node)) return;
      this.after(this.step, next);
    };
    this.after(this.step, next);
  }

  stop(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }
}
