// The pure engine (SPEC §4) against Emulab's shipped tables. Rows are cited as
// table: values from migrations/002_emulab_defaults.sql.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { apply, type Effect, type EngineInput, retryNotice } from '../src/engine.ts';
import { Machine, parseDefinitionJson } from '../src/machine.ts';
import { NO_REBOOT, type NodeState } from '../src/types.ts';
import { T0, engineCtx, makeNode } from './helpers/fake.ts';

const S = 1000;
const retry = (attempt: number, why: string): Effect => retryNotice('pc1', 'REBOOT', attempt, 3, why);
const state = (s: string, forced = false): EngineInput => ({ kind: 'state', state: s, ...(forced ? { forced } : {}) });
const emitState = (s: string, forced = false): Effect =>
  ({ t: 'emit', event: { objtype: 'TBNODESTATE', objname: 'pc1', eventtype: s }, ...(forced ? { forced } : {}) });
/** NOTIFY codes among the effects. */
const notifies = (effects: Effect[]): string[] =>
  effects.flatMap((e) => (e.t === 'emit' && e.event.objtype === 'NOTIFY' ? [e.event.eventtype] : []));
/** Effects without debug-log lines (CHECKPORTREG on every ISUP). */
const acts = (effects: Effect[]): Effect[] => effects.filter((e) => e.t !== 'log');
const retryNote = (attempt: number): string => `REBOOT_RETRY ${attempt} of 3`;
/** REBOOT_RETRY notices as "REBOOT_RETRY n of max". */
const retries = (effects: Effect[]): string[] =>
  effects.flatMap((e) => (e.t === 'emit' && e.event.eventtype === 'REBOOT_RETRY' ? [`REBOOT_RETRY ${/attempt (\d+ of \d+)/.exec(e.event.message!)![1]}`] : []));

/**
 * Applies states one second apart; checks verdict, effects, the mode after
 * (third column, default the walk's mode) and the deadline each leaves.
 */
function walk(node: NodeState, rows: [string, [number, string] | null, string?][], scale = 1, mode = node.mode): NodeState {
  rows.forEach(([s, timeout, after = mode], i) => {
    const now = T0 + (i + 1) * S;
    const o = apply(node, state(s), engineCtx({ now, timeScale: scale }));
    assert.equal(o.valid, true, `${node.mode} ${node.state}->${s}`);
    assert.deepEqual(acts(o.effects), [], `${node.mode}/${s} effects`);
    assert.equal(o.node.state, s);
    assert.equal(o.node.mode, after, `mode after ${s}`);
    assert.equal(o.node.since, now);
    assert.deepEqual(o.node.timeout, timeout && { at: now + timeout[0] * S * scale, action: timeout[1], mode: after, state: s });
    node = o.node;
  });
  return node;
}

// state_transitions NORMALv2: ISUP->SHUTDOWN Reboot, SHUTDOWN->PXEBOOTING DHCP, BOOTING->TBSETUP BootOK,
// TBSETUP->ISUP BootDone; PXEKERNEL PXEBOOTING->BOOTING 'Not Free'; state_triggers */*/PXEBOOTING PXEBOOT,
// */*/BOOTING 'BOOTING, CHECKGENISUP'; state_timeouts NORMALv2/BOOTING 180 REBOOT, TBSETUP 600 NOTIFY.
for (const scale of [1, 0.01]) {
  test(`NORMALv2 boot is valid end to end, deadlines absolute (timeScale ${scale})`, () => {
    const up = walk(makeNode(), [
      ['SHUTDOWN', null], ['PXEBOOTING', null, 'PXEKERNEL'], ['BOOTING', [180, 'REBOOT']], ['TBSETUP', [600, 'NOTIFY']], ['ISUP', null],
    ], scale);
    assert.equal(up.mode, 'NORMALv2');
    assert.deepEqual(up.reboot, NO_REBOOT);
  });
}

test('an input never mutates the node it is given (SPEC §4: apply is pure)', () => {
  const n = makeNode({ triggers: [{ mode: '*', state: 'SHUTDOWN', triggers: 'EMAILNOTIFY' }] });
  const copy = structuredClone(n);
  apply(n, state('SHUTDOWN'), engineCtx());
  assert.deepEqual(n, copy);
});

// §4.1; NORMALv2 has rows out of ISUP but none ISUP->TBSETUP.
test('invalid transition: NOTIFY, still applied, valid:false', () => {
  const o = apply(makeNode(), state('TBSETUP'), engineCtx());
  assert.equal(o.valid, false);
  assert.deepEqual(notifies(o.effects), ['INVALID_TRANSITION']);
  assert.equal(o.node.state, 'TBSETUP');
  assert.deepEqual(o.node.timeout, { at: T0 + 600 * S, action: 'NOTIFY', mode: 'NORMALv2', state: 'TBSETUP' });
  // state_transitions NORMALv2 * -> POWEROFF 'Power Off' grants it from anywhere.
  assert.equal(apply(makeNode({ state: 'BOOTING' }), state('POWEROFF'), engineCtx()).valid, true);
});

