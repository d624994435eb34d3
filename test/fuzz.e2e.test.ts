// Fuzz (SPEC §3 "Limits"): a malformed or unknown message gets an error reply
// and the connection stays up, except past the size limit. Over 100,000
// generated frames and bodies from a seeded PRNG (STATED_FUZZ_SEED=N to
// replay one run) go at a running daemon; every one must get an error — never
// ok, never E_INTERNAL — or, for the few meant to, a clean close. Afterwards
// the daemon still answers, nothing it holds has changed and the store passes
// PRAGMA integrity_check.
import assert from 'node:assert/strict';
import { Agent, request } from 'node:http';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import WebSocket from 'ws';
import { type Daemon, connectWs, http, startDaemon } from './helpers/daemon.ts';

const SEED = Number(process.env.STATED_FUZZ_SEED ?? 20_240_611);
const WS_FRAMES = 96_000;
const HTTP_BODIES = 8_000;
const WORKERS = 6;
const BATCH = 400;
const MiB = 1024 * 1024;
const NODES = ['n1', 'n2', 'n3', 'n4'];

/** mulberry32: small, fast, and the same sequence for the same seed everywhere. */
class Rng {
  private s: number;
  constructor(seed: number) { this.s = seed >>> 0; }
  next(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number { return Math.floor(this.next() * n); }
  pick<T>(a: readonly T[]): T { return a[this.int(a.length)]!; }
  chance(p: number): boolean { return this.next() < p; }
}

// A value written into the frame as raw JSON text: what JSON.stringify cannot
// produce (1e999, nesting deeper than its stack) or would turn valid (Infinity -> null).
const RAW = '\u0001RAW:';
const raw = (text: string): string => `${RAW}${text}\u0001`;
const serialize = (v: unknown): string => JSON.stringify(v).replace(/"\\u0001RAW:(.*?)\\u0001"/gs, (_, t: string) => JSON.parse(`"${t}"`));

/** JSON nested 2,000 to 42,000 deep: JSON.parse copes, JSON.stringify of the result overflows its stack. */
const deepText = (r: Rng): string => {
  const d = 2_000 + r.int(40_000);
  return r.chance(0.5) ? '['.repeat(d) + ']'.repeat(d) : '{"a":'.repeat(d) + '1' + '}'.repeat(d);
};
const deep = (r: Rng): string => raw(deepText(r));
const HUGE = ['1e999', '-1e999', '123456789012345678901234567890', '1e308', '-0.0000001', '9007199254740993'];
const unicode = (r: Rng, n: number): string => {
  let s = '';
  for (let i = 0; i < n; i++) {
    const k = r.int(5);
    s += k === 0 ? String.fromCharCode(r.int(0x20)) // control characters
      : k === 1 ? String.fromCharCode(0xd800 + r.int(0x800)) // lone surrogates
        : k === 2 ? String.fromCodePoint(0x1f300 + r.int(0x300)) // emoji
          : k === 3 ? String.fromCharCode(0x80 + r.int(0x700))
            : String.fromCharCode(0x20 + r.int(0x5f));
  }
  return s;
};

// Values that are not a name ([A-Za-z0-9_./-]{1,64}) for any field that wants one.
const BAD_NAME_STRINGS = ['', 'x'.repeat(65), 'a b', 'a\tb', 'n1;reboot', 'ünïcødé', '💥', 'n1,n2', 'a\u0000b', '<script>',
  "'; DROP TABLE nodes; --", '%6e1', 'a"b', 'a\\b', 'n1\n', ' n1', 'ｎ１', 'a:b', 'a@b', '${x}', '$(reboot)'];
function badName(r: Rng, nullOk = true): unknown {
  switch (r.int(nullOk ? 7 : 6)) {
    case 0: return r.pick(BAD_NAME_STRINGS);
    case 1: return unicode(r, r.int(20)) + r.pick([' ', 'é', '\u0000', '💥', '\ud800', ';']); // random, then surely not a name
    case 2: return r.pick([0, 1, -1, 3.5, true, false]);
    case 3: return r.pick<unknown>([[], ['n1'], {}, { toString: 'n1' }, { $ne: 1 }]);
    case 4: return r.chance(0.05) ? deep(r) : raw(r.pick(HUGE));
    case 5: return r.chance(0.5) ? 'x'.repeat(65 + r.int(5000)) : `n${r.pick(BAD_NAME_STRINGS)}`.slice(0, 64) + '!';
    default: return null;
  }
}
const LIST_10001 = Array.from({ length: 10_001 }, (_, i) => `n${i}`);
function badList(r: Rng): unknown {
  switch (r.int(7)) {
    case 0: return r.pick(['n1', 'n1,n2', 5, true, {}, { 0: 'n1' }, null]);
    case 1: return [];
    case 2: return [badName(r)];
    case 3: return ['n1', 'n2', badName(r)];
    case 4: return r.chance(0.02) ? LIST_10001 : [['n1']];
    case 5: return r.chance(0.1) ? deep(r) : [raw(r.pick(HUGE))];
    default: return Array.from({ length: 1 + r.int(5) }, () => badName(r));
  }
}
/** Not a number in [min, max]; never null (optional numbers read null as absent). */
function badNumber(r: Rng, min: number, max: number): unknown {
  return r.pick<unknown>([min - 1, max + 1, -1e-9 + min, 'ten', '1', true, [], {}, [1], raw('1e999'), raw('-1e999'), max * 2 + 7, -0.5]);
}
const badCommand = (r: Rng): unknown => r.pick<unknown>(['reboot', 'SHUTDOWN', 'ISUP', '', 'REBOOT ', ' REBOOT', 'POWER', 1, null, [], ['REBOOT'], {}, true, 'REBOOT,POWERON']);
const badBool = (r: Rng): unknown => r.pick<unknown>(['true', 'false', 1, 0, null, [], {}, [true]]);
const badString = (r: Rng, max: number): unknown => r.pick<unknown>([1, true, [], {}, null, ['m'], 'm'.repeat(max + 1)]);

/** A well-formed event for a real node; the fuzz corrupts one part of it. */
const goodEvent = (r: Rng): Record<string, unknown> => ({ objtype: 'TBNODESTATE', objname: r.pick(NODES), eventtype: r.pick(['ISUP', 'SHUTDOWN', 'BOOTING']) });

/** An event that parseEvent must refuse (or, shaped well, that names no node: refused all the same). */
function badEvent(r: Rng): unknown {
  const e: Record<string, unknown> = goodEvent(r);
  switch (r.int(9)) {
    case 0: return r.pick<unknown>([null, 1, 'TBNODESTATE n1 ISUP', [], [goodEvent(r)], true]);
    case 1: e.objtype = r.pick<unknown>(['tbnodestate', 'TBNODESTATE ', 'FOO', '', 1, null, ['TBNODESTATE'], 'toString', '__proto__']); break;
    case 2: e.objname = badName(r); break;
    case 3: e.eventtype = badName(r); break;
    case 4: // a command: objname is a comma list, eventtype one of four
      e.objtype = 'TBCOMMAND';
      if (r.chance(0.5)) e.eventtype = r.pick(['ISUP', 'SHUTDOWN', 'reboot', 'RESET']);
      else { e.eventtype = 'REBOOT'; e.objname = r.pick<unknown>(['n1,', ',n1', 'n1,,n2', 'n1, n2', 'n1,ü', 1, null, r.chance(0.05) ? LIST_10001.join(',') : 'n1;n2']); }
      break;
    case 5: e.id = r.pick<unknown>([1, true, {}, [], 'i'.repeat(129), null]); break;
    case 6: e.message = badString(r, 4096); break;
    case 7: e.reason = r.pick<unknown>(['x', 1, {}, { code: 'a b' }, { code: 1 }, { code: 'X', message: 5 }, { code: 'X', message: 'm'.repeat(4097) }, null]); break;
    default: // well-formed, but no such node: refused with E_UNKNOWN_NODE, nothing applied
      e.objname = `nosuch${r.int(1000)}`;
      e.objtype = r.pick(['TBNODESTATE', 'TBCONTROL', 'TBFAILED', 'TBNODEOPMODE']);
  }
  return e;
}

type Fields = Record<string, unknown>;
/** Per op: a well-formed request and its strictly checked fields, each with a generator of invalid values. */
const OPS: Record<string, { good: (r: Rng) => Fields; bad: Record<string, (r: Rng) => unknown> }> = {
  event: { good: (r) => ({ event: goodEvent(r) }), bad: { event: badEvent } },
  initStateWait: {
    good: (r) => ({ states: ['ISUP'], nodes: [r.pick(NODES)], ttl: 60, command: 'REBOOT' }),
    bad: { states: badList, nodes: badList, ttl: (r) => badNumber(r, 1, 365 * 86400), command: badCommand },
  },
  waitForState: { good: () => ({ wait: 'wdeadbeef', timeout: 1 }), bad: { wait: badName, timeout: (r) => badNumber(r, 0, 365 * 86400) } },
  cancelWait: { good: () => ({ wait: 'wdeadbeef', node: 'n1' }), bad: { wait: badName, node: badName } },
  endStateWait: { good: () => ({ wait: 'wdeadbeef' }), bad: { wait: badName } },
  attach: { good: () => ({ wait: 'wdeadbeef' }), bad: { wait: badName } },
  subscribe: {
    good: () => ({ filter: { objname: ['n1'] }, since: 0 }),
    bad: {
      filter: (r) => r.chance(0.4) ? r.pick<unknown>(['n1', 1, [], ['n1'], true, null])
        : { [r.pick(['objtype', 'objname', 'eventtype'])]: badList(r) },
      since: (r) => badNumber(r, 0, Number.MAX_SAFE_INTEGER),
    },
  },
  unsubscribe: { good: () => ({ sub: 's1' }), bad: { sub: badName } },
  command: { good: (r) => ({ command: 'REBOOT', nodes: [r.pick(NODES)] }), bad: { command: badCommand, nodes: badList } },
  registerAgent: { good: () => ({ types: ['fuzztype'] }), bad: { types: badList } },
  actionResult: { good: () => ({ action: 'a0', ok: true, message: 'm' }), bad: { action: badName, ok: badBool, message: (r) => badString(r, 4096) } },
  status: { good: () => ({ nodes: ['n1'] }), bad: { nodes: badList } },
};

// Admin actions: the args that each one checks strictly (and only those: an
// optional arg given null, or a missing optional list, would be well-formed).
const ADMIN: Record<string, { good: (r: Rng) => Fields; bad: Record<string, (r: Rng) => unknown> }> = {
  'node.add': {
    good: (r) => ({ nodes: [`fz${r.int(1e6)}`], project: 'P' }),
    bad: { nodes: badList, type: (r) => badName(r, false), mode: (r) => badName(r, false), state: (r) => badName(r, false), project: (r) => badName(r, false) },
  },
  'node.remove': { good: () => ({ nodes: ['n4'] }), bad: { nodes: badList } },
  'node.setNextMode': { good: () => ({ node: 'n1', mode: 'RELOAD' }), bad: { node: badName, mode: (r) => badName(r, false) } },
  'node.trigger.add': {
    good: () => ({ node: 'n1', state: 'ISUP', triggers: ['REBOOT'] }),
    bad: { node: badName, mode: (r) => badName(r, false), state: badName, triggers: badList },
  },
  'node.trigger.clear': { good: () => ({ node: 'n1' }), bad: { node: badName } },
  'node.trigger.list': { good: () => ({}), bad: { nodes: badList } },
  'machine.check': { good: () => ({}), bad: { text: (r) => r.chance(0.5) ? badString(r, 0) : machineText(r) } },
  'machine.import': { good: () => ({ text: '{}' }), bad: { text: (r) => r.chance(0.3) ? r.pick<unknown>([1, null, [], {}, true]) : machineText(r) } },
  'token.create': {
    good: () => ({ role: 'operator' }),
    bad: { role: (r) => r.pick<unknown>(['root', 'ADMIN', 'Admin', '', 1, null, [], '__proto__', 'constructor']), node: (r) => badName(r, false), project: (r) => badName(r, false) },
  },
  'token.revoke': { good: () => ({ id: 'tdeadbeef' }), bad: { id: badName } },
};

/** Definition text no reader may accept: not JSON, cut short, wrong shapes, or nested past any stack. */
function machineText(r: Rng): unknown {
  const def = '{"state_transitions":[{"op_mode":"NORMALv2","state1":"ISUP","state2":"SHUTDOWN","label":"x"}]}';
  switch (r.int(6)) {
    case 0: return def.slice(0, 1 + r.int(def.length - 1));
    case 1: return unicode(r, r.int(200));
    case 2: return `{"state_transitions":[${deepText(r)}]}`;
    case 3: return `{"state_transitions":[{"op_mode":${JSON.stringify(badName(r, false))},"state1":"A","state2":"B"}]}`;
    case 4: return '{"nosuch_table":[]}';
    default: return { __sql: true };
  }
}

/** The one field a request corrupts, chosen among the op's strictly checked fields. */
function corruptRequest(r: Rng): Fields {
  if (r.chance(0.15)) {
    const action = r.pick(Object.keys(ADMIN));
    const spec = ADMIN[action]!;
    const args = spec.good(r);
    const field = r.pick(Object.keys(spec.bad));
    args[field] = spec.bad[field]!(r);
    if (action === 'machine.import' || action === 'machine.check') {
      if (typeof args.text === 'object' && args.text !== null && '__sql' in args.text) {
        args.format = 'sql';
        args.text = r.pick(['INSERT INTO state_transitions VALUES (', 'INSERT INTO nosuch VALUES (1);', "INSERT INTO state_timeouts VALUES ('A','B','x','');", unicode(r, 50)]);
      }
    }
    return { op: 'admin', action, args };
  }
  if (r.chance(0.02)) return { op: 'admin', action: r.pick<unknown>([1, null, [], {}, 'node.ADD', 'token', '', '__proto__', 'constructor', 'toString', unicode(r, 8)]), args: {} };
  if (r.chance(0.02)) {
    // Required args missing altogether (args not an object reads as {}).
    return { op: 'admin', action: r.pick(['node.add', 'node.remove', 'node.setNextMode', 'node.trigger.add', 'node.trigger.clear', 'machine.import', 'token.create', 'token.revoke']), args: r.pick<unknown>([null, 1, 'x', [], {}]) };
  }
  const op = r.pick(Object.keys(OPS));
  const spec = OPS[op]!;
  const fields = spec.good(r);
  const field = r.pick(Object.keys(spec.bad));
  fields[field] = spec.bad[field]!(r);
  return { op, ...fields };
}

const UNKNOWN_OPS: unknown[] = ['EVENT', 'Event', 'event ', '', 'subscribe\u0000', '__proto__', 'constructor', 'toString', 'hasOwnProperty',
  'nosuch', 'initstatewait', 1, 0, null, true, [], {}, ['event']];

interface Frame {
  data: string | Buffer;
  binary?: boolean;
  /** The integer id the reply must carry, when it has one. */
  id?: number;
}

/** One frame that must be answered with an error. */
function frame(r: Rng, nextId: () => number): Frame {
  const k = r.next();
  if (k < 0.08) return { data: unicode(r, r.int(300)) };
  if (k < 0.14) {
    let s = '';
    const alphabet = '{}[]":,0123456789.eE+-abcdefnulltrue \\/u';
    for (let i = r.int(120); i > 0; i--) s += alphabet[r.int(alphabet.length)];
    return { data: s };
  }
  if (k < 0.18) return { data: Buffer.from(Array.from({ length: r.int(2000) }, () => r.int(256))), binary: true };
  if (k < 0.20) {
    return { data: r.pick(['null', '1', '"op"', '[]', '[{"op":"status"}]', 'true', '{}', '{"id":"x"}', ' ', '', '{"op":"status"}{"op":"status"}',
      '{"__proto__":{"op":"status"}}', '{"op":"admin","action":"node.add","args":{"__proto__":{"nodes":["evil"]}}}',
      '{"op":"status","nodes":["n1"],"nodes":"n1"}', '{"op":"event","event":{"objtype":"TBNODESTATE","objname":"n1","eventtype":"ISUP","objname":"n 1"}}']) };
  }
  // A JSON object: unknown op, or a known op with one field corrupted.
  const body: Fields = r.chance(0.06) ? { op: r.pick(UNKNOWN_OPS), nodes: ['n1'] } : corruptRequest(r);
  let id: number | undefined;
  // The id is echoed: most are plain integers to match replies by; the rest are anything at all.
  if (r.chance(0.85)) body.id = id = nextId();
  else if (r.chance(0.9)) body.id = r.pick<unknown>(['x', '', 1.5, -7, { a: 1 }, [1, 2], true, null, 'i'.repeat(10_000), unicode(r, 20), raw('1e999')]);
  else body.id = deep(r);
  const text = serialize(body);
  if (r.chance(0.05)) return { data: text.slice(0, 1 + r.int(text.length - 1)) }; // truncated: no reply id
  return id === undefined ? { data: text } : { data: text, id };
}

/** What ends a socket on purpose: just over 1 MiB (1009), or text that is not UTF-8 (1007). */
function closer(r: Rng): { data: Buffer; code: number } {
  if (r.chance(0.5)) {
    const pad = MiB + 1 + r.int(64);
    return { data: Buffer.from(`{"op":"status","id":1,"pad":"${'x'.repeat(pad)}"}`), code: 1009 };
  }
  return { data: Buffer.from([0x7b, 0x22, 0x6f, 0x70, 0x22, 0x3a, 0x22, 0xc3, 0x28, 0xff, 0xfe, 0x22, 0x7d]), code: 1007 };
}

interface Tally { frames: number; closes: number; failures: string[] }

/** One connection at a time: batches of frames pipelined, every reply counted, sometimes ended by a closer. */
async function wsWorker(d: Daemon, r: Rng, quota: number, tally: Tally, nextId: () => number): Promise<void> {
  let sent = 0;
  while (sent < quota && tally.failures.length < 20) {
    const ws = new WebSocket(`${d.wsUrl}/v1/ws`, { headers: { authorization: `Bearer ${d.token}` }, maxPayload: 64 * MiB });
    const replies: any[] = [];
    let closed: { code: number; reason: string } | null = null;
    let onChange = (): void => {};
    ws.on('message', (data) => { replies.push(JSON.parse(String(data))); onChange(); });
    ws.on('close', (code, reason) => { closed = { code, reason: String(reason) }; onChange(); });
    ws.on('error', () => {});
    await new Promise<void>((res, rej) => {
      ws.once('open', () => res());
      ws.once('close', () => rej(new Error(`seed ${SEED}: could not connect (is the daemon alive?)`)));
    });
    const until = (done: () => boolean, what: string, ms = 20_000): Promise<void> => new Promise((res, rej) => {
      const timer = setTimeout(() => rej(new Error(`seed ${SEED}: ${what}: timed out; ${replies.length} replies, closed ${JSON.stringify(closed)}`)), ms);
      onChange = () => { if (done()) { clearTimeout(timer); res(); } };
      onChange();
    });
    // A socket lives for a few batches, then is closed by a closer or by us.
    for (let b = 1 + r.int(4); b > 0 && sent < quota; b--) {
      const frames: Frame[] = [];
      for (let i = Math.min(BATCH, quota - sent); i > 0; i--) frames.push(frame(r, nextId));
      replies.length = 0;
      for (const f of frames) ws.send(f.data, { binary: f.binary === true });
      sent += frames.length;
      tally.frames += frames.length;
      try {
        await until(() => replies.length >= frames.length || closed !== null, `batch of ${frames.length}`);
      } catch (err) {
        tally.failures.push((err as Error).message);
        ws.terminate();
        return;
      }
      if (closed) {
        tally.failures.push(`seed ${SEED}: the server closed a socket mid-batch: ${JSON.stringify(closed)} after ${replies.length}/${frames.length} replies`);
        return;
      }
      await new Promise((res) => setTimeout(res, 20)); // a stray extra reply would show up here
      if (replies.length !== frames.length) tally.failures.push(`seed ${SEED}: ${frames.length} frames got ${replies.length} replies`);
      const wanted = new Set(frames.flatMap((f) => (f.id === undefined ? [] : [f.id])));
      for (const m of replies) {
        if (m.ok !== false) tally.failures.push(`seed ${SEED}: a fuzz frame was accepted: ${JSON.stringify(m).slice(0, 300)}`);
        else if (!/^E_[A-Z_]+$/.test(m.error?.code) || m.error.code === 'E_INTERNAL') {
          tally.failures.push(`seed ${SEED}: bad error reply ${JSON.stringify(m).slice(0, 300)}`);
        }
        if (typeof m.re === 'number' && Number.isInteger(m.re) && m.re > 0) {
          if (!wanted.delete(m.re)) tally.failures.push(`seed ${SEED}: reply to ${m.re}, which was not asked or answered twice`);
        }
      }
      if (wanted.size > 0) {
        const missing = frames.filter((f) => f.id !== undefined && wanted.has(f.id)).slice(0, 3).map((f) => String(f.data).slice(0, 200));
        tally.failures.push(`seed ${SEED}: ${wanted.size} frames got no reply, e.g. ${JSON.stringify(missing)}`);
      }
    }
    if (r.chance(0.3)) {
      const c = closer(r);
      ws.send(c.data, { binary: false });
      try {
        await until(() => closed !== null, 'closer');
      } catch (err) {
        tally.failures.push((err as Error).message);
        ws.terminate();
        return;
      }
      tally.closes++;
      if (closed!.code !== c.code) tally.failures.push(`seed ${SEED}: a closer frame: close ${JSON.stringify(closed)}, expected ${c.code}`);
    } else {
      ws.close();
      await until(() => closed !== null, 'close');
    }
  }
}

/** A body POST /v1/events must refuse with a 4xx and an error code. */
function body(r: Rng): { data: Buffer | string; type: string } {
  const type = r.pick(['application/json', 'application/json', 'text/plain', 'application/x-www-form-urlencoded', '']);
  const k = r.next();
  if (k < 0.1) return { data: Buffer.from(Array.from({ length: r.int(3000) }, () => r.int(256))), type };
  if (k < 0.15) return { data: r.pick(['', 'null', '[]', '1', '"x"', 'true', '{}', '[[]]', '[null]']), type };
  if (k < 0.2) return { data: unicode(r, r.int(200)), type };
  if (k < 0.25) return { data: serialize(deep(r)), type };
  if (k < 0.27) return { data: JSON.stringify(Array.from({ length: 10_001 }, () => goodEvent(r))), type };
  // A lone bad event that happens to be a list ([event]) would be a well-formed body: nest it once more.
  const bad = badEvent(r);
  const one = Array.isArray(bad) ? [bad] : bad;
  // An array: well-formed events for real nodes around one bad one — refused whole, nothing applied.
  const v = r.chance(0.5) ? one : [...Array.from({ length: r.int(20) }, () => goodEvent(r)), one, ...Array.from({ length: r.int(3) }, () => goodEvent(r))];
  const text = serialize(v);
  if (r.chance(0.1)) return { data: text.slice(0, Math.max(1, r.int(text.length))), type };
  return { data: text, type };
}

async function httpWorker(d: Daemon, r: Rng, quota: number, agent: Agent, tally: Tally): Promise<void> {
  for (let i = 0; i < quota && tally.failures.length < 20; i++) {
    const b = body(r);
    const res = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const headers: Record<string, string | number> = { authorization: `Bearer ${d.token}`, 'content-length': Buffer.byteLength(b.data) };
      if (b.type) headers['content-type'] = b.type;
      const req = request(`${d.url}/v1/events`, { method: 'POST', agent, headers }, (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (c: string) => { text += c; }).on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      });
      req.on('error', reject);
      req.end(b.data);
    });
    tally.frames++;
    let code: unknown;
    try { code = JSON.parse(res.text).error?.code; } catch { code = undefined; }
    if (res.status < 400 || res.status >= 500 || typeof code !== 'string' || !/^E_[A-Z_]+$/.test(code)) {
      tally.failures.push(`seed ${SEED}: POST /v1/events ${JSON.stringify(String(b.data).slice(0, 200))} -> ${res.status} ${res.text.slice(0, 300)}`);
    }
  }
}

