// Hostile clients (SPEC §3): senders that trickle headers, subscribers that
// stop reading, bodies over the limit, unknown paths, and requests with no
// token. Each is cut off or refused with its code while everyone else keeps
// being served.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { request } from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import WebSocket from 'ws';
import { type Daemon, connectWs, http, startDaemon, tempDir } from './helpers/daemon.ts';

const MiB = 1024 * 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function daemon(t: { after: (fn: () => unknown) => void }, config?: object): Promise<Daemon> {
  const dir = tempDir();
  const args: string[] = [];
  if (config) {
    const file = path.join(dir, 'config.json');
    fs.writeFileSync(file, JSON.stringify(config));
    args.push('--config', file);
  }
  const d = await startDaemon({ dir, args });
  t.after(() => d.stop());
  const add = await d.runCli(['node', 'add', 'pc1', 'pc2', '--state', 'ISUP']);
  assert.equal(add.code, 0, add.stderr);
  return d;
}

const head = async (d: Daemon): Promise<number> => (await http(d, 'GET', '/healthz', undefined, null)).json.seq;

/** The daemon serves HTTP and WebSocket clients normally. */
async function serving(d: Daemon): Promise<void> {
  assert.equal((await http(d, 'GET', '/healthz', undefined, null)).status, 200);
  const nodes = await http(d, 'GET', '/v1/nodes');
  assert.equal(nodes.status, 200, nodes.text);
  const c = await connectWs(d);
  try {
    const st = await c.request('status', { nodes: ['pc1'] });
    assert.equal(st.ok, true, JSON.stringify(st));
  } finally {
    c.close();
  }
}

test('slowloris: a client trickling its headers is cut off (headersTimeout 10 s) while others are served', async (t) => {
  const d = await daemon(t);
  const port = d.port;
  const slow: { sock: net.Socket; closedAt: number | null; got: string }[] = [];
  const t0 = Date.now();
  for (let i = 0; i < 20; i++) {
    const sock = net.connect(port, '127.0.0.1');
    const s = { sock, closedAt: null as number | null, got: '' };
    sock.on('data', (b) => { s.got += String(b); });
    sock.on('close', () => { s.closedAt = Date.now(); });
    sock.on('error', () => {});
    // Half of them aim at the WebSocket upgrade, which reads headers the same way.
    sock.write(i % 2 === 0 ? 'GET /v1/nodes HTTP/1.1\r\nHost: x\r\n' : 'GET /v1/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n');
    slow.push(s);
  }
  t.after(() => { for (const s of slow) s.sock.destroy(); });
  const filler = 'X-Slow: ' + 'a'.repeat(10_000);
  let i = 0;
  const drip = setInterval(() => {
    for (const s of slow) if (s.closedAt === null) s.sock.write(filler[i % filler.length]!);
    i++;
  }, 1000);
  t.after(() => clearInterval(drip));

  // Everyone else is served the whole time; give up waiting at 45 s to say how long it took.
  while (slow.some((s) => s.closedAt === null) && Date.now() - t0 < 45_000) {
    await serving(d);
    await sleep(500);
  }
  clearInterval(drip);
  const times = slow.map((s) => (s.closedAt === null ? Infinity : s.closedAt - t0));
  const worst = Math.max(...times);
  assert.ok(worst <= 15_000, `every trickling socket is closed by the server within 15 s of connecting; the last took ${worst === Infinity ? 'more than 45 s' : `${(worst / 1000).toFixed(1)} s`} (times: ${times.map((x) => (x / 1000).toFixed(1)).join(', ')})`);
  assert.ok(Math.min(...times) >= 9_000, 'not before headersTimeout');
  for (const s of slow) assert.match(s.got, /^(HTTP\/1\.1 408|$)/, 'a 408, or nothing, before the close');
  await serving(d);
});

