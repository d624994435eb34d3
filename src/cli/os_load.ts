/** `stated os_load`: set the next op mode, reboot through stated, wait for RELOADDONE (SPEC §1). */
import { defineCommand } from 'citty';
import { StateWait } from '../client/index.ts';
import type { NodeView } from '../views.ts';
import { admin, connArgs, names } from './common.ts';
import { fail } from './output.ts';
import { durableConnection, seconds, waitArgs } from './waitforstate.ts';
import { watch } from './watch.ts';

export default defineCommand({
  meta: { name: 'os_load', description: 'reload nodes: next op mode, reboot, wait for RELOADDONE' },
  args: {
    nodes: { type: 'positional', required: false, description: 'NODE...' },
    mode: { type: 'string', alias: 'm', description: 'op mode to boot into', default: 'RELOAD' },
    ...waitArgs,
    ...connArgs,
  },
  async run({ args }) {
    const nodes = names(args._, 'NODE');
    const timeoutS = seconds(args.timeout ?? '1800', '-t');
    // Flags first: a usage error must not have changed a node's next mode.
    const updateS = seconds(args.update, '-u');
    const conn = await durableConnection(args);
    try {
      for (const node of nodes) await admin(conn, 'node.setNextMode', { node, mode: args.mode });
      const w = await StateWait.init(conn, ['RELOADDONE'], nodes, { command: 'REBOOT', ttl: Math.max(3600, Math.ceil(timeoutS * 2)) });
      const code = await watch(w, { timeoutS, updateS, json: args.json === true });
      if (!args.json) {
        const st = await conn.request<{ nodes: NodeView[] }>('status', { nodes });
        for (const n of st.nodes) process.stdout.write(`${n.node}: now ${n.mode}/${n.state ?? '-'}\n`);
      }
      conn.close();
      process.exit(code);
    } catch (err) {
      fail(err);
    }
  },
});