/** What no refused request may change: the log head, the nodes, the waits, the tokens, the definitions. */
async function state(d: Daemon, db: Database.Database): Promise<unknown> {
  const status = await d.runCli(['status', '--json']);
  assert.equal(status.code, 0, status.stderr);
  const tokens = await d.runCli(['token', 'list', '--json']);
  assert.equal(tokens.code, 0, tokens.stderr);
  const machine = await d.runCli(['machine', 'export', '--json']);
  assert.equal(machine.code, 0, machine.stderr);
  const health = await http(d, 'GET', '/healthz', undefined, null);
  assert.equal(health.status, 200);
  return {
    seq: health.json.seq,
    status: JSON.parse(status.stdout),
    tokens: JSON.parse(tokens.stdout),
    machine: machine.stdout,
    waits: db.prepare('SELECT * FROM waits ORDER BY wait_id').all(),
    waitNodes: db.prepare('SELECT * FROM wait_nodes ORDER BY wait_id, node').all(),
    log: db.prepare('SELECT count(*) AS n, max(seq) AS max FROM events').get(),
  };
}

async function seeded(t: { after: (fn: () => unknown) => void }): Promise<{ d: Daemon; db: Database.Database }> {
  // Time scaled up: no timeout of the seeded states can fire while the fuzz runs, however slow the machine.
  const d = await startDaemon({ args: ['--time-scale', '100'] });
  t.after(() => d.stop());
  const c = await connectWs(d);
  try {
    const add = await c.request('admin', { action: 'node.add', args: { nodes: NODES, project: 'P', state: 'ISUP' } });
    assert.equal(add.ok, true, JSON.stringify(add));
    const ev = await c.request('event', { event: { objtype: 'TBNODESTATE', objname: 'n1', eventtype: 'SHUTDOWN' } });
    assert.equal(ev.ok, true, JSON.stringify(ev));
    // Two waits that outlive this connection: the fuzz must not touch them.
    for (const nodes of [['n1', 'n2'], ['n3']]) {
      const w = await c.request('initStateWait', { states: ['ISUP'], nodes, ttl: 3600 });
      assert.equal(w.ok, true, JSON.stringify(w));
    }
  } finally {
    c.close();
  }
  const db = new Database(d.db, { readonly: true, fileMustExist: true });
  t.after(() => db.close());
  return { d, db };
}

