/**
 * `stated simulate`: a fleet of simulated nodes in its own process. It
 * registers the nodes, connects as the power agent of those nodes, and
 * answers each action with a boot sequence (src/simulator/fleet.ts).
 */
import { randomBytes } from 'node:crypto';
import { defineCommand } from 'citty';
import type { Push } from '../client/index.ts';
import { makeLog } from '../log.ts';
import { Fleet } from '../simulator/fleet.ts';
import type { NodeView } from '../views.ts';
import { admin, connArgs } from './common.ts';
import { fail, usage } from './output.ts';
import { durableConnection } from './waitforstate.ts';

/** The fleet's own log lines, in the daemon's format: it runs beside the daemon, often into one journal. */
const log = makeLog('text');

function fraction(v: string, flag: string): number {
  const n = Number(v);
  if (!(n >= 0 && n <= 1)) usage(`${flag} must be a fraction from 0 to 1`);
  return n;
}

export default defineCommand({
  meta: { name: 'simulate', description: 'run simulated nodes as a power agent' },
  args: {
    nodes: { type: 'string', description: 'how many nodes', default: '10' },
    prefix: { type: 'string', description: 'node name prefix', default: 'sim' },
    type: { type: 'string', description: 'node type', default: 'sim' },
    project: { type: 'string', description: 'project of the nodes it adds' },
    'fail-rate': { type: 'string', description: 'fraction of nodes whose power control fails', default: '0' },
    'wedge-rate': { type: 'string', description: 'fraction of nodes that hang in BOOTING', default: '0' },
    speed: { type: 'string', description: 'boot speed multiplier', default: '1' },
    ...connArgs,
  },
  async run({ args }) {
    const count = Number(args.nodes);
    if (!Number.isInteger(count) || count < 1 || count > 10_000) usage('--nodes must be 1..10000');
    const speed = Number(args.speed);
    if (!(speed > 0)) usage('--speed must be > 0');
    const conn = await durableConnection(args);
    // Each report has an id, so one resent across a daemon restart is applied once.
    const run = randomBytes(4).toString('hex');
    let n = 0;
    const fleet = new Fleet(
      (node, state) => conn.request('event', { event: { objtype: 'TBNODESTATE', objname: node, eventtype: state, id: `sim-${run}-${++n}` } }, { retry: true }),
      { failRate: fraction(args['fail-rate'], '--fail-rate'), wedgeRate: fraction(args['wedge-rate'], '--wedge-rate'), speed, stepMs: 100 },
    );
    const ids = Array.from({ length: count }, (_, i) => `${args.prefix}${i + 1}`);
    try {
      const st = await conn.request<{ nodes: NodeView[] }>('status');
      const known = new Set(st.nodes.map((n) => n.node));
      const missing = ids.filter((id) => !known.has(id));
      if (missing.length > 0) {
        await admin(conn, 'node.add', { nodes: missing, type: args.type, mode: 'NORMALv2', state: 'ISUP', ...(args.project ? { project: args.project } : {}) });
      }
      // It drives exactly the nodes it simulates (SPEC §3): fleets of one type side by side never get each other's.
      const register = (): Promise<unknown> => conn.request('registerAgent', { nodes: ids });
      await register();
      conn.onDrop((code, reason) => log(`lost the daemon (${code}${reason ? ` ${reason}` : ''}); reconnecting`, 'warn'));
      conn.onReconnect(() => {
        log('reconnected to the daemon; registering as the power agent again');
        void register().catch((err: unknown) => log(`registerAgent failed: ${(err as Error).message}`, 'error'));
      });
    } catch (err) {
      fail(err);
    }
    conn.onPush((p: Push) => {
      if (p.type !== 'action') return;
      const a = p as unknown as { action: string; node: string; command: string; attempt: number; mode: string; nextMode: string | null };
      void fleet.run({ id: a.action, node: a.node, type: args.type, command: a.command, requested: a.command, attempt: a.attempt, mode: a.mode, nextMode: a.nextMode })
        .then((r) => conn.request('actionResult', { action: a.action, ok: r.ok, ...(r.message ? { message: r.message } : {}) }))
        .catch(() => {});
    });
    const wedged = ids.filter((id) => fleet.wedges(id)).length;
    const failing = ids.filter((id) => fleet.failsPower(id)).length;
    log(`simulating ${count} nodes ${ids[0]}..${ids[ids.length - 1]} (type ${args.type}; ${wedged} wedge, ${failing} fail to power)`);
    const stop = (): void => {
      fleet.stop();
      conn.close();
      process.exit(0);
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  },
});
