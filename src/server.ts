/**
 * The one port (SPEC §3): HTTP routes and the WebSocket upgrade. Framing,
 * size limits and authentication happen here; everything else is handed to
 * the session or the core.
 */
import type { Server as NetServer } from 'node:net';
import { type IncomingMessage, type ServerResponse, createServer, type Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { type Actor, authorizeEvent, authorizeOperator, canSee } from './auth.ts';
import { StatedError, asStatedError } from './errors.ts';
import { FrameQueue } from './frames.ts';
import type { Peer } from './hub.ts';
import { MAX_MESSAGE_BYTES, parseEvents } from './protocol.ts';
import type { PageResponse } from './dashboard/page.ts';
import { type Services, Session, listWaits } from './session.ts';
import type { StatsReport } from './stats.ts';
import type { NodeState } from './types.ts';
import { nodeView } from './views.ts';

export interface ServerExtras {
  metrics: () => string;
  /** The boot statistics from `since` (ms) on (GET /v1/stats). */
  stats?: (since: number) => StatsReport;
  /** GET /: the page for an accepted token, else the token form (401, no data). */
  dashboard?: (authorized: boolean) => PageResponse;
}

function tokenOf(req: IncomingMessage): string | null {
  const h = req.headers.authorization;
  if (h && h.startsWith('Bearer ')) return h.slice(7).trim();
  const q = new URL(req.url ?? '/', 'http://x').searchParams.get('token');
  return q;
}

/**
 * SPEC §3: a WebSocket upgrade carrying an Origin other than the daemon's own
 * is refused, so a page elsewhere cannot use an operator's browser (and a
 * token it got hold of there) to drive the daemon. Own = the scheme, host and
 * port the browser sent the request to: http and the Host header, or what a
 * TLS proxy in front says in X-Forwarded-Proto/-Host (a page cannot set
 * headers on a WebSocket, so only the proxy can). Clients that are not
 * browsers send no Origin.
 */
function foreignOrigin(req: IncomingMessage): string | null {
  const origin = req.headers.origin;
  if (origin === undefined) return null;
  const first = (h: string | string[] | undefined): string | undefined => (Array.isArray(h) ? h[0] : h)?.split(',')[0]?.trim();
  const proto = first(req.headers['x-forwarded-proto']) === 'https' ? 'https' : 'http';
  try {
    const own = new URL(`${proto}://${first(req.headers['x-forwarded-host']) ?? req.headers.host ?? ''}`).origin;
    return new URL(origin).origin === own ? null : origin;
  } catch {
    return origin; // "null" (a sandboxed or file: page), or no Host: not ours either
  }
}

function sendPage(res: ServerResponse, page: PageResponse): void {
  res.writeHead(page.status, { ...page.headers, 'content-length': Buffer.byteLength(page.body) });
  res.end(page.body);
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** Resolves when the response can take more, or is gone. */
function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

/** Nodes serialized per event-loop turn in a long listing (~0.5 ms of JSON.stringify each). */
const NODES_PER_SLICE = 250;

/**
 * Sends `{"seq":N,"nodes":[...]}` a slice of nodes per event-loop turn. The
 * list is a snapshot taken at once (a NodeState is replaced on change, never
 * mutated), so the body is as consistent as one JSON.stringify; but 10,000
 * nodes are ~3 MB and ~30 ms of stringify, and in one go that held every
 * commit, acknowledgement and wait push behind it (bench/waits.ts).
 */
async function sendNodes(res: ServerResponse, seq: number, nodes: readonly NodeState[], waiting?: { has(node: string): boolean }): Promise<void> {
  res.writeHead(200, { 'content-type': 'application/json' });
  let body = `{"seq":${seq},"nodes":[`;
  for (let i = 0; i < nodes.length; i += NODES_PER_SLICE) {
    body += (i > 0 ? ',' : '') + nodes.slice(i, i + NODES_PER_SLICE).map((n) => JSON.stringify(nodeView(n, waiting))).join(',');
    const more = i + NODES_PER_SLICE < nodes.length;
    if (!more) break;
    if (!res.write(body)) await drained(res);
    body = '';
    if (res.destroyed) return;
    await new Promise((r) => setImmediate(r));
  }
  res.end(`${body}]}`);
}

function sendError(res: ServerResponse, err: unknown): void {
  const e = asStatedError(err);
  sendJson(res, e.status, { error: e.toJSON() });
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const tooLarge = (): StatedError => new StatedError('E_TOO_LARGE', `body over ${MAX_MESSAGE_BYTES} bytes`);
    req.on('data', (c: Buffer) => {
      size += c.length;
      // Past the limit the rest is read and dropped, so the 413 goes out after the body and is not lost to the
      // TCP reset that closing on unread data sends; past 16x the client is not worth the bandwidth.
      if (size > 16 * MAX_MESSAGE_BYTES) req.destroy();
      else if (size <= MAX_MESSAGE_BYTES) chunks.push(c);
    });
    req.on('end', () => (size > MAX_MESSAGE_BYTES ? reject(tooLarge()) : resolve(Buffer.concat(chunks).toString('utf8'))));
    req.on('close', () => reject(tooLarge())); // destroyed: settles the promise (a no-op once settled)
    req.on('error', reject);
  });
}

