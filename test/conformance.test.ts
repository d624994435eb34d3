// Emulab conformance (SPEC §4.3-4.6 and its timeout paragraph): sequences of
// events against the shipped Emulab rows (migrations/002_emulab_defaults.sql),
// on the fake clock and a real Core, so what is asserted is what the log,
// the node and the drivers would see. Each case names the behaviour of
// Emulab's event/stated/stated.in it pins.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../src/config.ts';
import type { Committed } from '../src/nodes.ts';
import { FLEET_DEFAULTS, Fleet } from '../src/simulator/fleet.ts';
import type { OneShotTrigger } from '../src/types.ts';
import { FakeClock, T0, makeCore, type TestCore } from './helpers/fake.ts';

const S = 1000;
const DAY = 86_400 * S;

/**
 * One step: `do` is a state the node reports, or `opmode M`, `control C`,
 * `command C`, `ok C N` (the driver reports attempt N of C done), `next M`
 * (an operator sets the next op mode) or `after N` (N seconds pass; due
 * timeouts fire). Then: `is` MODE/STATE; `log` every event the step
 * committed (TBNODESTATE as the bare state, others as `OBJTYPE EVENTTYPE`);
 * optionally the pending timeout (`SECONDS ACTION` from now, or null), the
 * next op mode, and the driver actions started (`COMMAND#ATTEMPT`).
 */
interface Step {
  do: string;
  is: string;
  log: string[];
  timeout?: string | null;
  next?: string | null;
  actions?: string[];
}

interface Case {
  name: string;
  /** The stated.in function(s) whose behaviour this pins. */
  emulab: string;
  mode: string;
  state: string;
  type?: string;
  nextMode?: string;
  triggers?: OneShotTrigger[];
  steps: Step[];
}

/** SHUTDOWN..ISUP of a NORMALv2 boot after PXE, as the real tables run it. */
const NORMAL_TAIL: Step[] = [
  { do: 'TBSETUP', is: 'NORMALv2/TBSETUP', log: ['TBSETUP'], timeout: '600 NOTIFY' },
  { do: 'ISUP', is: 'NORMALv2/ISUP', log: ['ISUP'], timeout: null },
];

