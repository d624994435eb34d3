/**
 * End-to-end harness: runs the built `dist/stated` (never the sources), on
 * port 0 in a temp directory, as SPEC §1 describes the executable.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after } from 'node:test';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';

/** The repository root: the nearest directory above this file holding package.json (works from .build/test too). */
export const repoRoot = findUp(path.dirname(fileURLToPath(import.meta.url)), 'package.json');
/** The executable under test; STATED_BIN overrides it. */
export const statedBin = process.env.STATED_BIN ?? path.join(repoRoot, 'dist', 'stated');

const LISTENING = /listening on http:\/\/([\d.]+):(\d+)/;
const START_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 10_000;

export interface StartOptions {
  dir?: string;
  args?: string[];
  env?: Record<string, string>;
  /** Run this executable instead of statedBin (e.g. a copy elsewhere). */
  bin?: string;
}

export interface CliResult { code: number | null; stdout: string; stderr: string }
export interface CliOptions { env?: Record<string, string>; input?: string; timeoutMs?: number; cwd?: string }

export interface Daemon {
  dir: string;
  db: string;
  url: string;
  wsUrl: string;
  port: number;
  token: string;
  proc: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** SIGTERM, then the exit code (null if it died of a signal). */
  stop(): Promise<number | null>;
  kill9(): Promise<void>;
  /** Stops this daemon if it still runs and starts another on the same dir and db. */
  restart(extraArgs?: string[]): Promise<Daemon>;
  runCli(args: string[], opts?: CliOptions): Promise<CliResult>;
}

// A failed assertion must not leave a daemon holding the test process open,
// nor its temp directory behind.
const live = new Set<ChildProcess>();
const madeDirs = new Set<string>();
after(() => {
  for (const p of live) p.kill('SIGKILL');
  for (const d of madeDirs) fs.rmSync(d, { recursive: true, force: true });
});

/** A fresh temp directory, removed after the test file's last test. */
export function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stated-test-'));
  madeDirs.add(dir);
  return dir;
}

// Hermetic: the caller's STATED_URL/STATED_TOKEN must not leak in; plain (uncoloured) citty output.
function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const { STATED_URL: _u, STATED_TOKEN: _t, ...env } = process.env;
  return { ...env, NO_COLOR: '1', ...extra };
}

/** Starts `stated serve` and resolves once it listens and its admin token is on disk. */
export async function startDaemon(opts: StartOptions = {}): Promise<Daemon> {
  const dir = opts.dir ?? tempDir();
  const db = path.join(dir, 'stated.db');
  const args = opts.args ?? [];
  const listen = args.includes('--listen') ? [] : ['--listen', '127.0.0.1:0'];
  const bin = opts.bin ?? statedBin;
  const proc = spawn(bin, ['serve', '--db', db, ...listen, ...args], {
    cwd: dir,
    env: childEnv(opts.env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(proc);
  let spawnError: Error | undefined;
  const exited = new Promise<number | null>((res) => {
    proc.once('exit', (code) => { live.delete(proc); res(code); });
    // e.g. ENOENT: no 'exit' follows, so settle here.
    proc.once('error', (e) => { spawnError = e; live.delete(proc); res(null); });
  });
  let out = '', err = '';
  proc.stdout!.setEncoding('utf8').on('data', (s: string) => { out += s; });
  proc.stderr!.setEncoding('utf8').on('data', (s: string) => { err += s; });

  const [, host, port] = await new Promise<RegExpMatchArray>((resolve, reject) => {
    let settled = false;
    const done = (m?: RegExpMatchArray, why?: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (m) return resolve(m);
      proc.kill('SIGKILL');
      reject(new Error(`${bin} serve ${why}\n--- stdout\n${out}--- stderr\n${err}`));
    };
    const timer = setTimeout(() => done(undefined, `did not print "listening on" within ${START_TIMEOUT_MS} ms`), START_TIMEOUT_MS);
    proc.stdout!.on('data', () => { const m = LISTENING.exec(out); if (m) done(m); });
    void exited.then((code) => done(undefined, spawnError ? `could not start: ${spawnError.message}` : `exited with ${code} before listening`));
  });
  const token = opts.env?.STATED_TOKEN ?? await readToken(`${db}.token`);
  const url = `http://${host}:${port}`;

  const daemon: Daemon = {
    dir, db, url, wsUrl: `ws://${host}:${port}`, port: Number(port), token, proc,
    stdout: () => out,
    stderr: () => err,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), STOP_TIMEOUT_MS);
      try { return await exited; } finally { clearTimeout(timer); }
    },
    async kill9() {
      proc.kill('SIGKILL');
      await exited;
    },
    async restart(extraArgs = []) {
      await daemon.stop();
      return startDaemon({ ...opts, dir, args: [...args, ...extraArgs] });
    },
    runCli: (cliArgs, cliOpts = {}) => runCli(cliArgs, {
      bin,
      cwd: dir,
      ...cliOpts,
      env: { STATED_URL: daemon.wsUrl, STATED_TOKEN: token, ...cliOpts.env },
    }),
  };
  return daemon;
}

