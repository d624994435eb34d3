// Issue 11: "os_load twice after a failed reload" — a node left in RELOAD
// with RELOAD set again as its next op mode reloaded at every boot: its
// RELOADDONE kept the next mode, no mode_transitions row leads RELOAD to
// RELOAD, so it stayed in RELOAD, and RELOAD/ISUP's REBOOT trigger started
// the next reload. Emulab's rows: state_triggers */RELOAD/RELOADDONE(V2)
// 'RESET, RELOADDONE(V2)', mode_transitions RELOAD/RELOADDONE(V2) -> NORMALv2/SHUTDOWN.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { apply, type EngineInput } from '../src/engine.ts';
import { engineCtx, makeNode } from './helpers/fake.ts';

const state = (s: string): EngineInput => ({ kind: 'state', state: s });

for (const done of ['RELOADDONE', 'RELOADDONEV2']) {
  test(`${done} on a node in RELOAD whose next op mode is RELOAD: the reload closes, back to the mode it came from`, () => {
    const n = makeNode({ mode: 'RELOAD', state: 'RELOADING', nextMode: 'RELOAD', prevMode: 'NORMALv2' });
    const o = apply(n, state(done), engineCtx());
    assert.deepEqual([o.node.mode, o.node.nextMode], ['NORMALv2', null]);
    assert.deepEqual(o.effects.filter((e) => e.t === 'emit').map((e) => e.t === 'emit' && `${e.event.objtype} ${e.event.eventtype}`), ['TBNODESTATE SHUTDOWN']);
  });
}

test('an operator\'s other next mode still wins at RELOADDONE', () => {
  const o = apply(makeNode({ mode: 'RELOAD', state: 'RELOADING', nextMode: 'MINIMAL', prevMode: 'NORMALv2' }), state('RELOADDONE'), engineCtx());
  assert.deepEqual([o.node.mode, o.node.nextMode], ['MINIMAL', null]);
});