test('crafted frames that have killed servers: each gets an error reply and the daemon lives (SPEC §3)', async (t) => {
  const { d, db } = await seeded(t);
  const before = await state(d, db);
  const c = await connectWs(d);
  t.after(() => c.close());
  const D = 30_000;
  const deepArr = '['.repeat(D) + ']'.repeat(D);
  const deepObj = '{"a":'.repeat(D) + '1' + '}'.repeat(D);
  // Expected: the error code (or codes, a|b), '' for any error code but E_INTERNAL.
  const cases: [string, string, string][] = [
    ['a deeply nested id', `{"op":"nosuch","id":${deepArr}}`, 'E_UNKNOWN_OP|E_BAD_REQUEST'],
    ['a deeply nested id on a valid op', `{"op":"status","id":${deepObj}}`, 'E_BAD_REQUEST'],
    ['a deeply nested wait name', `{"op":"attach","id":1,"wait":${deepArr}}`, 'E_BAD_NAME'],
    ['a deeply nested objname', `{"op":"event","id":2,"event":{"objtype":"TBNODESTATE","objname":${deepObj},"eventtype":"ISUP"}}`, 'E_BAD_NAME'],
    ['a deeply nested node list entry', `{"op":"status","id":3,"nodes":[${deepArr}]}`, 'E_BAD_NAME'],
    ['a deeply nested op', `{"op":${deepArr},"id":4}`, 'E_UNKNOWN_OP'],
    ['a deeply nested machine definition row', JSON.stringify({ op: 'admin', id: 5, action: 'machine.check', args: { text: `{"state_transitions":[${deepArr}]}` } }), 'E_BAD_DEFINITION'],
    ['1e999 as ttl', '{"op":"initStateWait","id":6,"states":["ISUP"],"nodes":["n1"],"ttl":1e999}', 'E_BAD_REQUEST'],
    ['__proto__ as args', '{"op":"admin","id":7,"action":"node.add","args":{"__proto__":{"nodes":["evil"]}}}', 'E_BAD_REQUEST'],
    ['10,001 nodes', JSON.stringify({ op: 'status', id: 8, nodes: LIST_10001 }), 'E_TOO_MANY'],
  ];
  const problems: string[] = [];
  for (const [what, text, code] of cases) {
    const reply = new Promise<any>((res) => c.ws.once('message', (m) => res(JSON.parse(String(m)))));
    c.ws.send(text);
    const r = await Promise.race([reply, new Promise((res) => setTimeout(() => res(null), 3000))]) as any;
    if (d.proc.exitCode !== null || d.proc.signalCode !== null) {
      problems.push(`${what}: the daemon died (exit ${d.proc.exitCode ?? d.proc.signalCode}): ${d.stderr().split('\n').slice(0, 4).join(' | ')}`);
      break;
    }
    if (r === null) problems.push(`${what}: no reply`);
    else if (r.ok !== false || r.error?.code === 'E_INTERNAL' || (code && !code.split('|').includes(r.error?.code))) {
      problems.push(`${what}: expected ${code || 'an error'}, got ${JSON.stringify(r).slice(0, 200)}`);
    }
  }
  // The same over HTTP: a 400 with the code, not a 500 (asked only of a daemon still alive).
  const httpCases: [string, string, number, string][] = [
    ['a deeply nested objname', `{"objtype":"TBNODESTATE","objname":${deepObj},"eventtype":"ISUP"}`, 400, 'E_BAD_NAME'],
    ['a deeply nested eventtype in a list', `[{"objtype":"TBNODESTATE","objname":"n1","eventtype":${deepArr}}]`, 400, 'E_BAD_NAME'],
    ['a deeply nested body', deepArr, 400, 'E_BAD_EVENT'],
  ];
  for (const [what, text, status, code] of d.proc.exitCode === null && d.proc.signalCode === null ? httpCases : []) {
    const r = await fetch(`${d.url}/v1/events`, { method: 'POST', headers: { authorization: `Bearer ${d.token}` }, body: text })
      .then(async (res) => ({ status: res.status, text: await res.text() }), (err: Error) => ({ status: 0, text: err.message }));
    let got: unknown;
    try { got = JSON.parse(r.text).error?.code; } catch { got = r.text.slice(0, 100); }
    if (r.status !== status || got !== code) problems.push(`POST ${what}: expected ${status} ${code}, got ${r.status} ${String(got)}`);
  }
  assert.deepEqual(problems, []);
  assert.deepEqual(await state(d, db), before);
});

