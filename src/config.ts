/**
 * The daemon's configuration: defaults in one object (units in comments),
 * overlaid by the optional JSON file of `serve --config`. Unknown keys and
 * wrong types are refused with the key's name, never ignored.
 */
import { readFileSync } from 'node:fs';
import { StatedError } from './errors.ts';

export interface DriverConfig {
  /** 'command' runs argv templates; 'agent' waits for a registered power agent; 'simulator' is serve --simulate's. */
  kind: 'command' | 'agent' | 'simulator';
  /** For 'command': per command, an argv template; {node} is substituted. */
  commands?: Record<string, string[]>;
  /** Escalation ladder: attempt n runs ladder[n-1] (the last one repeats). */
  ladder?: Record<string, string[]>;
  /** Seconds an action may take before it counts as failed. */
  timeout?: number;
  /** Concurrent actions for this driver. */
  concurrency?: number;
}

export interface Config {
  maxRebootAttempts: number;
  /** Seconds between a failed driver attempt and the next (scaled by --time-scale). */
  retryDelay: number;
  /** Seconds: identical notifications within it are folded (scaled by --time-scale). */
  digestWindow: number;
  /** argv of a program that gets each digest line on stdin. */
  notifyCommand: string[] | null;
  /** Directory of SCRIPT:name trigger programs. */
  scriptDir: string | null;
  /** Seconds a trigger script may run. */
  scriptTimeout: number;
  /** Node types that cannot send ISUP themselves (CHECKGENISUP). */
  genIsupTypes: string[];
  /** Event log retention: days and event count, whichever is smaller. */
  retentionDays: number;
  retentionEvents: number;
  /** Seconds of silence before a subscription gets a heartbeat. */
  heartbeatInterval: number;
  /** Seconds between sweeps of the event log (retention) and of abandoned waits (ttl). */
  sweepInterval: number;
  /** Bytes a subscriber may leave unread before it is dropped. */
  subscriberBuffer: number;
  /** SQLite synchronous mode: FULL survives power loss, NORMAL only crashes. */
  synchronous: 'FULL' | 'NORMAL';
  /** Node type -> driver. '*' is the fallback. */
  drivers: Record<string, DriverConfig>;
  /**
   * Seconds (scaled by --time-scale, like every timeout): a deadline overdue
   * by more than this at start is dropped with a NOTIFY, not fired; 0 fires all.
   */
  staleTimeoutAge: number;
  /**
   * Seconds after start (scaled by --time-scale) during which an action for a
   * node with no power agent waits for one to reconnect; after it, a node with
   * no driver is refused at once (E_NO_DRIVER).
   */
  agentGrace: number;
}

export const DEFAULTS: Config = {
  maxRebootAttempts: 3,
  retryDelay: 10,
  digestWindow: 15,
  notifyCommand: null,
  scriptDir: null,
  scriptTimeout: 30,
  genIsupTypes: [],
  retentionDays: 7,
  retentionEvents: 1_000_000,
  heartbeatInterval: 15,
  sweepInterval: 60,
  subscriberBuffer: 8 * 1024 * 1024,
  synchronous: 'FULL',
  drivers: {},
  staleTimeoutAge: 7 * 86_400,
  agentGrace: 60,
};

type Check = (v: unknown) => boolean;
const isNum: Check = (v) => typeof v === 'number' && Number.isFinite(v) && v >= 0;
const isStrList: Check = (v) => Array.isArray(v) && v.every((x) => typeof x === 'string');
const CHECKS: Record<keyof Config, [Check, string]> = {
  maxRebootAttempts: [(v) => Number.isInteger(v) && (v as number) >= 1, 'an integer >= 1'],
  retryDelay: [isNum, 'seconds'],
  digestWindow: [isNum, 'seconds'],
  notifyCommand: [(v) => v === null || (isStrList(v) && (v as string[]).length > 0), 'an argv list or null'],
  scriptDir: [(v) => v === null || typeof v === 'string', 'a directory or null'],
  scriptTimeout: [isNum, 'seconds'],
  genIsupTypes: [isStrList, 'a list of node types'],
  retentionDays: [isNum, 'days'],
  retentionEvents: [(v) => Number.isInteger(v) && (v as number) >= 1000, 'an integer >= 1000'],
  heartbeatInterval: [(v) => isNum(v) && (v as number) > 0, 'seconds > 0'],
  sweepInterval: [(v) => isNum(v) && (v as number) > 0, 'seconds > 0'],
  subscriberBuffer: [(v) => Number.isInteger(v) && (v as number) >= 65536, 'bytes >= 65536'],
  synchronous: [(v) => v === 'FULL' || v === 'NORMAL', "'FULL' or 'NORMAL'"],
  staleTimeoutAge: [isNum, 'seconds'],
  drivers: [(v) => typeof v === 'object' && v !== null && !Array.isArray(v), 'an object of node type -> driver'],
  agentGrace: [isNum, 'seconds'],
};

