/**
 * The token (SPEC §3): read from `?token=` once, then taken out of the address
 * bar (no history entry, bookmark or screenshot keeps it) and kept for this
 * tab only, in sessionStorage. It goes out as a Bearer header on fetch and as
 * `?token=` on the WebSocket (a browser cannot set headers there). Never a
 * cookie: nothing authenticates a request that the page did not make itself.
 */
const KEY = 'stated.token';

/** The token for this tab, or null. */
export function takeToken(): string | null {
  const url = new URL(location.href);
  const given = url.searchParams.get('token');
  if (given !== null) {
    sessionStorage.setItem(KEY, given);
    url.searchParams.delete('token');
    history.replaceState(history.state, '', url.pathname + url.search + url.hash);
  }
  return sessionStorage.getItem(KEY);
}

/** Forgets the token (the daemon refused it). */
export function dropToken(): void {
  sessionStorage.removeItem(KEY);
}

/** GET a JSON route with the token; the status and the parsed body (null when not JSON). */
export async function getJson(path: string, token: string): Promise<{ status: number; body: any }> {
  const res = await fetch(path, { headers: { authorization: `Bearer ${token}` }, cache: 'no-store', credentials: 'omit' });
  const text = await res.text();
  try {
    return { status: res.status, body: JSON.parse(text) };
  } catch {
    return { status: res.status, body: null };
  }
}
