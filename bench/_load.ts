/**
 * The load: one WebSocket, `events` event requests sent as fast as the socket
 * takes them with at most `window` unacknowledged, every reply checked.
 */
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';
import { eventAt, nodeNames } from './_events.ts';

/** Longest time without a single reply before the run is declared stuck. */
const STALL_MS = 30_000;
const ADD_CHUNK = 10_000; // SPEC §3: a list holds at most 10,000 nodes

export interface LoadOptions {
  nodes: number;
  events: number;
  window: number;
}

export interface LoadResult {
  /** First send to last acknowledgement. */
  elapsedMs: number;
  /** The seqs the replies carried form this range, each once (checked). */
  firstSeq: number;
  lastSeq: number;
  /** CPU this process (the load generator) used while pushing, ms. */
  clientCpuMs: number;
}

/** Opens the WebSocket with the admin token (replies come from the daemon under test: no UTF-8 check). */
export async function connect(wsUrl: string, token: string): Promise<WebSocket> {
  const ws = new WebSocket(`${wsUrl}/v1/ws`, { headers: { authorization: `Bearer ${token}` }, perMessageDeflate: false, skipUTF8Validation: true });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return ws;
}

/** Adds nodes through the `admin` op, ADD_CHUNK per request, all in one state; throws on a refusal. */
export async function addNodesIn(ws: WebSocket, names: readonly string[], state: string): Promise<void> {
  for (let i = 0; i < names.length; i += ADD_CHUNK) {
    const id = `add-${state}-${i}`;
    const reply = await new Promise<{ ok?: boolean; error?: unknown }>((resolve, reject) => {
      const onClose = (): void => reject(new Error('connection closed during node.add'));
      const onMessage = (data: WebSocket.RawData): void => {
        const m = JSON.parse(String(data)) as { re?: unknown; ok?: boolean; error?: unknown };
        if (m.re !== id) return;
        ws.off('message', onMessage);
        ws.off('close', onClose);
        resolve(m);
      };
      ws.on('message', onMessage);
      ws.on('close', onClose);
      ws.send(JSON.stringify({ op: 'admin', id, action: 'node.add', args: { nodes: names.slice(i, i + ADD_CHUNK), mode: 'NORMALv2', state } }));
    });
    if (reply.ok !== true) throw new Error(`node.add refused: ${JSON.stringify(reply.error)}`);
  }
}

/** Registers pc1..pcN in NORMALv2/ISUP. */
export function addNodes(ws: WebSocket, count: number): Promise<void> {
  return addNodesIn(ws, nodeNames(count), 'ISUP');
}

/**
 * Every event request as a client frame, laid end to end, encoded before the
 * clock starts: the load generator shares the 2 cores with the daemon, and
 * building, masking and framing 200,000 messages during the run cost it as
 * much CPU as a third of the daemon's. The masking key is zero (RFC 6455
 * §5.3 requires the bit and a key, the server unmasks whatever key it gets),
 * so the payload bytes stand as they are.
 */
export function encodeFrames(o: LoadOptions): { bytes: Buffer; at: Uint32Array } {
  const parts: Buffer[] = [];
  const at = new Uint32Array(o.events + 1);
  let offset = 0;
  for (let i = 0; i < o.events; i++) {
    const { node, state } = eventAt(i, o.nodes);
    const payload = Buffer.from(`{"op":"event","id":${i},"event":{"objtype":"TBNODESTATE","objname":"pc${node + 1}","eventtype":"${state}"}}`);
    const n = payload.length;
    // FIN + text opcode; MASK bit + length (7 bits, or 126 + 16 bits); key 0.
    const head = n < 126 ? Buffer.from([0x81, 0x80 | n, 0, 0, 0, 0]) : Buffer.from([0x81, 0x80 | 126, n >> 8, n & 0xff, 0, 0, 0, 0]);
    parts.push(head, payload);
    at[i] = offset;
    offset += head.length + n;
  }
  at[o.events] = offset;
  return { bytes: Buffer.concat(parts, offset), at };
}

