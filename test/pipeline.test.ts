// The core with a writer (pipeline.ts BatchWriter): batches are recorded and
// handed over, acknowledged only once the writer reports the commit (SPEC §2
// "committed before acknowledged"); exclusive jobs see only committed state;
// a lost batch fails its jobs and those behind it, and memory is rebuilt from
// SQLite. The writer here is in-process and commits only when told to.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { Core } from '../src/nodes.ts';
import { type BatchWriter, MAX_BATCH } from '../src/pipeline.ts';
import { StatedError } from '../src/errors.ts';
import { Store } from '../src/store.ts';
import { ARITY, OP, type Ops, WriteApplier } from '../src/writes.ts';
import { CORE_CONFIG, FakeClock, st, tempDir } from './helpers/fake.ts';

class ManualWriter implements BatchWriter {
  readonly batches: { ops: Ops; done: (err: Error | null) => void }[] = [];
  private readonly applier: WriteApplier;
  constructor(private readonly store: Store) {
    this.applier = new WriteApplier(store.db);
  }
  get inFlight(): number {
    return this.batches.length;
  }
  write(ops: Ops, done: (err: Error | null) => void): void {
    this.batches.push({ ops, done });
  }
  /** Commits the oldest batch in one transaction and reports it. */
  commit(): void {
    const b = this.batches.shift()!;
    this.store.db.transaction(() => this.applier.apply(b.ops))();
    b.done(null);
  }
  /** Reports the oldest batch lost, unapplied. */
  lose(why: string): void {
    this.batches.shift()!.done(new Error(why));
  }
}

function setup(nodes: string[]): { core: Core; store: Store; writer: ManualWriter } {
  const store = new Store(path.join(tempDir(), 'stated.db'));
  const writer = new ManualWriter(store);
  const core = new Core(store, CORE_CONFIG, new FakeClock().now, writer);
  core.autoTick = false;
  void core.run((c) => { for (const n of nodes) c.addNode(n, { mode: 'NORMALv2', state: 'ISUP' }); });
  core.tick();
  writer.commit();
  return { core, store, writer };
}

/** Event rows in a recorded batch. */
function eventRows(ops: Ops): number {
  let n = 0;
  for (let i = 0; i < ops.length; i += 1 + ARITY[ops[i] as number]!) if (ops[i] === OP.event) n++;
  return n;
}

test('events are acknowledged only after the writer commits their batch; batches hold at most MAX_BATCH jobs, 2 in flight', async () => {
  const { core, store, writer } = setup(['pc1', 'pc2']);
  const base = store.maxSeq();
  const acks: number[] = [];
  const total = MAX_BATCH * 2 + MAX_BATCH / 2;
  for (let i = 0; i < total; i++) {
    core.submit((c) => c.applyEvent(st(i % 2 ? 'pc2' : 'pc1', i % 4 < 2 ? 'SHUTDOWN' : 'ISUP')), { checksFirst: true }, (err, r) => {
      assert.equal(err, null);
      acks.push(r!.seq);
    });
  }
  core.tick();
  assert.equal(writer.inFlight, 2, 'two batches handed over, the rest waits');
  assert.equal(acks.length, 0, 'nothing acknowledged before a commit');
  assert.equal(store.maxSeq(), base, 'recorded, not written');
  assert.equal(core.committedSeq, base);
  // Half the events are invalid transitions (ISUP->ISUP...) and log a NOTIFY each: rows > jobs.
  assert.deepEqual(writer.batches.map((b) => eventRows(b.ops) >= MAX_BATCH && eventRows(b.ops) <= 2 * MAX_BATCH), [true, true]);

  writer.commit(); // the first batch: its MAX_BATCH events, and the third batch goes out
  assert.equal(acks.length, MAX_BATCH);
  assert.equal(writer.inFlight, 2);
  assert.ok(store.maxSeq() >= acks.at(-1)!, 'every acknowledged seq is on disk');
  assert.equal(core.committedSeq, store.maxSeq());
  writer.commit();
  writer.commit();
  assert.equal(writer.inFlight, 0);
  assert.equal(acks.length, total);
  assert.deepEqual(acks, [...acks].sort((a, b) => a - b), 'in order');
  assert.equal(store.maxSeq(), core.seq);
  assert.equal(core.committedSeq, core.seq);
});

test('an exclusive job runs only once every batch in flight has committed', async () => {
  const { core, writer } = setup(['pc1']);
  const sent = core.run((c) => c.applyEvent(st('pc1', 'SHUTDOWN')), { checksFirst: true });
  core.tick();
  let seen: string | null = null;
  const read = core.read((c) => {
    seen = `${c.nodes.get('pc1')!.state} ${c.store.maxSeq()}`;
    return seen;
  });
  core.tick();
  assert.equal(seen, null, 'not while the SHUTDOWN batch is in flight');
  assert.equal(writer.inFlight, 1);
  writer.commit();
  const { seq } = await sent;
  assert.equal(await read, `SHUTDOWN ${seq}`);
});

