/** `stated audit`: who did what, when — commands, token and definition changes (operator). */
import { defineCommand } from 'citty';
import type { AuditRecord } from '../store.ts';
import { clock } from '../timefmt.ts';
import { admin, connArgs, printJson, table, withConnection } from './common.ts';
import { usage } from './output.ts';

export default defineCommand({
  meta: { name: 'audit', description: 'the audit log, newest first' },
  args: {
    limit: { type: 'string', description: 'how many records', default: '50' },
    after: { type: 'string', description: 'only records with a larger id' },
    json: { type: 'boolean', description: 'print JSON (times in epoch ms)' },
    ...connArgs,
  },
  async run({ args }) {
    const limit = Number(args.limit);
    if (!Number.isInteger(limit) || limit < 1) usage('--limit must be a whole number >= 1');
    const records = await withConnection(args, (conn) => admin<AuditRecord[]>(conn, 'audit.list', { limit, after: Number(args.after ?? 0) }));
    if (args.json) return printJson(records);
    const now = Date.now();
    const rows = records.map((r) => [String(r.id), clock(r.time, now), `${r.actor} (${r.role})`, r.action, JSON.stringify(r.detail)]);
    process.stdout.write(table(['ID', 'TIME', 'WHO', 'WHAT', 'DETAIL'], rows));
  },
});
