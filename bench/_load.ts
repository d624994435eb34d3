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

/** Opens the WebSocket with the admin token. */
export async function connect(wsUrl: string, token: string): Promise<WebSocket> {
  const ws = new WebSocket(`${wsUrl}/v1/ws`, { headers: { authorization: `Bearer ${token}` }, perMessageDeflate: false });
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

/** Pushes the events and resolves once every one is acknowledged; rejects on any refusal or a bad seq. */
export function pushEvents(ws: WebSocket, o: LoadOptions): Promise<LoadResult> {
  const seqs = new Float64Array(o.events).fill(-1);
  // ws writes each frame to the socket at once; corking the burst turns a
  // window's worth of sends into a few large writes (the client must not be
  // what limits the daemon on a 2-core machine).
  const socket = (ws as unknown as { _socket: { cork(): void; uncork(): void } })._socket;
  let sent = 0;
  let acked = 0;
  let refill = false;
  let lastReply = performance.now();

  const frame = (i: number): string => {
    const { node, state } = eventAt(i, o.nodes);
    return `{"op":"event","id":${i},"event":{"objtype":"TBNODESTATE","objname":"pc${node + 1}","eventtype":"${state}"}}`;
  };
  const fill = (): void => {
    refill = false;
    socket.cork();
    while (sent < o.events && sent - acked < o.window) ws.send(frame(sent++));
    socket.uncork();
  };

  return new Promise((resolve, reject) => {
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const stall = setInterval(() => {
      if (performance.now() - lastReply > STALL_MS) done(new Error(`no reply for ${STALL_MS} ms (${acked}/${o.events} acknowledged)`));
    }, 1000);
    const onClose = (code: number): void => done(new Error(`connection closed (${code}) after ${acked}/${o.events} acknowledgements`));
    const onMessage = (data: WebSocket.RawData): void => {
      const m = JSON.parse(String(data)) as { re?: unknown; ok?: unknown; seq?: unknown; error?: unknown };
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