// §4.5 + mode_transitions {NORMALv2,MINIMAL}/SHUTDOWN->RELOAD/SHUTDOWN and RELOAD/RELOADDONE->{NORMALv2,MINIMAL}/SHUTDOWN;
// state_triggers */RELOAD/RELOADDONE 'RESET, RELOADDONE'; state_timeouts RELOAD/SHUTDOWN 120 REBOOT, MINIMAL/SHUTDOWN 120 REBOOT.
const RELOAD_FROM: [string, [number, string] | null][] = [['NORMALv2', null], ['MINIMAL', [120, 'REBOOT']]];
for (const [origin, shutdownTimeout] of RELOAD_FROM) {
  test(`RELOAD cycle from ${origin}: into RELOAD at SHUTDOWN, back to ${origin} at RELOADDONE`, () => {
    let o = apply(makeNode({ mode: origin, nextMode: 'RELOAD' }), state('SHUTDOWN'), engineCtx());
    assert.equal(o.valid, true);
    assert.deepEqual(o.effects, [emitState('SHUTDOWN', true)]);
    assert.deepEqual([o.node.mode, o.node.prevMode, o.node.nextMode], ['RELOAD', origin, null]);
    // The generated SHUTDOWN is applied in the new mode and takes RELOAD's timeout.
    o = apply(o.node, state('SHUTDOWN', true), engineCtx());
    assert.deepEqual(o.effects, []);
    assert.deepEqual(o.node.timeout, { at: T0 + 120 * S, action: 'REBOOT', mode: 'RELOAD', state: 'SHUTDOWN' });
    const done = walk(o.node, [
      ['PXEBOOTING', null, 'PXEKERNEL'], ['BOOTING', [180, 'REBOOT']], ['RELOADSETUP', [60, 'NOTIFY']], ['RELOADING', [600, 'NOTIFY']],
    ]);
    const now = T0 + 9 * S;
    o = apply({ ...done, reboot: { ...NO_REBOOT, command: 'REBOOT', attempts: 2 } }, state('RELOADDONE'), engineCtx({ now }));
    assert.equal(o.valid, true);
    assert.deepEqual(acts(o.effects), [emitState('SHUTDOWN', true)]);
    assert.deepEqual([o.node.mode, o.node.state, o.node.prevMode, o.node.nextMode], [origin, 'RELOADDONE', 'RELOAD', null]);
    assert.deepEqual(o.node.reboot, NO_REBOOT, 'the RESET trigger closed the drive');
    o = apply(o.node, state('SHUTDOWN', true), engineCtx({ now }));
    assert.deepEqual([o.node.mode, o.node.state], [origin, 'SHUTDOWN']);
    assert.deepEqual(o.node.timeout, shutdownTimeout && { at: now + shutdownTimeout[0] * S, action: shutdownTimeout[1], mode: origin, state: 'SHUTDOWN' });
  });
}

// state_timeouts SECUREBOOT/BOOTING 300 STATE:SECVIOLATION; state_transitions SECUREBOOT BOOTING->SECVIOLATION
// QuoteFailed, SECVIOLATION->POWEROFF; state_triggers */*/SECVIOLATION 'POWEROFF, EMAILNOTIFY'.
test('STATE:X timeout forces SECVIOLATION, whose triggers power the node off and notify', () => {
  let o = apply(makeNode({ mode: 'SECUREBOOT', state: 'PXEBOOTING' }), state('BOOTING'), engineCtx());
  assert.deepEqual(o.node.timeout, { at: T0 + 300 * S, action: 'STATE:SECVIOLATION', mode: 'SECUREBOOT', state: 'BOOTING' });
  o = apply(o.node, { kind: 'timeout' }, engineCtx({ now: T0 + 300 * S }));
  // Forced by stated: not judged against the transition table.
  assert.deepEqual(o.effects, [emitState('SECVIOLATION', true)]);
  assert.equal(o.node.timeout, null);
  o = apply(o.node, state('SECVIOLATION', true), engineCtx({ now: T0 + 300 * S }));
  assert.equal(o.valid, true);
  assert.deepEqual(o.effects.map((e) => (e.t === 'emit' ? `emit ${e.event.eventtype}` : `${e.t} ${'command' in e ? e.command : ''}`)),
    ['action POWEROFF', 'emit EMAILNOTIFY']);
  assert.deepEqual(o.effects[0], { t: 'action', node: 'pc1', command: 'POWEROFF', attempt: 1, started: T0 + 300 * S });
  o = apply(o.node, { kind: 'actionResult', command: 'POWEROFF', attempt: 1, ok: true }, engineCtx());
  // Generated by stated: logged unchecked (SPEC §4), never an INVALID_TRANSITION about itself.
  assert.deepEqual(o.effects, [emitState('POWEROFF', true)]);
  assert.deepEqual(o.node.reboot, NO_REBOOT);
});

