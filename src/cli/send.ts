/** `stated send`: one event, as a node's boot scripts send it (SPEC §1, §2). */
import { defineCommand } from 'citty';
import { connArgs, withConnection } from './common.ts';
import { argumentError, usage } from './output.ts';

export default defineCommand({
  meta: { name: 'send', description: 'send one event: NODE STATE, or --objtype --objname --eventtype' },
  args: {
    node: { type: 'positional', required: false, description: 'NODE (objtype TBNODESTATE)' },
    state: { type: 'positional', required: false, description: 'STATE: the state it entered' },
    objtype: { type: 'string', description: 'TBNODESTATE, TBCOMMAND, TBCONTROL, ...' },
    objname: { type: 'string', description: 'the node (or comma-separated nodes for TBCOMMAND)' },
    eventtype: { type: 'string', description: 'the state, command or control event' },
    id: { type: 'string', description: 'client event id: a resend with the same id is applied once' },
    message: { type: 'string', description: 'text carried with the event (NOTIFY, TBFAILED)' },
    ...connArgs,
  },
  async run({ args }) {
    const flags = [args.objtype, args.objname, args.eventtype];
    const positional = args._.length;
    let event: Record<string, string>;
    if (flags.some((f) => f !== undefined)) {
      // Two ways to name one event; mixing them would make one silently win.
      if (positional > 0) argumentError('give NODE STATE or --objtype/--objname/--eventtype, not both');
      if (flags.some((f) => f === undefined || f === '')) usage('--objtype, --objname and --eventtype go together');
      event = { objtype: args.objtype!, objname: args.objname!, eventtype: args.eventtype! };
    } else {
      if (positional !== 2) argumentError('expected NODE STATE (or --objtype T --objname O --eventtype E)');
      event = { objtype: 'TBNODESTATE', objname: args._[0]!, eventtype: args._[1]! };
    }
    if (args.id !== undefined) event.id = args.id;
    if (args.message !== undefined) event.message = args.message;
    const r = await withConnection(args, (conn) =>
      conn.request<{ seq: number; duplicate: boolean; valid?: boolean; nodes?: Record<string, string> }>('event', { event }));
    process.stdout.write(`seq ${r.seq}${r.duplicate ? ' (duplicate)' : ''}\n`);
    // A typo'd state is applied (as Emulab does), so say so here rather than only in the daemon's log.
    if (r.valid === false) {
      process.stdout.write(`valid: false (${event.objname}'s op mode has no transition to ${event.eventtype} from its last state; applied, NOTIFY INVALID_TRANSITION raised)\n`);
    }
    // A command's per-node verdict matters to whoever sent it (joined: a reboot was already under way).
    for (const [node, verdict] of Object.entries(r.nodes ?? {})) process.stdout.write(`${node}: ${verdict}\n`);
  },
});