test('a lost batch fails its jobs and the batch behind it; memory is rebuilt from SQLite and seqs stay gap-free', async () => {
  const { core, store, writer } = setup(['pc1', 'pc2']);
  const base = store.maxSeq();
  const a = core.run((c) => c.applyEvent(st('pc1', 'SHUTDOWN')), { checksFirst: true });
  core.tick();
  const b = core.run((c) => c.applyEvent(st('pc2', 'SHUTDOWN')), { checksFirst: true });
  core.tick();
  assert.equal(writer.inFlight, 2);
  assert.equal(core.nodes.get('pc2')!.state, 'SHUTDOWN', 'memory ran ahead of the disk');

  writer.lose('disk full');
  await assert.rejects(a, (err: unknown) => err instanceof StatedError && /disk full/.test(err.message));
  const c = core.run((cc) => cc.applyEvent(st('pc1', 'PXEBOOTING')), { checksFirst: true });
  core.tick();
  assert.equal(writer.inFlight, 1, 'nothing new goes out while a batch behind the lost one is unanswered');
  writer.lose('an earlier batch failed; this one was not written');
  await assert.rejects(b, /earlier batch failed/);

  // Rebuilt from SQLite: neither SHUTDOWN happened, seq is back where the disk is.
  assert.equal(core.nodes.get('pc1')!.state, 'ISUP');
  assert.equal(core.nodes.get('pc2')!.state, 'ISUP');
  assert.equal(core.seq, base);
  core.tick();
  writer.commit();
  assert.equal((await c).seq, base + 1);
  assert.deepEqual(store.eventsAfter(base, 10).map((le) => `${le.seq} ${le.event.objname} ${le.event.eventtype}`),
    [`${base + 1} pc1 PXEBOOTING`]);
});

test('a lost batch: onRebuilt hears the first cause once; deadlines and states are the committed ones again', async () => {
  const { core, writer } = setup(['pc1', 'pc2']);
  const told: string[] = [];
  core.onRebuilt = (err) => told.push(err.message);
  // pc1 boots to BOOTING (Emulab NORMALv2/BOOTING: 180 s, REBOOT) and that commits.
  for (const s of ['SHUTDOWN', 'PXEBOOTING', 'BOOTING']) void core.run((c) => c.applyEvent(st('pc1', s)), { checksFirst: true });
  core.tick();
  writer.commit();
  const booting = core.nodes.get('pc1')!.timeout!;
  assert.equal(booting.action, 'REBOOT');

  const a = core.run((c) => c.applyEvent(st('pc1', 'TBSETUP')), { checksFirst: true }); // replaces the deadline
  core.tick();
  const b = core.run((c) => c.applyEvent(st('pc2', 'SHUTDOWN')), { checksFirst: true });
  core.tick();
  assert.notEqual(core.nodes.get('pc1')!.timeout!.at, booting.at);
  writer.lose('disk full');
  writer.lose('an earlier batch failed; this one was not written');
  await Promise.allSettled([a, b]);
  assert.deepEqual(told, ['disk full'], 'once, with the cause, not the refusal behind it');
  assert.deepEqual(core.nodes.get('pc1')!.timeout, booting, 'the committed deadline is back');
  assert.equal(core.nodes.get('pc1')!.state, 'BOOTING');
  assert.equal(core.timers.peek(), booting.at, 'and armed in the heap');
});

test('a resend of an id whose batch is in flight gets the same seq once that commits; after a loss the id is new again', async () => {
  const { core, store, writer } = setup(['pc1']);
  const first = core.run((c) => c.applyEvent(st('pc1', 'SHUTDOWN', 'boot-1')), { checksFirst: true });
  core.tick();
  const again = core.run((c) => c.applyEvent(st('pc1', 'SHUTDOWN', 'boot-1')), { checksFirst: true });
  core.tick();
  writer.commit();
  writer.commit();
  const r1 = await first;
  assert.deepEqual(await again, { seq: r1.seq, duplicate: true });
  assert.equal(store.maxSeq(), r1.seq, 'logged once');

  const lost = core.run((c) => c.applyEvent(st('pc1', 'PXEBOOTING', 'boot-2')), { checksFirst: true });
  core.tick();
  writer.lose('disk full');
  await assert.rejects(lost, /disk full/);
  const retry = core.run((c) => c.applyEvent(st('pc1', 'PXEBOOTING', 'boot-2')), { checksFirst: true });
  core.tick();
  writer.commit();
  assert.deepEqual(await retry, { seq: r1.seq + 1, duplicate: false }, 'applied, with the next seq');
});

test('history read through Core.read while a batch is in flight is the committed chain, not empty', async () => {
  const { core, store, writer } = setup(['pc1']);
  void core.run((c) => c.applyEvent(st('pc1', 'SHUTDOWN')), { checksFirst: true });
  core.tick();
  writer.commit();
  void core.run((c) => c.applyEvent(st('pc1', 'PXEBOOTING')), { checksFirst: true });
  core.tick(); // in flight: the store's chain head already names its seq
  const h = core.read((c) => c.store.history('pc1', 10).map((le) => le.event.eventtype));
  core.tick();
  writer.commit();
  assert.deepEqual(await h, ['PXEBOOTING', 'SHUTDOWN']);
  assert.deepEqual(store.history('pc1', 10).map((le) => le.event.eventtype), ['PXEBOOTING', 'SHUTDOWN']);
});

test('a store that keeps failing never holds tick(): one rebuild per turn, the rest waits for the next', async () => {
  const { core } = setup(['pc1']);
  let rebuilt = 0;
  const bug = (): never => { throw new Error('a bug in a job'); };
  // As a timeout that fails its batch would be queued again at once by a naive onRebuilt.
  core.onRebuilt = () => {
    rebuilt++;
    if (rebuilt < 5) core.run(bug).catch(() => {}); // bounded, so a regression fails instead of hanging
  };
  core.run(bug).catch(() => {});
  core.tick();
  assert.equal(rebuilt, 1, 'tick returned after the rebuild instead of taking the re-queued job');
  core.tick();
  assert.equal(rebuilt, 2);
});