const DRIVER_KINDS = new Set(['command', 'agent', 'simulator']);
const isArgv = (v: unknown): boolean => Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'string' && x.length > 0);

/** Each driver as the Scheduler will use it: a bad one is refused at load, not at the first reboot. */
function checkDrivers(drivers: Record<string, unknown>, where: string): void {
  const bad = (key: string, what: string): never => { throw new StatedError('E_BAD_REQUEST', `${where}: drivers.${key} must be ${what}`); };
  for (const [type, d] of Object.entries(drivers)) {
    if (typeof d !== 'object' || d === null || Array.isArray(d)) bad(type, 'an object {kind, ...}');
    const cfg = d as Record<string, unknown>;
    for (const k of Object.keys(cfg)) {
      if (!['kind', 'commands', 'ladder', 'timeout', 'concurrency'].includes(k)) bad(`${type}.${k}`, 'one of kind, commands, ladder, timeout, concurrency (unknown key)');
    }
    if (!DRIVER_KINDS.has(cfg.kind as string)) bad(`${type}.kind`, "'command', 'agent' or 'simulator'");
    if (cfg.concurrency !== undefined && !(Number.isInteger(cfg.concurrency) && (cfg.concurrency as number) >= 1)) bad(`${type}.concurrency`, 'an integer >= 1');
    if (cfg.timeout !== undefined && !(isNum(cfg.timeout) && (cfg.timeout as number) > 0)) bad(`${type}.timeout`, 'seconds > 0');
    for (const field of ['commands', 'ladder'] as const) {
      const m = cfg[field];
      if (m === undefined) continue;
      if (typeof m !== 'object' || m === null || Array.isArray(m)) bad(`${type}.${field}`, 'an object of command -> list');
      for (const [cmd, list] of Object.entries(m as Record<string, unknown>)) {
        if (!isArgv(list)) bad(`${type}.${field}.${cmd}`, field === 'commands' ? 'a non-empty argv list of strings' : 'a non-empty list of commands');
      }
    }
    if (cfg.kind === 'command' && cfg.commands === undefined) bad(`${type}.commands`, 'given for kind command');
  }
}

/** Validates a parsed config object over the defaults. */
export function parseConfig(raw: unknown, where = 'config'): Config {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new StatedError('E_BAD_REQUEST', `${where}: expected a JSON object`);
  const out: Record<string, unknown> = { ...DEFAULTS };
  for (const [k, v] of Object.entries(raw)) {
    const check = CHECKS[k as keyof Config];
    if (!check) throw new StatedError('E_BAD_REQUEST', `${where}: unknown key ${k}`);
    if (!check[0](v)) throw new StatedError('E_BAD_REQUEST', `${where}: ${k} must be ${check[1]}`);
    if (k === 'drivers') checkDrivers(v as Record<string, unknown>, where);
    out[k] = v;
  }
  return out as unknown as Config;
}

/** Reads `--config FILE` (none: defaults). */
export function loadConfig(file: string | undefined): Config {
  if (!file) return { ...DEFAULTS };
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new StatedError('E_BAD_REQUEST', `cannot read config ${file}: ${(err as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new StatedError('E_BAD_REQUEST', `${file}: not JSON: ${(err as Error).message}`);
  }
  return parseConfig(raw, file);
}