const CASES: Case[] = [
  {
    name: 'a NORMALv2 boot passes through PXEKERNEL and back with no invalid transition',
    emulab: 'stateTransition: PXEBOOT trigger into PXEKERNEL, BOOTING trigger out (opModeTransition forced)',
    mode: 'NORMALv2', state: 'ISUP',
    steps: [
      { do: 'SHUTDOWN', is: 'NORMALv2/SHUTDOWN', log: ['SHUTDOWN'], timeout: null },
      { do: 'PXEBOOTING', is: 'PXEKERNEL/PXEBOOTING', log: ['PXEBOOTING'], timeout: null },
      { do: 'BOOTING', is: 'NORMALv2/BOOTING', log: ['BOOTING'], timeout: '180 REBOOT' },
      ...NORMAL_TAIL,
    ],
  },
  {
    name: 'a free node parks in PXEKERNEL/PXEWAIT; PXEWAKEUP times out with REBOOT',
    emulab: 'stateTransition PXEBOOT trigger; handleCtrlEvent TIMEOUT (the PXEWAKEUP case reboots the node)',
    mode: 'NORMALv2', state: 'SHUTDOWN',
    steps: [
      { do: 'PXEBOOTING', is: 'PXEKERNEL/PXEBOOTING', log: ['PXEBOOTING'] },
      { do: 'PXEWAIT', is: 'PXEKERNEL/PXEWAIT', log: ['PXEWAIT'], timeout: null },
      { do: 'after 3600', is: 'PXEKERNEL/PXEWAIT', log: [] },
      { do: 'PXEWAKEUP', is: 'PXEKERNEL/PXEWAKEUP', log: ['PXEWAKEUP'], timeout: '20 REBOOT' },
      { do: 'after 20', is: 'PXEKERNEL/PXEWAKEUP', log: ['NOTIFY TIMEOUT'], timeout: null, actions: ['REBOOT#1'] },
    ],
  },
  {
    name: 'a node woken from PXEWAIT boots into its next op mode, else the mode it came from',
    emulab: 'stateTransition BOOTING trigger (TBBootWhat: what the node boots decides its mode)',
    mode: 'NORMALv2', state: 'SHUTDOWN',
    steps: [
      { do: 'PXEBOOTING', is: 'PXEKERNEL/PXEBOOTING', log: ['PXEBOOTING'] },
      { do: 'PXEWAIT', is: 'PXEKERNEL/PXEWAIT', log: ['PXEWAIT'] },
      { do: 'next RELOAD', is: 'PXEKERNEL/PXEWAIT', log: [], next: 'RELOAD' },
      { do: 'PXEWAKEUP', is: 'PXEKERNEL/PXEWAKEUP', log: ['PXEWAKEUP'] },
      { do: 'PXEBOOTING', is: 'PXEKERNEL/PXEBOOTING', log: ['PXEBOOTING'], next: 'RELOAD' },
      { do: 'BOOTING', is: 'RELOAD/BOOTING', log: ['BOOTING'], next: null, timeout: '180 REBOOT' },
    ],
  },
  {
    name: 'GPXEBOOTING moves a node into SECUREBOOT; TPMSIGNOFF hands it to PXEKERNEL; BOOTING returns it',
    emulab: 'stateTransition SECUREBOOT trigger; PXEBOOT trigger with the SECUREBOOT/TPMSIGNOFF -> PXEKERNEL/SHUTDOWN row',
    mode: 'NORMALv2', state: 'SHUTDOWN',
    steps: [
      // NORMALv2 has no SHUTDOWN -> GPXEBOOTING row: Emulab notifies too.
      { do: 'GPXEBOOTING', is: 'SECUREBOOT/GPXEBOOTING', log: ['GPXEBOOTING', 'NOTIFY INVALID_TRANSITION'], timeout: '60 STATE:SECVIOLATION' },
      // SECUREBOOT/PXEBOOTING '' and SECUREBOOT/BOOTING '' switch PXEBOOT and BOOTING off.
      { do: 'PXEBOOTING', is: 'SECUREBOOT/PXEBOOTING', log: ['PXEBOOTING'], timeout: '60 STATE:SECVIOLATION' },
      { do: 'BOOTING', is: 'SECUREBOOT/BOOTING', log: ['BOOTING'], timeout: '300 STATE:SECVIOLATION' },
      { do: 'TPMSIGNOFF', is: 'PXEKERNEL/SHUTDOWN', log: ['TPMSIGNOFF', 'SHUTDOWN'], timeout: null },
      { do: 'PXEBOOTING', is: 'PXEKERNEL/PXEBOOTING', log: ['PXEBOOTING'] },
      { do: 'BOOTING', is: 'NORMALv2/BOOTING', log: ['BOOTING'], timeout: '180 REBOOT' },
      ...NORMAL_TAIL,
    ],
  },
  {
    name: 'GPXEBOOTING from SHUTDOWN with next op mode SECURELOAD moves the node into SECURELOAD',
    emulab: 'stateTransition SECUREBOOT trigger (next_op_mode SECURELOAD and old state SHUTDOWN)',
    mode: 'NORMALv2', state: 'SHUTDOWN', nextMode: 'SECURELOAD',
    steps: [
      { do: 'GPXEBOOTING', is: 'SECURELOAD/GPXEBOOTING', log: ['GPXEBOOTING', 'NOTIFY INVALID_TRANSITION'], next: null, timeout: '60 STATE:SECVIOLATION' },
    ],
  },
  {
    name: 'a SECURELOAD reload: in at SHUTDOWN, closed by RELOADDONE, out through SECUREBOOT and PXEKERNEL',
    emulab: 'stateTransition modeTrans check; SECUREBOOT trigger (no next mode: the current one); RELOADDONE; PXEBOOT; BOOTING',
    mode: 'NORMALv2', state: 'ISUP', nextMode: 'SECURELOAD',
    steps: [
      { do: 'SHUTDOWN', is: 'SECURELOAD/SHUTDOWN', log: ['SHUTDOWN', 'SHUTDOWN'], next: null, timeout: '300 STATE:SECVIOLATION' },
      { do: 'GPXEBOOTING', is: 'SECURELOAD/GPXEBOOTING', log: ['GPXEBOOTING'] },
      { do: 'PXEBOOTING', is: 'SECURELOAD/PXEBOOTING', log: ['PXEBOOTING'] },
      { do: 'BOOTING', is: 'SECURELOAD/BOOTING', log: ['BOOTING'], timeout: '300 STATE:SECVIOLATION' },
      { do: 'RELOADSETUP', is: 'SECURELOAD/RELOADSETUP', log: ['RELOADSETUP'] },
      { do: 'RELOADING', is: 'SECURELOAD/RELOADING', log: ['RELOADING'], timeout: '3600 STATE:SECVIOLATION' },
      { do: 'RELOADDONE', is: 'SECURELOAD/RELOADDONE', log: ['RELOADDONE'], next: 'NORMALv2' },
      { do: 'TPMSIGNOFF', is: 'SECURELOAD/TPMSIGNOFF', log: ['TPMSIGNOFF'] },
      { do: 'GPXEBOOTING', is: 'SECUREBOOT/GPXEBOOTING', log: ['GPXEBOOTING'], next: 'NORMALv2' },
      { do: 'PXEBOOTING', is: 'SECUREBOOT/PXEBOOTING', log: ['PXEBOOTING'] },
      { do: 'BOOTING', is: 'SECUREBOOT/BOOTING', log: ['BOOTING'] },
      { do: 'TPMSIGNOFF', is: 'PXEKERNEL/SHUTDOWN', log: ['TPMSIGNOFF', 'SHUTDOWN'], next: 'NORMALv2' },
      { do: 'PXEBOOTING', is: 'PXEKERNEL/PXEBOOTING', log: ['PXEBOOTING'] },
      { do: 'BOOTING', is: 'NORMALv2/BOOTING', log: ['BOOTING'], next: null, timeout: '180 REBOOT' },
    ],
  },
  {
    name: 'an invalid transition in SECUREBOOT becomes SECVIOLATION, which powers the node off',
    emulab: 'stateTransition (secure boot path: invalid -> SECVIOLATION); */*/SECVIOLATION POWEROFF, EMAILNOTIFY',
    mode: 'NORMALv2', state: 'SHUTDOWN',
    steps: [
      { do: 'GPXEBOOTING', is: 'SECUREBOOT/GPXEBOOTING', log: ['GPXEBOOTING', 'NOTIFY INVALID_TRANSITION'] },
      { do: 'ISUP', is: 'SECUREBOOT/SECVIOLATION', log: ['ISUP', 'NOTIFY INVALID_TRANSITION', 'NOTIFY SECVIOLATION', 'SECVIOLATION', 'NOTIFY EMAILNOTIFY'], actions: ['POWEROFF#1'] },
    ],
  },
  {
    name: 'a mode-specific empty row switches an any-mode trigger off',
    emulab: 'GetNodeTriggerList (a global mode:state entry replaces the any-mode one)',
    mode: 'SECUREBOOT', state: 'PXEBOOTING', type: 'switch',
    steps: [
      // (*,BOOTING) 'BOOTING, CHECKGENISUP' would emit ISUP for this type; SECUREBOOT/BOOTING '' runs nothing.
      { do: 'BOOTING', is: 'SECUREBOOT/BOOTING', log: ['BOOTING'] },
    ],
  },
  {
    name: 'the any-mode row runs where no mode row exists',
    emulab: 'GetNodeTriggerList (any-mode entry)',
    mode: 'NORMALv2', state: 'PXEBOOTING', type: 'switch',
    steps: [
      // CHECKGENISUP's ISUP: NORMALv2 has no BOOTING -> ISUP row; Emulab notified it, but a state
      // stated generates itself is not judged against the tables (issue 9; README, differences).
      { do: 'BOOTING', is: 'NORMALv2/ISUP', log: ['BOOTING', 'ISUP'] },
    ],
  },
  {
    name: 'per-node one-shot triggers run before the global row, mode-specific first, and are cleared',
    emulab: 'GetNodeTriggerList (per-node triggers first); stateTransition ClearNodeTrigger',
    mode: 'NORMALv2', state: 'SHUTDOWN',
    triggers: [{ mode: '*', state: 'WEDGED', triggers: 'SCRIPT:second' }, { mode: 'NORMALv2', state: 'WEDGED', triggers: 'SCRIPT:first' }],
    steps: [
      { do: 'WEDGED', is: 'NORMALv2/WEDGED', log: ['WEDGED'], actions: ['script first', 'script second', 'POWERCYCLE#1'] },
      // stated says SHUTDOWN for a power-cycled node (SPEC §4.3): generated, so not judged,
      // though NORMALv2 has no WEDGED -> SHUTDOWN row.
      { do: 'ok POWERCYCLE 1', is: 'NORMALv2/SHUTDOWN', log: ['SHUTDOWN'] },
      { do: 'PXEBOOTING', is: 'PXEKERNEL/PXEBOOTING', log: ['PXEBOOTING'] },
      { do: 'BOOTING', is: 'NORMALv2/BOOTING', log: ['BOOTING'] },
      ...NORMAL_TAIL,
      { do: 'SHUTDOWN', is: 'NORMALv2/SHUTDOWN', log: ['SHUTDOWN'] },
      { do: 'WEDGED', is: 'NORMALv2/WEDGED', log: ['WEDGED'], actions: ['POWERCYCLE#1'] },
    ],
  },
  {
    name: 'a next op mode with no transition row: NOTIFY, move with the state unchanged, clear',
    emulab: 'stateTransition modeTrans check; opModeTransition (not forced, no row for the new mode)',
    mode: 'NORMALv2', state: 'ISUP', nextMode: 'PCVM',
    steps: [
      // TBSETUP starts no mode transition: the next mode waits.
      { do: 'TBSETUP', is: 'NORMALv2/TBSETUP', log: ['TBSETUP', 'NOTIFY INVALID_TRANSITION'], next: 'PCVM' },
      { do: 'SHUTDOWN', is: 'PCVM/SHUTDOWN', log: ['SHUTDOWN', 'NOTIFY INVALID_MODE_TRANSITION'], next: null, timeout: null },
    ],
  },
  {
    name: 'TBNODEOPMODE with a transition row: mode set, state moved by the row, timeout re-armed, next mode cleared',
    emulab: 'handleEvent TBNODEOPMODE -> opModeTransition (deprecated, notified)',
    mode: 'NORMALv2', state: 'SHUTDOWN', nextMode: 'MINIMAL',
    steps: [
      { do: 'opmode RELOAD', is: 'RELOAD/SHUTDOWN', log: ['TBNODEOPMODE RELOAD', 'NOTIFY DEPRECATED_OPMODE', 'SHUTDOWN'], next: null, timeout: '120 REBOOT' },
    ],
  },
  {
    name: 'TBNODEOPMODE without a row: notified, mode set, state kept, its timeout in the new mode armed',
    emulab: 'opModeTransition ("Not a valid mode transition state", then the move)',
    mode: 'NORMALv2', state: 'TBSETUP',
    steps: [
      { do: 'opmode MINIMAL', is: 'MINIMAL/TBSETUP', log: ['TBNODEOPMODE MINIMAL', 'NOTIFY DEPRECATED_OPMODE', 'NOTIFY INVALID_MODE_TRANSITION'], timeout: null },
      { do: 'opmode NORMALv2', is: 'NORMALv2/TBSETUP', log: ['TBNODEOPMODE NORMALv2', 'NOTIFY DEPRECATED_OPMODE', 'NOTIFY INVALID_MODE_TRANSITION'], timeout: '600 NOTIFY' },
    ],
  },
  {
    name: 'BOOTING straight from ISUP catches up a missed mode transition',
    emulab: 'stateTransition BOOTING trigger ("Came from ISUP! Checking for mode transition")',
    mode: 'NORMALv2', state: 'ISUP', nextMode: 'MINIMAL',
    steps: [
      { do: 'BOOTING', is: 'MINIMAL/BOOTING', log: ['BOOTING', 'NOTIFY INVALID_TRANSITION'], next: null, timeout: '180 REBOOT' },
    ],
  },
  {
    name: 'RELOADDONE on a node that is not reloading changes no mode',
    emulab: 'handleCtrlEvent RELOADDONE (clears reload bookkeeping only)',
    mode: 'NORMALv2', state: 'ISUP',
    steps: [
      { do: 'control RELOADDONE', is: 'NORMALv2/ISUP', log: ['TBCONTROL RELOADDONE'], next: null },
      { do: 'SHUTDOWN', is: 'NORMALv2/SHUTDOWN', log: ['SHUTDOWN'] },
    ],
  },
  {
    name: 'a state whose timeout row is invalid in the mode: NORMALv2 WEDGED -> SHUTDOWN is invalid (the * source row)',
    emulab: 'IsValidTransition (a mode with a * source row checks every state)',
    mode: 'NORMALv2', state: 'WEDGED',
    steps: [
      { do: 'SHUTDOWN', is: 'NORMALv2/SHUTDOWN', log: ['SHUTDOWN', 'NOTIFY INVALID_TRANSITION'] },
      { do: 'POWEROFF', is: 'NORMALv2/POWEROFF', log: ['POWEROFF'] },
    ],
  },
  {
    name: 'triggers for Emulab work outside stated are accepted, not notified as unknown',
    emulab: 'stateTransition CHECKPORTREG, PXERESET, RELOADOLDMFS',
    mode: 'RELOAD', state: 'RELOADSETUP',
    steps: [
      { do: 'RELOADOLDMFS', is: 'RELOAD/RELOADOLDMFS', log: ['RELOADOLDMFS'], actions: ['log RELOADOLDMFS'] },
    ],
  },
];