/** The usual reply (session.ts writes it out so); anything else goes through JSON.parse. */
const PLAIN_REPLY = /^\{"re":(\d+),"ok":true,"seq":(\d+),"duplicate":false\}$/;

/** Pushes the events and resolves once every one is acknowledged; rejects on any refusal or a bad seq. */
export function pushEvents(ws: WebSocket, o: LoadOptions): Promise<LoadResult> {
  const seqs = new Float64Array(o.events).fill(-1);
  const frames = encodeFrames(o);
  // Whole frames straight onto the socket, a window's worth per write. Safe
  // beside ws's own sender: nothing else is sent meanwhile, and a pong it
  // might write is a whole frame of its own between two of ours.
  const socket = (ws as unknown as { _socket: { write(b: Buffer): boolean } })._socket;
  let sent = 0;
  let acked = 0;
  let refill = false;
  let lastReply = performance.now();

  const fill = (): void => {
    refill = false;
    const end = Math.min(o.events, acked + o.window);
    if (end <= sent) return;
    socket.write(frames.bytes.subarray(frames.at[sent], frames.at[end]));
    sent = end;
  };

  return new Promise((resolve, reject) => {
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const stall = setInterval(() => {
      if (performance.now() - lastReply > STALL_MS) done(new Error(`no reply for ${STALL_MS} ms (${acked}/${o.events} acknowledged)`));
    }, 1000);
    const onClose = (code: number): void => done(new Error(`connection closed (${code}) after ${acked}/${o.events} acknowledgements`));
    const onMessage = (data: WebSocket.RawData): void => {
      const text = String(data);
      const plain = PLAIN_REPLY.exec(text);
      const m = (plain ? { re: Number(plain[1]), ok: true, seq: Number(plain[2]) } : JSON.parse(text)) as { re?: unknown; ok?: unknown; seq?: unknown; error?: unknown };
      const i = m.re;
      if (typeof i !== 'number') return; // a push, not ours
      if (m.ok !== true) return done(new Error(`event ${i} refused: ${JSON.stringify(m.error)}`));
      if (!Number.isInteger(i) || i < 0 || i >= o.events || seqs[i] !== -1) return done(new Error(`unexpected reply re=${i}`));
      if (typeof m.seq !== 'number') return done(new Error(`reply to event ${i} has no seq`));
      seqs[i] = m.seq;
      lastReply = performance.now();
      if (++acked === o.events) return done();
      if (!refill && sent < o.events) {
        refill = true;
        setImmediate(fill); // after this read's replies are all counted: one burst per read
      }
    };
    let finished = false;
    function done(err?: Error): void {
      if (finished) return;
      finished = true;
      const elapsedMs = performance.now() - t0;
      const cpu = process.cpuUsage(cpu0);
      clearInterval(stall);
      ws.off('message', onMessage);
      ws.off('close', onClose);
      if (err) return reject(err);
      try {
        resolve({ elapsedMs, ...checkSeqs(seqs), clientCpuMs: (cpu.user + cpu.system) / 1000 });
      } catch (e) {
        reject(e as Error);
      }
    }
    ws.on('message', onMessage);
    ws.on('close', onClose);
    fill();
  });
}

/** SPEC §2: seqs are distinct and gap-free; ours must fill one range exactly. */
function checkSeqs(seqs: Float64Array): { firstSeq: number; lastSeq: number } {
  let lo = Infinity, hi = -Infinity;
  for (const s of seqs) { lo = Math.min(lo, s); hi = Math.max(hi, s); }
  if (hi - lo + 1 !== seqs.length) throw new Error(`seqs span ${lo}..${hi}, not ${seqs.length} consecutive numbers (gap or foreign events)`);
  const seen = new Uint8Array(seqs.length);
  for (const s of seqs) {
    if (!Number.isInteger(s) || seen[s - lo]) throw new Error(`seq ${s} acknowledged twice`);
    seen[s - lo] = 1;
  }
  return { firstSeq: lo, lastSeq: hi };
}