test('a subscriber that stops reading is dropped with 4008 past subscriberBuffer; a fast one gets everything (SPEC §3)', async (t) => {
  const d = await daemon(t, { subscriberBuffer: 65_536 });
  const fast = await connectWs(d);
  const slow = await connectWs(d);
  t.after(() => { fast.close(); slow.ws.terminate(); });
  const fs1 = await fast.request('subscribe', {});
  const ss = await slow.request('subscribe', {});
  assert.equal(fs1.ok, true);
  assert.equal(ss.ok, true);
  const first = fs1.seq + 1;
  const subs = async (): Promise<number> => Number(/stated_subscriptions (\d+)/.exec((await http(d, 'GET', '/metrics')).text)?.[1]);
  assert.equal(await subs(), 2);

  const socket = (slow.ws as unknown as { _socket: net.Socket })._socket;
  socket.pause();
  const slowClosed = new Promise<{ code: number; reason: string }>((res) => slow.ws.once('close', (code, reason) => res({ code, reason: String(reason) })));

  // 50 NOTIFYs of ~4 KB per commit, until the server gives up on the paused one
  // (the kernel's socket buffers soak up a few MB first).
  const batch = (n: number) => Array.from({ length: 50 }, (_, i) => ({ objtype: 'NOTIFY', objname: 'pc1', eventtype: 'FLOOD', message: `${n}.${i} ${'x'.repeat(4000)}` }));
  let last = 0;
  let posts = 0;
  while ((await subs()) === 2) {
    assert.ok(posts < 2000, `the paused subscriber was never dropped (${posts} posts, ${last} events)`);
    const r = await http(d, 'POST', '/v1/events', batch(posts++));
    assert.equal(r.status, 200, r.text);
    last = r.json.accepted.at(-1).seq;
  }
  t.diagnostic(`dropped after ${posts} posts (~${Math.round((posts * 50 * 4.1) / 1024)} MB)`);
  // Life goes on for the fast one.
  for (let k = 0; k < 5; k++) {
    const r = await http(d, 'POST', '/v1/events', batch(10_000 + k));
    last = r.json.accepted.at(-1).seq;
  }
  await fast.push((m) => m.type === 'event' && m.seq === last, 30_000);
  const fastSeqs = fast.pushes.filter((m) => m.type === 'event').map((m) => m.seq);
  assert.equal(fastSeqs.length, last - first + 1, 'the fast subscriber got every event');
  assert.ok(fastSeqs.every((s, i) => s === first + i), 'in order, no gap, no duplicate');
  assert.equal(await subs(), 1);

  // Reading again, the slow one finds what was queued for it, then the close.
  socket.resume();
  const closed = await Promise.race([slowClosed, sleep(30_000).then(() => null)]);
  assert.ok(closed, 'the dropped subscriber sees the close once it reads again');
  assert.equal(closed.code, 4008);
  assert.match(closed.reason, /^E_SLOW_CONSUMER/);
  const slowSeqs = slow.pushes.filter((m) => m.type === 'event').map((m) => m.seq);
  const seen = slowSeqs.at(-1) ?? fs1.seq;
  assert.ok(seen < last, 'it was cut off before the end');
  assert.ok(slowSeqs.every((s, i) => s === first + i), 'what it did get has no gap');
  const m = /last seq sent (\d+)/.exec(closed.reason);
  if (m) assert.ok(Number(m[1]) >= seen, `the close reason names the last seq sent (${m[1]}); it got ${seen}`);

  // And resumes from where it stopped (SPEC §3 "can resume with since").
  const again = await connectWs(d);
  t.after(() => again.close());
  const rs = await again.request('subscribe', { since: seen });
  assert.equal(rs.ok, true, JSON.stringify(rs));
  await again.push((x) => x.type === 'event' && x.seq === last, 30_000);
  const resumed = again.pushes.filter((x) => x.type === 'event').map((x) => x.seq);
  assert.deepEqual([resumed[0], resumed.length], [seen + 1, last - seen]);
});

