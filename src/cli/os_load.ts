/**
 * `stated os_load`: reloads nodes (SPEC §1). Sets each node's next op mode,
 * reboots it through stated under one wait for the reload to close
 * (RELOADDONE or RELOADDONEV2), reports refusals and failures as soon as
 * they are known, and clears the next op mode of every node whose reload
 * did not happen, so that its next plain reboot does not reload it.
 */
import { defineCommand } from 'citty';
import { runPlan } from '../client/index.ts';
import { isReloadMode } from '../phases.ts';
import { clearNextModes, nodeViews, refusalReason } from './bringup.ts';
import { admin, connArgs, names } from './common.ts';
import { EXIT, fail, usage } from './output.ts';
import { durableConnection, seconds, waitArgs, waitTtl } from './waitforstate.ts';
import { watch } from './progress.ts';

/** The state a reload closes with: Emulab's frisbee reports either. */
const RELOAD_DONE = 'RELOADDONE|RELOADDONEV2';

/**
 * Only a reload mode: its reload closes with RELOADDONE(V2), which is what
 * os_load waits for; any other mode would reboot the node and wait out -t
 * (SPEC §1). Whether the definitions know the mode is the daemon's check,
 * made when the next op mode is set, before any reboot.
 */
function requireReloadMode(mode: string): void {
  if (!isReloadMode(mode)) usage(`-m ${mode}: not a reload mode (RELOAD, RELOAD-*, WIMRELOAD, SECURELOAD): os_load waits for RELOADDONE, which no other mode sends`);
}

export default defineCommand({
  meta: { name: 'os_load', description: 'reload nodes: next op mode, reboot, wait for RELOADDONE or RELOADDONEV2' },
  args: {
    nodes: { type: 'positional', required: false, description: 'NODE...' },
    mode: { type: 'string', alias: 'm', description: 'the reload mode (RELOAD, RELOAD-*, WIMRELOAD, SECURELOAD)', default: 'RELOAD' },
    ...waitArgs,
    ...connArgs,
  },
  async run({ args }) {
    const nodes = [...new Set(names(args._, 'NODE'))];
    // Flags first: a usage error must not have changed a node's next mode.
    const timeoutS = seconds(args.timeout ?? '1800', '-t');
    const updateS = seconds(args.update, '-u');
    const mode = args.mode;
    requireReloadMode(mode);
    const conn = await durableConnection(args);
    try {
      // A node already in the reload mode reloads at its next boot as it is.
      // Setting the mode again would outlive the reload (RELOADDONE keeps an
      // operator's next mode): the node would reload at every boot, its
      // RELOAD/ISUP trigger rebooting it into the next reload, for ever.
      // `headed`: the nodes whose next mode is the reload's, whoever set it;
      // if the reload does not happen, it is cleared (SPEC §1).
      const headed = new Map<string, string>();
      for (const n of await nodeViews(conn, nodes)) {
        if (n.nextMode !== mode) {
          if (n.mode === mode) continue;
          await admin(conn, 'node.setNextMode', { node: n.node, mode });
        }
        headed.set(n.node, mode);
      }
      const ttl = waitTtl(timeoutS);
      const { wait, started, refused } = await runPlan(conn, { states: [RELOAD_DONE], actions: Object.fromEntries(nodes.map((n) => [n, 'REBOOT'])), ttl });
      // A reboot already past its SHUTDOWN will not pass the mode transition: no reload this boot.
      const joined = Object.keys(started).filter((n) => started[n] === 'joined');
      for (const n of await nodeViews(conn, joined)) {
        if (n.mode === mode || n.reboot.awaitingShutdown) continue;
        refused[n.node] = `E_CONFLICT: a reboot already past SHUTDOWN is in progress; run os_load again once it is up`;
        await wait.cancelWait(n.node);
      }
      const going = nodes.filter((n) => !(n in refused));
      if (going.length > 0) process.stderr.write(`reloading ${going.length}: ${going.join(' ')}\n`);
      // Joined: the reload rides on the reboot already under way (no power action of its own), as node_reboot says it.
      const rides = going.filter((n) => started[n] === 'joined');
      if (rides.length > 0) process.stderr.write(`already rebooting, joined ${rides.length}: ${rides.join(' ')}\n`);
      for (const [n, why] of Object.entries(refused)) process.stderr.write(`refused ${n}: ${why}\n`);
      // Refused nodes are failed in the summary and the exit code (failure dominates timeouts).
      const opts = { timeoutS, updateS, json: args.json === true, refused: Object.fromEntries(Object.entries(refused).map(([n, why]) => [n, refusalReason(why)])) };
      const code = await watch(wait, opts);
      // Whoever did not close its reload must not reload at some later, unrelated reboot.
      const done = code === EXIT.OK ? new Set(going) : new Set((await nodeViews(conn, going)).filter((n) => n.mode !== mode && n.nextMode !== mode).map((n) => n.node));
      const lost = new Map([...headed].filter(([n]) => n in refused || (code !== EXIT.INTERRUPTED && !done.has(n))));
      const cleared = await clearNextModes(conn, lost);
      if (!args.json) {
        for (const n of await nodeViews(conn, nodes)) process.stdout.write(`${n.node}: now ${n.mode}/${n.state ?? '-'}${n.nextMode ? `, next ${n.nextMode}` : ''}\n`);
        if (cleared.length > 0) process.stdout.write(`next op mode cleared: ${cleared.join(' ')}\n`);
      }
      conn.close();
      process.exit(code);
    } catch (err) {
      fail(err);
    }
  },
});
