/**
 * `stated node_reboot`: asks stated to reboot nodes. The wait is registered
 * in the same request as the command (initStateWait with `command`), so no
 * transition can slip between them; stated does the reboot and the retries.
 */
import { defineCommand } from 'citty';
import { StateWait } from '../client/index.ts';
import { connArgs, names } from './common.ts';
import { EXIT, argumentError, fail, usage } from './output.ts';
import { durableConnection, seconds, waitArgs, waitTtl } from './waitforstate.ts';
import { projectViews, refusalReason } from './bringup.ts';
import { watch } from './progress.ts';

export default defineCommand({
  meta: { name: 'node_reboot', description: 'reboot nodes through stated and wait for them' },
  args: {
    nodes: { type: 'positional', required: false, description: 'NODE... (or -e PROJECT)' },
    wait: { type: 'boolean', alias: 'w', description: 'wait until the nodes are back up (SHUTDOWN then ISUP)' },
    'no-wait': { type: 'boolean', alias: 'n', description: 'send the command and return at once' },
    force: { type: 'boolean', alias: 'f', description: 'reboot even if a reboot is in progress (admin only)' },
    project: { type: 'string', alias: 'e', description: 'every node of this project' },
    ...waitArgs,
    ...connArgs,
  },
  async run({ args }) {
    // Flags first: a usage error must not have sent a REBOOT.
    const timeoutS = seconds(args.timeout ?? (args.wait ? '1800' : '300'), '-t');
    const updateS = seconds(args.update, '-u');
    if (args.wait && args['no-wait']) usage('give -w (wait until up) or -n (do not wait), not both');
    if (args.project && args._.length > 0) argumentError('give either -e PROJECT or nodes, not both');
    const named = args.project ? [] : names(args._, 'NODE');
    const conn = await durableConnection(args);
    try {
      const nodes = args.project ? (await projectViews(conn, args.project)).map((n) => n.node) : named;
      const force = args.force === true;
      if (args['no-wait']) {
        const r = await conn.request<{ nodes: Record<string, string>; refusals?: Record<string, string> }>('command', { command: 'REBOOT', nodes, force });
        report(r.nodes, r.refusals);
        conn.close();
        // Not waiting does not make a refusal a success: that node will not reboot.
        process.exit(Object.keys(r.refusals ?? {}).length > 0 ? EXIT.FAILED : EXIT.OK);
      }
      const states = args.wait ? ['SHUTDOWN', 'ISUP'] : ['SHUTDOWN'];
      const w = await StateWait.init(conn, states, nodes, { command: 'REBOOT', force, ttl: waitTtl(timeoutS) });
      if (w.command) report(w.command.nodes, w.command.refusals);
      // A refused node will not go down for us: stop waiting for it; the summary lists it failed, with its code.
      const refused = Object.fromEntries(Object.entries(w.command?.refusals ?? {}).map(([n, why]) => [n, refusalReason(why)]));
      for (const n of Object.keys(refused)) await w.cancelWait(n);
      const opts = { timeoutS, updateS, json: args.json === true, refused };
      const code = await watch(w, opts);
      conn.close();
      process.exit(code);
    } catch (err) {
      fail(err);
    }
  },
});

function report(verdicts: Record<string, string>, refusals: Record<string, string> = {}): void {
  const joined = Object.keys(verdicts).filter((n) => verdicts[n] === 'joined');
  const accepted = Object.keys(verdicts).filter((n) => verdicts[n] === 'accepted');
  if (accepted.length > 0) process.stderr.write(`rebooting ${accepted.length}: ${accepted.join(' ')}\n`);
  if (joined.length > 0) process.stderr.write(`already rebooting, joined ${joined.length}: ${joined.join(' ')}\n`);
  for (const [n, why] of Object.entries(refusals)) process.stderr.write(`refused ${n}: ${why}\n`);
}