test(`fuzz: ${WS_FRAMES + HTTP_BODIES} malformed frames and bodies get errors, never a crash or a change (SPEC §3)`, async (t) => {
  const { d, db } = await seeded(t);
  t.diagnostic(`seed ${SEED} (STATED_FUZZ_SEED to replay)`);
  const before = await state(d, db);
  const tally: Tally = { frames: 0, closes: 0, failures: [] };
  let ids = 0;
  const nextId = () => ++ids;
  const agent = new Agent({ keepAlive: true, maxSockets: 2 });
  t.after(() => agent.destroy());
  const t0 = Date.now();
  const failed = (err: Error) => { tally.failures.push(`seed ${SEED}: ${err.message}`); };
  await Promise.all([
    ...Array.from({ length: WORKERS }, (_, i) => wsWorker(d, new Rng(SEED * 31 + i), WS_FRAMES / WORKERS, tally, nextId).catch(failed)),
    ...Array.from({ length: 2 }, (_, i) => httpWorker(d, new Rng(SEED * 17 + i), HTTP_BODIES / 2, agent, tally).catch(failed)),
  ]);
  t.diagnostic(`${tally.frames} frames and bodies, ${tally.closes} sockets closed on purpose, ${Date.now() - t0} ms`);
  assert.ok(d.proc.exitCode === null && d.proc.signalCode === null,
    `seed ${SEED}: the daemon died (${d.proc.exitCode ?? d.proc.signalCode}):\n${d.stderr().slice(0, 1500)}`);
  assert.deepEqual(tally.failures, []);
  assert.ok(tally.frames >= 100_000, `only ${tally.frames} sent`);
  assert.ok(tally.closes > 0, 'some sockets were ended by an oversize or non-UTF-8 frame');

  // Still serving, and nothing moved.
  const c = await connectWs(d);
  t.after(() => c.close());
  const st = await c.request('status', { nodes: ['n1'] });
  assert.equal(st.ok, true, JSON.stringify(st));
  assert.deepEqual(await state(d, db), before);
  assert.doesNotMatch(d.stdout() + d.stderr(), /internal error/);

  c.close();
  db.close();
  assert.equal(await d.stop(), 0, 'a clean exit after the fuzz');
  const check = new Database(d.db, { readonly: true, fileMustExist: true });
  try {
    assert.deepEqual(check.pragma('integrity_check'), [{ integrity_check: 'ok' }]);
    assert.deepEqual(check.pragma('foreign_key_check'), []);
  } finally {
    check.close();
  }
});