// Reloads closed by RELOADDONE and RELOADDONEV2 in each reload mode; the row after the mode's states.
const RELOADS: [string, string, string[], string][] = [
  ['RELOAD', 'RELOADDONE', ['PXEBOOTING', 'BOOTING', 'RELOADSETUP', 'RELOADING'], 'NORMALv2/SHUTDOWN'],
  ['RELOAD', 'RELOADDONEV2', ['PXEBOOTING', 'BOOTING', 'RELOADSETUP', 'RELOADING'], 'NORMALv2/SHUTDOWN'],
  ['WIMRELOAD', 'RELOADDONE', ['RELOADSETUP', 'RELOADING'], 'NORMALv2/SHUTDOWN'],
  // No SECURELOAD/RELOADDONE mode transition: the next mode waits for SECUREBOOT/TPMSIGNOFF (case above).
  ['SECURELOAD', 'RELOADDONE', ['GPXEBOOTING', 'PXEBOOTING', 'BOOTING', 'RELOADSETUP', 'RELOADING'], 'SECURELOAD/RELOADDONE'],
];
for (const [mode, done, states, after] of RELOADS) {
  const back = after.startsWith('NORMALv2');
  CASES.push({
    name: `${done} closes a reload in ${mode}: the node returns to NORMALv2`,
    emulab: `stateTransition ${done} trigger -> handleCtrlEvent; modeTrans ${mode}:${done}`,
    mode: 'NORMALv2', state: 'ISUP', nextMode: mode,
    steps: [
      { do: 'SHUTDOWN', is: `${mode}/SHUTDOWN`, log: ['SHUTDOWN', 'SHUTDOWN'], next: null },
      ...states.map((s): Step => ({ do: s, is: `${s === 'PXEBOOTING' && mode === 'RELOAD' ? 'PXEKERNEL' : mode}/${s}`, log: [s] })),
      {
        do: done, is: after, log: back ? [done, 'SHUTDOWN'] : [done], next: back ? null : 'NORMALv2',
        // PXERESET (WIMRELOAD's row) is Emulab's: logged, not an unknown trigger.
        ...(mode === 'WIMRELOAD' ? { actions: ['log PXERESET'] } : {}),
      },
    ],
  });
}

