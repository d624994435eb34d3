/**
 * Outgoing WebSocket text frames, many at once. A batch acknowledges up to
 * 1,000 events per connection; through ws's sender each reply is a header
 * chunk and a payload chunk, and flushing 2,000 chunks through writev was a
 * tenth of the event path's time (bench/run.ts). Here a connection's frames
 * are laid end to end in one buffer: one write.
 *
 * Server frames are never masked (RFC 6455 §5.1); a frame is FIN + opcode 1,
 * then the payload length in 7 bits, or 126 + 16 bits, or 127 + 64 bits.
 */

/** Text frames queued for one socket; flush() writes them as one buffer. */
export class FrameQueue {
  private texts: string[] = [];
  private lengths: number[] = [];
  private bytes = 0;

  /** Bytes queued, frame headers included. */
  get size(): number {
    return this.bytes;
  }

  get empty(): boolean {
    return this.texts.length === 0;
  }

  push(text: string): void {
    const n = Buffer.byteLength(text);
    this.texts.push(text);
    this.lengths.push(n);
    this.bytes += headerSize(n) + n;
  }

  /** Every queued frame in one buffer, and the queue emptied. */
  take(): Buffer {
    const out = Buffer.allocUnsafe(this.bytes);
    let at = 0;
    for (let i = 0; i < this.texts.length; i++) {
      const n = this.lengths[i]!;
      out[at++] = 0x81;
      if (n < 126) {
        out[at++] = n;
      } else if (n < 65536) {
        out[at++] = 126;
        out.writeUInt16BE(n, at);
        at += 2;
      } else {
        out[at++] = 127;
        out.writeBigUInt64BE(BigInt(n), at);
        at += 8;
      }
      at += out.write(this.texts[i]!, at, 'utf8');
    }
    this.texts = [];
    this.lengths = [];
    this.bytes = 0;
    return out;
  }
}

function headerSize(n: number): number {
  return n < 126 ? 2 : n < 65536 ? 4 : 10;
}
