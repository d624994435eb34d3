/** A GET on the daemon's HTTP API, for the read-only subcommands whose data has no WebSocket op (history, stats). */
import { defaultToken } from '../client/index.ts';
import { type ErrorCode, ERRORS, StatedError } from '../errors.ts';
import { type ConnFlags, daemonUrl } from './common.ts';

/** GETs `path` with the bearer token; resolves with the JSON body, or throws the daemon's own error code. */
export async function getJson<T>(flags: ConnFlags, path: string): Promise<T> {
  const base = daemonUrl(flags.url).replace(/^ws/, 'http').replace(/\/+$/, '');
  const token = flags.token ?? defaultToken();
  let res: Response;
  try {
    res = await fetch(`${base}${path}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    throw new StatedError('E_CONNECT', `cannot reach ${base}: ${cause?.code ?? cause?.message ?? (err as Error).message}`);
  }
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new StatedError('E_CONNECT', `${base}${path}: HTTP ${res.status}, not a stated reply`);
  }
  if (!res.ok) {
    const e = (body as { error?: { code?: string; message?: string } }).error;
    const code = e?.code && e.code in ERRORS ? (e.code as ErrorCode) : 'E_INTERNAL';
    throw new StatedError(code, e?.message ?? `HTTP ${res.status}`);
  }
  return body as T;
}
