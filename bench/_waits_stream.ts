/**
 * The sender of the wait benchmark: TBNODESTATE events over one WebSocket,
 * paced at a fixed rate (open loop: it does not wait for replies), every node
 * stepping through NORMALv2's boot cycle in a rotation. Because it also
 * tracks which nodes open waits watch (_waits_fleet.ts), it knows which
 * event completes a wait's node (for SHUTDOWN,ISUP: the first ISUP after a
 * SHUTDOWN after the wait opened) and when that event was written. A node
 * whose wait it completes is then held in that state for `holdMs`, so that
 * a poller of the node table sees it (the old way only worked for
 * long-lived states).
 */
import { performance } from 'node:perf_hooks';
import type WebSocket from 'ws';
import { BOOT_CYCLE } from './_events.ts';
import { ARMED, BUSY, FREE, type Fleet, epochNow, nodeName } from './_waits_fleet.ts';

/** The sender's timer period, ms; each tick sends what the schedule owes. */
const TICK_MS = 1;
/** At most this much of the schedule is sent in one burst; beyond it the schedule slips. */
const MAX_BURST_MS = 5;
const STALL_MS = 30_000;

/** An event that completes a wait's node, as sent. */
export interface Completion {
  node: number;
  /** Index of the event in the stream (see Stream.seqOf). */
  event: number;
  /** performance.now() right after the burst holding it was written to the socket. */
  sentAt: number;
}

export interface StreamOptions {
  rate: number;
  durationMs: number;
  holdMs: number;
  /** The states every wait waits for, in order (SPEC §3). */
  states: string[];
}

export class Stream {
  sent = 0;
  acked = 0;
  /** Slots with no node to send to (all held), and times the schedule slipped. */
  idle = 0;
  slips = 0;
  maxInFlight = 0;
  readonly sentAt: Float64Array;
  readonly ackAt: Float64Array;
  readonly seqOf: Float64Array;
  /** The node each event went to, and each node's latest event (for releasing BUSY on its reply). */
  private readonly nodeOf: Int32Array;
  private readonly lastEvent: Int32Array;
  readonly completions: Completion[] = [];
  /** performance.now() when run() started. */
  startedAt = 0;
  private cursor = 0;

  constructor(private readonly ws: WebSocket, private readonly fleet: Fleet, private readonly o: StreamOptions) {
    const capacity = Math.ceil((o.rate * o.durationMs) / 1000) + 1;
    this.sentAt = new Float64Array(capacity);
    this.ackAt = new Float64Array(capacity);
    this.seqOf = new Float64Array(capacity).fill(-1);
    this.nodeOf = new Int32Array(capacity);
    this.lastEvent = new Int32Array(fleet.size).fill(-1);
  }

  /** The next node in the rotation that is not held and that no waiter is registering (claimed BUSY if FREE), or -1. */
  private nextNode(epoch: number): number {
    const f = this.fleet;
    for (let k = 0; k < f.size; k++) {
      const j = this.cursor;
      this.cursor = (this.cursor + 1) % f.size;
      if (f.heldUntil[j]! > epoch) continue;
      const w = Atomics.load(f.watch, j);
      if (w === BUSY || w === ARMED) return j;
      if (w === FREE && Atomics.compareExchange(f.watch, j, FREE, BUSY) === FREE) return j;
    }
    return -1;
  }

  /** The frame for node j's next step; records a completion when it is one. */
  private step(j: number, i: number, epoch: number): string {
    const f = this.fleet;
    const st = (f.pos[j]! + 1) % BOOT_CYCLE.length;
    const state = BOOT_CYCLE[st]!;
    f.pos[j] = st;
    // SPEC §3: in order, not necessarily consecutively. ARMED is set after the
    // wait's reply, so every event sent from then on counts for it.
    if (Atomics.load(f.watch, j) === ARMED && this.o.states[f.passed[j]!] === state && ++f.passed[j]! === this.o.states.length) {
      this.completions.push({ node: j, event: i, sentAt: 0 });
      f.heldUntil[j] = epoch + this.o.holdMs;
      Atomics.store(f.watch, j, BUSY);
    }
    this.nodeOf[i] = j;
    this.lastEvent[j] = i;
    return `{"op":"event","id":${i},"event":{"objtype":"TBNODESTATE","objname":"${nodeName(j)}","eventtype":"${state}"}}`;
  }

