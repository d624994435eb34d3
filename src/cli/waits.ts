/** `stated waits list|cancel`: the open waits on the daemon (SPEC §1, §3 GET /v1/waits). */
import { defineCommand } from 'citty';
import { cancelWaitById, listWaits } from '../client/index.ts';
import { name } from '../protocol.ts';
import { connArgs, printJson, table, withConnection } from './common.ts';
import { usage } from './output.ts';

/** 3m12s, 2h05m, 4d01h: an age an operator reads at a glance. */
export function age(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${String(Math.floor(s / 60) % 60).padStart(2, '0')}m`;
  return `${Math.floor(s / 86400)}d${String(Math.floor(s / 3600) % 24).padStart(2, '0')}h`;
}

/** At most n names, then how many more. */
function some(list: string[], n = 4): string {
  if (list.length === 0) return '-';
  return list.length <= n ? list.join(' ') : `${list.slice(0, n).join(' ')} +${list.length - n}`;
}

const list = defineCommand({
  meta: { name: 'list', description: 'the open waits: id, states, nodes done/failed/remaining, owner, age' },
  args: { json: { type: 'boolean', description: 'print JSON (times in epoch ms)' }, ...connArgs },
  async run({ args }) {
    if (args._.length > 0) usage('list takes no arguments');
    const waits = await withConnection(args, (conn) => listWaits(conn));
    if (args.json) return printJson({ waits });
    const now = Date.now();
    const rows = waits.map((w) => [
      w.wait, w.states.join(','), `${w.done.length}/${w.failed.length}/${w.remaining.length}`,
      w.owner ?? '-', age(now - w.created), some(w.remaining),
    ]);
    process.stdout.write(table(['WAIT', 'STATES', 'DONE/FAILED/LEFT', 'OWNER', 'AGE', 'WAITING FOR'], rows));
  },
});

const cancel = defineCommand({
  meta: { name: 'cancel', description: 'end a wait (yours, or any with an operator token); its waiter is told it ended' },
  args: { wait: { type: 'positional', required: true, description: 'WAIT (an id from waits list)' }, ...connArgs },
  async run({ args }) {
    if (args._.length !== 1) usage('expected one WAIT');
    let id: string;
    try { id = name(args.wait, 'wait'); } catch { return usage(`bad wait id ${args.wait}`); }
    await withConnection(args, (conn) => cancelWaitById(conn, id));
    process.stdout.write(`cancelled ${id}\n`);
  },
});

export default defineCommand({
  meta: { name: 'waits', description: 'the open waits: list, cancel' },
  subCommands: { list, cancel },
});
