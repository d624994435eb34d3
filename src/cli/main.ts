#!/usr/bin/env node
/** The stated executable: one citty command with a subcommand per file. */
import { defineCommand, runMain } from 'citty';

const main = defineCommand({
  meta: { name: 'stated', version: '0.1.0', description: 'The state daemon of a network testbed' },
  subCommands: {
    serve: () => import('./serve.ts').then((m) => m.default),
  },
});

void runMain(main);