/** POSTs a body; resolves with the status and the text, or with the socket error that cut the answer off. */
function postRaw(d: Daemon, chunks: Buffer[], headers: Record<string, string | number>): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`${d.url}/v1/events`, { method: 'POST', headers: { authorization: `Bearer ${d.token}`, ...headers } }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (c: string) => { text += c; }).on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', reject);
    void (async () => {
      for (const c of chunks) {
        if (req.destroyed) return;
        if (!req.write(c)) await new Promise((r) => req.once('drain', r));
      }
      req.end();
    })();
  });
}

test('bodies: exactly 1 MiB is read, one byte more is 413 E_TOO_LARGE, with or without content-length (SPEC §3)', async (t) => {
  const d = await daemon(t);
  // A valid event padded with JSON whitespace to exactly the limit.
  const event = JSON.stringify([{ objtype: 'TBNODESTATE', objname: 'pc1', eventtype: 'SHUTDOWN' }]);
  const exact = event + ' '.repeat(MiB - event.length);
  assert.equal(Buffer.byteLength(exact), MiB);
  const ok = await fetch(`${d.url}/v1/events`, { method: 'POST', headers: { authorization: `Bearer ${d.token}` }, body: exact });
  assert.equal(ok.status, 200, await ok.text());
  const seq = await head(d);
  assert.equal(seq, 1);

  for (const size of [MiB + 1, 2 * MiB, 8 * MiB]) {
    const r = await fetch(`${d.url}/v1/events`, { method: 'POST', headers: { authorization: `Bearer ${d.token}` }, body: `${exact} ${' '.repeat(size - MiB - 1)}` })
      .catch((err: Error & { cause?: { code?: string } }) => assert.fail(`${size} bytes: no 413, the connection failed (${err.cause?.code ?? err.message}): the server reset it before the client read the answer`));
    assert.equal(r.status, 413, `${size} bytes`);
    assert.equal((await r.json()).error.code, 'E_TOO_LARGE');
  }
  // Chunked: no content-length to refuse by, the count does it.
  const chunk = Buffer.alloc(64 * 1024, 0x20);
  const chunked = await postRaw(d, Array.from({ length: 20 }, () => chunk), { 'content-type': 'application/json' })
    .catch((err: Error) => assert.fail(`chunked 1.25 MiB: no 413, the connection failed (${err.message})`));
  assert.equal(chunked.status, 413);
  assert.equal(JSON.parse(chunked.text).error.code, 'E_TOO_LARGE');
  // A client that reads its answer a moment later (as a busy one does) still gets it: closing on
  // unread body bytes sends a TCP reset, which throws away the 413 before the client reads it.
  for (let k = 0; k < 3; k++) {
    const r = await new Promise<{ first: string; err: string | null }>((resolve) => {
      const s = net.connect(d.port, '127.0.0.1');
      let got = '';
      let err: string | null = null;
      s.pause();
      s.on('data', (b) => { got += String(b); });
      s.on('error', (e: NodeJS.ErrnoException) => { err = e.code ?? e.message; });
      s.on('close', () => resolve({ first: got.split('\r\n')[0]!, err }));
      s.write(`POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${d.token}\r\nContent-Length: ${8 * MiB}\r\n\r\n`);
      s.write(Buffer.alloc(8 * MiB, 0x20), () => {});
      setTimeout(() => s.resume(), 300);
    });
    assert.deepEqual(r, { first: 'HTTP/1.1 413 Payload Too Large', err: null }, `8 MiB, answer read after 300 ms (try ${k + 1})`);
  }
  // A WebSocket message over 1 MiB closes that socket with 1009 (and only that socket).
  const c = await connectWs(d);
  const closed = new Promise<number>((res) => c.ws.once('close', (code) => res(code)));
  c.ws.send(JSON.stringify({ op: 'status', id: 1, pad: 'x'.repeat(MiB) }));
  assert.equal(await closed, 1009);

  assert.equal(await head(d), seq, 'nothing applied');
  await serving(d);
});

