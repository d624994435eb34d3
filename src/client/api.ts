/** The seed's calls as plain functions, with SPEC §1's defaults for where the daemon is. */
import { readFileSync } from 'node:fs';
import { Connection } from './connection.ts';
import { type InitOptions, StateWait } from './statewait.ts';

/** STATED_URL, else ws://127.0.0.1:16505. */
export function defaultUrl(): string {
  return process.env.STATED_URL ?? 'ws://127.0.0.1:16505';
}

/** STATED_TOKEN, else ./stated.db.token when readable. */
export function defaultToken(): string | undefined {
  if (process.env.STATED_TOKEN) return process.env.STATED_TOKEN;
  try {
    return readFileSync('./stated.db.token', 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** Opens a connection with the defaults filled in. */
export async function connect(opts: { url?: string; token?: string; reconnect?: boolean } = {}): Promise<Connection> {
  const conn = new Connection({ url: opts.url ?? defaultUrl(), token: opts.token ?? defaultToken(), reconnect: opts.reconnect ?? true });
  await conn.connect();
  return conn;
}

/** initStateWait(states, nodes): register before you trigger anything. */
export function initStateWait(conn: Connection, states: string[], nodes: string[], opts?: InitOptions): Promise<StateWait> {
  return StateWait.init(conn, states, nodes, opts);
}
