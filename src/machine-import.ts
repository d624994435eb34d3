/**
 * Reading machine definitions at the edge: Emulab's SQL dumps and our JSON
 * export. Both produce a MachineDefinition whose every field is checked here
 * (names, integer seconds), so Machine and checkDefinition can trust it.
 * Semantic findings (dangling targets, unknown actions) are checkDefinition's.
 */
import { StatedError } from './errors.ts';
import type { MachineDefinition } from './types.ts';

export const ANY = '*';

type Table = keyof MachineDefinition;
type Kind = 'name' | 'text' | 'seconds';
interface Column { name: string; kind: Kind; optional?: true }

// Column order is Emulab's and 001_schema.sql's, so VALUES without a column
// list maps positionally. Optional columns default to '' as in the schema.
const TABLES: Record<Table, { cols: Column[]; key: number }> = {
  state_transitions: {
    cols: [{ name: 'op_mode', kind: 'name' }, { name: 'state1', kind: 'name' }, { name: 'state2', kind: 'name' }, { name: 'label', kind: 'text', optional: true }],
    key: 3,
  },
  state_timeouts: {
    cols: [{ name: 'op_mode', kind: 'name' }, { name: 'state', kind: 'name' }, { name: 'timeout', kind: 'seconds' }, { name: 'action', kind: 'text', optional: true }],
    key: 2,
  },
  state_triggers: {
    cols: [{ name: 'node_id', kind: 'name' }, { name: 'op_mode', kind: 'name' }, { name: 'state', kind: 'name' }, { name: 'triggers', kind: 'text', optional: true }],
    key: 3,
  },
  mode_transitions: {
    cols: [{ name: 'op_mode1', kind: 'name' }, { name: 'state1', kind: 'name' }, { name: 'op_mode2', kind: 'name' }, { name: 'state2', kind: 'name' }, { name: 'label', kind: 'text', optional: true }],
    key: 3,
  },
};
const TABLE_NAMES = Object.keys(TABLES) as Table[];

// Emulab's own column names where ours differ (its `trigger` is a MySQL keyword).
const ALIASES: Record<string, string> = { timeout_seconds: 'timeout', trigger: 'triggers', trigger_list: 'triggers' };

// The event name rule of E_BAD_NAME: a state no event can carry is a typo.
const NAME_RE = /^(?:\*|[A-Za-z0-9_./-]{1,64})$/;
const MAX_TEXT = 1024;
const MAX_SECONDS = 2147483647; // Emulab's INT column

/** Splits a trigger_list: comma-separated, trimmed, empties dropped, first occurrence kept. */
export function splitTriggers(list: string): string[] {
  const out: string[] = [];
  for (const part of list.split(',')) {
    const name = part.trim();
    if (name !== '' && !out.includes(name)) out.push(name);
  }
  return out;
}

/** Checks one value; returns it normalised, or a message saying what was expected. */
function checkValue(col: Column, v: unknown, quotedNumbers = false): { ok: string | number } | { err: string } {
  switch (col.kind) {
    case 'name':
      return typeof v === 'string' && NAME_RE.test(v) ? { ok: v } : { err: `expected '*' or a name matching [A-Za-z0-9_./-]{1,64}, got ${show(v)}` };
    case 'text':
      return typeof v === 'string' && v.length <= MAX_TEXT ? { ok: v } : { err: `expected a string of at most ${MAX_TEXT} characters, got ${show(v)}` };
    case 'seconds': {
      // A SQL dump may quote integers ('120'); MySQL accepts that, so the SQL reader does.
      const n = quotedNumbers && typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v;
      return typeof n === 'number' && Number.isInteger(n) && n >= 0 && n <= MAX_SECONDS
        ? { ok: n } : { err: `expected whole seconds from 0 to ${MAX_SECONDS}, got ${show(v)}` };
    }
  }
}

function show(v: unknown): string {
  if (v === undefined) return 'nothing';
  let s: string;
  try {
    s = JSON.stringify(v) ?? String(v);
  } catch {
    s = Array.isArray(v) ? 'a list nested too deeply' : 'an object nested too deeply';
  }
  return s.length > 40 ? `${s.slice(0, 40)}...` : s;
}

function bad(message: string, detail?: unknown): StatedError {
  return new StatedError('E_BAD_DEFINITION', message, detail);
}

/** Collects rows per table under their primary key. */
class Rows {
  private readonly tables = new Map<Table, Map<string, { row: Record<string, string | number>; where: string }>>(
    TABLE_NAMES.map((t) => [t, new Map()]),
  );

  /** Adds a row; a duplicate key replaces the earlier row, or is refused when !replace. */
  add(table: Table, row: Record<string, string | number>, replace: boolean, where: string): void {
    const rows = this.tables.get(table)!;
    const key = TABLES[table].cols.slice(0, TABLES[table].key).map((c) => row[c.name]).join('\0');
    const prior = rows.get(key);
    if (prior !== undefined && !replace) {
      throw bad(`${where}: ${table} row with the same key as ${prior.where} (${key.split('\0').join(', ')})`);
    }
    rows.delete(key); // replaced: as SQL REPLACE, delete then insert
    rows.set(key, { row, where });
  }

