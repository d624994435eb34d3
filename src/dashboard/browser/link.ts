/**
 * The WebSocket to the daemon: requests with replies matched by id, pushes
 * handed on, and reconnection after a drop (backing off 0.25 s doubling to
 * 5 s, until the caller says a connection worked). What to do on each (re)connection — subscribe again from the last
 * seq — is the caller's, in `opened`. A link that says nothing for three
 * heartbeat intervals (the daemon sends one to an idle subscription) is taken
 * for dead and reconnected.
 */

export interface Push { type: string; [k: string]: unknown }

export interface LinkHandlers {
  opened(): void;
  push(m: Push): void;
  /** The connection ended (`opened` says whether it ever opened). */
  closed(code: number, reason: string, opened: boolean): void;
}

export class RequestError extends Error {
  constructor(readonly code: string, message: string) {
    super(`${code}: ${message}`);
  }
}

export class Link {
  private ws: WebSocket | null = null;
  private readonly pending = new Map<number, { resolve: (m: any) => void; reject: (e: Error) => void }>();
  private nextId = 1;
  private failures = 0;
  private stopped = false;
  private heard = 0;
  private watchdog: number | undefined;
  private retryTimer: number | undefined;

  constructor(private readonly url: string, private readonly silentMs: number, private readonly h: LinkHandlers) {}

  start(): void {
    this.stopped = false;
    this.connect();
    this.watchdog = window.setInterval(() => {
      if (this.ws?.readyState === WebSocket.OPEN && Date.now() - this.heard > this.silentMs) this.ws.close(4000, 'silent');
    }, Math.max(1000, this.silentMs / 3));
  }

  /** Ends the link for good (e.g. the token was refused). */
  stop(): void {
    this.stopped = true;
    window.clearInterval(this.watchdog);
    window.clearTimeout(this.retryTimer);
    this.ws?.close();
  }

  /** The connection does what the caller needs (it subscribed): the next drop backs off from the start. */
  settled(): void {
    this.failures = 0;
  }

  /** Closes this connection; the link reconnects as after any drop, backing off further. */
  drop(): void {
    this.ws?.close(4000, 'starting over');
  }

  get open(): boolean {
    return this.ws?.readyState === WebSocket.OPEN;
  }

  private connect(): void {
    const ws = new WebSocket(this.url);
    this.ws = ws;
    let wasOpen = false;
    ws.onopen = () => {
      wasOpen = true;
      this.heard = Date.now();
      this.h.opened();
    };
    ws.onmessage = (ev: MessageEvent) => {
      this.heard = Date.now();
      const m = JSON.parse(String(ev.data)) as Record<string, unknown>;
      if ('re' in m) {
        const p = this.pending.get(m.re as number);
        if (!p) return;
        this.pending.delete(m.re as number);
        if (m.ok) p.resolve(m);
        else {
          const e = m.error as { code: string; message: string };
          p.reject(new RequestError(e.code, e.message));
        }
      } else this.h.push(m as Push);
    };
    ws.onclose = (ev: CloseEvent) => {
      if (this.ws !== ws) return;
      this.ws = null;
      for (const p of this.pending.values()) p.reject(new RequestError('E_CLOSED', 'the connection closed before the reply'));
      this.pending.clear();
      this.h.closed(ev.code, ev.reason, wasOpen);
      if (this.stopped) return;
      const delay = Math.min(5000, 250 * 2 ** this.failures++) * (0.8 + Math.random() * 0.4);
      this.retryTimer = window.setTimeout(() => this.connect(), delay);
    };
  }

  /** Sends `{op, id, ...fields}`; resolves with the reply, rejects with its error. */
  request(op: string, fields: Record<string, unknown> = {}): Promise<any> {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return Promise.reject(new RequestError('E_CLOSED', 'not connected'));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      ws.send(JSON.stringify({ op, id, ...fields }));
    });
  }
}
