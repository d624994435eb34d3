// The writer thread (writer.ts, writer-worker.ts): recorded batches commit in
// order on a second connection; after a failed batch the ones already sent
// behind it are refused unapplied, and what is written after the failure is
// reported lands again (SPEC §5: nothing acknowledged is lost, nothing built
// on a lost batch lands).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { Store } from '../src/store.ts';
import { ThreadWriter } from '../src/writer.ts';
import type { Ops } from '../src/writes.ts';
import { tempDir } from './helpers/fake.ts';

const ev = (node: string, state: string) => ({ objtype: 'TBNODESTATE', objname: node, eventtype: state });

/** Records one batch of events seq from..to on `store` (nothing is applied). */
function batchOf(store: Store, seqs: number[]): Ops {
  store.record();
  for (const seq of seqs) store.insertEvent(seq, 1000 + seq, ev('pc1', `S${seq}`));
  return store.takeBatch().ops;
}

function write(w: ThreadWriter, ops: Ops): Promise<Error | null> {
  return new Promise((resolve) => w.write(ops, resolve));
}

function setup(): { store: Store; writer: ThreadWriter; fatal: Error[] } {
  const store = new Store(path.join(tempDir(), 'stated.db'));
  const fatal: Error[] = [];
  const writer = new ThreadWriter(store.db.name, { onFatal: (err) => fatal.push(err) });
  return { store, writer, fatal };
}

test('batches commit in order on the writer thread, each visible to the main connection once reported', async () => {
  const { store, writer, fatal } = setup();
  try {
    const a = write(writer, batchOf(store, [1, 2]));
    const b = write(writer, batchOf(store, [3]));
    assert.equal(writer.inFlight, 2);
    assert.equal(store.maxSeq(), 0, 'recorded, not applied on the main connection');
    assert.equal(await a, null);
    assert.equal(await b, null);
    assert.equal(writer.inFlight, 0);
    assert.deepEqual(store.eventsAfter(0, 10).map((le) => [le.seq, le.event.eventtype]), [[1, 'S1'], [2, 'S2'], [3, 'S3']]);
  } finally {
    await writer.close();
    store.close();
  }
  assert.deepEqual(fatal, [], 'a close is not a failure');
});

test('a failed batch: the ones sent behind it are refused unapplied; the next written after the report lands', async () => {
  const { store, writer } = setup();
  try {
    assert.equal(await write(writer, batchOf(store, [1])), null);
    // seq 1 again: the primary key refuses it, and with it the whole batch (seq 2 too).
    const bad = write(writer, batchOf(store, [2, 1]));
    const behind = write(writer, batchOf(store, [3]));
    const e1 = await bad;
    const e2 = await behind;
    assert.match(String(e1?.message), /not committed: .*UNIQUE/);
    assert.match(String(e2?.message), /an earlier batch failed/);
    assert.deepEqual(store.eventsAfter(0, 10).map((le) => le.seq), [1], 'neither the failed batch nor the one behind it landed');
    assert.equal(await write(writer, batchOf(store, [2, 3])), null);
    assert.deepEqual(store.eventsAfter(0, 10).map((le) => le.seq), [1, 2, 3]);
  } finally {
    await writer.close();
    store.close();
  }
});

test('once the thread is gone, every write fails with the reason and onFatal is told once', async () => {
  const { store, writer, fatal } = setup();
  try {
    assert.equal(await write(writer, batchOf(store, [1])), null);
    // Kill the thread from outside, as a crash would.
    await (writer as unknown as { worker: { terminate(): Promise<number> } }).worker.terminate();
    const err = await write(writer, batchOf(store, [2]));
    assert.match(String(err?.message), /writer thread exited/);
    assert.equal(fatal.length, 1);
    assert.equal(store.maxSeq(), 1);
  } finally {
    await writer.close();
    store.close();
  }
});