/** An event (or other input) as a step says. */
async function perform(tc: TestCore, what: string): Promise<Committed | null> {
  const [verb, arg, n] = what.split(' ');
  const node = 'pc1';
  const before = tc.commits.length;
  switch (verb) {
    case 'after':
      tc.clock.advance(Number(arg) * S);
      return tc.fire();
    case 'next':
      await tc.step((c) => c.updateNode(node, { nextMode: arg! }));
      return tc.commits[before] ?? null;
    case 'opmode':
      return tc.send({ objtype: 'TBNODEOPMODE', objname: node, eventtype: arg! });
    case 'control':
      return tc.send({ objtype: 'TBCONTROL', objname: node, eventtype: arg! });
    case 'command':
      return tc.send({ objtype: 'TBCOMMAND', objname: node, eventtype: arg! });
    case 'ok':
      await tc.step((c) => c.applyInput(node, { kind: 'actionResult', command: arg!, attempt: Number(n), ok: true }));
      return tc.commits[before] ?? null;
    default:
      return tc.send({ objtype: 'TBNODESTATE', objname: node, eventtype: verb! });
  }
}

const logOf = (c: Committed | null): string[] =>
  (c?.events ?? []).map((le) => (le.event.objtype === 'TBNODESTATE' ? le.event.eventtype : `${le.event.objtype} ${le.event.eventtype}`));
