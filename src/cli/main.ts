#!/usr/bin/env node
/** The stated executable: one citty command with a subcommand per file. */
import { type CommandDef, defineCommand, runCommand, runMain } from 'citty';
import { fail, usage } from './output.ts';

const main: CommandDef = defineCommand({
  meta: { name: 'stated', version: '0.1.0', description: 'The state daemon of a network testbed' },
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
    watch: () => import('./tail.ts').then((m) => m.default),
    stats: () => import('./stats.ts').then((m) => m.default),
    docs: () => import('./docs.ts').then((m) => m.docsCommand(main)),
  },
});

const rawArgs = process.argv.slice(2);
const asksHelp = rawArgs.some((a) => a === '--help' || a === '-h') || (rawArgs.length === 1 && (rawArgs[0] === '--version' || rawArgs[0] === '-v'));

if (asksHelp) {
  void runMain(main, { rawArgs });
} else {
  // Not runMain: it prints the whole usage and exits 1 on a bad argument,
  // where SPEC §1 wants one `stated: E_USAGE: ...` line and exit 64.
  runCommand(main, { rawArgs }).catch((err: unknown) => {
    if (err instanceof Error && err.name === 'CLIError') {
      // eslint-disable-next-line no-control-regex
      usage(`${err.message.replace(/\x1b\[[0-9;]*m/g, '').replace(/\.$/, '')}; see --help`);
    }
    fail(err);
  });
}
