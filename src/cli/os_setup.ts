/**
 * `stated os_setup`: brings a set of nodes up as Emulab's os_setup does
 * (SPEC §1): those with a next op mode go through it (a reload), the others
 * reboot, all under one ISUP wait registered with the actions themselves.
 */
import { defineCommand } from 'citty';
import { connArgs } from './common.ts';
import { bringUp, nodeViews, projectViews, report } from './bringup.ts';
import { argumentError, fail, usage } from './output.ts';
import { durableConnection, seconds, waitArgs } from './waitforstate.ts';

export default defineCommand({
  meta: { name: 'os_setup', description: 'bring nodes up: reload those with a next op mode, reboot the rest, wait for ISUP' },
  args: {
    nodes: { type: 'positional', required: false, description: 'NODE... (or -e PROJECT)' },
    project: { type: 'string', alias: 'e', description: 'every node of this project' },
    tolerate: { type: 'string', description: 'exit 0 when at most this many nodes failed', default: '0' },
    ...waitArgs,
    ...connArgs,
  },
  async run({ args }) {
    // Flags first: a usage error must not have started anything.
    const timeoutS = seconds(args.timeout ?? '1800', '-t');
    const updateS = seconds(args.update, '-u');
    const tolerate = Number(args.tolerate);
    if (!Number.isInteger(tolerate) || tolerate < 0) usage('--tolerate must be a whole number >= 0');
    if (args.project && args._.length > 0) argumentError('give either -e PROJECT or nodes, not both');
    if (!args.project && args._.length === 0) argumentError('expected at least one NODE, or -e PROJECT');
    const conn = await durableConnection(args);
    try {
      const views = args.project ? await projectViews(conn, args.project) : await nodeViews(conn, [...new Set(args._)]);
      const opts = { timeoutS, updateS, json: args.json === true, tolerate };
      const code = report(await bringUp(conn, views, opts), opts);
      conn.close();
      process.exit(code);
    } catch (err) {
      fail(err);
    }
  },
});