  definition(): MachineDefinition {
    const list = (t: Table): any[] => [...this.tables.get(t)!.values()].map((e) => e.row);
    return {
      state_transitions: list('state_transitions'),
      state_timeouts: list('state_timeouts'),
      state_triggers: list('state_triggers'),
      mode_transitions: list('mode_transitions'),
    };
  }
}

/** Parses our JSON export: an object with up to the four table arrays. */
export function parseDefinitionJson(text: string): MachineDefinition {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw bad(`not JSON: ${(err as Error).message}`);
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    throw bad(`expected an object with the arrays ${TABLE_NAMES.join(', ')}`);
  }
  for (const key of Object.keys(data)) {
    if (!(TABLE_NAMES as string[]).includes(key)) throw bad(`unknown table "${key}"; known: ${TABLE_NAMES.join(', ')}`);
  }
  const rows = new Rows();
  for (const table of TABLE_NAMES) {
    const list = (data as Record<string, unknown>)[table];
    if (list === undefined) continue;
    if (!Array.isArray(list)) throw bad(`${table}: expected an array, got ${show(list)}`);
    list.forEach((item: unknown, i) => {
      const where = `${table}[${i}]`;
      if (typeof item !== 'object' || item === null || Array.isArray(item)) throw bad(`${where}: expected an object, got ${show(item)}`);
      const cols = TABLES[table].cols;
      for (const f of Object.keys(item)) {
        if (!cols.some((c) => c.name === f)) throw bad(`${where}: unknown field "${f}"; known: ${cols.map((c) => c.name).join(', ')}`);
      }
      const row: Record<string, string | number> = {};
      for (const col of cols) {
        let v = (item as Record<string, unknown>)[col.name];
        if (v === undefined && col.optional) v = '';
        const r = checkValue(col, v);
        if ('err' in r) throw bad(`${where}.${col.name}: ${r.err}`, { table, index: i, field: col.name });
        row[col.name] = r.ok;
      }
      // JSON has no REPLACE: two rows for one key is a mistake, not an update.
      rows.add(table, row, false, where);
    });
  }
  return rows.definition();
}

// --- Emulab SQL ------------------------------------------------------------

interface Token { kind: 'word' | 'ident' | 'string' | 'number' | 'punct'; text: string; line: number }

/** Splits SQL into tokens; comments (--, #, /* *\/) are dropped, lines counted. */
function tokenize(src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  let line = 1;
  const fail = (msg: string, at = line): never => { throw bad(`line ${at}: ${msg}`, { line: at }); };
  while (i < src.length) {
    const c = src[i]!;
    if (c === '\n') { line++; i++; continue; }
    if (/\s/.test(c)) { i++; continue; }
    if (c === '#' || src.startsWith('--', i)) {
      while (i < src.length && src[i] !== '\n') i++;
      continue;
    }
    if (src.startsWith('/*', i)) {
      const end = src.indexOf('*/', i + 2);
      if (end < 0) fail('unterminated /* comment');
      for (let j = i; j < end; j++) if (src[j] === '\n') line++;
      i = end + 2;
      continue;
    }
    if (c === "'" || c === '"' || c === '`') {
      const start = line;
      let text = '';
      i++;
      for (;;) {
        if (i >= src.length) fail(`unterminated ${c}quoted${c} text`, start);
        const d = src[i]!;
        if (d === c && src[i + 1] === c) { text += c; i += 2; continue; } // '' and `` escape themselves
        if (d === c) { i++; break; }
        if (d === '\\' && c !== '`') { // MySQL backslash escapes
          const e = src[i + 1];
          if (e === undefined) fail('backslash at end of input', start);
          text += ({ n: '\n', t: '\t', r: '\r', '0': '\0', b: '\b', Z: '\x1a' } as Record<string, string>)[e!] ?? e;
          if (e === '\n') line++;
          i += 2;
          continue;
        }
        if (d === '\n') line++;
        text += d;
        i++;
      }
      // A double-quoted value is a string in MySQL, an identifier in SQLite: the parser decides.
      out.push({ kind: c === '`' ? 'ident' : 'string', text, line: start });
      continue;
    }
    const num = /^-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/.exec(src.slice(i, i + 40));
    if (num !== null) { out.push({ kind: 'number', text: num[0], line }); i += num[0].length; continue; }
    const word = /^[A-Za-z_][A-Za-z0-9_$]*/.exec(src.slice(i, i + 200));
    if (word !== null) { out.push({ kind: 'word', text: word[0], line }); i += word[0].length; continue; }
    if ('(),;.'.includes(c)) { out.push({ kind: 'punct', text: c, line }); i++; continue; }
    fail(`unexpected character ${JSON.stringify(c)}`);
  }
  return out;
}