/** The default window of GET /v1/stats: the last 24 hours. */
const STATS_WINDOW_MS = 86_400_000;

/** `?since=` as epoch ms; absent means the last 24 hours. */
function statsSince(q: string | null): number {
  if (q === null) return Date.now() - STATS_WINDOW_MS;
  if (!/^\d{1,16}$/.test(q)) throw new StatedError('E_BAD_REQUEST', `since: expected epoch milliseconds, got ${JSON.stringify(q.slice(0, 40))}`);
  return Number(q);
}

const CLOSE_GRACE_MS = 1000;

/** Queued reply and push bytes written at once (well under the smallest subscriberBuffer, 64 KiB). */
const FLUSH_BYTES = 16 * 1024;

export class StatedServer {
  readonly http: Server;
  private readonly wss: WebSocketServer;
  readonly sessions = new Set<{ session: Session; ws: WebSocket; peer: Peer }>();

  constructor(private readonly svc: Services, private readonly extras: ServerExtras) {
    // headersTimeout is only enforced when the server checks its connections: every 30 s by default, so a
    // slowloris socket lived up to 40 s. Checking every second holds it to the 10 s set below.
    this.http = createServer({ connectionsCheckingInterval: 1_000 }, (req, res) => void this.route(req, res));
    // Slow senders (slowloris) are cut off rather than holding sockets forever.
    this.http.headersTimeout = 10_000;
    this.http.requestTimeout = 30_000;
    this.http.keepAliveTimeout = 5_000;
    this.wss = new WebSocketServer({ noServer: true, maxPayload: MAX_MESSAGE_BYTES, perMessageDeflate: false });
    this.http.on('upgrade', (req, socket, head) => this.upgrade(req, socket, head));
  }

  /** Listens on host:port, or on a socket already bound there (handle), so a port in use was known earlier. */
  listen(host: string, port: number, handle?: NetServer): Promise<{ host: string; port: number }> {
    return new Promise((resolve, reject) => {
      this.http.once('error', reject);
      const ready = (): void => {
        const a = this.http.address();
        if (a && typeof a === 'object') resolve({ host: a.address, port: a.port });
      };
      if (handle) this.http.listen(handle, ready);
      else this.http.listen(port, host, ready);
    });
  }

  /**
   * Stops accepting, closes every connection. A WebSocket peer that does not
   * answer the close within CLOSE_GRACE_MS (a stopped client, a half-open
   * link) is cut, rather than holding the stop for ws's 30 s.
   */
  close(): Promise<void> {
    for (const { peer } of this.sessions) peer.close(1001, 'server shutting down');
    const grace = setTimeout(() => {
      for (const { ws } of this.sessions) ws.terminate();
    }, CLOSE_GRACE_MS);
    return new Promise<void>((resolve) => {
      this.http.close(() => resolve());
      this.http.closeAllConnections();
    }).finally(() => clearTimeout(grace));
  }

