/**
 * `stated watch`: the live event stream, one line per event with a readable
 * time, until Ctrl-C (SPEC §1). It rides the WebSocket `subscribe` (SPEC §3)
 * and, when the link drops (a daemon restart), resubscribes from the last seq
 * it printed: no gap, no duplicate.
 *
 * (src/cli/progress.ts is the progress display of waitForState, node_reboot and os_load.)
 */
import { defineCommand } from 'citty';
import { Connection, defaultToken, type Push } from '../client/index.ts';
import { StatedError } from '../errors.ts';
import type { LoggedEvent } from '../types.ts';
import { connArgs, daemonUrl, fail, usage } from './common.ts';
import { eventLine } from './eventline.ts';
import type { Filter } from '../hub.ts';


const KEYS: Record<string, keyof Filter> = { objtype: 'objtype', objname: 'objname', node: 'objname', eventtype: 'eventtype' };

/** `objtype=TBNODESTATE,TBFAILED node=pc1 eventtype=ISUP` (terms separated by spaces or `;`) into a subscribe filter. */
export function parseFilter(text: string): Filter {
  const f: Filter = {};
  for (const term of text.split(/[\s;]+/).filter((t) => t !== '')) {
    const m = /^([a-z]+)=(.+)$/.exec(term);
    const key = m ? KEYS[m[1]!] : undefined;
    if (!m || !key) throw new StatedError('E_USAGE', `--filter: expected KEY=V[,V...] with KEY objtype, node or eventtype; got ${JSON.stringify(term)}`);
    const values = m[2]!.split(',').filter((v) => v !== '');
    if (values.length === 0) throw new StatedError('E_USAGE', `--filter: no value for ${m[1]}`);
    f[key] = [...(f[key] ?? []), ...values];
  }
  return f;
}

export default defineCommand({
  meta: { name: 'watch', description: 'tail the live event stream, one line per event, until Ctrl-C' },
  args: {
    filter: { type: 'string', description: 'only matching events: "objtype=T[,T] node=N[,N] eventtype=E[,E]"' },
    since: { type: 'string', description: 'replay the log after this seq first' },
    json: { type: 'boolean', description: 'one JSON object per event ({seq,time,event}, time in epoch ms)' },
    ...connArgs,
  },
  async run({ args }) {
    let filter: Filter = {};
    try {
      if (args.filter !== undefined) filter = parseFilter(args.filter);
    } catch (err) {
      usage((err as Error).message);
    }
    let last: number | undefined;
    if (args.since !== undefined) {
      last = Number(args.since);
      if (!Number.isInteger(last) || last < 0) usage(`--since: expected a seq (an integer >= 0), got ${JSON.stringify(args.since)}`);
    }
    const conn = new Connection({ url: daemonUrl(args.url), token: args.token ?? defaultToken(), reconnect: true });
    const stop = (): void => {
      conn.close();
      process.exit(0);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    conn.onPush((p: Push) => {
      if (p.type === 'ended') fail(new StatedError('E_HISTORY_COMPACTED', String((p.error as { message?: string } | undefined)?.message)));
      // A heartbeat says everything matching up to its seq was sent: a resume may start there.
      if (p.type === 'heartbeat' && typeof p.seq === 'number') last = Math.max(last ?? 0, p.seq);
      if (p.type !== 'event') return;
      const le = { seq: p.seq, time: p.time, event: p.event } as LoggedEvent;
      if (last !== undefined && le.seq <= last) return;
      last = le.seq;
      process.stdout.write(`${args.json ? JSON.stringify(le) : eventLine(le)}\n`);
    });
    const subscribe = async (): Promise<void> => {
      const r = await conn.request<{ seq: number }>('subscribe', { filter, ...(last === undefined ? {} : { since: last }) });
      // Live from the log's head: a resume after a drop starts there, not at a later head.
      last ??= r.seq;
    };
    // After a drop the daemon knows nothing of us: subscribe again from the last seq printed.
    conn.onReconnect(() => {
      process.stderr.write(`stated: reconnected; resuming after seq ${last ?? 'the head'}\n`);
      subscribe().catch(fail);
    });
    try {
      await conn.connect();
      await subscribe();
    } catch (err) {
      conn.close();
      fail(err);
    }
    await new Promise<never>(() => {}); // until Ctrl-C
  },
});