test('unknown paths are 404 E_NOT_FOUND; without a token everything but /healthz is 401 (SPEC §3)', async (t) => {
  const d = await daemon(t);
  for (const [method, p] of [['GET', '/nope'], ['GET', '/v1'], ['GET', '/v1/nodes/pc1/nope'], ['GET', '/v1/ws'], ['POST', '/v1/nodes'],
    ['PUT', '/v1/events'], ['DELETE', '/v1/nodes/pc1'], ['GET', '/healthz/extra'], ['GET', '/v1/events']] as const) {
    const r = await http(d, method, p, method === 'GET' || method === 'DELETE' ? undefined : {});
    assert.equal(r.status, 404, `${method} ${p}: ${r.text}`);
    assert.equal(r.json?.error?.code, 'E_NOT_FOUND', `${method} ${p}`);
  }
  // An unknown node is its own 404.
  const unknown = await http(d, 'GET', '/v1/nodes/nosuch');
  assert.deepEqual([unknown.status, unknown.json?.error?.code], [404, 'E_UNKNOWN_NODE']);

  assert.deepEqual((await http(d, 'GET', '/healthz', undefined, null)).json, { ok: true, seq: 0 });
  assert.equal((await http(d, 'GET', '/healthz?probe=1', undefined, null)).status, 200);
  const bad = ['', 'st_not-a-token', `${d.token}x`, d.token.slice(0, -1)];
  const paths: [string, string, unknown?][] = [
    ['GET', '/'], ['GET', '/v1/nodes'], ['GET', '/v1/nodes/pc1'], ['GET', '/v1/nodes/pc1/history'], ['GET', '/metrics'],
    ['GET', '/nope'], ['POST', '/nope', {}], ['PUT', '/healthz', {}], ['POST', '/healthz', {}], ['GET', '/v1/ws'],
    ['POST', '/v1/events', { objtype: 'TBNODESTATE', objname: 'pc1', eventtype: 'SHUTDOWN' }],
  ];
  for (const [method, p, body] of paths) {
    for (const token of [null, ...bad]) {
      const r = await http(d, method, p, body, token);
      assert.equal(r.status, 401, `${method} ${p} with token ${JSON.stringify(token)}: ${r.text}`);
      assert.equal(r.json?.error?.code, 'E_UNAUTHORIZED');
    }
  }
  // Other ways of not holding a token.
  for (const authorization of ['Basic dXNlcjpwYXNz', 'Bearer', 'Bearer ', `Token ${d.token}`, d.token]) {
    const r = await fetch(`${d.url}/v1/nodes`, { headers: { authorization } });
    assert.equal(r.status, 401, `authorization: ${authorization}`);
  }
  // ?token= is the browsers' way (SPEC §3), and only a real one counts.
  assert.equal((await fetch(`${d.url}/v1/nodes?token=${encodeURIComponent(d.token)}`)).status, 200);
  assert.equal((await fetch(`${d.url}/v1/nodes?token=st_nope`)).status, 401);

  // The WebSocket upgrade: no token, a bad one, and an unknown path without a token.
  const upgrade = (url: string, headers: Record<string, string> = {}): Promise<number> => new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    ws.once('unexpected-response', (_req, res) => { resolve(res.statusCode ?? 0); res.resume(); ws.terminate(); });
    ws.once('open', () => { ws.close(); resolve(101); });
    ws.once('error', (e) => { if (!/Unexpected server response/.test(e.message)) reject(e); });
  });
  assert.equal(await upgrade(`${d.wsUrl}/v1/ws`), 401);
  assert.equal(await upgrade(`${d.wsUrl}/v1/ws`, { authorization: 'Bearer st_nope' }), 401);
  assert.equal(await upgrade(`${d.wsUrl}/v1/ws?token=st_nope`), 401);
  assert.equal(await upgrade(`${d.wsUrl}/v1/nope`), 401, 'an unknown WebSocket path without a token: 401 like HTTP, not 404');
  assert.equal(await upgrade(`${d.wsUrl}/v1/nope`, { authorization: `Bearer ${d.token}` }), 404);
  assert.equal(await upgrade(`${d.wsUrl}/v1/ws?token=${encodeURIComponent(d.token)}`), 101);
  assert.equal(await head(d), 0, 'nothing was applied');
});

