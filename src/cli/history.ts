/** `stated history NODE`: the node's events from the log, newest last, with readable times (SPEC §1). */
import { defineCommand } from 'citty';
import type { LoggedEvent } from '../types.ts';
import { connArgs, fail, printJson, usage } from './common.ts';
import { eventLine } from './eventline.ts';
import { getJson } from './http.ts';

/** The most the daemon returns in one reply (GET /v1/nodes/NODE/history). */
const MAX_LIMIT = 10_000;

export default defineCommand({
  meta: { name: 'history', description: "a node's events from the log, newest last, with readable times" },
  args: {
    node: { type: 'positional', required: true, description: 'NODE' },
    limit: { type: 'string', description: `the newest N events (1..${MAX_LIMIT}, default 100)` },
    json: { type: 'boolean', description: 'print the events as JSON (times in epoch ms)' },
    ...connArgs,
  },
  async run({ args }) {
    const limit = args.limit === undefined ? 100 : Number(args.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) usage(`--limit: expected an integer 1..${MAX_LIMIT}, got ${JSON.stringify(args.limit)}`);
    const node = args._[0]!;
    const r = await getJson<{ events: LoggedEvent[] }>(args, `/v1/nodes/${encodeURIComponent(node)}/history?limit=${limit}`).catch(fail);
    // The daemon answers newest first; an operator reads a log top to bottom.
    const events = [...r.events].sort((a, b) => a.seq - b.seq);
    if (args.json) printJson(events);
    else if (events.length === 0) process.stdout.write(`no events for ${node}\n`);
    else {
      const now = Date.now();
      process.stdout.write(events.map((le) => eventLine(le, now)).join('\n') + '\n');
    }
  },
});
