/** What every client subcommand shares: where the daemon is, how to reach it, how to print a table. */
import { Connection, defaultToken, defaultUrl } from '../client/index.ts';
import { argumentError, fail, usage } from './output.ts';

// Re-exported: one import gives a subcommand everything it shares with the others.
export { EXIT, argumentError, fail, usage } from './output.ts';

/** `--url` and `--token` (SPEC §1), spread into each client subcommand's args. */
export const connArgs = {
  url: { type: 'string', description: 'daemon address, ws://HOST:PORT (default $STATED_URL, else ws://127.0.0.1:16505)' },
  token: { type: 'string', description: 'bearer token (default $STATED_TOKEN, else ./stated.db.token)' },
} as const;

export interface ConnFlags {
  url?: string | undefined;
  token?: string | undefined;
}

/** The URL to dial: ws(s) as given; http(s) accepted too, since that is what the daemon prints. */
export function daemonUrl(flag: string | undefined): string {
  const url = flag ?? defaultUrl();
  const m = /^(wss?|https?):\/\/[^/\s]+\/*$/.exec(url);
  if (!m) usage(`--url: expected ws://HOST:PORT, got ${JSON.stringify(url)}`);
  return url.replace(/^http/, 'ws');
}

/**
 * Runs fn on a one-shot connection and closes it. No reconnect: a dead
 * daemon must give E_CONNECT at once, not a retry loop. Any error ends the
 * process through fail() as one line.
 */
export async function withConnection<T>(flags: ConnFlags, fn: (conn: Connection) => Promise<T>): Promise<T> {
  const url = daemonUrl(flags.url);
  const conn = new Connection({ url, token: flags.token ?? defaultToken(), reconnect: false });
  try {
    await conn.connect();
    return await fn(conn);
  } catch (err) {
    return fail(err);
  } finally {
    conn.close();
  }
}

/** One `admin` op action; resolves with its `result`. */
export async function admin<T = unknown>(conn: Connection, action: string, args: Record<string, unknown> = {}): Promise<T> {
  const r = await conn.request<{ result: T }>('admin', { action, args });
  return r.result;
}

/** The positionals citty left in `_`, required to be at least one. */
export function names(rest: readonly string[], what: string): string[] {
  if (rest.length === 0) argumentError(`expected at least one ${what}`);
  return [...rest];
}

/** Left-aligned columns separated by two spaces; the last column is not padded. */
export function table(header: string[], rows: string[][]): string {
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  return all.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd()).join('\n') + '\n';
}

/** Writes a value as indented JSON on stdout. */
export function printJson(v: unknown): void {
  process.stdout.write(`${JSON.stringify(v, null, 2)}\n`);
}