const actionsOf = (c: Committed | null): string[] =>
  (c?.effects ?? []).map((e) => {
    if (e.t === 'action') return `${e.command}#${e.attempt}`;
    if (e.t === 'script') return `script ${e.name}`;
    return e.t === 'log' ? `log ${/trigger (\S+)/.exec(e.message)![1]}` : `emit ${e.event.eventtype}`;
  });

for (const k of CASES) {
  test(`${k.name} [Emulab ${k.emulab}]`, async () => {
    const tc = makeCore(undefined, new FakeClock(), { genIsupTypes: ['switch'] });
    await tc.step((c) => {
      c.addNode('pc1', { mode: k.mode, state: k.state, type: k.type ?? 'pc' });
      c.updateNode('pc1', { nextMode: k.nextMode ?? null, triggers: k.triggers ?? [] });
    });
    for (const [i, s] of k.steps.entries()) {
      const where = `step ${i + 1} (${s.do})`;
      const c = await perform(tc, s.do);
      const n = tc.core.nodes.get('pc1')!;
      assert.equal(`${n.mode}/${n.state}`, s.is, where);
      assert.deepEqual(logOf(c), s.log, `${where}: events`);
      if (s.timeout !== undefined) {
        const t = n.timeout && `${(n.timeout.at - tc.clock.t) / S} ${n.timeout.action}`;
        assert.equal(t, s.timeout, `${where}: timeout`);
      }
      if (s.next !== undefined) assert.equal(n.nextMode, s.next, `${where}: next op mode`);
      // Log lines (CHECKPORTREG on ISUP) only where a case asks for them.
      const acts = actionsOf(c).filter((a) => s.actions?.includes(a) === true || !a.startsWith('log '));
      assert.deepEqual(acts, s.actions ?? [], `${where}: driver actions`);
    }
    assert.deepEqual(tc.core.nodes.get('pc1')!.triggers, [], 'one-shot triggers are cleared once run');
  });
}

