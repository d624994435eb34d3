/**
 * A connection to the daemon's WebSocket that survives the daemon: requests
 * get their reply by id; pushes go to listeners; after a drop it reconnects
 * with backoff and tells its owners, who re-attach what they had.
 */
import WebSocket from 'ws';
import { StatedError, type ErrorCode } from '../errors.ts';

export interface ConnectionOptions {
  url: string;
  token?: string | undefined;
  /** Reconnect after a drop (default true). */
  reconnect?: boolean;
  /** Give up a first connect after this long, ms. */
  connectTimeoutMs?: number;
}

export type Push = { type: string } & Record<string, unknown>;

interface Pending {
  msg: Record<string, unknown>;
  resolve: (v: Record<string, unknown>) => void;
  reject: (e: unknown) => void;
  /** Safe to send again after a reconnect (reads, attach, idempotent sends). */
  retry: boolean;
}

export class Connection {
  private ws: WebSocket | null = null;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  /** Retryable requests waiting for the next successful reconnect. */
  private readonly backlog: Pending[] = [];
  private readonly pushListeners = new Set<(p: Push) => void>();
  private readonly reconnectListeners = new Set<() => void>();
  private readonly dropListeners = new Set<(code: number, reason: string) => void>();
  private closedByUser = false;
  private opening: Promise<void> | null = null;

  constructor(readonly opts: ConnectionOptions) {}

  /** Opens the socket (once; later calls share it). */
  connect(): Promise<void> {
    this.opening ??= this.open(this.opts.connectTimeoutMs ?? 5000).catch((err) => {
      this.opening = null;
      throw err;
    });
    return this.opening;
  }

  private open(timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const url = `${this.opts.url.replace(/\/+$/, '')}/v1/ws`;
      const headers: Record<string, string> = this.opts.token ? { authorization: `Bearer ${this.opts.token}` } : {};
      const ws = new WebSocket(url, { headers, handshakeTimeout: timeoutMs, maxPayload: 64 * 1024 * 1024 });
      let settled = false;
      let opened = false;
      ws.on('unexpected-response', (_req, res) => {
        let body = '';
        res.on('data', (c: Buffer) => { body += c.toString(); });
        res.on('end', () => {
          settled = true;
          let code: ErrorCode = 'E_CONNECT';
          let message = `HTTP ${res.statusCode}`;
          try {
            const e = JSON.parse(body).error;
            code = e.code;
            message = e.message;
          } catch { /* not ours: keep the status */ }
          reject(new StatedError(code, message));
          ws.terminate();
        });
      });
      ws.on('open', () => {
        settled = true;
        opened = true;
        this.ws = ws;
        resolve();
      });
      ws.on('message', (data) => this.onMessage(data.toString()));
      ws.on('error', (err) => {
        if (!settled) {
          settled = true;
          reject(new StatedError('E_CONNECT', `cannot reach ${this.opts.url}: ${err.message}`));
        }
      });
      ws.on('close', (code, reason) => {
        if (this.ws === ws) this.ws = null;
        // Only a socket that was open can drop; a failed attempt already rejected
        // its open(), and reconnect() retries it. Else every failed attempt starts
        // one more reconnect loop, and the loops open sockets side by side.
        if (opened && !this.closedByUser) this.dropped(code, reason.toString());
      });
    });
  }

  private onMessage(text: string): void {
    let m: Record<string, unknown>;
    try {
      m = JSON.parse(text);
    } catch {
      return;
    }
    if ('re' in m && typeof m.re === 'number') {
      const p = this.pending.get(m.re);
      if (!p) return;
      this.pending.delete(m.re);
      if (m.ok) p.resolve(m);
      else {
        const e = (m.error ?? {}) as { code?: ErrorCode; message?: string; detail?: unknown };
        p.reject(new StatedError(e.code ?? 'E_INTERNAL', e.message, e.detail));
      }
      return;
    }
    if (typeof m.type === 'string') for (const fn of this.pushListeners) fn(m as Push);
  }

  /** The socket dropped: fail what cannot be resent, reconnect, resend the rest. */
  private dropped(code: number, reason: string): void {
    for (const fn of this.dropListeners) fn(code, reason);
    for (const [id, p] of this.pending) {
      this.pending.delete(id);
      if (p.retry && this.opts.reconnect !== false) this.backlog.push(p);
      else p.reject(new StatedError('E_CONNECT', `connection closed (${code} ${reason}) before the reply`));
    }
    if (this.opts.reconnect === false) {
      this.opening = null;
      return;
    }
    // connect() callers wait for this loop rather than opening a socket of their own.
    const loop = this.reconnect();
    loop.catch(() => {}); // ends only by close(); callers see their own rejections
    this.opening = loop;
  }

  private async reconnect(): Promise<void> {
    let delay = 100;
    for (;;) {
      if (this.closedByUser) throw new StatedError('E_CONNECT', 'connection closed');
      try {
        await this.open(5000);
        break;
      } catch {
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, 2000);
      }
    }
    for (const fn of this.reconnectListeners) fn();
    for (const p of this.backlog.splice(0)) this.send(p);
  }

  private send(p: Pending): void {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) {
      // Not open: a retryable request waits for the reconnect, the rest fail now.
      if (p.retry && !this.closedByUser && this.opts.reconnect !== false) this.backlog.push(p);
      else p.reject(new StatedError('E_CONNECT', 'not connected'));
      return;
    }
    const id = this.nextId++;
    this.pending.set(id, p);
    this.ws.send(JSON.stringify({ ...p.msg, id }));
  }

  /** Sends a request and resolves with its reply (without re/ok). */
  async request<T = Record<string, unknown>>(op: string, fields: Record<string, unknown> = {}, opts: { retry?: boolean } = {}): Promise<T> {
    await this.connect();
    return new Promise<T>((resolve, reject) => {
      this.send({
        msg: { op, ...fields },
        resolve: (m) => {
          const { re: _re, ok: _ok, ...rest } = m;
          resolve(rest as T);
        },
        reject,
        retry: opts.retry ?? false,
      });
    });
  }

  onPush(fn: (p: Push) => void): () => void {
    this.pushListeners.add(fn);
    return () => this.pushListeners.delete(fn);
  }

  /** Called when an open connection drops (before reconnecting), with the close code and reason. */
  onDrop(fn: (code: number, reason: string) => void): () => void {
    this.dropListeners.add(fn);
    return () => this.dropListeners.delete(fn);
  }

  /** Called after every successful reconnect, before resent requests go out. */
  onReconnect(fn: () => void): () => void {
    this.reconnectListeners.add(fn);
    return () => this.reconnectListeners.delete(fn);
  }

  close(): void {
    this.closedByUser = true;
    for (const [id, p] of this.pending) {
      this.pending.delete(id);
      p.reject(new StatedError('E_CONNECT', 'connection closed'));
    }
    for (const p of this.backlog.splice(0)) p.reject(new StatedError('E_CONNECT', 'connection closed'));
    this.ws?.close(1000, 'bye');
    this.ws = null;
  }
}
