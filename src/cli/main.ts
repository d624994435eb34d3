#!/usr/bin/env node
/** The stated executable: one citty command with a subcommand per file. */
import { type CommandDef, defineCommand, renderUsage, runCommand } from 'citty';
import { VERSION } from '../version.ts';
import { checkArgv, checkPositionals, resolveCommand } from './argv.ts';
import { argumentError, fail, plain, setUsage } from './output.ts';

const main: CommandDef = defineCommand({
  meta: { name: 'stated', version: VERSION, description: 'The state daemon of a network testbed' },
  subCommands: {
    serve: () => import('./serve.ts').then((m) => m.default),
    waitForState: () => import('./waitforstate.ts').then((m) => m.default),
    node_reboot: () => import('./node_reboot.ts').then((m) => m.default),
    os_load: () => import('./os_load.ts').then((m) => m.default),
    os_setup: () => import('./os_setup.ts').then((m) => m.default),
    tbrestart: () => import('./tbrestart.ts').then((m) => m.default),
    waits: () => import('./waits.ts').then((m) => m.default),
    send: () => import('./send.ts').then((m) => m.default),
    status: () => import('./status.ts').then((m) => m.default),
    machine: () => import('./machine.ts').then((m) => m.default),
    node: () => import('./node.ts').then((m) => m.default),
    token: () => import('./token.ts').then((m) => m.default),
    audit: () => import('./audit.ts').then((m) => m.default),
    simulate: () => import('./simulate.ts').then((m) => m.default),
    history: () => import('./history.ts').then((m) => m.default),
    watch: () => import('./watch.ts').then((m) => m.default),
    stats: () => import('./stats.ts').then((m) => m.default),
    docs: () => import('./docs.ts').then((m) => m.docsCommand(main)),
  },
});

async function run(rawArgs: string[]): Promise<void> {
  const { cmd, parent, rest } = await resolveCommand(main, rawArgs);
  const help = async (): Promise<string> => plain(await renderUsage(cmd, parent)).replace(/[ \t]+$/gm, '');
  const end = rest.indexOf('--');
  const own = end < 0 ? rest : rest.slice(0, end);
  if (own.includes('--help') || own.includes('-h')) {
    process.stdout.write(`${await help()}\n`);
    return;
  }
  if (rawArgs.length === 1 && (rawArgs[0] === '--version' || rawArgs[0] === '-v')) {
    process.stdout.write(`${String((main.meta as { version: string }).version)}\n`);
    return;
  }
  // Not runMain: it prints the whole usage and exits 1 on a bad argument,
  // where SPEC §1 wants one `stated: E_USAGE: ...` line, the usage, and exit 64.
  // A command line of the wrong shape, found here or by the subcommand
  // itself (NODE... or -e PROJECT), is followed by this subcommand's usage.
  setUsage(await help());
  const problem = (await checkArgv(cmd, rest)) ?? (await checkPositionals(cmd, rest));
  if (problem !== null) argumentError(problem);
  try {
    await runCommand(main, { rawArgs });
  } catch (err) {
    if (err instanceof Error && err.name === 'CLIError') argumentError(plain(err.message).replace(/\.$/, ''));
    fail(err);
  }
}

run(process.argv.slice(2)).catch((err: unknown) => fail(err));
