/**
 * better-sqlite3's native addon, for the single-executable build (SPEC §1).
 *
 * A SEA cannot `require` a `.node` file from inside itself, so build.mjs embeds
 * the addon as an asset; here it is written to a private temp file and loaded
 * with `process.dlopen`. Outside the SEA, better-sqlite3 finds its addon in
 * node_modules as usual.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { getRawAsset, isSea } from 'node:sea';

const ASSET = 'better_sqlite3.node';

let cached: { binding: object | undefined } | undefined;

/** The addon object to pass as better-sqlite3's `nativeBinding`, or undefined outside the SEA. */
export function sqliteNativeBinding(): object | undefined {
  cached ??= { binding: isSea() ? loadFromAsset() : undefined };
  return cached.binding;
}

function loadFromAsset(): object {
  // mkdtemp creates the directory 0700: nobody else can swap the file before dlopen.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stated-sqlite-'));
  const file = path.join(dir, ASSET);
  try {
    fs.writeFileSync(file, new Uint8Array(getRawAsset(ASSET) as ArrayBuffer), { mode: 0o600 });
    const mod = { exports: {} };
    process.dlopen(mod, file);
    return mod.exports;
  } catch (err) {
    // The usual cause is a tmpdir mounted noexec; TMPDIR can point elsewhere.
    throw new Error(`cannot load the embedded SQLite addon from ${dir} (set TMPDIR to an exec-mountable directory): ${(err as Error).message}`, { cause: err });
  } finally {
    // The mapping survives unlinking, so nothing is left behind in tmpdir.
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
