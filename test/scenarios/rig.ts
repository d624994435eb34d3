// The scenario suite's rig (issue 9): a daemon at --time-scale 0.01 whose
// node type `pc` has a `command` driver that is a small script appending
// "COMMAND NODE" to a file — what a plain power controller (ipmitool) would
// be, reporting nothing to stated — and the test playing the nodes.
// Emulab's shipped rows at scale 0.01:
//   NORMALv2/BOOTING 180 REBOOT -> 1.8 s     TBCOMMAND/REBOOT 75 CMDRETRY -> 0.75 s
//   NORMALv2/TBSETUP 600 NOTIFY -> 6 s       retryDelay 10 s -> 0.1 s, agentGrace 60 s -> 0.6 s
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { type Daemon, type WsClient, connectWs, http, startDaemon, tempDir } from '../helpers/daemon.ts';
import { type LoggedEvent, history, nodeView } from '../helpers/fleet.ts';
import { until } from '../helpers/poll.ts';

export { simulate } from '../helpers/fleet.ts';
export { sleep, until } from '../helpers/poll.ts';

export const SCALED = ['--time-scale', '0.01'];
export const BOOTING_TIMEOUT_MS = 1800;
export const CMDRETRY_MS = 750;

export type Logged = LoggedEvent;

export interface Rig {
  d: Daemon;
  ws: WsClient;
  /** The actions the power script ran, "COMMAND NODE", in order. */
  actions(node?: string): string[];
  /** The node reports states, as its boot scripts would. */
  say(node: string, ...states: string[]): Promise<void>;
  /** The node's events after the rig started, oldest first. */
  history(node: string): Promise<Logged[]>;
  view(node: string): Promise<any>;
  /** Makes the power script for `node` take `seconds` before it returns (the action stays in flight). */
  slow(node: string, seconds: number): void;
}

/** A daemon whose types `pc` (and the config's others) run the recording power script. */
export async function commandRig(t: TestContext, nodes: string[], extra: { config?: object; nodeArgs?: string[] } = {}): Promise<Rig> {
  const dir = tempDir();
  const log = path.join(dir, 'actions.log');
  const script = path.join(dir, 'power.sh');
  fs.writeFileSync(script, [
    '#!/bin/sh',
    '# A plain power controller: does its thing, tells stated nothing.',
    `echo "$1 $2" >> '${log}'`,
    `if [ -f '${dir}/slow.'"$2" ]; then sleep "$(cat '${dir}/slow.'"$2")"; fi`,
    'exit 0',
    '',
  ].join('\n'), { mode: 0o755 });
  const commands = Object.fromEntries(['REBOOT', 'POWERCYCLE', 'POWEROFF', 'POWERON'].map((c) => [c, [script, c, '{node}']]));
  const config = path.join(dir, 'stated.json');
  // timeout 1000 s x 0.01: a slowed script is not killed as hung.
  fs.writeFileSync(config, JSON.stringify({ drivers: { pc: { kind: 'command', timeout: 1000, commands } }, ...extra.config }));
  const d = await startDaemon({ dir, args: [...SCALED, '--config', config] });
  t.after(() => d.stop());
  const add = await d.runCli(['node', 'add', ...nodes, '--type', 'pc', '--state', 'ISUP', ...(extra.nodeArgs ?? [])]);
  assert.equal(add.code, 0, add.stderr);
  const ws = await connectWs(d);
  t.after(() => ws.close());
  const start = (await http(d, 'GET', '/healthz', undefined, null)).json.seq as number;
  return {
    d, ws,
    actions(node) {
      const lines = fs.existsSync(log) ? fs.readFileSync(log, 'utf8').split('\n').filter(Boolean) : [];
      return node === undefined ? lines : lines.filter((l) => l.endsWith(` ${node}`));
    },
    async say(node, ...states) {
      for (const s of states) {
        const r = await ws.request('event', { event: { objtype: 'TBNODESTATE', objname: node, eventtype: s } });
        assert.equal(r.ok, true, JSON.stringify(r));
      }
    },
    history: (node) => history(d, node, start),
    view: (node) => nodeView(d, node),
    slow(node, seconds) {
      fs.writeFileSync(path.join(dir, `slow.${node}`), String(seconds));
    },
  };
}

export { history, nodeView };

export const states = (h: Logged[]): string[] => h.filter((e) => e.event.objtype === 'TBNODESTATE').map((e) => e.event.eventtype);
export const ofType = (h: Logged[], objtype: string, eventtype?: string): Logged[] =>
  h.filter((e) => e.event.objtype === objtype && (eventtype === undefined || e.event.eventtype === eventtype));
/** Readable history for assertion messages. */
export const show = (h: Logged[]): string => h.map((e) => `${e.event.objtype} ${e.event.eventtype}${e.event.valid === false ? ' (invalid)' : ''}`).join('; ');