// SPEC §4.3: "Each retry raises a NOTIFY (attempt n of max)"; Emulab notified each retry.
test('every retry raises REBOOT_RETRY, attempt n of max, for CMDRETRY and REBOOT timeouts [Emulab handleCtrlEvent TIMEOUT: "Command $state, retry #n"]', async () => {
  const tc = makeCore();
  await tc.step((c) => c.addNode('pc1', { mode: 'NORMALv2', state: 'ISUP' }));
  await tc.send({ objtype: 'TBCOMMAND', objname: 'pc1', eventtype: 'REBOOT' });
  await tc.step((c) => c.applyInput('pc1', { kind: 'actionResult', command: 'REBOOT', attempt: 1, ok: true }));
  // TBCOMMAND/REBOOT 75 CMDRETRY: no SHUTDOWN came.
  tc.clock.advance(75 * S);
  let c = await tc.fire();
  assert.deepEqual(logOf(c), ['NOTIFY REBOOT_RETRY']);
  assert.match(c!.events[0]!.event.message!, /attempt 2 of 3/);
  assert.deepEqual(actionsOf(c), ['REBOOT#2']);
  await tc.step((cc) => cc.applyInput('pc1', { kind: 'actionResult', command: 'REBOOT', attempt: 2, ok: true }));
  // This time it goes down and hangs in BOOTING: NORMALv2/BOOTING 180 REBOOT.
  for (const s of ['SHUTDOWN', 'PXEBOOTING', 'BOOTING']) await tc.send({ objtype: 'TBNODESTATE', objname: 'pc1', eventtype: s });
  tc.clock.advance(180 * S);
  c = await tc.fire();
  assert.deepEqual(logOf(c), ['NOTIFY REBOOT_RETRY']);
  assert.match(c!.events[0]!.event.message!, /TIMEOUT_IN_STATE in NORMALv2\/BOOTING; REBOOT attempt 3 of 3$/);
  assert.deepEqual(actionsOf(c), ['REBOOT#3']);
  await tc.step((cc) => cc.applyInput('pc1', { kind: 'actionResult', command: 'REBOOT', attempt: 3, ok: true }));
  tc.clock.advance(75 * S);
  c = await tc.fire();
  assert.deepEqual(logOf(c), ['TBFAILED REBOOT'], 'no retry notice once the attempts are spent');
});

