/**
 * The daemon under test: dist/stated (or STATED_BIN) on port 0 in a temp
 * directory, with default config. Not test/helpers/daemon.ts: that one
 * registers node:test hooks, which a plain script must not.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root: the nearest directory above this file holding package.json (works from .build/bench). */
export function repoRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!fs.existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error('bench: no package.json above this script');
    dir = up;
  }
  return dir;
}

const LISTENING = /listening on http:\/\/([\d.]+):(\d+)/;
const START_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 10_000;

export interface BenchDaemon {
  url: string;
  wsUrl: string;
  token: string;
  pid: number;
  /** GET /metrics as name -> value (unlabelled samples only). */
  metrics(): Promise<Map<string, number>>;
  /** Peak resident set (VmHWM) in bytes, or null where /proc is absent. */
  peakRss(): number | null;
  /** SIGTERM, SIGKILL after a grace period; resolves once it has exited. */
  stop(): Promise<void>;
}

/** Starts `BIN serve --db DIR/stated.db --listen 127.0.0.1:0`; resolves once it listens and its token is on disk. */
export async function startDaemon(bin: string, dir: string): Promise<BenchDaemon> {
  const db = path.join(dir, 'stated.db');
  const { STATED_URL: _u, STATED_TOKEN: _t, ...env } = process.env;
  const proc = spawn(bin, ['serve', '--db', db, '--listen', '127.0.0.1:0'], {
    cwd: dir, env: { ...env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '', err = '';
  proc.stdout!.setEncoding('utf8').on('data', (s: string) => { out += s; });
  proc.stderr!.setEncoding('utf8').on('data', (s: string) => { err += s; });
  const exited = new Promise<void>((res) => {
    proc.once('exit', () => res());
    proc.once('error', (e) => { err += `${e.message}\n`; res(); });
  });

  const match = await new Promise<RegExpMatchArray>((resolve, reject) => {
    const fail = (why: string): void => {
      clearTimeout(timer);
      proc.kill('SIGKILL');
      reject(new Error(`${bin} serve ${why}\n--- stdout\n${out}--- stderr\n${err}`));
    };
    const timer = setTimeout(() => fail(`did not listen within ${START_TIMEOUT_MS} ms`), START_TIMEOUT_MS);
    proc.stdout!.on('data', () => {
      const m = LISTENING.exec(out);
      if (m) { clearTimeout(timer); resolve(m); }
    });
    void exited.then(() => fail('exited before listening'));
  });
  const token = await readToken(`${db}.token`);
  const url = `http://${match[1]}:${match[2]}`;
  return {
    url,
    wsUrl: `ws://${match[1]}:${match[2]}`,
    token,
    pid: proc.pid!,
    metrics: () => metrics(url, token),
    peakRss: () => peakRss(proc),
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), STOP_TIMEOUT_MS);
      await exited;
      clearTimeout(timer);
    },
  };
}

async function readToken(file: string): Promise<string> {
  // The token is written before "listening" is printed; a short retry covers a slow disk anyway.
  for (let i = 0; i < 50; i++) {
    try {
      const t = fs.readFileSync(file, 'utf8').trim();
      if (t) return t;
    } catch { /* not yet */ }
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`no admin token in ${file}`);
}

async function metrics(url: string, token: string): Promise<Map<string, number>> {
  const res = await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${token}` } });
  if (!res.ok) throw new Error(`GET /metrics: HTTP ${res.status}`);
  const out = new Map<string, number>();
  for (const line of (await res.text()).split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*) (\S+)$/.exec(line);
    if (m) out.set(m[1]!, Number(m[2]));
  }
  return out;
}

function peakRss(proc: ChildProcess): number | null {
  try {
    const m = /^VmHWM:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${proc.pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

let clockTicks: number | undefined;

/** CPU time (user + system) a process has used, ms, from /proc; null where /proc is absent. */
export function cpuMs(pid: number): number | null {
  try {
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th of them.
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    clockTicks ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    return ((Number(f[11]) + Number(f[12])) * 1000) / clockTicks;
  } catch {
    return null;
  }
}
