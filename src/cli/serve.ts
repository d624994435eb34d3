/** `stated serve`: the daemon (SPEC §1). */
import { defineCommand } from 'citty';
import type { Server } from 'node:net';
import { Daemon } from '../daemon.ts';
import { DbLock } from '../dblock.ts';
import { logFormat, makeLog } from '../log.ts';
import { checkDatabase, dbError, reserveListen } from '../startup.ts';
import { fail, usage } from './output.ts';

/** A repeat of the stop signal within this is the same signal delivered twice. */
const REPEAT_GRACE_MS = 2000;

export default defineCommand({
  meta: { name: 'serve', description: 'run the daemon' },
  args: {
    db: { type: 'string', description: 'SQLite database file', default: './stated.db' },
    listen: { type: 'string', description: 'HOST:PORT for HTTP and WebSocket', default: '127.0.0.1:16505' },
    config: { type: 'string', description: 'JSON config file' },
    simulate: { type: 'string', description: 'also run N simulated nodes sim1..simN in-process' },
    'time-scale': { type: 'string', description: 'multiply every timeout, digest window and retry delay', default: '1' },
    debug: { type: 'boolean', alias: 'd', description: 'log every event to stdout' },
    'log-format': { type: 'string', description: 'text (ISO-8601 time, level, message) or json (one object a line)', default: 'text' },
  },
  async run({ args }) {
    const timeScale = Number(args['time-scale']);
    if (!(timeScale > 0)) usage('--time-scale must be a number > 0');
    const simulate = args.simulate === undefined ? 0 : Number(args.simulate);
    if (!Number.isInteger(simulate) || simulate < 0) usage('--simulate must be a whole number');
    const format = logFormat(args['log-format']);
    if (format === null) usage('--log-format must be text or json');
    const log = makeLog(format);
    let daemon: Daemon;
    let handle: Server | undefined;
    let lock: DbLock | undefined;
    try {
      // Operator errors first, before any file exists: a daemon already on this
      // database (E_LOCKED, probed read-only: its port may be ours too), the port
      // (E_LISTEN), the database (E_DB), then the lock is taken.
      DbLock.probe(args.db);
      handle = await reserveListen(args.listen);
      checkDatabase(args.db);
      lock = DbLock.acquire(args.db);
      try {
        daemon = new Daemon({ db: args.db, listen: args.listen, config: args.config, simulate, timeScale, debug: args.debug === true, log, listenHandle: handle });
      } catch (err) {
        throw dbError(args.db, err);
      }
      await daemon.start();
    } catch (err) {
      handle?.close();
      lock?.release();
      return fail(err);
    }
    let stopping = 0;
    const stop = (signal: NodeJS.Signals): void => {
      // A second signal, more than a moment after the first (a Ctrl-C reaches npm
      // and its child at once), exits without waiting for the pending commits.
      const abandon = (why: string): void => {
        process.stderr.write(`stated: E_UNAVAILABLE: ${why}; exiting now (nothing acknowledged is lost)\n`);
        process.exit(70);
      };
      if (stopping !== 0) {
        if (Date.now() - stopping > REPEAT_GRACE_MS) abandon('a second stop signal');
        return;
      }
      stopping = Date.now();
      log(`stopping (${signal})`);
      daemon.stop().then(() => {
        lock?.release();
        process.exit(0);
      }, (err: unknown) => abandon((err as Error).message));
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
    process.on('SIGHUP', () => {
      daemon.reload().catch((err) => log(`reload failed: ${(err as Error).message}`, 'error'));
    });
  },
});
