// protocol.ts: what initStateWait accepts (SPEC §3; issue 11: per-node
// actions under one wait, and `A|B` state entries) and the listWaits op.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseRequest } from '../src/protocol.ts';
import { StatedError } from '../src/errors.ts';

const code = (fn: () => unknown): string => {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof StatedError, String(err));
    return err.code;
  }
  return 'accepted';
};

test('initStateWait actions: per node a command, each node one the wait holds; not together with command', () => {
  const r = parseRequest({ op: 'initStateWait', states: ['ISUP'], nodes: ['pc1', 'pc2', 'pc3'], actions: { pc1: 'REBOOT', pc2: 'POWERCYCLE' } });
  assert.equal(r.op, 'initStateWait');
  assert.deepEqual(r.op === 'initStateWait' ? [...r.actions!] : null, [['pc1', 'REBOOT'], ['pc2', 'POWERCYCLE']]);
  const base = { op: 'initStateWait', states: ['ISUP'], nodes: ['pc1'] };
  for (const [actions, extra, want] of [
    [{ pc9: 'REBOOT' }, {}, 'E_BAD_REQUEST'], // not a node of the wait
    [{ pc1: 'ISUP' }, {}, 'E_BAD_REQUEST'], // not a command
    [{ pc1: 'REBOOT' }, { command: 'REBOOT' }, 'E_BAD_REQUEST'], // both
    [{}, {}, 'E_BAD_REQUEST'],
    [['pc1'], {}, 'E_BAD_REQUEST'],
    [{ 'pc 1': 'REBOOT' }, {}, 'E_BAD_NAME'],
    [{ pc1: 'REBOOT' }, {}, 'accepted'],
  ] as const) {
    assert.equal(code(() => parseRequest({ ...base, ...extra, actions })), want, JSON.stringify(actions));
  }
});

test('initStateWait states: an entry may be A|B, each alternative a name', () => {
  const ok = parseRequest({ op: 'initStateWait', states: ['SHUTDOWN', 'RELOADDONE|RELOADDONEV2'], nodes: ['pc1'] });
  assert.deepEqual(ok.op === 'initStateWait' ? ok.states : null, ['SHUTDOWN', 'RELOADDONE|RELOADDONEV2']);
  for (const bad of ['RELOADDONE|', '|ISUP', 'A||B', 'A|b c', Array.from({ length: 17 }, (_, i) => `S${i}`).join('|')]) {
    assert.notEqual(code(() => parseRequest({ op: 'initStateWait', states: [bad], nodes: ['pc1'] })), 'accepted', bad);
  }
});

test('listWaits takes no fields', () => {
  assert.deepEqual(parseRequest({ op: 'listWaits' }), { op: 'listWaits' });
});
