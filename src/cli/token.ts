/** `stated token create|list|revoke`: bearer tokens and their roles (SPEC §1, §5). Admin only. */
import { defineCommand } from 'citty';
import { clock } from '../timefmt.ts';
import { admin, connArgs, printJson, table, withConnection } from './common.ts';
import { usage } from './output.ts';

interface TokenInfo { id: string; role: string; node: string | null; project: string | null; created: number; revoked: number | null }

const create = defineCommand({
  meta: { name: 'create', description: 'create a token and print it alone on stdout (it is shown only once)' },
  args: {
    role: { type: 'enum', options: ['admin', 'operator', 'user', 'node'], required: true, description: 'what the token may do' },
    node: { type: 'string', description: 'the one node a node token speaks for' },
    project: { type: 'string', description: "the project whose nodes a user token may command" },
    ...connArgs,
  },
  async run({ args }) {
    // Caught here, not by the daemon, so each mistake is a usage error (exit 64).
    // citty 0.2 skips `required` for enum args, hence the first check.
    if (!args.role) usage('--role is required: admin, operator, user or node');
    if (args.role === 'node' && !args.node) usage('a node token needs --node');
    if (args.role === 'user' && !args.project) usage('a user token needs --project');
    const r = await withConnection(args, (conn) => admin<{ token: string; id: string }>(conn, 'token.create', {
      role: args.role, node: args.node, project: args.project,
    }));
    // Alone on stdout, so scripts can capture it: T=$(stated token create --role node --node pc7).
    process.stdout.write(`${r.token}\n`);
  },
});

const list = defineCommand({
  meta: { name: 'list', description: 'tokens by id (never the secrets: only their hashes are kept)' },
  args: { json: { type: 'boolean', description: 'print JSON (times in epoch ms)' }, ...connArgs },
  async run({ args }) {
    const tokens = await withConnection(args, (conn) => admin<TokenInfo[]>(conn, 'token.list'));
    if (args.json) return printJson(tokens);
    const now = Date.now();
    const when = (t: number | null): string => (t === null ? '-' : clock(t, now));
    const rows = tokens.map((t) => [t.id, t.role, t.node ?? '-', t.project ?? '-', when(t.created), when(t.revoked)]);
    process.stdout.write(table(['ID', 'ROLE', 'NODE', 'PROJECT', 'CREATED', 'REVOKED'], rows));
  },
});

const revoke = defineCommand({
  meta: { name: 'revoke', description: "revoke a token by id: it is refused from then on" },
  args: { id: { type: 'positional', required: true, description: 'ID: a token id (from token list)' }, ...connArgs },
  async run({ args }) {
    const r = await withConnection(args, (conn) => admin<{ revoked: string }>(conn, 'token.revoke', { id: args.id }));
    process.stdout.write(`revoked ${r.revoked}\n`);
  },
});

export default defineCommand({
  meta: { name: 'token', description: 'bearer tokens: create, list, revoke' },
  subCommands: { create, list, revoke },
});