// SECUREBOOT has no PXEBOOTING->SECVIOLATION row, yet stated forces it by STATE:X: no INVALID_TRANSITION about itself.
test('a state stated forces is applied unchecked', () => {
  const n = makeNode({ mode: 'SECUREBOOT', state: 'PXEBOOTING' });
  assert.equal(apply(n, state('SECVIOLATION'), engineCtx()).valid, false);
  const o = apply(n, state('SECVIOLATION', true), engineCtx());
  assert.equal(o.valid, true);
  assert.ok(!o.effects.some((e) => e.t === 'emit' && e.event.eventtype === 'INVALID_TRANSITION'));
});

// §4.4: the node's one-shot triggers run before the global row, then are cleared.
test('a one-shot trigger fires once and is cleared; others stay', () => {
  const later = { mode: 'NORMALv2', state: 'BOOTING', triggers: 'EMAILNOTIFY' };
  const n = makeNode({ state: 'TBSETUP', triggers: [{ mode: 'NORMALv2', state: 'ISUP', triggers: 'EMAILNOTIFY' }, later] });
  const o = apply(n, state('ISUP'), engineCtx());
  assert.deepEqual(notifies(o.effects), ['EMAILNOTIFY']);
  assert.deepEqual(o.node.triggers, [later]);
  const again = apply({ ...o.node, state: 'TBSETUP' }, state('ISUP'), engineCtx());
  assert.deepEqual(acts(again.effects), []);
});

// state_transitions OPSNODEBSD TBSETUP->ISUP BootDone; state_triggers */OPSNODEBSD/ISUP 'SCRIPT:opsreboot'.
test('unknown trigger raises NOTIFY; SCRIPT:name becomes a script effect', () => {
  const o = apply(makeNode({ state: 'TBSETUP', triggers: [{ mode: '*', state: '*', triggers: 'FROBNICATE' }] }), state('ISUP'), engineCtx());
  assert.deepEqual(notifies(o.effects), ['UNKNOWN_TRIGGER']);
  assert.equal(o.effects[0]!.t, 'emit', 'one-shots run before the global (*,ISUP) row');
  assert.match((o.effects[0] as { event: { message: string } }).event.message, /FROBNICATE/);
  // the OPSNODEBSD row overrides (*,ISUP): no RESET, no CHECKPORTREG there
  const s = apply(makeNode({ mode: 'OPSNODEBSD', state: 'TBSETUP' }), state('ISUP'), engineCtx());
  assert.deepEqual(s.effects, [{ t: 'script', node: 'pc1', name: 'opsreboot' }]);
});

// state_triggers */*/BOOTING 'BOOTING, CHECKGENISUP'.
test('CHECKGENISUP emits ISUP only for types that cannot', () => {
  const n = makeNode({ state: 'PXEBOOTING', type: 'switch' });
  assert.deepEqual(apply(n, state('BOOTING'), engineCtx()).effects, []);
  assert.deepEqual(apply(n, state('BOOTING'), engineCtx({ genIsupTypes: new Set(['switch']) })).effects, [emitState('ISUP', true)]);
});

// SPEC §2, §4.5: NORMALv2/ISUP starts no mode transition, so the move is notified as invalid and made anyway.
test('TBNODEOPMODE changes the mode at once, notes the deprecation (SPEC §2, §4.5)', () => {
  const o = apply(makeNode({ nextMode: 'RELOAD' }), { kind: 'opmode', mode: 'MINIMAL' }, engineCtx());
  assert.deepEqual([o.node.mode, o.node.state, o.node.nextMode], ['MINIMAL', 'ISUP', null]);
  assert.deepEqual(notifies(o.effects), ['DEPRECATED_OPMODE', 'INVALID_MODE_TRANSITION']);
});

test('TBCONTROL RESET clears retry counters; an unknown control raises NOTIFY (SPEC §2, §4.4)', () => {
  const driven = makeNode({ reboot: { ...NO_REBOOT, command: 'REBOOT', attempts: 2 } });
  const o = apply(driven, { kind: 'control', control: 'RESET' }, engineCtx());
  assert.deepEqual([o.node.reboot, o.effects], [NO_REBOOT, []]);
  const u = apply(driven, { kind: 'control', control: 'FLY' }, engineCtx());
  assert.deepEqual(notifies(u.effects), ['UNKNOWN_CONTROL']);
  assert.deepEqual(u.node.reboot, driven.reboot);
});

