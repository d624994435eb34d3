/** `stated status`: where each node is, since when, and what stated will do next (SPEC §1). */
import { defineCommand } from 'citty';
import type { NodeView } from '../views.ts';
import { connArgs, printJson, table, withConnection } from './common.ts';

/** A duration as an operator reads it: 12s, 3m05s, 2h03m, 4d07h. */
export function duration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  const two = (n: number): string => String(n).padStart(2, '0');
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${two(s % 60)}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${two(Math.floor(s / 60) % 60)}m`;
  return `${Math.floor(s / 86400)}d${two(Math.floor(s / 3600) % 24)}h`;
}

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

/** The status table; times are relative to the daemon's clock, so a skewed client clock does not lie. */
export function statusTable(nodes: NodeView[], now: number): string {
  const rows = nodes.map((n) => [
    n.node, n.mode, n.state ?? '-', `${duration(now - n.since)} ago`, timeoutCell(n, now), rebootCell(n), n.nextMode ?? '-',
  ]);
  return table(['NODE', 'MODE', 'STATE', 'SINCE', 'TIMEOUT', 'REBOOTS', 'NEXT MODE'], rows);
}

export default defineCommand({
  meta: { name: 'status', description: 'mode, state, since when, pending timeout, reboot attempts, next op mode' },
  args: {
    nodes: { type: 'positional', required: false, description: 'nodes to show (default: all)' },
    json: { type: 'boolean', description: "print the reply's nodes array as JSON" },
    ...connArgs,
  },
  async run({ args }) {
    const wanted = args._.length > 0 ? { nodes: [...args._] } : {};
    const r = await withConnection(args, (conn) => conn.request<{ now: number; nodes: NodeView[] }>('status', wanted));
    if (args.json) printJson(r.nodes);
    else if (r.nodes.length === 0) process.stdout.write('no nodes\n');
    else process.stdout.write(statusTable(r.nodes, r.now));
  },
});
