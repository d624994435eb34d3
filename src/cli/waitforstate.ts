/** `stated waitForState`: the seed's example program, as a CLI (SPEC §1). */
import { defineCommand } from 'citty';
import { Connection, StateWait, defaultToken } from '../client/index.ts';
import { name } from '../protocol.ts';
import { type ConnFlags, connArgs, daemonUrl, names } from './common.ts';
import { fail, usage } from './output.ts';
import { watch } from './progress.ts';

/** A connection that rides out daemon restarts: a wait must outlive them. */
export async function durableConnection(flags: ConnFlags): Promise<Connection> {
  const conn = new Connection({ url: daemonUrl(flags.url), token: flags.token ?? defaultToken(), reconnect: true });
  try {
    await conn.connect();
  } catch (err) {
    fail(err);
  }
  return conn;
}

/** Parses a seconds flag. */
export function seconds(v: string, flag: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) usage(`${flag} must be a number of seconds > 0`);
  return n;
}

/** A waiting command's wait outlives its -t (a reconnect may need it), at least an hour. */
export function waitTtl(timeoutS: number): number {
  return Math.max(3600, Math.ceil(timeoutS * 2));
}

export const waitArgs = {
  timeout: { type: 'string', alias: 't', description: 'give up after this many seconds' },
  update: { type: 'string', alias: 'u', description: 'print a status line every this many seconds', default: '10' },
  json: { type: 'boolean', description: 'print the outcome as JSON' },
} as const;

export default defineCommand({
  meta: { name: 'waitForState', description: 'wait until every node has passed the states, in order' },
  args: {
    nodes: { type: 'positional', required: false, description: 'NODE...' },
    states: { type: 'string', alias: 's', description: 'comma-separated states, in order', default: 'ISUP' },
    ...waitArgs,
    ...connArgs,
  },
  async run({ args }) {
    const nodes = names(args._, 'NODE').map((n) => { try { return name(n, 'node'); } catch { return usage(`bad node name ${n}`); } });
    const states = args.states.split(',').map((s) => s.trim()).filter(Boolean);
    if (states.length === 0) usage('-s needs at least one state');
    const timeoutS = seconds(args.timeout ?? '300', '-t');
    // Every flag is checked before the wait exists: a usage error leaves nothing behind.
    const updateS = seconds(args.update, '-u');
    const conn = await durableConnection(args);
    try {
      const w = await StateWait.init(conn, states, nodes, { ttl: waitTtl(timeoutS) });
      // From here on every event counts: a script may start its actions (or
      // signal us) once it reads this line, so it comes after the signal handlers.
      const onWatching = (): void => { process.stderr.write(`registered wait ${w.id} at seq ${w.seq}\n`); };
      const code = await watch(w, { timeoutS, updateS, json: args.json === true, onWatching });
      conn.close();
      process.exit(code);
    } catch (err) {
      fail(err);
    }
  },
});
