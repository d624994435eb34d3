/**
 * `stated tbrestart PROJECT`: reboots every node of a project through
 * stated (within each driver's concurrency) and waits for ISUP, with
 * os_setup's summary and exit codes (SPEC §1; Emulab's tbrestart).
 */
import { defineCommand } from 'citty';
import { connArgs } from './common.ts';
import { bringUp, projectViews, report } from './bringup.ts';
import { fail } from './output.ts';
import { durableConnection, seconds, waitArgs } from './waitforstate.ts';

export default defineCommand({
  meta: { name: 'tbrestart', description: "reboot every node of a project and wait for ISUP" },
  args: {
    project: { type: 'positional', required: true, description: 'PROJECT' },
    ...waitArgs,
    ...connArgs,
  },
  async run({ args }) {
    const timeoutS = seconds(args.timeout ?? '1800', '-t');
    const updateS = seconds(args.update, '-u');
    const conn = await durableConnection(args);
    try {
      const views = await projectViews(conn, args.project);
      const opts = { timeoutS, updateS, json: args.json === true, tolerate: 0 };
      const code = report(await bringUp(conn, views, opts), opts);
      conn.close();
      process.exit(code);
    } catch (err) {
      fail(err);
    }
  },
});