test('a WebSocket upgrade from a foreign Origin is refused even with a good token; no cookie authenticates (SPEC §3)', async (t) => {
  const d = await daemon(t);
  const upgrade = (headers: Record<string, string>, query = ''): Promise<{ status: number; body: string }> => new Promise((resolve, reject) => {
    const ws = new WebSocket(`${d.wsUrl}/v1/ws${query}`, { headers });
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => { body += c; }).on('end', () => { resolve({ status: res.statusCode ?? 0, body }); ws.terminate(); });
    });
    ws.once('open', () => { ws.close(); resolve({ status: 101, body: '' }); });
    ws.once('error', (e) => { if (!/Unexpected server response/.test(e.message)) reject(e); });
  });
  const bearer = { authorization: `Bearer ${d.token}` };
  const own = `http://127.0.0.1:${d.port}`;
  // A browser always sends the Origin of the page that opens the socket.
  for (const origin of ['http://evil.example', `http://evil.example:${d.port}`, `http://localhost:${d.port}`, `https://127.0.0.1:${d.port}`, `http://127.0.0.1:${d.port + 1}`, 'null', 'not a url']) {
    for (const [how, headers, query] of [['bearer', bearer, ''], ['?token=', {}, `?token=${encodeURIComponent(d.token)}`]] as const) {
      const r = await upgrade({ ...headers, origin }, query);
      assert.equal(r.status, 403, `Origin ${origin} with a token by ${how}: ${r.body}`);
      assert.equal(JSON.parse(r.body).error.code, 'E_FORBIDDEN');
    }
  }
  // Without a token it is a 401 first, whatever the Origin.
  assert.equal((await upgrade({ origin: 'http://evil.example' })).status, 401);
  // The daemon's own origin (scheme, host and port the request was sent to), and clients that send none, get in.
  assert.equal((await upgrade({ ...bearer, origin: own })).status, 101);
  assert.equal((await upgrade({ ...bearer, origin: `${own}/` })).status, 101, 'an origin is compared as an origin');
  assert.equal((await upgrade(bearer)).status, 101);
  // Behind a TLS proxy the browser's origin is the proxy's; the proxy says so (a page cannot set these headers).
  const proxied = { ...bearer, origin: 'https://stated.example.org' };
  assert.equal((await upgrade({ ...proxied, 'x-forwarded-proto': 'https', 'x-forwarded-host': 'stated.example.org' })).status, 101);
  assert.equal((await upgrade({ ...proxied, 'x-forwarded-proto': 'https', host: 'stated.example.org' })).status, 101);
  assert.equal((await upgrade(proxied)).status, 403);
  assert.equal((await upgrade({ ...proxied, origin: 'https://evil.example', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'stated.example.org' })).status, 403);
  // Cookies are never read: a good token in any cookie gets nothing.
  const cookie = `token=${d.token}; stated.token=${d.token}; stated_token=${d.token}; authorization=Bearer%20${d.token}`;
  assert.equal((await upgrade({ cookie, origin: own })).status, 401);
  for (const p of ['/', '/v1/nodes', '/metrics']) {
    const r = await fetch(`${d.url}${p}`, { headers: { cookie } });
    assert.equal(r.status, 401, `GET ${p} with the token in cookies`);
    assert.equal(r.headers.get('set-cookie'), null);
  }
  assert.equal((await fetch(`${d.url}/`, { headers: bearer })).headers.get('set-cookie'), null, 'and none is ever set');
});
