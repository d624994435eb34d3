// Events in and out (SPEC §2, §3): HTTP POST /v1/events and the WebSocket
// `event` op in, `subscribe` out; seq is strictly increasing and gap-free, an
// `id` makes a resend idempotent, a resumed subscriber loses and repeats nothing.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type Daemon, type WsClient, connectWs, http, startDaemon } from './helpers/daemon.ts';

const ev = (objname: string, eventtype: string, id?: string) => ({ objtype: 'TBNODESTATE', objname, eventtype, ...(id ? { id } : {}) });
const BOOT = ['SHUTDOWN', 'PXEBOOTING', 'BOOTING', 'TBSETUP', 'ISUP'];

async function daemonWithNodes(t: { after: (fn: () => unknown) => void }, nodes: string[]): Promise<{ d: Daemon; c: WsClient }> {
  const d = await startDaemon();
  t.after(() => d.stop());
  const c = await connectWs(d);
  t.after(() => c.close());
  const r = await c.request('admin', { action: 'node.add', args: { nodes } });
  assert.equal(r.ok, true, JSON.stringify(r));
  return { d, c };
}

const head = async (d: Daemon): Promise<number> => (await http(d, 'GET', '/healthz', undefined, null)).json.seq;

/** Every logged event, oldest first, read back through a fresh `subscribe` since 0. */
async function wholeLog(d: Daemon): Promise<any[]> {
  const last = await head(d);
  const c = await connectWs(d);
  try {
    const r = await c.request('subscribe', { since: 0 });
    assert.equal(r.ok, true, JSON.stringify(r));
    if (last > 0) await c.push((m) => m.type === 'event' && m.seq === last);
    return c.pushes.filter((m) => m.type === 'event');
  } finally {
    c.close();
  }
}

test('only /healthz is open; everything else is 401 without a token (SPEC §3)', async (t) => {
  const { d } = await daemonWithNodes(t, ['pc1']);
  assert.equal((await http(d, 'GET', '/healthz', undefined, null)).status, 200);
  for (const [method, path, body] of [
    ['GET', '/v1/nodes'], ['GET', '/v1/nodes/pc1'], ['GET', '/v1/nodes/pc1/history'], ['GET', '/metrics'],
    ['GET', '/'], ['GET', '/v1/nosuch'], ['POST', '/v1/events', ev('pc1', 'ISUP')],
  ] as [string, string, unknown?][]) {
    for (const token of [null, 'st_not-a-token']) {
      const r = await http(d, method, path, body, token);
      assert.equal(r.status, 401, `${method} ${path} with token ${token}`);
      assert.equal(r.json?.error?.code, 'E_UNAUTHORIZED', `${method} ${path}: ${r.text}`);
    }
  }
  await assert.rejects(connectWs(d, null), /401/);
  await assert.rejects(connectWs(d, 'st_not-a-token'), /401/);
  assert.equal(await head(d), 0, 'nothing was applied');
});

test('HTTP events, single and array; an array with an unknown node is refused whole (SPEC §3)', async (t) => {
  const { d } = await daemonWithNodes(t, ['pc1', 'pc2']);
  const one = await http(d, 'POST', '/v1/events', ev('pc1', 'SHUTDOWN'));
  assert.equal(one.status, 200, one.text);
  assert.deepEqual(one.json, { accepted: [{ seq: 1, duplicate: false }] });

  const many = await http(d, 'POST', '/v1/events', [ev('pc1', 'PXEBOOTING'), ev('pc2', 'SHUTDOWN'), ev('pc2', 'PXEBOOTING')]);
  assert.equal(many.status, 200, many.text);
  assert.deepEqual(many.json.accepted.map((a: any) => a.seq), [2, 3, 4]);

  const bad = await http(d, 'POST', '/v1/events', [ev('pc1', 'BOOTING'), ev('nope', 'ISUP'), ev('pc2', 'BOOTING')]);
  assert.equal(bad.status, 404, bad.text);
  assert.equal(bad.json.error.code, 'E_UNKNOWN_NODE');
  assert.equal(await head(d), 4, 'no seq consumed');
  const pc1 = await http(d, 'GET', '/v1/nodes/pc1');
  assert.equal(pc1.json.state, 'PXEBOOTING', 'the first event of the refused array was not applied');

  const malformed = await http(d, 'POST', '/v1/events', [ev('pc1', 'BOOTING'), { objtype: 'TBNODESTATE', objname: 'pc1' }]);
  assert.equal(malformed.status, 400, malformed.text);
  assert.equal(await head(d), 4);

  const next = await http(d, 'POST', '/v1/events', ev('pc1', 'BOOTING'));
  assert.equal(next.json.accepted[0].seq, 5, 'the next accepted event takes the next seq: no gap');
});