/**
 * Parses Emulab's rows: `REPLACE INTO t VALUES (...);` and
 * `INSERT [OR REPLACE] INTO t [(cols)] VALUES (...), (...);` for the four
 * tables. REPLACE keeps the last row per key, as the database would.
 */
export function parseEmulabSql(text: string): MachineDefinition {
  const toks = tokenize(text);
  const rows = new Rows();
  let p = 0;
  const lastLine = toks.length > 0 ? toks[toks.length - 1]!.line : 1;
  const peek = (): Token | undefined => toks[p];
  const fail = (msg: string, t = peek()): never => {
    const line = t?.line ?? lastLine;
    throw bad(`line ${line}: ${msg}`, { line });
  };
  const desc = (t: Token | undefined): string => (t === undefined ? 'end of input' : JSON.stringify(t.text));
  const isWord = (t: Token | undefined, w: string): boolean => t?.kind === 'word' && t.text.toUpperCase() === w;
  const expectWord = (w: string): void => { if (!isWord(peek(), w)) fail(`expected ${w}, got ${desc(peek())}`); p++; };
  const expectPunct = (c: string): void => { if (peek()?.kind !== 'punct' || peek()!.text !== c) fail(`expected "${c}", got ${desc(peek())}`); p++; };
  const isPunct = (c: string): boolean => peek()?.kind === 'punct' && peek()!.text === c;
  const identifier = (what: string): Token => {
    const t = peek();
    if (t === undefined || (t.kind !== 'word' && t.kind !== 'ident' && !(t.kind === 'string' && t.text !== ''))) fail(`expected ${what}, got ${desc(t)}`);
    p++;
    return t!;
  };

  while (p < toks.length) {
    if (isPunct(';')) { p++; continue; } // empty statement, e.g. after a /*! ... */ dump directive
    let replace = false;
    if (isWord(peek(), 'REPLACE')) { p++; replace = true; }
    else if (isWord(peek(), 'INSERT')) {
      p++;
      if (isWord(peek(), 'OR')) { p++; expectWord('REPLACE'); replace = true; }
    } else fail(`expected REPLACE or INSERT, got ${desc(peek())}`);
    expectWord('INTO');
    let nameTok = identifier('a table name');
    if (isPunct('.')) { p++; nameTok = identifier('a table name'); } // db.table
    const table = nameTok.text as Table;
    if (!TABLE_NAMES.includes(table)) fail(`unknown table "${nameTok.text}"; known: ${TABLE_NAMES.join(', ')}`, nameTok);
    const spec = TABLES[table];

    let cols: Column[] = spec.cols;
    if (isPunct('(')) {
      p++;
      cols = [];
      for (;;) {
        const t = identifier('a column name');
        const name = ALIASES[t.text] ?? t.text;
        const col = spec.cols.find((c) => c.name === name);
        if (col === undefined) fail(`${table} has no column "${t.text}"; known: ${spec.cols.map((c) => c.name).join(', ')}`, t);
        if (cols.includes(col!)) fail(`column "${t.text}" given twice`, t);
        cols.push(col!);
        if (isPunct(',')) { p++; continue; }
        expectPunct(')');
        break;
      }
      const missing = spec.cols.filter((c) => !c.optional && !cols.includes(c));
      if (missing.length > 0) fail(`${table} needs column ${missing.map((c) => c.name).join(', ')}`, nameTok);
    }
    expectWord('VALUES');

    for (;;) {
      const open = peek();
      expectPunct('(');
      const row: Record<string, string | number> = {};
      for (const c of spec.cols) if (c.optional) row[c.name] = '';
      cols.forEach((col, k) => {
        if (k > 0) {
          if (isPunct(')')) fail(`${table} row has ${k} values, expected ${cols.length}`);
          expectPunct(',');
        }
        const t = peek();
        let v: unknown;
        if (t?.kind === 'string') v = t.text;
        else if (t?.kind === 'number') v = Number(t.text);
        else if (isWord(t, 'NULL')) v = null;
        else fail(`expected a value for ${col.name}, got ${desc(t)}`);
        p++;
        const r = checkValue(col, v, true);
        if ('err' in r) fail(`${table}.${col.name}: ${r.err}`, t);
        else row[col.name] = r.ok;
      });
      if (isPunct(',')) fail(`${table} row has more than ${cols.length} values`);
      expectPunct(')');
      rows.add(table, row, replace, `line ${open!.line}`);
      if (isPunct(',')) { p++; continue; }
      break;
    }
    if (p < toks.length) expectPunct(';'); // the last statement may end the input without one
  }
  return rows.definition();
}

/** Modes named literally in any table (op_mode2 included), sorted. */
export function definedModes(def: MachineDefinition): string[] {
  const modes = new Set<string>();
  for (const r of def.state_transitions) modes.add(r.op_mode);
  for (const r of def.state_timeouts) modes.add(r.op_mode);
  for (const r of def.state_triggers) modes.add(r.op_mode);
  for (const r of def.mode_transitions) modes.add(r.op_mode1).add(r.op_mode2);
  modes.delete(ANY);
  return [...modes].sort();
}
