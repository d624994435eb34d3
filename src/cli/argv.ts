/**
 * Strict command lines (SPEC §1 "Command-line conventions"): citty ignores
 * options it does not know and lets a string option swallow nothing, so
 * every command's argv is checked here against its `args` definition before
 * it runs. Subcommands get this without code of their own.
 */
import type { ArgsDef, CommandDef } from 'citty';

/** What a command line is made of, once its subcommand path is resolved. */
export interface Resolved {
  cmd: CommandDef;
  parent: CommandDef | undefined;
  /** argv after the subcommand names. */
  rest: string[];
}

// Any command, whatever its args: each defineCommand() has its own args type.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyCommand = CommandDef<any>;

/** A citty field that may be a value, a promise or a function of one (meta, args, subCommands). */
export async function value<T>(v: T | (() => T | Promise<T>) | Promise<T>): Promise<T> {
  return typeof v === 'function' ? await (v as () => T | Promise<T>)() : await v;
}

/** Follows subcommand names from the front of argv (options may not come before a subcommand's name). */
export async function resolveCommand(main: AnyCommand, argv: string[]): Promise<Resolved> {
  let cmd = main;
  const path: string[] = [];
  for (let i = 0; ; i++) {
    const subs = cmd.subCommands ? await value(cmd.subCommands) : undefined;
    const word = argv[i];
    if (!subs || word === undefined || word.startsWith('-')) break;
    const sub = (subs as Record<string, unknown>)[word];
    if (sub === undefined) break; // citty reports the unknown command itself
    path.push(word);
    cmd = await value(sub as AnyCommand);
  }
  // The usage line names the whole path (`stated node trigger add`), not just the last parent.
  const top = (await value(main.meta ?? {})) as { name?: string };
  const parent = path.length === 0 ? undefined : { meta: { name: [top.name ?? 'stated', ...path.slice(0, -1)].join(' ') } };
  return { cmd: cmd as CommandDef, parent: parent as CommandDef | undefined, rest: argv.slice(path.length) };
}

const kebab = (s: string): string => s.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
const camel = (s: string): string => s.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
/** `-5` and `-0.5` are values (a negative number), not options. */
const isOption = (t: string): boolean => t.length > 1 && t.startsWith('-') && !/^-\d/.test(t);

/** Each option's kind, under every spelling it answers to. */
async function optionKinds(cmd: AnyCommand): Promise<{ defs: ArgsDef; kind: Map<string, 'string' | 'boolean'> }> {
  const defs = (cmd.args ? await value(cmd.args) : {}) as ArgsDef;
  const kind = new Map<string, 'string' | 'boolean'>();
  for (const [name, def] of Object.entries(defs)) {
    if (def.type === 'positional') continue;
    const k = def.type === 'boolean' ? 'boolean' : 'string';
    const alias = 'alias' in def ? def.alias : undefined;
    for (const n of [name, kebab(name), camel(name), ...(Array.isArray(alias) ? alias : alias ? [alias] : [])]) kind.set(n, k);
  }
  return { defs, kind };
}

/** Splits argv into its positionals, or says what is wrong with its options. */
function scan(kind: Map<string, 'string' | 'boolean'>, argv: string[], hasSubs: boolean): { problem: string | null; positionals: string[] } {
  const positionals: string[] = [];
  const bad = (problem: string): { problem: string; positionals: string[] } => ({ problem, positionals });
  for (let i = 0; i < argv.length; i++) {
    const tok = argv[i]!;
    if (tok === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!isOption(tok)) {
      if (hasSubs) break; // an unknown subcommand: citty's error names it
      positionals.push(tok);
      continue;
    }
    if (tok.startsWith('--')) {
      const eq = tok.indexOf('=');
      const name = tok.slice(2, eq < 0 ? undefined : eq);
      let k = kind.get(name);
      if (k === undefined && name.startsWith('no-') && kind.get(name.slice(3)) === 'boolean' && eq < 0) k = 'boolean';
      if (k === undefined) return bad(`unknown option --${name}`);
      if (k === 'boolean' && eq >= 0) return bad(`option --${name} takes no value`);
      if (k === 'string' && eq < 0) {
        const next = argv[i + 1];
        if (next === undefined || isOption(next)) return bad(`option --${name} needs a value`);
        i++;
      }
      continue;
    }
    // -abc: single-letter options, the last of which may take a value (`-t5` or `-t 5`).
    const letters = tok.slice(1);
    for (let j = 0; j < letters.length; j++) {
      const c = letters[j]!;
      const k = kind.get(c);
      if (k === undefined) return bad(`unknown option -${c}`);
      if (k === 'string') {
        if (j === letters.length - 1) {
          const next = argv[i + 1];
          if (next === undefined || isOption(next)) return bad(`option -${c} needs a value`);
          i++;
        }
        break; // the rest of the cluster is the value
      }
    }
  }
  return { problem: null, positionals };
}

/**
 * Returns the first problem with argv for this command's options, or null:
 * an unknown option, or a string option with no value after it.
 */
export async function checkArgv(cmd: AnyCommand, argv: string[]): Promise<string | null> {
  const { kind } = await optionKinds(cmd);
  return scan(kind, argv, cmd.subCommands !== undefined).problem;
}

/**
 * Returns what is wrong with argv's positionals for this command, or null:
 * fewer than its required ones, or more than it takes. A positional whose
 * description starts `NAME...` takes any number (the command checks for
 * at least one where it needs one: `-e PROJECT` may stand in for them).
 */
export async function checkPositionals(cmd: AnyCommand, argv: string[]): Promise<string | null> {
  if (cmd.subCommands !== undefined) return null;
  const { defs, kind } = await optionKinds(cmd);
  const { problem, positionals } = scan(kind, argv, false);
  if (problem !== null) return problem;
  const wanted = Object.values(defs).filter((d) => d.type === 'positional');
  const label = (d: (typeof wanted)[number]): string => /^[A-Z][A-Z_]*\b/.exec(d.description ?? '')?.[0] ?? 'argument';
  const required = wanted.filter((d) => d.required === true);
  if (positionals.length < required.length) return `missing ${required.slice(positionals.length).map(label).join(' ')}`;
  const variadic = wanted.some((d) => /^[A-Z][A-Z_]*\.\.\./.test(d.description ?? ''));
  if (!variadic && positionals.length > wanted.length) return `unexpected argument ${JSON.stringify(positionals[wanted.length])}`;
  return null;
}