/** Runs `dist/stated ARGS` to completion; rejects past timeoutMs (default 30 s) with what it printed. */
export function runCli(args: string[], opts: CliOptions & { bin?: string } = {}): Promise<CliResult> {
  const bin = opts.bin ?? statedBin;
  const timeoutMs = opts.timeoutMs ?? 30_000;
  return new Promise((resolve, reject) => {
    // Default cwd: a place with no ./stated.db.token to pick up by accident.
    const proc = spawn(bin, args, { cwd: opts.cwd ?? os.tmpdir(), env: childEnv(opts.env), stdio: 'pipe' });
    let stdout = '', stderr = '';
    proc.stdout.setEncoding('utf8').on('data', (s: string) => { stdout += s; });
    proc.stderr.setEncoding('utf8').on('data', (s: string) => { stderr += s; });
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`stated ${args.join(' ')}: no exit within ${timeoutMs} ms\n--- stdout\n${stdout}--- stderr\n${stderr}`));
    }, timeoutMs);
    proc.on('error', (e) => { clearTimeout(timer); reject(e); });
    proc.on('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
    proc.stdin.on('error', () => {}); // EPIPE when the command exits without reading its input
    proc.stdin.end(opts.input ?? '');
  });
}

/** One HTTP request to the daemon; token defaults to its admin token, null sends none. */
export async function http(d: Daemon, method: string, urlPath: string, body?: unknown, token?: string | null): Promise<{ status: number; json: any; text: string }> {
  const headers: Record<string, string> = {};
  const bearer = token === undefined ? d.token : token;
  if (bearer !== null) headers.authorization = `Bearer ${bearer}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(d.url + urlPath, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let json: any = null;
  try { json = JSON.parse(text); } catch { /* not JSON: e.g. /metrics */ }
  return { status: res.status, json, text };
}

export interface WsClient {
  ws: WebSocket;
  /** Sends `{op, id, ...fields}` and resolves with the reply carrying `re: id`. */
  request(op: string, fields?: Record<string, unknown>): Promise<any>;
  /** Resolves with the first push (message with `type`) matching pred, including ones already received. */
  push(pred: (m: any) => boolean, timeoutMs?: number): Promise<any>;
  pushes: any[];
  close(): void;
}

/** Opens the daemon's WebSocket (SPEC §3) with a request/reply helper. */
export async function connectWs(d: Daemon, token: string | null = d.token): Promise<WsClient> {
  const ws = new WebSocket(`${d.wsUrl}/v1/ws`, token === null ? {} : { headers: { authorization: `Bearer ${token}` } });
  const replies = new Map<unknown, (m: any) => void>();
  const failures = new Map<unknown, (err: Error) => void>();
  const pushes: any[] = [];
  const waiters = new Set<() => void>();
  ws.on('message', (data) => {
    const m = JSON.parse(String(data));
    if ('re' in m) replies.get(m.re)?.(m);
    else { pushes.push(m); for (const w of waiters) w(); }
  });
  // A request on a connection the server closed fails, naming the close, instead of hanging the test.
  ws.on('close', (code, reason) => {
    for (const fail of failures.values()) fail(new Error(`connection closed (${code} ${String(reason)}) before the reply`));
    failures.clear();
  });
  await new Promise<void>((res, rej) => { ws.once('open', () => res()); ws.once('error', rej); });
  let next = 0;
  return {
    ws, pushes,
    request(op, fields = {}) {
      const id = ++next;
      return new Promise((res, rej) => {
        replies.set(id, (m) => { replies.delete(id); failures.delete(id); res(m); });
        failures.set(id, (err) => { replies.delete(id); rej(err); });
        if (ws.readyState !== WebSocket.OPEN) return failures.get(id)!(new Error(`connection not open (state ${ws.readyState})`));
        ws.send(JSON.stringify({ op, id, ...fields }));
      });
    },
    push(pred, timeoutMs = 10_000) {
      return new Promise((res, rej) => {
        const check = () => {
          const m = pushes.find(pred);
          if (m) { waiters.delete(check); clearTimeout(timer); res(m); }
        };
        const timer = setTimeout(() => { waiters.delete(check); rej(new Error(`no matching push within ${timeoutMs} ms; got ${JSON.stringify(pushes)}`)); }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    close: () => ws.close(),
  };
}

// The daemon writes the token on first start; allow for it landing just after the listening line.
async function readToken(file: string): Promise<string> {
  for (let i = 0; ; i++) {
    try { return fs.readFileSync(file, 'utf8').trim(); } catch (err) {
      if (i >= 40) throw new Error(`no admin token at ${file}: ${(err as Error).message}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

function findUp(from: string, name: string): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, name))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`no ${name} above ${from}`);
  }
}
