/**
 * `stated tbrestart PROJECT`: reboots every node of a project through
 * stated (within each driver's concurrency) and waits for ISUP, with
 * os_setup's summary and exit codes (SPEC §1; Emulab's tbrestart).
 */
import { defineCommand } from 'citty';
import { connArgs } from './common.ts';
import { bringUp, nodeViews, report } from './bringup.ts';
import { fail, usage } from './output.ts';
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
      const views = (await nodeViews(conn)).filter((n) => n.project === args.project);
      if (views.length === 0) usage(`project ${args.project} has no nodes you can see`);
      const opts = { timeoutS, updateS, json: args.json === true, tolerate: 0 };
      const code = report(await bringUp(conn, views, opts), opts);
      conn.close();
      process.exit(code);
    } catch (err) {
      fail(err);
    }
  },
});
