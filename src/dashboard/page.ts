/**
 * The dashboard as the daemon sends it (SPEC §3 `GET /`). Runs in the daemon;
 * the page's own code is in ./browser/. Both documents come from the
 * executable (build.mjs inlines them): nothing is fetched from elsewhere.
 *
 * GET / is not /healthz, so it needs a token like every other path: a request
 * with a good token gets the page, one without (or with a bad one) gets 401:
 * a browser gets a form that asks for the token and shows no data at all.
 */
import pages from 'virtual:dashboard';

export interface PageResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** What the page needs to know of the config, written into it as <meta> (not script: the CSP hash stays valid). */
export interface PageSettings {
  maxRebootAttempts: number;
  /** Seconds between heartbeats on an idle subscription: longer silence means a dead link. */
  heartbeatInterval: number;
}

function respond(status: number, page: { html: string; csp: string }, body: string): PageResponse {
  return {
    status,
    headers: {
      'content-type': 'text/html; charset=utf-8',
      'content-security-policy': page.csp,
      // The first load carries ?token=: no Referer may ever repeat the address.
      'referrer-policy': 'no-referrer',
      'x-content-type-options': 'nosniff',
      'x-frame-options': 'DENY',
      'cache-control': 'no-store',
    },
    body,
  };
}

/** The page, for a request whose token was accepted. */
export function dashboardPage(settings: PageSettings): PageResponse {
  const html = pages.app.html
    .replace('content="max-attempts"', `content="${settings.maxRebootAttempts}"`)
    .replace('content="heartbeat"', `content="${settings.heartbeatInterval}"`);
  return respond(200, pages.app, html);
}

/** The token form, for a request without a (good) token: 401, and no data. */
export function tokenForm(): PageResponse {
  return respond(401, pages.login, pages.login.html);
}