  /** Closes connections whose token was revoked. */
  closeRevoked(): void {
    for (const { session, peer } of this.sessions) {
      if (!this.svc.auth.isLive(session.actor)) peer.close(4001, 'E_UNAUTHORIZED: token revoked');
    }
  }

  private upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    let actor: Actor;
    try {
      // Authenticated first, as on HTTP: without a token every path is 401, whether it exists or not.
      actor = this.svc.auth.authenticate(tokenOf(req));
      const foreign = foreignOrigin(req);
      if (foreign !== null) throw new StatedError('E_FORBIDDEN', `a WebSocket from origin ${foreign.slice(0, 200)} is refused: not this daemon's own`);
      if (path !== '/v1/ws') throw new StatedError('E_NOT_FOUND', `no WebSocket at ${path}`);
    } catch (err) {
      const e = asStatedError(err);
      const body = JSON.stringify({ error: e.toJSON() });
      socket.end(`HTTP/1.1 ${e.status} ${e.code}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.connect(ws, actor, socket));
  }

  private connect(ws: WebSocket, actor: Actor, socket: Duplex): void {
    // Replies and pushes are queued and written as one buffer once the batch's
    // promise continuations have all run (a nextTick queued from a microtask
    // runs after the microtask queue drains), or at FLUSH_BYTES, so that
    // bufferedAmount still measures what the peer has not read (the hub drops
    // slow subscribers by it). Whole frames only, so ws's own writes (pong,
    // close) can never land inside one of ours; and ws's sender never holds a
    // frame back to write later (it would only while compressing, and
    // perMessageDeflate is off), so ours cannot overtake one of its.
    const frames = new FrameQueue();
    const flush = (): void => {
      if (frames.empty) return;
      const buf = frames.take();
      if (ws.readyState === ws.OPEN && !socket.destroyed) socket.write(buf);
    };
    const peer: Peer = {
      send: (text) => {
        if (ws.readyState !== ws.OPEN) return;
        if (frames.empty) process.nextTick(flush);
        frames.push(text);
        if (frames.size >= FLUSH_BYTES) flush();
      },
      buffered: () => ws.bufferedAmount + frames.size,
      close: (code, reason) => {
        flush();
        ws.close(code, reason.slice(0, 120));
      },
    };
    const session = new Session(this.svc, actor, peer);
    const entry = { session, ws, peer };
    this.sessions.add(entry);
    ws.on('message', (data, isBinary) => {
      if (isBinary) {
        peer.send(JSON.stringify({ re: null, ok: false, error: { code: 'E_BAD_REQUEST', message: 'binary frames are not accepted; send JSON text' } }));
        return;
      }
      try {
        session.onMessage(data.toString());
      } catch (err) {
        // A reply that could not even be sent: log it and drop this connection, never the process.
        this.svc.log(`stated: internal error: ${(err as Error).stack ?? String(err)}`);
        peer.close(1011, 'E_INTERNAL');
      }
    });
    // A protocol error (1009 too big, 1007 bad UTF-8) has already sent its close
    // frame: give the peer a moment to read it (cutting at once can turn it into
    // a reset, 1006, on a busy host), then cut whatever is left.
    ws.on('error', () => {
      const cut = setTimeout(() => ws.terminate(), 2000);
      cut.unref();
      ws.once('close', () => clearTimeout(cut));
    });
    ws.on('close', () => {
      this.sessions.delete(entry);
      session.close();
    });
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const url = new URL(req.url ?? '/', 'http://x');
      const path = url.pathname;
      if (path === '/healthz' && req.method === 'GET') {
        sendJson(res, 200, { ok: true, seq: this.svc.core.committedSeq });
        return;
      }
      const actor = this.svc.auth.authenticate(tokenOf(req));
      // SPEC §5: a node token may only send TBNODESTATE for its own node; it reads nothing.
      if (actor.role === 'node' && !(path === '/v1/events' && req.method === 'POST')) {
        throw new StatedError('E_FORBIDDEN', 'a node token may only send its own node state');
      }
      const { core } = this.svc;
      if (path === '/v1/events' && req.method === 'POST') {
        const text = await readBody(req);
        let body: unknown;
        try {
          body = JSON.parse(text);
        } catch {
          throw new StatedError('E_BAD_REQUEST', 'body is not JSON');
        }
        const events = parseEvents(body);
        for (const e of events) authorizeEvent(actor, e, core.nodes);
        // All or nothing (SPEC §3): every node is checked before any event applies.
        const results = await core.run((c) => {
          for (const e of events) c.checkEvent(e);
          return events.map((e) => c.applyEvent(e, false, actor));
        }, { checksFirst: true });
        sendJson(res, 200, { accepted: results.map((r) => ({ seq: r.seq, duplicate: r.duplicate, ...(r.nodes ? { nodes: r.nodes } : {}), ...(r.refusals ? { refusals: r.refusals } : {}) })) });
        return;
      }
      if (req.method !== 'GET') throw new StatedError('E_NOT_FOUND', `no route ${req.method} ${path}`);
      if (path === '/v1/audit') {
        authorizeOperator(actor);
        const limit = Math.min(Math.max(Number(url.searchParams.get('limit') ?? 100) || 100, 1), 10_000);
        sendJson(res, 200, { records: core.store.auditList(Math.max(Number(url.searchParams.get('after') ?? 0) || 0, 0), limit) });
        return;
      }
      if (path === '/metrics') {
        authorizeOperator(actor); // fleet-wide counts: operators' business (SPEC §5)
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
        res.end(this.extras.metrics());
        return;
      }
      if (path === '/v1/stats' && this.extras.stats) {
        authorizeOperator(actor); // fleet-wide figures, as /metrics (README: Statistics)
        sendJson(res, 200, this.extras.stats(statsSince(url.searchParams.get('since'))));
        return;
      }
      if (path === '/' && this.extras.dashboard) {
        sendPage(res, this.extras.dashboard(true));
        return;
      }
      if (path === '/v1/waits') {
        sendJson(res, 200, { waits: await listWaits(core, actor) });
        return;
      }
      if (path === '/v1/nodes') {
        // Committed state only (Core.read); node objects are replaced, never changed, so the list stays a snapshot.
        const [seq, list] = await core.read((c) => [c.seq, [...c.nodes.values()].filter((n) => canSee(actor, n))] as const);
        await sendNodes(res, seq, list, this.svc.agents?.waitingNodes);
        return;
      }
      const m = /^\/v1\/nodes\/([^/]+)(\/history)?$/.exec(path);
      if (m) {
        const id = decodeURIComponent(m[1]!);
        const limit = Math.min(Math.max(Number(url.searchParams.get('limit') ?? 100) || 100, 1), 10_000);
        // Inside the read: only there do the store's chain heads match the disk (none in flight).
        const { n, events } = await core.read((c) => {
          const node = c.nodes.get(id);
          return { n: node, events: node && m[2] && canSee(actor, node) ? c.store.history(id, limit) : [] };
        });
        if (!n) throw new StatedError('E_UNKNOWN_NODE', `unknown node ${id}`);
        if (!canSee(actor, n)) throw new StatedError('E_FORBIDDEN', `node ${id} is not yours to see`);
        sendJson(res, 200, m[2] ? { node: id, events } : nodeView(n, this.svc.agents?.waitingNodes));
        return;
      }
      throw new StatedError('E_NOT_FOUND', `no route GET ${path}`);
    } catch (err) {
      if (asStatedError(err).code === 'E_INTERNAL') this.svc.log(`stated: internal error: ${(err as Error).stack}`);
      if (asStatedError(err).code === 'E_TOO_LARGE') res.setHeader('connection', 'close');
      if (res.headersSent) return;
      // A browser sent to / without a token gets a form asking for one (and no data); API clients get JSON.
      const dashboard = this.extras.dashboard;
      const browser = /\btext\/html\b/.test(req.headers.accept ?? '');
      if (dashboard && browser && asStatedError(err).code === 'E_UNAUTHORIZED' && req.method === 'GET' && (req.url ?? '').split('?')[0] === '/') sendPage(res, dashboard(false));
      else sendError(res, err);
    }
  }
}