// §4 timeout REBOOT: "a node that went down under its user's control is only reported".
test('REBOOT timeout on a node stated is not driving: NOTIFY only', () => {
  const booting = apply(makeNode({ state: 'PXEBOOTING' }), state('BOOTING'), engineCtx()).node;
  const o = apply(booting, { kind: 'timeout' }, engineCtx({ now: T0 + 180 * S }));
  assert.deepEqual(notifies(o.effects), ['TIMEOUT']);
  assert.equal(o.effects.length, 1);
  assert.deepEqual([o.node.timeout, o.node.reboot], [null, NO_REBOOT]);
});

/** Command REBOOT on an up node, driver done: the node awaits SHUTDOWN under CMDRETRY. */
function rebooted(now = T0): NodeState {
  const c = apply(makeNode(), { kind: 'command', command: 'REBOOT', force: false }, engineCtx({ now }));
  return apply(c.node, { kind: 'actionResult', command: 'REBOOT', attempt: 1, ok: true }, engineCtx({ now })).node;
}

// §4 commands and the gatekeeper; state_timeouts TBCOMMAND/REBOOT 75 CMDRETRY.
test('command REBOOT: action attempt 1, joined while driving, force restarts, SHUTDOWN settles, ISUP clears', () => {
  const o = apply(makeNode(), { kind: 'command', command: 'REBOOT', force: false }, engineCtx());
  assert.equal(o.verdict, 'accepted');
  assert.deepEqual(o.effects, [{ t: 'action', node: 'pc1', command: 'REBOOT', attempt: 1, started: T0 }]);
  assert.deepEqual([o.node.reboot.command, o.node.reboot.attempts, o.node.reboot.awaitingShutdown], ['REBOOT', 1, true]);
  const j = apply(o.node, { kind: 'command', command: 'REBOOT', force: false }, engineCtx());
  assert.deepEqual([j.verdict, j.effects], ['joined', []]);
  const f = apply(o.node, { kind: 'command', command: 'REBOOT', force: true }, engineCtx());
  assert.deepEqual([f.verdict, f.effects], ['accepted', [{ t: 'action', node: 'pc1', command: 'REBOOT', attempt: 1, started: T0 }]]);

  const r = rebooted(T0 + 5 * S);
  assert.deepEqual(r.timeout, { at: T0 + 80 * S, action: 'CMDRETRY', mode: 'TBCOMMAND', state: 'REBOOT' });
  const down = apply(r, state('SHUTDOWN'), engineCtx({ now: T0 + 20 * S }));
  assert.deepEqual([down.effects, down.node.timeout, down.node.reboot.awaitingShutdown], [[], null, false]);
  assert.equal(down.node.reboot.command, 'REBOOT', 'still driven until ISUP');
  const up = walk(down.node, [['PXEBOOTING', null, 'PXEKERNEL'], ['BOOTING', [180, 'REBOOT']], ['TBSETUP', [600, 'NOTIFY']], ['ISUP', null]]);
  assert.deepEqual(up.reboot, NO_REBOOT);
});

// §4 CMDRETRY: retried up to maxRebootAttempts, then TBFAILED REBOOT with its reason; gave up until ISUP.
test('CMDRETRY retries up to maxRebootAttempts, then TBFAILED', () => {
  let n = rebooted();
  for (let attempt = 2; attempt <= 3; attempt++) {
    const o = apply(n, { kind: 'timeout' }, engineCtx({ now: n.timeout!.at }));
    assert.deepEqual(retries(o.effects), [retryNote(attempt)]);
    assert.deepEqual(o.effects.slice(1), [{ t: 'action', node: 'pc1', command: 'REBOOT', attempt, started: n.timeout!.at, retry: 'COMMAND_TIMEOUT' }]);
    n = apply(o.node, { kind: 'actionResult', command: 'REBOOT', attempt, ok: true }, engineCtx({ now: n.timeout?.at ?? T0 })).node;
  }
  const o = apply(n, { kind: 'timeout' }, engineCtx({ now: n.timeout!.at }));
  assert.equal(o.effects.length, 1);
  const failed = o.effects[0] as Extract<Effect, { t: 'emit' }>;
  assert.deepEqual([failed.event.objtype, failed.event.objname, failed.event.eventtype], ['TBFAILED', 'pc1', 'REBOOT']);
  assert.deepEqual(failed.event.reason, { code: 'COMMAND_TIMEOUT', mode: 'TBCOMMAND', state: 'REBOOT', attempts: 3 });
  assert.deepEqual([o.node.reboot.gaveUp, o.node.timeout], [true, null]);
  // A new command after giving up starts a new drive.
  const again = apply(o.node, { kind: 'command', command: 'REBOOT', force: false }, engineCtx());
  assert.deepEqual([again.verdict, again.node.reboot.attempts], ['accepted', 1]);
});

