/** `stated waits list|cancel`: the open waits on the daemon (SPEC §1, §3 GET /v1/waits). */
import { defineCommand } from 'citty';
import { cancelWaitById, listWaits } from '../client/index.ts';
import { name } from '../protocol.ts';
import { duration } from '../timefmt.ts';
import { connArgs, printJson, table, withConnection } from './common.ts';
import { usage } from './output.ts';

/** At most n names, then how many more. */
function some(list: string[], n = 4): string {
  if (list.length === 0) return '-';
  return list.length <= n ? list.join(' ') : `${list.slice(0, n).join(' ')} +${list.length - n}`;
}

const list = defineCommand({
  meta: { name: 'list', description: 'the open waits: id, states, nodes done/failed/remaining, owner, age' },
  args: { json: { type: 'boolean', description: 'print JSON (times in epoch ms)' }, ...connArgs },
  async run({ args }) {
    const waits = await withConnection(args, (conn) => listWaits(conn));
    if (args.json) return printJson({ waits });
    const now = Date.now();
    const rows = waits.map((w) => [
      w.wait, w.states.join(','), `${w.done.length}/${w.failed.length}/${w.remaining.length}`,
      w.owner ?? '-', duration(now - w.created), some(w.remaining),
    ]);
    process.stdout.write(table(['WAIT', 'STATES', 'DONE/FAILED/LEFT', 'OWNER', 'AGE', 'WAITING FOR'], rows));
  },
});

const cancel = defineCommand({
  meta: { name: 'cancel', description: 'end a wait (yours, or any with an operator token); its waiter is told it ended' },
  args: { wait: { type: 'positional', required: true, description: 'WAIT (an id from waits list)' }, ...connArgs },
  async run({ args }) {
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
