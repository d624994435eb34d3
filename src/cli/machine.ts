/** `stated machine export|import|check`: the state-machine definitions (SPEC §1, §4). */
import { readFileSync } from 'node:fs';
import { defineCommand } from 'citty';
import type { Connection } from '../client/index.ts';
import { StatedError } from '../errors.ts';
import type { MachineDefinition } from '../types.ts';
import { admin, connArgs, printJson, withConnection } from './common.ts';
import { EXIT, fail } from './output.ts';

interface Problem { severity: 'error' | 'warning'; code: string; message: string }

// Emulab's column order: the daemon's SQL reader maps VALUES positionally.
const COLUMNS: { [T in keyof MachineDefinition]: (keyof MachineDefinition[T][number])[] } = {
  state_transitions: ['op_mode', 'state1', 'state2', 'label'],
  state_timeouts: ['op_mode', 'state', 'timeout', 'action'],
  state_triggers: ['node_id', 'op_mode', 'state', 'triggers'],
  mode_transitions: ['op_mode1', 'state1', 'op_mode2', 'state2', 'label'],
};
const TABLES = Object.keys(COLUMNS) as (keyof MachineDefinition)[];

function sqlValue(v: unknown): string {
  if (typeof v === 'number') return String(v);
  // MySQL quoting: backslash escapes as well as doubled quotes.
  const s = String(v ?? '').replace(/\\/g, '\\\\').replace(/'/g, "''").replace(/\n/g, '\\n').replace(/\r/g, '\\r');
  return `'${s}'`;
}

/** The definition as Emulab-style rows, one REPLACE per line, as database-fill.sql has them. */
export function definitionSql(def: MachineDefinition): string {
  const out = ['-- stated machine definitions: state_transitions, state_timeouts, state_triggers, mode_transitions'];
  for (const t of TABLES) {
    const cols = COLUMNS[t] as string[];
    for (const row of def[t] as unknown as Record<string, unknown>[]) {
      out.push(`REPLACE INTO ${t} VALUES (${cols.map((c) => sqlValue(row[c])).join(',')});`);
    }
  }
  return `${out.join('\n')}\n`;
}

/** Reads FILE ('-': stdin) and guesses its format: JSON starts with { or [, anything else is SQL. */
function readDefinition(file: string): { text: string; format: 'sql' | 'json' } {
  let text: string;
  try {
    text = readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (err) {
    return fail(new StatedError('E_USAGE', `cannot read ${file}: ${(err as Error).message}`));
  }
  return { text, format: /^\s*[{[]/.test(text) ? 'json' : 'sql' };
}

function printProblems(problems: Problem[]): void {
  for (const p of problems) process.stdout.write(`${p.severity} ${p.code}: ${p.message}\n`);
}

function rowCounts(def: MachineDefinition): string {
  return TABLES.map((t) => `${def[t].length} ${t}`).join(', ');
}

const exportCmd = defineCommand({
  meta: { name: 'export', description: 'print the definitions as Emulab SQL rows (or --json)' },
  args: { json: { type: 'boolean', description: 'print our JSON form instead of SQL' }, ...connArgs },
  async run({ args }) {
    const def = await withConnection(args, (conn) => admin<MachineDefinition>(conn, 'machine.export'));
    if (args.json) printJson(def);
    else process.stdout.write(definitionSql(def));
  },
});

const importCmd = defineCommand({
  meta: { name: 'import', description: 'replace the definitions with FILE (JSON or Emulab SQL rows); refused on any error' },
  args: { file: { type: 'positional', required: true, description: "FILE: the definitions ('-': stdin)" }, ...connArgs },
  async run({ args }) {
    const input = readDefinition(args.file);
    // A refusal is an E_BAD_DEFINITION carrying the problems; fail() prints each, the old definitions stay.
    const { problems, def } = await withConnection(args, async (conn: Connection) => {
      const r = await admin<{ problems: Problem[] }>(conn, 'machine.import', input);
      return { problems: r.problems, def: await admin<MachineDefinition>(conn, 'machine.export') };
    });
    printProblems(problems);
    process.stdout.write(`imported: ${rowCounts(def)}\n`);
  },
});

const checkCmd = defineCommand({
  meta: { name: 'check', description: 'lint FILE (default: the loaded definitions); exit 1 on any error' },
  args: { file: { type: 'positional', required: false, description: "definition file ('-': stdin)" }, ...connArgs },
  async run({ args }) {
    const input = args.file === undefined ? {} : readDefinition(args.file);
    const r = await withConnection(args, async (conn) => {
      try {
        return await admin<{ problems: Problem[] }>(conn, 'machine.check', input);
      } catch (err) {
        // A file that does not parse is the worst finding a check can make: report it as one, exit 1.
        if (!(err instanceof StatedError) || err.code !== 'E_BAD_DEFINITION') throw err;
        process.stderr.write(`stated: ${err.code}: ${err.message}\n`);
        process.exit(EXIT.FAILED);
      }
    });
    printProblems(r.problems);
    const errors = r.problems.filter((p) => p.severity === 'error').length;
    process.stdout.write(`${errors} error(s), ${r.problems.length - errors} warning(s)\n`);
    if (errors > 0) process.exitCode = EXIT.FAILED;
  },
});

export default defineCommand({
  meta: { name: 'machine', description: 'the state-machine definitions: export, import, check' },
  subCommands: { export: exportCmd, import: importCmd, check: checkCmd },
});