// SPEC §4 timeouts: "deadlines overdue by more than staleTimeoutAge (default 7 days, as Emulab) are dropped with a NOTIFY".
test('at start a week-old deadline is dropped with a NOTIFY, a minute-old one fires [Emulab setTimeout: "Ignoring ancient timeout"]', async () => {
  let tc = makeCore();
  await tc.step((c) => {
    c.addNode('pc1', { mode: 'NORMALv2', state: 'ISUP' });
    c.addNode('pc2', { mode: 'NORMALv2', state: 'ISUP' });
    c.addNode('pc3', { mode: 'NORMALv2', state: 'PXEBOOTING' });
  });
  // pc1: a driven reboot waiting for SHUTDOWN (CMDRETRY at +75 s); pc3: NORMALv2/BOOTING 180 REBOOT.
  await tc.send({ objtype: 'TBCOMMAND', objname: 'pc1', eventtype: 'REBOOT' });
  await tc.step((c) => c.applyInput('pc1', { kind: 'actionResult', command: 'REBOOT', attempt: 1, ok: true }));
  await tc.send({ objtype: 'TBNODESTATE', objname: 'pc3', eventtype: 'BOOTING' });
  // pc2 enters TBSETUP (600 NOTIFY) just under eight days later; the daemon dies before anything fires.
  tc.clock.advance(8 * DAY - 660 * S);
  await tc.send({ objtype: 'TBNODESTATE', objname: 'pc2', eventtype: 'TBSETUP' });
  tc = tc.restart(new FakeClock(tc.clock.t + 660 * S));
  const c = await tc.fire();
  assert.deepEqual(c!.events.map((le) => `${le.event.objname} ${le.event.eventtype}`), ['pc1 STALE_TIMEOUT', 'pc3 STALE_TIMEOUT', 'pc2 TIMEOUT']);
  assert.deepEqual(c!.effects, [], 'no power action after the outage');
  // The dropped drive is over: a new REBOOT starts afresh instead of joining it.
  const r = await tc.step((cc) => cc.applyEvent({ objtype: 'TBCOMMAND', objname: 'pc1', eventtype: 'REBOOT' }));
  assert.deepEqual(r.nodes, { pc1: 'accepted' });
  assert.equal(tc.core.nodes.get('pc1')!.reboot.attempts, 1);
});