// state_timeouts NORMALv2/BOOTING 180 REBOOT for a node stated drives: reboot again, then TBFAILED.
test('REBOOT timeout in BOOTING retries a driven node, then TBFAILED TIMEOUT_IN_STATE; then only reports', () => {
  let n = apply(rebooted(), state('SHUTDOWN'), engineCtx()).node;
  for (let attempt = 2; attempt <= 4; attempt++) {
    n = apply(apply(n, state('PXEBOOTING'), engineCtx()).node, state('BOOTING'), engineCtx()).node;
    const o = apply(n, { kind: 'timeout' }, engineCtx({ now: T0 + 180 * S }));
    if (attempt <= 3) {
      assert.deepEqual(retries(o.effects), [retryNote(attempt)]);
      assert.deepEqual(o.effects.slice(1), [{ t: 'action', node: 'pc1', command: 'REBOOT', attempt, started: T0 + 180 * S, retry: 'TIMEOUT_IN_STATE' }]);
      n = apply(o.node, { kind: 'actionResult', command: 'REBOOT', attempt, ok: true }, engineCtx()).node;
      n = apply(n, state('SHUTDOWN'), engineCtx()).node;
    } else {
      const ev = (o.effects[0] as Extract<Effect, { t: 'emit' }>).event;
      assert.equal(ev.objtype, 'TBFAILED');
      assert.deepEqual(ev.reason, { code: 'TIMEOUT_IN_STATE', mode: 'NORMALv2', state: 'BOOTING', attempts: 3 });
      n = o.node;
    }
  }
  n = apply(apply(n, state('SHUTDOWN'), engineCtx()).node, state('PXEBOOTING'), engineCtx()).node;
  const gaveUp = apply(apply(n, state('BOOTING'), engineCtx()).node, { kind: 'timeout' }, engineCtx());
  assert.deepEqual(notifies(gaveUp.effects), ['TIMEOUT']);
  assert.equal(gaveUp.effects.length, 1);
});

// §4: "A driver that fails ... counts as a failed attempt and raises a NOTIFY".
test('actionResult failure: DRIVER_FAILED, retried after retryDelay, TBFAILED at the last attempt', () => {
  let n = apply(makeNode(), { kind: 'command', command: 'REBOOT', force: false }, engineCtx()).node;
  const stale = apply(n, { kind: 'actionResult', command: 'REBOOT', attempt: 7, ok: false }, engineCtx());
  assert.deepEqual([stale.effects, stale.node], [[], n]);
  for (let attempt = 1; attempt <= 3; attempt++) {
    const o = apply(n, { kind: 'actionResult', command: 'REBOOT', attempt, ok: false, message: 'ipmi down' }, engineCtx());
    assert.deepEqual(notifies(o.effects)[0], 'DRIVER_FAILED');
    if (attempt < 3) {
      assert.deepEqual(o.node.timeout, { at: T0 + 10 * S, action: 'CMDRETRY', mode: 'TBCOMMAND', state: 'REBOOT' });
      const r = apply(o.node, { kind: 'timeout' }, engineCtx({ now: T0 + 10 * S }));
      assert.deepEqual(retries(r.effects), [retryNote(attempt + 1)]);
      assert.deepEqual(r.effects.slice(1), [{ t: 'action', node: 'pc1', command: 'REBOOT', attempt: attempt + 1, started: T0 + 10 * S, retry: 'DRIVER_FAILED' }]);
      n = r.node;
    } else {
      const ev = (o.effects[1] as Extract<Effect, { t: 'emit' }>).event;
      assert.equal(ev.objtype, 'TBFAILED');
      assert.deepEqual(ev.reason, { code: 'DRIVER_FAILED', mode: 'TBCOMMAND', state: 'REBOOT', attempts: 3, message: 'ipmi down' });
      assert.equal(o.node.timeout, null);
    }
  }
});

// A result names its action's start: a late one (recorded again after a lost
// batch) cannot settle a newer action of the same command and attempt.
test('actionResult of an earlier action of the same attempt (a forced reboot since) changes nothing', () => {
  const first = apply(makeNode(), { kind: 'command', command: 'REBOOT', force: false }, engineCtx()).node;
  const forced = apply(first, { kind: 'command', command: 'REBOOT', force: true }, engineCtx({ now: T0 + 2 * S }));
  assert.deepEqual(forced.effects, [{ t: 'action', node: 'pc1', command: 'REBOOT', attempt: 1, started: T0 + 2 * S }]);
  const late = apply(forced.node, { kind: 'actionResult', command: 'REBOOT', attempt: 1, ok: true, started: T0 }, engineCtx({ now: T0 + 3 * S }));
  assert.deepEqual([late.effects, late.node], [[], forced.node]);
  const current = apply(forced.node, { kind: 'actionResult', command: 'REBOOT', attempt: 1, ok: true, started: T0 + 2 * S }, engineCtx({ now: T0 + 3 * S }));
  assert.equal(current.node.reboot.inFlight, false);
  // Rows from before `started` existed: a result without it is judged as before.
  const { started: _, ...old } = forced.node.reboot;
  const legacy = apply({ ...forced.node, reboot: old }, { kind: 'actionResult', command: 'REBOOT', attempt: 1, ok: true, started: T0 }, engineCtx());
  assert.equal(legacy.node.reboot.inFlight, false);
});

