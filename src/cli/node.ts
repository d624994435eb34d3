/** `stated node ...`: node inventory, next op mode and one-shot triggers (SPEC §1, §4.4). */
import { defineCommand } from 'citty';
import type { NodeView } from '../views.ts';
import { admin, connArgs, names, printJson, table, withConnection } from './common.ts';
import { usage } from './output.ts';

type Trigger = NodeView['triggers'][number];

const add = defineCommand({
  meta: { name: 'add', description: 'add nodes to the inventory' },
  args: {
    nodes: { type: 'positional', required: true, description: 'NODE...' },
    type: { type: 'string', description: 'node type (picks the power driver; default pc)' },
    mode: { type: 'string', description: 'initial op mode (default NORMALv2)' },
    state: { type: 'string', description: 'initial state (default none)' },
    project: { type: 'string', description: 'the project the node belongs to' },
    ...connArgs,
  },
  async run({ args }) {
    const nodes = names(args._, 'NODE');
    const added = await withConnection(args, (conn) => admin<NodeView[]>(conn, 'node.add', {
      nodes, type: args.type, mode: args.mode, state: args.state, project: args.project,
    }));
    for (const n of added) {
      process.stdout.write(`added ${n.node}: type ${n.type}, mode ${n.mode}, state ${n.state ?? '-'}${n.project ? `, project ${n.project}` : ''}\n`);
    }
  },
});

const remove = defineCommand({
  meta: { name: 'remove', description: 'remove nodes (all or none: an unknown node refuses the lot)' },
  args: { nodes: { type: 'positional', required: true, description: 'NODE...' }, ...connArgs },
  async run({ args }) {
    const nodes = names(args._, 'NODE');
    const r = await withConnection(args, (conn) => admin<{ removed: string[] }>(conn, 'node.remove', { nodes }));
    for (const n of r.removed) process.stdout.write(`removed ${n}\n`);
  },
});

const setNextMode = defineCommand({
  meta: { name: 'set-next-mode', description: 'the op mode the node moves to at its next mode transition' },
  args: {
    node: { type: 'positional', required: true, description: 'NODE' },
    mode: { type: 'positional', required: false, description: 'MODE (e.g. RELOAD)' },
    clear: { type: 'boolean', description: 'clear the next op mode instead' },
    ...connArgs,
  },
  async run({ args }) {
    if ((args.mode === undefined) === (args.clear !== true)) usage('give either MODE or --clear');
    const mode = args.clear ? null : args.mode;
    const n = await withConnection(args, (conn) => admin<NodeView>(conn, 'node.setNextMode', { node: args.node, mode }));
    process.stdout.write(`${n.node}: next op mode ${n.nextMode ?? 'none'}\n`);
  },
});

function triggerRows(list: { node: string; triggers: Trigger[] }[]): string {
  const rows = list.flatMap((x) => x.triggers.map((t) => [x.node, t.mode, t.state, t.triggers]));
  return table(['NODE', 'MODE', 'STATE', 'TRIGGERS'], rows);
}

const triggerAdd = defineCommand({
  meta: { name: 'add', description: 'a one-shot trigger: runs the next time NODE enters STATE, then is cleared' },
  args: {
    node: { type: 'positional', required: true, description: 'NODE' },
    state: { type: 'positional', required: true, description: 'STATE' },
    triggers: { type: 'positional', required: true, description: 'TRIGGER[,TRIGGER...] (e.g. REBOOT, SCRIPT:name)' },
    mode: { type: 'string', description: "only in this op mode (default '*': any)" },
    ...connArgs,
  },
  async run({ args }) {
    const triggers = args.triggers.split(',').map((t) => t.trim()).filter((t) => t !== '');
    if (triggers.length === 0) usage('expected at least one TRIGGER');
    const list = await withConnection(args, (conn) => admin<Trigger[]>(conn, 'node.trigger.add', {
      node: args.node, state: args.state, triggers, mode: args.mode,
    }));
    process.stdout.write(triggerRows([{ node: args.node, triggers: list }]));
  },
});

const triggerList = defineCommand({
  meta: { name: 'list', description: "nodes' pending one-shot triggers" },
  args: {
    nodes: { type: 'positional', required: false, description: 'NODE... (default: every node with one)' },
    json: { type: 'boolean', description: 'print JSON' },
    ...connArgs,
  },
  async run({ args }) {
    const nodes = args._.length > 0 ? [...args._] : undefined;
    const list = await withConnection(args, (conn) => admin<{ node: string; triggers: Trigger[] }[]>(conn, 'node.trigger.list', { nodes }));
    if (args.json) printJson(list);
    else if (list.length === 0) process.stdout.write('no one-shot triggers\n');
    else process.stdout.write(triggerRows(list));
  },
});

const triggerClear = defineCommand({
  meta: { name: 'clear', description: "drop a node's one-shot triggers" },
  args: { node: { type: 'positional', required: true, description: 'NODE' }, ...connArgs },
  async run({ args }) {
    await withConnection(args, (conn) => admin(conn, 'node.trigger.clear', { node: args.node }));
    process.stdout.write(`${args.node}: one-shot triggers cleared\n`);
  },
});

const clear = defineCommand({
  meta: { name: 'clear', description: 'end a gave-up (TBFAILED) reboot without rebooting: the node was fixed by hand (audited)' },
  args: { node: { type: 'positional', required: true, description: 'NODE' }, ...connArgs },
  async run({ args }) {
    const n = await withConnection(args, (conn) => admin<NodeView>(conn, 'node.clear', { node: args.node }));
    process.stdout.write(`${n.node}: cleared; ${n.mode} ${n.state ?? '-'}, reboot attempts ${n.reboot.attempts}\n`);
  },
});

const trigger = defineCommand({
  meta: { name: 'trigger', description: 'one-shot triggers: add, list, clear' },
  subCommands: { add: triggerAdd, list: triggerList, clear: triggerClear },
});

export default defineCommand({
  meta: { name: 'node', description: 'node inventory and one-shot triggers' },
  subCommands: { add, remove, 'set-next-mode': setNextMode, trigger, clear },
});
