/** `stated status`: where each node is, since when, and what stated will do next (SPEC §1). */
import { defineCommand } from 'citty';
import type { NodeView } from '../views.ts';
import { connArgs, printJson, table, withConnection } from './common.ts';
import { clock, duration } from '../timefmt.ts';
import { EXIT } from './output.ts';

function timeoutCell(n: NodeView, now: number): string {
  if (!n.timeout) return '-';
  const left = n.timeout.at - now;
  const action = n.timeout.action === '' ? 'none' : n.timeout.action;
  return left >= 0 ? `${action} in ${duration(left)}` : `${action} ${duration(-left)} overdue`;
}

function rebootCell(n: NodeView): string {
  const r = n.reboot;
  if (!r.command) return String(r.attempts);
  const how = r.gaveUp ? ', gave up' : r.waitingForDriver ? ', waiting for its driver' : r.inFlight ? ', in flight' : '';
  return `${r.attempts} (${r.command}${how})`;
}

/** True when stated gave up on the node (TBFAILED) and nobody has cleared it yet. */
function gaveUp(n: NodeView): boolean {
  return n.reboot.gaveUp || n.state === 'TBFAILED';
}

/** The status table. SINCE is the daemon's clock; a node that never reported a state has none. */
function statusTable(nodes: NodeView[], now: number): string {
  const rows = nodes.map((n) => [
    n.node, n.mode, `${n.state ?? '-'}${n.reboot.gaveUp ? ' (gave up)' : ''}`, n.state === null ? '-' : clock(n.since, now),
    timeoutCell(n, now), rebootCell(n), n.nextMode ?? '-',
  ]);
  return table(['NODE', 'MODE', 'STATE', 'SINCE', 'TIMEOUT', 'REBOOTS', 'NEXT MODE'], rows);
}

export default defineCommand({
  meta: { name: 'status', description: 'mode, state, since when, pending timeout, reboot attempts, next op mode' },
  args: {
    nodes: { type: 'positional', required: false, description: 'NODE... to show (default: all)' },
    json: { type: 'boolean', description: "print the reply's nodes array as JSON (times in epoch ms)" },
    state: { type: 'string', description: 'only nodes in this state' },
    mode: { type: 'string', description: 'only nodes in this op mode' },
    type: { type: 'string', description: 'only nodes of this type' },
    project: { type: 'string', description: 'only nodes of this project' },
    failed: { type: 'boolean', description: 'only nodes stated gave up on (TBFAILED)' },
    ...connArgs,
  },
  async run({ args }) {
    // Unknown nodes do not hide the known ones: their rows first, then one error line each (exit 1).
    const wanted = args._.length > 0 ? { nodes: [...args._], partial: true } : {};
    const r = await withConnection(args, (conn) => conn.request<{ now: number; nodes: NodeView[]; unknown?: string[] }>('status', wanted));
    const nodes = r.nodes.filter((n) => (args.state === undefined || n.state === args.state)
      && (args.mode === undefined || n.mode === args.mode) && (args.type === undefined || n.type === args.type)
      && (args.project === undefined || n.project === args.project) && (!args.failed || gaveUp(n)));
    if (args.json) printJson(nodes);
    else if (nodes.length === 0) process.stdout.write(r.nodes.length === 0 ? 'no nodes\n' : 'no nodes match\n');
    else process.stdout.write(statusTable(nodes, r.now));
    const unknown = r.unknown ?? [];
    for (const id of unknown) process.stderr.write(`stated: E_UNKNOWN_NODE: unknown node ${id}\n`);
    if (unknown.length > 0) process.exit(EXIT.FAILED);
  },
});