// §4 drivers (escalation ladder): a REBOOT carried out as a power cycle; the node cannot say SHUTDOWN, stated does.
test('a REBOOT the driver carried out as POWERCYCLE: stated emits SHUTDOWN, which settles it', () => {
  const n = apply(makeNode(), { kind: 'command', command: 'REBOOT', force: false }, engineCtx()).node;
  const o = apply(n, { kind: 'actionResult', command: 'REBOOT', attempt: 1, ok: true, actual: 'POWERCYCLE' }, engineCtx());
  assert.deepEqual([o.effects, o.node.timeout], [[emitState('SHUTDOWN', true)], null]);
  const d = apply(o.node, state('SHUTDOWN'), engineCtx());
  assert.deepEqual([d.effects, d.node.reboot.awaitingShutdown, d.node.reboot.inFlight], [[], false, false]);
});

// §4.3 (changed by issue 9): a hard power cycle never says SHUTDOWN; any later boot state settles the
// reboot, and the state's own timeout replaces CMDRETRY, so a progressing boot is never power-cycled again.
test('a boot state other than SHUTDOWN settles a REBOOT: its own timeout replaces CMDRETRY, no retry mid-boot', () => {
  for (const s of ['PXEBOOTING', 'BOOTING', 'TBSETUP']) {
    const o = apply(rebooted(), state(s), engineCtx({ now: T0 + 10 * S }));
    // (ISUP -> BOOTING is no NORMALv2 row: that NOTIFY is the tables', not about the reboot.)
    assert.deepEqual(notifies(o.effects).filter((c) => c !== 'INVALID_TRANSITION'), [], s);
    assert.equal(o.node.reboot.awaitingShutdown, false, s);
    assert.equal(o.node.reboot.command, 'REBOOT', `${s}: still driven until ISUP`);
    assert.notEqual(o.node.timeout?.action, 'CMDRETRY', s);
  }
  let n = rebooted();
  n = apply(n, state('PXEBOOTING'), engineCtx({ now: T0 + 10 * S })).node;
  n = apply(n, state('BOOTING'), engineCtx({ now: T0 + 11 * S })).node;
  assert.deepEqual(n.timeout, { at: T0 + 191 * S, action: 'REBOOT', mode: 'NORMALv2', state: 'BOOTING' });
});

test('ISUP ends a drive and leaves no CMDRETRY deadline behind', () => {
  const o = apply(rebooted(), state('ISUP'), engineCtx({ now: T0 + 10 * S }));
  assert.deepEqual(o.node.reboot, NO_REBOOT);
  assert.equal(o.node.timeout, null);
});

test('a POWEROFF while stated drives a REBOOT is not reported as joined', () => {
  const booting = apply(apply(rebooted(), state('SHUTDOWN'), engineCtx()).node, state('PXEBOOTING'), engineCtx()).node;
  const o = apply(booting, { kind: 'command', command: 'POWEROFF', force: false }, engineCtx());
  assert.notEqual(o.verdict, 'joined');
  if (o.verdict === 'refused') assert.ok(o.refusal);
  else assert.deepEqual(o.effects, [{ t: 'action', node: 'pc1', command: 'POWEROFF', attempt: 1, started: T0 }]);
});

// §4 timeouts: STATE:X is checked when it fires, for definitions may change under a pending deadline.
test('a STATE:X timeout naming a state no table knows is notified, not forced', () => {
  const m = new Machine(parseDefinitionJson(JSON.stringify({
    state_transitions: [{ op_mode: 'M', state1: 'A', state2: 'B' }],
    state_timeouts: [{ op_mode: 'M', state: 'B', timeout: 5, action: 'STATE:A' }],
  })));
  const armed = makeNode({ mode: 'M', state: 'B', timeout: { at: T0, action: 'STATE:NOWHERE', mode: 'M', state: 'B' } });
  const o = apply(armed, { kind: 'timeout' }, engineCtx({ machine: m }));
  assert.deepEqual(notifies(o.effects), ['UNKNOWN_ACTION']);
  assert.equal(o.effects.length, 1);
  const known = apply({ ...armed, timeout: { ...armed.timeout!, action: 'STATE:A' } }, { kind: 'timeout' }, engineCtx({ machine: m }));
  assert.deepEqual(known.effects, [emitState('A', true)]);
});