test('staleTimeoutAge is scaled by --time-scale and 0 drops nothing', async () => {
  for (const [scale, age, expect] of [[0.01, 7 * 86_400, 'STALE_TIMEOUT'], [1, 0, 'TIMEOUT'], [1, 7 * 86_400, 'TIMEOUT']] as const) {
    let tc = makeCore(undefined, new FakeClock(), { timeScale: scale, staleTimeoutAge: age });
    await tc.step((c) => c.addNode('pc1', { mode: 'NORMALv2', state: 'BOOTING' }));
    await tc.send({ objtype: 'TBNODESTATE', objname: 'pc1', eventtype: 'TBSETUP' });
    // Two days late: more than 7 days x 0.01, less than 7 days.
    tc = tc.restart(new FakeClock(T0 + 2 * DAY));
    assert.deepEqual(logOf(await tc.fire()), [`NOTIFY ${expect}`], `scale ${scale} age ${age}`);
  }
});

// SPEC §1 simulate: "a realistic boot sequence ... or the RELOAD sequence in that mode". Realistic = the
// shipped tables take it without a word: replay what the fleet says through the engine.
for (const [what, command, nextMode] of [['a REBOOT', 'REBOOT', null], ['a POWERCYCLE', 'POWERCYCLE', null], ['a reload', 'REBOOT', 'RELOAD']] as const) {
  test(`the simulator's sequence for ${what} follows the shipped tables: no NOTIFY, back in NORMALv2/ISUP`, async () => {
    const said: string[] = [];
    const fleet = new Fleet(async (_node, s) => { said.push(s); }, { ...FLEET_DEFAULTS, stepMs: 2 });
    const action = { id: 'a1', node: 'pc1', type: 'sim', command, requested: command, attempt: 1, mode: 'NORMALv2', nextMode };
    assert.deepEqual(await fleet.run(action), { ok: true });
    const end = Date.now() + 5000;
    while (said.at(-1) !== 'ISUP' && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
    fleet.stop();

    const tc = makeCore();
    await tc.step((c) => {
      c.addNode('pc1', { mode: 'NORMALv2', state: 'ISUP' });
      c.updateNode('pc1', { nextMode });
      c.applyEvent({ objtype: 'TBCOMMAND', objname: 'pc1', eventtype: command });
    });
    await tc.step((c) => c.applyInput('pc1', { kind: 'actionResult', command, attempt: 1, ok: true }));
    for (const s of said) await tc.send({ objtype: 'TBNODESTATE', objname: 'pc1', eventtype: s });
    const logged = tc.store.eventsAfter(0, 1000).map((le) => le.event);
    assert.deepEqual(logged.filter((e) => e.objtype === 'NOTIFY' || e.objtype === 'TBFAILED'), [], `${said.join(' ')}`);
    const n = tc.core.nodes.get('pc1')!;
    assert.deepEqual([n.mode, n.state, n.nextMode, n.reboot.command], ['NORMALv2', 'ISUP', null, null]);
    if (nextMode !== null) assert.ok(logged.some((e) => e.mode === 'RELOAD' && e.eventtype === 'RELOADDONE'), 'reloaded in RELOAD');
  });
}

test('staleTimeoutAge is a config key: 7 days by default, seconds >= 0', () => {
  assert.equal(parseConfig({}).staleTimeoutAge, 7 * 86_400);
  assert.equal(parseConfig({ staleTimeoutAge: 3600 }).staleTimeoutAge, 3600);
  assert.throws(() => parseConfig({ staleTimeoutAge: -1 }), /staleTimeoutAge must be seconds/);
  assert.throws(() => parseConfig({ staleTimeoutAge: '7d' }), /staleTimeoutAge must be seconds/);
});
