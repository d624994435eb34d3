/** How the CLI speaks: one error line `stated: CODE: message`, and SPEC §1's exit codes. */
import { asStatedError } from '../errors.ts';

export const EXIT = { OK: 0, FAILED: 1, TIMEOUT: 2, USAGE: 64, ERROR: 70, INTERRUPTED: 130 } as const;

/** Prints an error as one line and exits (64 for usage errors, 70 otherwise). */
export function fail(err: unknown): never {
  const e = asStatedError(err);
  process.stderr.write(`stated: ${e.code}: ${e.message}\n`);
  const detail = e.detail as { problems?: { severity: string; code: string; message: string }[] } | undefined;
  for (const p of detail?.problems ?? []) process.stderr.write(`  ${p.severity} ${p.code}: ${p.message}\n`);
  process.exit(e.code === 'E_USAGE' ? EXIT.USAGE : EXIT.ERROR);
}

export function usage(message: string): never {
  process.stderr.write(`stated: E_USAGE: ${message}\n`);
  process.exit(EXIT.USAGE);
}