// §4.6: BOOTING leaves PXEKERNEL for the next op mode, else the mode the node came from; with neither it stays.
test('BOOTING in PXEKERNEL with nowhere to go: NOTIFY PXE_NO_MODE, the node stays', () => {
  const lost = apply(makeNode({ mode: 'PXEKERNEL', state: 'PXEBOOTING' }), state('BOOTING'), engineCtx());
  assert.deepEqual(notifies(lost.effects), ['PXE_NO_MODE']);
  assert.deepEqual([lost.node.mode, lost.node.state], ['PXEKERNEL', 'BOOTING']);
  const from = apply(makeNode({ mode: 'PXEKERNEL', state: 'PXEBOOTING', phaseFrom: 'MINIMAL' }), state('BOOTING'), engineCtx());
  assert.deepEqual([from.node.mode, from.node.phaseFrom, notifies(from.effects)], ['MINIMAL', null, []]);
  assert.deepEqual(from.node.timeout, { at: T0 + 180 * S, action: 'REBOOT', mode: 'MINIMAL', state: 'BOOTING' });
});

// §4.3: a hard power cycle never says SHUTDOWN; PXEBOOTING (a phase move into PXEKERNEL) settles the
// reboot, and the phase state's own timeout replaces the command's retry timer.
test('PXEBOOTING without SHUTDOWN settles a reboot: the CMDRETRY gives way to the state\'s timeout', () => {
  const waiting = rebooted();
  assert.equal(waiting.timeout?.action, 'CMDRETRY');
  const p = apply({ ...waiting, state: 'ISUP' }, state('PXEBOOTING'), engineCtx({ now: T0 + 5 * S }));
  assert.equal(p.node.mode, 'PXEKERNEL');
  assert.equal(p.node.reboot.awaitingShutdown, false);
  assert.notEqual(p.node.timeout?.action, 'CMDRETRY');
});

// §4.3 (issue 9): a REBOOT joins only while stated will still act on the node by itself.
test('a REBOOT joins while an action is in flight or a REBOOT/CMDRETRY timeout is pending; a stalled reboot gets a new action', () => {
  const inFlight = apply(makeNode(), { kind: 'command', command: 'REBOOT', force: false }, engineCtx()).node;
  assert.equal(apply(inFlight, { kind: 'command', command: 'REBOOT', force: false }, engineCtx()).verdict, 'joined');
  const cmdretry = rebooted();
  assert.equal(apply(cmdretry, { kind: 'command', command: 'REBOOT', force: false }, engineCtx()).verdict, 'joined');
  const booting = apply(apply(cmdretry, state('SHUTDOWN'), engineCtx()).node, state('PXEBOOTING'), engineCtx()).node;
  const atBooting = apply(booting, state('BOOTING'), engineCtx()).node; // NORMALv2/BOOTING 180 REBOOT
  assert.equal(apply(atBooting, { kind: 'command', command: 'REBOOT', force: false }, engineCtx()).verdict, 'joined');
  for (const stall of ['SHUTDOWN', 'PXEBOOTING', 'TBSETUP', 'POWEROFF', 'WEDGED', 'TBFAILED']) {
    let n = apply(cmdretry, state('SHUTDOWN'), engineCtx()).node;
    if (stall !== 'SHUTDOWN') n = { ...n, state: stall, timeout: null };
    const o = apply(n, { kind: 'command', command: 'REBOOT', force: false }, engineCtx({ now: T0 + 9 * S }));
    assert.equal(o.verdict, 'accepted', stall);
    assert.deepEqual(o.effects, [{ t: 'action', node: 'pc1', command: 'REBOOT', attempt: 1, started: T0 + 9 * S }], stall);
  }
});

