/** `stated serve`: the daemon (SPEC §1). */
import { defineCommand } from 'citty';
import { Daemon } from '../daemon.ts';
import { fail, usage } from './output.ts';

/** How long a stop may take to commit what is queued before the daemon exits regardless. */
const STOP_LIMIT_S = 30;

export default defineCommand({
  meta: { name: 'serve', description: 'run the daemon' },
  args: {
    db: { type: 'string', description: 'SQLite database file', default: './stated.db' },
    listen: { type: 'string', description: 'HOST:PORT for HTTP and WebSocket', default: '127.0.0.1:16505' },
    config: { type: 'string', description: 'JSON config file' },
    simulate: { type: 'string', description: 'also run N simulated nodes sim1..simN in-process' },
    'time-scale': { type: 'string', description: 'multiply every timeout, digest window and retry delay', default: '1' },
    debug: { type: 'boolean', alias: 'd', description: 'log every event to stdout' },
  },
  async run({ args }) {
    const timeScale = Number(args['time-scale']);
    if (!(timeScale > 0)) usage('--time-scale must be a number > 0');
    const simulate = args.simulate === undefined ? 0 : Number(args.simulate);
    if (!Number.isInteger(simulate) || simulate < 0) usage('--simulate must be a whole number');
    let daemon: Daemon;
    try {
      daemon = new Daemon({ db: args.db, listen: args.listen, config: args.config, simulate, timeScale, debug: args.debug === true });
      await daemon.start();
    } catch (err) {
      return fail(err);
    }
    let stopping = false;
    const stop = (): void => {
      // A second signal, or a commit that hangs (a lock held elsewhere, a dead disk),
      // must not leave an operator with a daemon that will not go: exit, saying what.
      const abandon = (why: string): void => {
        process.stderr.write(`stated: E_UNAVAILABLE: ${why}; exiting without waiting for the pending commits (what was not acknowledged was not committed)\n`);
        process.exit(70);
      };
      if (stopping) return abandon('a second stop signal');
      stopping = true;
      setTimeout(() => abandon(`stop took over ${STOP_LIMIT_S} s`), STOP_LIMIT_S * 1000).unref();
      daemon.stop().then(() => process.exit(0), (err: unknown) => abandon(`stop failed: ${(err as Error).message}`));
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
    process.on('SIGHUP', () => {
      daemon.reload().catch((err) => process.stderr.write(`stated: ${(err as Error).message}\n`));
    });
  },
});
