/** How the CLI speaks: one error line `stated: CODE: message`, and SPEC §1's exit codes. */
import { asStatedError } from '../errors.ts';

export const EXIT = { OK: 0, FAILED: 1, TIMEOUT: 2, USAGE: 64, ERROR: 70, INTERRUPTED: 130 } as const;

/** Colour only for a person at a terminal, never with NO_COLOR (no-color.org: any non-empty value). */
export const colour = process.stdout.isTTY === true && !process.env.NO_COLOR;

/** Text as written, or with its ANSI colour codes removed when colour is off. */
export function plain(text: string): string {
  // eslint-disable-next-line no-control-regex
  return colour ? text : text.replace(/\x1b\[[0-9;]*m/g, '');
}

/**
 * Errors that are the command line's fault, wherever they were found: a
 * name that cannot be right (SPEC §1) is a usage error whether the CLI or
 * the daemon caught it, so one typo gives one exit code.
 */
const USAGE_CODES = new Set(['E_USAGE', 'E_UNKNOWN_NAME']);

/** Prints an error as one line and exits (64 for usage errors and unknown names, 70 otherwise). */
export function fail(err: unknown): never {
  const e = asStatedError(err);
  process.stderr.write(`stated: ${e.code}: ${e.message}\n`);
  const detail = e.detail as { problems?: { severity: string; code: string; message: string }[] } | undefined;
  for (const p of detail?.problems ?? []) process.stderr.write(`  ${p.severity} ${p.code}: ${p.message}\n`);
  process.exit(USAGE_CODES.has(e.code) ? EXIT.USAGE : EXIT.ERROR);
}

/** The running subcommand's usage, set by main.ts once it knows which subcommand runs. */
let commandUsage: string | undefined;

/** What argumentError() prints after its line. */
export function setUsage(text: string): void {
  commandUsage = text;
}

/** A usage error: one line (a bad value: the line says which), then `help` if given; exit 64. */
export function usage(message: string, help?: string): never {
  process.stderr.write(`stated: E_USAGE: ${message}\n${help === undefined ? '' : `\n${help}\n`}`);
  process.exit(EXIT.USAGE);
}

/**
 * A command line of the wrong shape (SPEC §1): an unknown option, a missing
 * or extra argument. One line, then the subcommand's usage; exit 64. The
 * one path for main.ts's checks and a subcommand's own (NODE... or -e).
 */
export function argumentError(message: string): never {
  return usage(message, commandUsage);
}