// §4.4 (issue 9): recovery rows are stated's own commands: they replace, never join.
test('a trigger command replaces the reboot in progress, counting on its attempts, then gives up', () => {
  let n = { ...rebooted(), reboot: { ...rebooted().reboot, inFlight: true } };
  n = apply(n, state('SHUTDOWN'), engineCtx()).node;
  const w = apply(n, state('WEDGED'), engineCtx({ now: T0 + 5 * S })); // NORMALv2/WEDGED POWERCYCLE
  assert.deepEqual(w.effects, [
    retryNotice('pc1', 'POWERCYCLE', 2, 3, 'trigger POWERCYCLE in NORMALv2/WEDGED'),
    { t: 'action', node: 'pc1', command: 'POWERCYCLE', attempt: 2, started: T0 + 5 * S, retry: 'TRIGGER' },
  ]);
  const third = apply(apply(w.node, state('SHUTDOWN'), engineCtx()).node, state('WEDGED'), engineCtx()).node;
  assert.equal(third.reboot.attempts, 3);
  const last = apply(apply(third, state('SHUTDOWN'), engineCtx()).node, state('WEDGED'), engineCtx());
  const ev = (last.effects.find((e) => e.t === 'emit' && e.event.objtype === 'TBFAILED') as Extract<Effect, { t: 'emit' }>).event;
  assert.deepEqual(ev.reason, { code: 'RECOVERY_FAILED', mode: 'NORMALv2', state: 'WEDGED', attempts: 3 });
  // Not driven by stated: the trigger starts a fresh drive.
  const idle = apply(makeNode({ state: 'SHUTDOWN' }), state('WEDGED'), engineCtx());
  assert.deepEqual(idle.effects, [{ t: 'action', node: 'pc1', command: 'POWERCYCLE', attempt: 1, started: T0 }]);
});

// §4.3 (issue 9): POWERON of a node that was off logs SHUTDOWN; that boot is driven, and a wedge power-cycles it.
test('POWERON of a POWEROFF node logs SHUTDOWN (generated) and its boot is retried with a power cycle', () => {
  const off = makeNode({ state: 'POWEROFF' });
  const on = apply(off, { kind: 'command', command: 'POWERON', force: false }, engineCtx());
  const done = apply(on.node, { kind: 'actionResult', command: 'POWERON', attempt: 1, ok: true }, engineCtx());
  assert.deepEqual(done.effects, [emitState('SHUTDOWN', true)]);
  let n = apply(done.node, state('SHUTDOWN', true), engineCtx()).node;
  n = apply(apply(n, state('PXEBOOTING'), engineCtx()).node, state('BOOTING'), engineCtx()).node;
  const t = apply(n, { kind: 'timeout' }, engineCtx({ now: T0 + 180 * S }));
  assert.deepEqual(t.effects.map((e) => (e.t === 'action' ? `action ${e.command} ${e.attempt}` : e.t === 'emit' ? e.event.eventtype : e.t)),
    ['REBOOT_RETRY', 'action POWERCYCLE 2']);
  // A node that was on: powering it on does nothing, and nothing is driven.
  const onAlready = apply(apply(makeNode(), { kind: 'command', command: 'POWERON', force: false }, engineCtx()).node,
    { kind: 'actionResult', command: 'POWERON', attempt: 1, ok: true }, engineCtx());
  assert.deepEqual([onAlready.effects, onAlready.node.reboot], [[], NO_REBOOT]);
});

// §4.3: "a node is never power-cycled again in the middle of a boot that is progressing".
test('a failed driver result after the node showed it is booting is reported, not retried', () => {
  const n = apply(apply(makeNode(), { kind: 'command', command: 'REBOOT', force: false }, engineCtx()).node, state('SHUTDOWN'), engineCtx()).node;
  const o = apply(n, { kind: 'actionResult', command: 'REBOOT', attempt: 1, ok: false, message: 'ipmi timeout' }, engineCtx());
  assert.deepEqual(notifies(o.effects), ['DRIVER_FAILED']);
  assert.equal(o.node.timeout, null, 'no CMDRETRY over a progressing boot');
});

test('a reboot records the log position it started after, kept across retries', () => {
  const o = apply(makeNode(), { kind: 'command', command: 'REBOOT', force: false }, engineCtx({ seq: 41 }));
  assert.equal(o.node.reboot.seq, 41);
  let n = apply(o.node, { kind: 'actionResult', command: 'REBOOT', attempt: 1, ok: true }, engineCtx({ seq: 42 })).node;
  n = apply(n, { kind: 'timeout' }, engineCtx({ now: n.timeout!.at, seq: 50 })).node;
  assert.deepEqual([n.reboot.attempts, n.reboot.seq], [2, 41]);
});

// A node declared lost (TBFAILED) while its action runs: stated stops driving it, and a restart
// (Core.inFlightActions) must not run that action again; the action's late result changes nothing.
test('a TBFAILED event while an action is in flight ends the drive: not in flight, a late result ignored', () => {
  const running = apply(makeNode(), { kind: 'command', command: 'REBOOT', force: false }, engineCtx()).node;
  assert.equal(running.reboot.inFlight, true);
  const lost = apply(running, { kind: 'failed' }, engineCtx()).node;
  assert.deepEqual([lost.reboot.gaveUp, lost.reboot.inFlight], [true, false]);
  const late = apply(lost, { kind: 'actionResult', command: 'REBOOT', attempt: 1, ok: false, message: 'late' }, engineCtx());
  assert.deepEqual([late.effects, late.node.timeout], [[], null]);
});
