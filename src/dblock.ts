/**
 * One daemon per database (SPEC §1): `serve` holds an exclusive lock on a
 * small SQLite file beside the database (`DBPATH.lock`) for its lifetime.
 *
 * Why SQLite's lock: it is an OS lock (POSIX fcntl) taken through the SQLite
 * library the executable already carries, so it needs no new native addon in
 * the SEA, and the kernel drops it with the process — `kill -9` or a crash
 * never leaves a stale lock to clean up by hand. In `locking_mode=EXCLUSIVE`
 * a connection that has written keeps its EXCLUSIVE lock until it closes.
 * The holder writes its pid into the file's header (`user_version`) under
 * that lock; a second `serve` reads those four bytes straight from the file
 * (a plain read ignores advisory locks) to name the holder. The file is never
 * removed: deleting a lock file lets two processes lock two different files.
 */
import Database from 'better-sqlite3';
import type { Database as Db } from 'better-sqlite3';
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { StatedError } from './errors.ts';
import { sqliteNativeBinding } from './native.ts';

/** Byte offset of `user_version` in a SQLite database file's header. */
const USER_VERSION_OFFSET = 60;

export class DbLock {
  private constructor(private readonly conn: Db, readonly file: string) {}

  /** Takes the lock for the database at dbPath, or throws E_LOCKED naming the holder (E_DB if the file is unusable). */
  static acquire(dbPath: string): DbLock {
    // Beside the real file: two paths to one database (a symlink, ./x.db and /abs/x.db) share one lock.
    const file = `${realPath(dbPath)}.lock`;
    let conn: Db;
    try {
      conn = new Database(file, { nativeBinding: sqliteNativeBinding() as never, timeout: 0 });
    } catch (err) {
      throw new StatedError('E_DB', `cannot create the lock file ${file}: ${(err as Error).message}`);
    }
    try {
      conn.pragma('locking_mode = EXCLUSIVE');
      conn.pragma('journal_mode = MEMORY'); // one file beside the database, nothing else
      conn.exec('BEGIN EXCLUSIVE');
      conn.pragma(`user_version = ${process.pid}`);
      conn.exec('COMMIT'); // the EXCLUSIVE lock stays: locking_mode=EXCLUSIVE
    } catch (err) {
      conn.close();
      if ((err as { code?: string }).code === 'SQLITE_BUSY') throw locked(dbPath, file);
      throw new StatedError('E_DB', `cannot lock ${file}: ${(err as Error).message}`);
    }
    return new DbLock(conn, file);
  }

  /**
   * Throws E_LOCKED naming the holder when another daemon holds the lock, and
   * creates nothing: `serve` asks this before it binds its port, so a second
   * daemon on the same database and port is told E_LOCKED, not E_LISTEN (its
   * port is the holder's). A read needs a SHARED lock, which the holder's
   * EXCLUSIVE one refuses at once (timeout 0). Any other trouble is left to
   * acquire(), which reports it after the listen and database checks.
   */
  static probe(dbPath: string): void {
    const file = `${realPath(dbPath)}.lock`;
    if (!existsSync(file)) return;
    let conn: Db | undefined;
    try {
      conn = new Database(file, { nativeBinding: sqliteNativeBinding() as never, readonly: true, fileMustExist: true, timeout: 0 });
      conn.pragma('user_version');
    } catch (err) {
      if ((err as { code?: string }).code === 'SQLITE_BUSY') throw locked(dbPath, file);
    } finally {
      conn?.close();
    }
  }

  /** Releases the lock (at stop; an exit releases it anyway). */
  release(): void {
    if (this.conn.open) this.conn.close();
  }
}

function realPath(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    try {
      return join(realpathSync(dirname(resolve(p))), basename(p)); // not created yet: its directory's real path
    } catch {
      return p; // no such directory: opening the lock file reports it
    }
  }
}

function locked(dbPath: string, file: string): StatedError {
  const pid = holderPid(file);
  return new StatedError('E_LOCKED', `${dbPath} is in use by another stated serve${pid ? ` (pid ${pid})` : ''}; one daemon per database`);
}

function holderPid(file: string): number | null {
  try {
    const head = readFileSync(file).subarray(0, USER_VERSION_OFFSET + 4);
    return head.length === USER_VERSION_OFFSET + 4 ? head.readUInt32BE(USER_VERSION_OFFSET) || null : null;
  } catch {
    return null;
  }
}