test('WebSocket events; seq strictly increasing and gap-free; `id` is idempotent across transports (SPEC §2)', async (t) => {
  const { d, c } = await daemonWithNodes(t, ['pc1', 'pc2']);
  const seqs: number[] = [];
  for (const s of BOOT) {
    const r = await c.request('event', { event: ev('pc1', s) });
    assert.equal(r.ok, true, JSON.stringify(r));
    assert.equal(r.duplicate, false);
    seqs.push(r.seq);
  }
  for (let i = 1; i < seqs.length; i++) assert.ok(seqs[i]! > seqs[i - 1]!, `seq ${seqs[i]} after ${seqs[i - 1]}`);

  // Concurrent senders on both transports: still one total order.
  const sends = await Promise.all([
    ...BOOT.map((s) => http(d, 'POST', '/v1/events', ev('pc2', s)).then((r) => r.json.accepted[0].seq as number)),
    ...BOOT.map((s) => c.request('event', { event: ev('pc1', s) }).then((r) => r.seq as number)),
  ]);
  assert.equal(new Set(sends).size, sends.length, 'no two events share a seq');

  const first = await c.request('event', { event: ev('pc2', 'SHUTDOWN', 'boot-42') });
  const before = await head(d);
  const again = await http(d, 'POST', '/v1/events', ev('pc2', 'SHUTDOWN', 'boot-42'));
  const third = await c.request('event', { event: ev('pc2', 'SHUTDOWN', 'boot-42') });
  assert.deepEqual(again.json.accepted, [{ seq: first.seq, duplicate: true }]);
  assert.equal(third.seq, first.seq);
  assert.equal(third.duplicate, true);
  assert.equal(await head(d), before, 'a duplicate is not applied again');

  const log = await wholeLog(d);
  assert.deepEqual(log.map((m) => m.seq), Array.from({ length: before }, (_, i) => i + 1), 'gap-free from 1');
  assert.equal(log.filter((m) => m.event.id === 'boot-42').length, 1);
  for (const m of log) assert.equal(typeof m.time, 'number');
});

test('a subscriber that drops resumes with `since`: the missed events, then live, no gap, no duplicate (SPEC §3)', async (t) => {
  const { d } = await daemonWithNodes(t, ['pc1', 'pc2']);
  const filter = { objtype: ['TBNODESTATE'], objname: ['pc1'] };
  const send = async (node: string, state: string): Promise<number> => {
    const r = await http(d, 'POST', '/v1/events', ev(node, state));
    assert.equal(r.status, 200, r.text);
    return r.json.accepted[0].seq;
  };
  const events = (c: WsClient) => c.pushes.filter((m) => m.type === 'event');

  const a = await connectWs(d);
  const sa = await a.request('subscribe', { filter });
  assert.equal(sa.ok, true, JSON.stringify(sa));
  let lastPc1 = 0;
  for (const s of BOOT) {
    await send('pc2', s);
    lastPc1 = await send('pc1', s);
  }
  await a.push((m) => m.type === 'event' && m.seq === lastPc1);
  for (const m of events(a)) {
    assert.equal(m.sub, sa.sub);
    assert.equal(m.event.objname, 'pc1', 'the filter holds');
  }
  const seenA = events(a).map((m) => m.seq);
  const lastSeen = seenA[seenA.length - 1]!;
  a.ws.terminate(); // dropped, not a polite close

  for (const s of BOOT) {
    await send('pc1', s);
    await send('pc2', s);
  }
  const b = await connectWs(d);
  t.after(() => b.close());
  // Live events race the replay: the seam between them must hold.
  const racing = [send('pc1', 'SHUTDOWN'), send('pc2', 'SHUTDOWN'), send('pc1', 'PXEBOOTING')];
  const sb = await b.request('subscribe', { filter, since: lastSeen });
  assert.equal(sb.ok, true, JSON.stringify(sb));
  await Promise.all(racing);
  const live = await send('pc1', 'BOOTING');
  await b.push((m) => m.type === 'event' && m.seq === live);
  await new Promise((r) => setTimeout(r, 200)); // anything extra would show up now

  const seenB = events(b).map((m) => m.seq);
  const log = await wholeLog(d);
  const expected = log.filter((m) => m.event.objtype === 'TBNODESTATE' && m.event.objname === 'pc1').map((m) => m.seq);
  assert.deepEqual([...seenA, ...seenB], expected, 'A then B saw every pc1 state exactly once, in order');
  assert.ok(seenB[0]! > lastSeen);
  for (const m of events(b)) {
    const logged = log.find((l) => l.seq === m.seq);
    assert.deepEqual(m.event, logged.event);
    assert.equal(m.time, logged.time);
  }
});

// Reads under load: memory runs ahead of the disk while batches are in flight
// on the writer thread; every read must show a committed, consistent view.
test('reads during an event stream: history is never empty, newest first, never past the committed head (SPEC §3, §5)', async (t) => {
  const { d, c } = await daemonWithNodes(t, ['pc1']);
  const TOTAL = 30_000;
  let acked = 0;
  c.ws.on('message', (data) => { if (JSON.parse(String(data)).re?.toString().startsWith('r')) acked++; });
  // Sent in steady chunks, so batches are in flight the whole time the reads run.
  let sent = 0;
  const sender = (async () => {
    while (sent < TOTAL) {
      for (const end = Math.min(TOTAL, sent + 300); sent < end; sent++) {
        c.ws.send(JSON.stringify({ op: 'event', id: `r${sent}`, event: ev('pc1', BOOT[sent % BOOT.length]!) }));
      }
      await new Promise((r) => setTimeout(r, 3));
    }
  })();
  let reads = 0;
  while (sent < TOTAL || acked < TOTAL) {
    const [h, n] = await Promise.all([http(d, 'GET', '/v1/nodes/pc1/history?limit=5'), http(d, 'GET', '/v1/nodes/pc1')]);
    reads++;
    assert.equal(h.status, 200, h.text);
    assert.equal(n.status, 200, n.text);
    const events = h.json.events as { seq: number; event: { eventtype: string } }[];
    assert.ok(events.length > 0, `history of pc1 is empty after ${acked} acknowledgements`);
    const seqs = events.map((e) => e.seq);
    assert.deepEqual(seqs, [...seqs].sort((a, b) => b - a), 'newest first');
    assert.ok(seqs[0]! <= (await head(d)), 'nothing newer than the committed head');
  }
  await sender;
  t.diagnostic(`${reads} reads during the stream`);
  assert.ok(reads >= 5, `only ${reads} reads overlapped the stream`);
});
