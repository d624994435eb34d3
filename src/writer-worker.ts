/**
 * The writer thread's body (see writer.ts): its own connection to the
 * database, one transaction per batch of recorded ops, answers in order.
 * After a batch fails, every later batch of the same generation is refused
 * unapplied: they were built on memory that included the lost one.
 */
import Database from 'better-sqlite3';
import { parentPort, workerData } from 'node:worker_threads';
import { loadAddonFile } from './native.ts';
import { type Ops, WriteApplier } from './writes.ts';

export interface WriterInit {
  db: string;
  synchronous: 'FULL' | 'NORMAL';
  /** The addon file the main thread loaded SQLite from (the same library, not a second copy). */
  addon: string;
}

/** Main -> writer. */
export type WriterRequest = { gen: number; ops: Ops } | { close: true };
/** Writer -> main. */
export type WriterReply =
  | { ready: true }
  | { gen: number; ok: true }
  | { gen: number; ok: false; error: string; refused: boolean }
  | { fatal: string };

const port = parentPort!;
const send = (m: WriterReply): void => port.postMessage(m);

function main(): void {
  const init = workerData as WriterInit;
  let db: Database.Database;
  let applier: WriteApplier;
  try {
    db = new Database(init.db, { nativeBinding: loadAddonFile(init.addon) as never });
    db.pragma(`synchronous = ${init.synchronous}`);
    db.pragma('foreign_keys = ON');
    db.pragma('busy_timeout = 5000');
    applier = new WriteApplier(db);
  } catch (err) {
    send({ fatal: `cannot open ${init.db}: ${(err as Error).message}` });
    return;
  }
  const commit = db.transaction((ops: Ops) => applier.apply(ops));
  let refuseThrough = -1;
  let lastError = '';
  send({ ready: true });
  port.on('message', (m: WriterRequest) => {
    if ('close' in m) {
      db.close();
      port.close();
      return;
    }
    if (m.gen <= refuseThrough) {
      // The cause rides along: a client refused behind a full disk is told the disk is full.
      send({ gen: m.gen, ok: false, error: `an earlier batch failed (${lastError}); this one was not written`, refused: true });
      return;
    }
    try {
      commit(m.ops);
      send({ gen: m.gen, ok: true });
    } catch (err) {
      refuseThrough = m.gen;
      lastError = (err as Error).message;
      send({ gen: m.gen, ok: false, error: (err as Error).message, refused: false });
    }
  });
}

main();
