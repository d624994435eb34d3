/**
 * What `serve` checks before it creates any file (SPEC §1): the listen
 * address is free (E_LISTEN) and the database can be opened (E_DB). Both are
 * the operator's to fix, so they are reported as such, not as E_INTERNAL.
 */
import Database from 'better-sqlite3';
import { accessSync, constants, existsSync, statSync } from 'node:fs';
import { type Server, createServer } from 'node:net';
import { dirname, resolve } from 'node:path';
import { StatedError } from './errors.ts';
import { sqliteNativeBinding } from './native.ts';

/** HOST:PORT → [host, port]; `[::1]:80` too. */
export function splitListen(listen: string): [string, string] {
  const i = listen.lastIndexOf(':');
  if (i < 0) return ['127.0.0.1', listen];
  return [listen.slice(0, i).replace(/^\[|\]$/g, ''), listen.slice(i + 1)];
}

/** Binds the listen address now, so a port in use is known before the database is touched; the server takes the handle. */
export function reserveListen(listen: string): Promise<Server> {
  const [host, portText] = splitListen(listen);
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port > 65535) return Promise.reject(new StatedError('E_USAGE', `--listen: expected HOST:PORT, got ${JSON.stringify(listen)}`));
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.once('error', (err: NodeJS.ErrnoException) => {
      const why = err.code === 'EADDRINUSE' ? 'address in use (another daemon?)'
        : err.code === 'EACCES' ? 'permission denied' : err.code === 'EADDRNOTAVAIL' ? 'no such local address' : err.message;
      rej(new StatedError('E_LISTEN', `cannot listen on ${listen}: ${why}`));
    });
    srv.listen(port, host, () => res(srv));
  });
}

/** The SQLite error codes that mean the file is the operator's to fix. */
const DB_CODES = /^SQLITE_(NOTADB|CORRUPT|CANTOPEN|READONLY|PERM|AUTH|IOERR)/;

/** An error from opening the database, as E_DB when it is the file's fault. */
export function dbError(db: string, err: unknown): unknown {
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && DB_CODES.test(code)) {
    return new StatedError('E_DB', `cannot open database ${db}: ${(err as Error).message}`);
  }
  return err;
}

/** Throws E_DB unless the database exists and is one, or can be created. Creates nothing. */
export function checkDatabase(db: string): void {
  if (existsSync(db)) {
    if (!statSync(db).isFile()) throw new StatedError('E_DB', `cannot open database ${db}: not a file`);
    let conn: Database.Database | undefined;
    try {
      conn = new Database(db, { nativeBinding: sqliteNativeBinding() as never, readonly: true, fileMustExist: true });
      conn.prepare('SELECT count(*) FROM sqlite_master').get(); // reads the header and the schema page
    } catch (err) {
      throw dbError(db, err);
    } finally {
      conn?.close();
    }
    return;
  }
  const dir = dirname(resolve(db));
  try {
    accessSync(dir, constants.W_OK | constants.X_OK);
  } catch (err) {
    throw new StatedError('E_DB', `cannot create database ${db}: ${existsSync(dir) ? 'directory not writable' : `no directory ${dir}`} (${(err as NodeJS.ErrnoException).code})`);
  }
}
