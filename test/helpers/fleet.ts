/**
 * Fleets for end-to-end tests: `stated simulate` in its own process, the
 * test itself as a power agent that plays a scripted boot, and a CLI run in
 * the background whose stderr can be read while it runs.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { after, type TestContext } from 'node:test';
import { type CliResult, type Daemon, connectWs, http, statedBin } from './daemon.ts';
import { until } from './poll.ts';

export { sleep, until } from './poll.ts';

const procs = new Set<ChildProcess>();
after(() => { for (const p of procs) p.kill('SIGKILL'); });

function env(d: Daemon, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const { STATED_URL: _u, STATED_TOKEN: _t, ...rest } = process.env;
  return { ...rest, NO_COLOR: '1', STATED_URL: d.wsUrl, STATED_TOKEN: d.token, ...extra };
}

/**
 * `stated simulate ARGS` in its own process, resolved once it has registered its nodes and
 * itself as their power agent (it outlives daemon restarts on the same address: it reconnects).
 * stop() ends it (SIGTERM) before the test's end; out() is what it printed.
 */
export async function simulate(t: TestContext, d: Daemon, args: string[]): Promise<{ stop: () => Promise<void>; out: () => string }> {
  const proc = spawn(statedBin, ['simulate', ...args], { cwd: d.dir, env: env(d), stdio: ['ignore', 'pipe', 'pipe'] });
  procs.add(proc);
  let out = '';
  proc.stdout!.setEncoding('utf8').on('data', (s: string) => { out += s; });
  proc.stderr!.setEncoding('utf8').on('data', (s: string) => { out += s; });
  const exited = new Promise<void>((r) => proc.once('exit', () => { procs.delete(proc); r(); }));
  const stop = async (): Promise<void> => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(timer);
  };
  t.after(stop);
  await until(() => /simulating \d+ nodes/.test(out) || proc.exitCode !== null, 'stated simulate to register');
  assert.match(out, /^\S+ INFO +simulating \d+ nodes/m, `stated simulate ${args.join(' ')}: ${out}`);
  return { stop, out: () => out };
}

/** A CLI run in the background: its output so far, signals, and its end. */
export interface Background {
  proc: ChildProcess;
  stdout(): string;
  stderr(): string;
  done: Promise<CliResult>;
}

export function background(d: Daemon, args: string[], extraEnv: Record<string, string> = {}): Background {
  const proc = spawn(statedBin, args, { cwd: d.dir, env: env(d, extraEnv), stdio: ['ignore', 'pipe', 'pipe'] });
  procs.add(proc);
  let stdout = '', stderr = '';
  proc.stdout!.setEncoding('utf8').on('data', (s: string) => { stdout += s; });
  proc.stderr!.setEncoding('utf8').on('data', (s: string) => { stderr += s; });
  const done = new Promise<CliResult>((resolve) => proc.once('close', (code) => { procs.delete(proc); resolve({ code, stdout, stderr }); }));
  return { proc, stdout: () => stdout, stderr: () => stderr, done };
}

export interface LoggedEvent {
  seq: number;
  time: number;
  event: { objtype: string; objname: string; eventtype: string; mode?: string; valid?: boolean; message?: string; reason?: Record<string, unknown> };
}

/** The node's events after `since`, oldest first. */
export async function history(d: Daemon, node: string, since = 0): Promise<LoggedEvent[]> {
  const r = await http(d, 'GET', `/v1/nodes/${node}/history?limit=1000`);
  assert.equal(r.status, 200, r.text);
  return (r.json.events as LoggedEvent[]).filter((e) => e.seq > since).reverse();
}

/** mode/state of each TBNODESTATE, oldest first. */
export const modeStates = (h: LoggedEvent[]): string[] =>
  h.filter((e) => e.event.objtype === 'TBNODESTATE').map((e) => `${e.event.mode}/${e.event.eventtype}`);

export async function nodeView(d: Daemon, node: string): Promise<any> {
  const r = await http(d, 'GET', `/v1/nodes/${node}`);
  assert.equal(r.status, 200, r.text);
  return r.json;
}

export const headSeq = async (d: Daemon): Promise<number> => (await http(d, 'GET', '/healthz', undefined, null)).json.seq;

export async function openWaits(d: Daemon, token?: string): Promise<any[]> {
  const r = await http(d, 'GET', '/v1/waits', undefined, token);
  assert.equal(r.status, 200, r.text);
  return r.json.waits;
}

export interface AgentAction { type: 'action'; action: string; node: string; command: string; attempt: number; mode: string; nextMode: string | null }

/**
 * The test as the power agent of some node types (SPEC §3 registerAgent):
 * `play` decides each action's result and the states the node then reports,
 * as a real node would after its power action (null: never answer).
 */
export async function scriptedAgent(d: Daemon, types: string[], play: (a: AgentAction) => { ok: boolean; states: string[] } | null) {
  const c = await connectWs(d);
  const reg = await c.request('registerAgent', { types });
  assert.equal(reg.ok, true, JSON.stringify(reg));
  const seen: AgentAction[] = [];
  c.ws.on('message', (data) => {
    const m = JSON.parse(String(data));
    if (m.type !== 'action') return;
    seen.push(m);
    const answer = play(m);
    if (answer === null) return; // a power controller that never answers
    const { ok, states } = answer;
    void (async () => {
      await c.request('actionResult', { action: m.action, ok });
      for (const s of states) await c.request('event', { event: { objtype: 'TBNODESTATE', objname: m.node, eventtype: s } });
    })().catch(() => {});
  });
  return { actions: () => seen, close: () => c.close() };
}
