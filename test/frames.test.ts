// Outgoing text frames laid end to end (frames.ts), read back by ws's own
// client-side parser: every length form of RFC 6455 §5.2 and multi-byte UTF-8.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as ws from 'ws';
import { FrameQueue } from '../src/frames.ts';

// ws exports its frame parser at run time; @types/ws does not declare it.
interface FrameParser {
  on(ev: 'message', fn: (data: Buffer, isBinary: boolean) => void): void;
  on(ev: 'error', fn: (err: Error) => void): void;
  write(chunk: Buffer, cb: () => void): void;
}
const Receiver = (ws as unknown as { Receiver: new (o: object) => FrameParser }).Receiver;

function parse(buf: Buffer): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const got: string[] = [];
    const r = new Receiver({ isServer: false, maxPayload: 0 });
    r.on('message', (data: Buffer, isBinary: boolean) => {
      if (isBinary) reject(new Error('a binary frame'));
      got.push(data.toString());
    });
    r.on('error', reject);
    r.write(buf, () => resolve(got));
  });
}

test('queued frames parse back as the same messages, in order, for every length form', async () => {
  const texts = ['', 'a', 'x'.repeat(125), 'x'.repeat(126), 'é'.repeat(100), 'y'.repeat(65_535), 'z'.repeat(65_536), '{"re":1,"ok":true}', '✓ nœud'];
  const q = new FrameQueue();
  for (const t of texts) q.push(t);
  const size = q.size;
  const buf = q.take();
  assert.equal(buf.length, size, 'size counts headers and UTF-8 bytes');
  assert.ok(q.empty);
  assert.equal(q.size, 0);
  assert.deepEqual(await parse(buf), texts);
  // Headers: 7-bit for <126, 126+16 bits up to 65,535, 127+64 bits beyond.
  assert.deepEqual([...buf.subarray(0, 2)], [0x81, 0]);
});