  /** Streams for durationMs; resolves once every event sent is acknowledged. */
  run(): Promise<void> {
    const { rate, durationMs } = this.o;
    const total = this.sentAt.length - 1;
    const socket = (this.ws as unknown as { _socket: { cork(): void; uncork(): void } })._socket;
    const maxBurst = Math.max(1, Math.round((rate * MAX_BURST_MS) / 1000));
    let t0 = performance.now();
    let lastReply = t0;
    let ended = false;

    return new Promise((resolve, reject) => {
      const tick = (): void => {
        const now = performance.now(), epoch = epochNow();
        if (now - this.startedAt >= durationMs) ended = true;
        if (this.sent - this.acked > 0 && now - lastReply > STALL_MS) return finish(new Error(`no reply for ${STALL_MS} ms`));
        let owed = Math.min(total, Math.floor(((now - t0) * rate) / 1000)) - this.sent;
        if (owed > maxBurst) {
          // Behind (this process or the machine stalled): send a burst's worth, move the schedule.
          t0 += ((owed - maxBurst) * 1000) / rate;
          owed = maxBurst;
          this.slips++;
        }
        if (owed <= 0 || ended) return check();
        const first = this.sent, firstDone = this.completions.length;
        socket.cork();
        for (let n = 0; n < owed; n++) {
          const j = this.nextNode(epoch);
          if (j < 0) {
            // Every node is held or being registered: the rest of this burst has nothing to send.
            this.idle += owed - n;
            break;
          }
          this.ws.send(this.step(j, this.sent, epoch));
          this.sent++;
        }
        socket.uncork();
        const at = performance.now();
        this.sentAt.fill(at, first, this.sent);
        for (let c = firstDone; c < this.completions.length; c++) this.completions[c]!.sentAt = at;
        this.maxInFlight = Math.max(this.maxInFlight, this.sent - this.acked);
      };
      const check = (): void => {
        if (ended && this.acked === this.sent) finish();
      };
      const onMessage = (data: WebSocket.RawData): void => {
        const at = performance.now();
        const m = JSON.parse(String(data)) as { re?: unknown; ok?: unknown; seq?: unknown; error?: unknown };
        if (typeof m.re !== 'number') return;
        if (m.ok !== true) return finish(new Error(`event ${m.re} refused: ${JSON.stringify(m.error)}`));
        if (typeof m.seq !== 'number' || this.seqOf[m.re] !== -1) return finish(new Error(`bad reply ${String(data)}`));
        this.seqOf[m.re] = m.seq;
        this.ackAt[m.re] = at;
        const j = this.nodeOf[m.re]!;
        // Nothing of this node in flight any more: a wait may start on it.
        if (this.lastEvent[j] === m.re) Atomics.compareExchange(this.fleet.watch, j, BUSY, FREE);
        this.acked++;
        lastReply = at;
        check();
      };
      const onClose = (code: number): void => finish(new Error(`sender connection closed (${code})`));
      const timer = setInterval(tick, TICK_MS);
      let finished = false;
      const finish = (err?: Error): void => {
        if (finished) return;
        finished = true;
        clearInterval(timer);
        this.ws.off('message', onMessage);
        this.ws.off('close', onClose);
        if (err) reject(err);
        else resolve();
      };
      this.ws.on('message', onMessage);
      this.ws.on('close', onClose);
      t0 = this.startedAt = performance.now();
    });
  }
}
