/**
 * better-sqlite3's native addon, for the single-executable build (SPEC §1).
 *
 * A SEA cannot `require` a `.node` file from inside itself, so build.mjs embeds
 * the addon as an asset; here it is written to a private temp file and loaded
 * with `process.dlopen`. Outside the SEA it is node_modules' build/Release file.
 *
 * The writer thread (writer.ts) must load the very same file: two copies of
 * SQLite in one process do not see each other's POSIX locks and can corrupt
 * the database (sqlite.org/howtocorrupt.html §2.2.1). dlopen of a path already
 * loaded returns the loaded library, so the temp file is kept until the
 * writer has opened it (releaseAddonFile).
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { getRawAsset, isSea } from 'node:sea';

const ASSET = 'better_sqlite3.node';

let cached: { binding: object | undefined; file: string | undefined; dir: string | undefined } | undefined;

/**
 * The addon object to pass as better-sqlite3's `nativeBinding`. Outside the
 * SEA too it is loaded from sqliteAddonFile(), not found by `bindings`' own
 * search (which would take a Debug build first): the writer thread loads
 * that file, and both must be the one library.
 */
export function sqliteNativeBinding(): object {
  const c = loaded();
  c.binding ??= loadAddonFile(sqliteAddonFile());
  return c.binding;
}

/** The path of the addon file this process loads SQLite from (for the writer thread's dlopen). */
export function sqliteAddonFile(): string {
  const c = loaded();
  if (c.file !== undefined) return c.file;
  // Outside the SEA: the file better-sqlite3's own loader picks, resolved from the running script.
  // argv[1] may be a symlink (a bin link to stated.cjs): resolve from the real file.
  const from = process.argv[1] ? fs.realpathSync(path.resolve(process.argv[1])) : path.join(process.cwd(), 'stated.js');
  const pkg = createRequire(from).resolve('better-sqlite3/package.json');
  c.file = fs.realpathSync(path.join(path.dirname(pkg), 'build', 'Release', ASSET));
  return c.file;
}

/** Loads the addon from a file in a worker thread: the object to pass as `nativeBinding`. */
export function loadAddonFile(file: string): object {
  const mod = { exports: {} };
  process.dlopen(mod, file);
  return mod.exports;
}

/** The writer thread has the library: the temp file of the SEA can go (the mapping survives unlinking). */
export function releaseAddonFile(): void {
  if (cached?.dir === undefined) return;
  fs.rmSync(cached.dir, { recursive: true, force: true });
  cached.dir = undefined;
}

function loaded(): NonNullable<typeof cached> {
  cached ??= isSea() ? loadFromAsset() : { binding: undefined, file: undefined, dir: undefined };
  return cached;
}

function loadFromAsset(): NonNullable<typeof cached> {
  // mkdtemp creates the directory 0700: nobody else can swap the file before dlopen.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stated-sqlite-'));
  const file = path.join(dir, ASSET);
  try {
    fs.writeFileSync(file, new Uint8Array(getRawAsset(ASSET) as ArrayBuffer), { mode: 0o600 });
    const binding = loadAddonFile(file);
    // Should no writer thread ever start (or one fail), the file still goes with the process.
    process.once('exit', releaseAddonFile);
    return { binding, file, dir };
  } catch (err) {
    fs.rmSync(dir, { recursive: true, force: true });
    // The usual cause is a tmpdir mounted noexec; TMPDIR can point elsewhere.
    throw new Error(`cannot load the embedded SQLite addon from ${dir} (set TMPDIR to an exec-mountable directory): ${(err as Error).message}`, { cause: err });
  }
}
