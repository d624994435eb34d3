// Machine definitions (SPEC §4): lookups against Emulab's shipped rows, the two
// parsers, and the import lints. Rows cited as (table: values) from
// migrations/002_emulab_defaults.sql.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { StatedError } from '../src/errors.ts';
import { Machine, checkDefinition, parseDefinitionJson, parseEmulabSql } from '../src/machine.ts';
import type { MachineDefinition, ModeTransitionRow, TimeoutRow, TransitionRow, TriggerRow } from '../src/types.ts';

const read = (p: string): string => fs.readFileSync(path.join(process.cwd(), p), 'utf8');
const MIGRATION = read('migrations/002_emulab_defaults.sql');
const REFERENCE = fs.readFileSync('test/fixtures/emulab-state-tables.sql', 'utf8');
const DEFAULTS = parseEmulabSql(MIGRATION);
const m = new Machine(DEFAULTS);

const empty = (): MachineDefinition => ({ state_transitions: [], state_timeouts: [], state_triggers: [], mode_transitions: [] });
const def = (d: Partial<MachineDefinition>): MachineDefinition => ({ ...empty(), ...d });
const badDefinition = (message: RegExp) => (err: unknown): boolean => {
  assert.ok(err instanceof StatedError, `not a StatedError: ${String(err)}`);
  assert.equal(err.code, 'E_BAD_DEFINITION');
  assert.match(err.message, message);
  return true;
};

// --- the migration ------------------------------------------------------------

test('002 has every row of the reference file, per table', () => {
  const count = (text: string, re: RegExp): Record<string, number> => {
    const n: Record<string, number> = {};
    for (const match of text.matchAll(re)) n[match[1]!] = (n[match[1]!] ?? 0) + 1;
    return n;
  };
  const ref = count(REFERENCE, /^REPLACE INTO (\w+) VALUES/gm);
  assert.deepEqual(Object.keys(ref).sort(), ['mode_transitions', 'state_timeouts', 'state_transitions', 'state_triggers']);
  assert.deepEqual(count(MIGRATION, /^INSERT OR REPLACE INTO (\w+) \(/gm), ref);
  assert.deepEqual(DEFAULTS, parseEmulabSql(REFERENCE));
});

test('002 applies on 001 and the tables then hold what parseEmulabSql reads', () => {
  const db = new Database(':memory:');
  db.exec(read('migrations/001_schema.sql'));
  db.exec(MIGRATION);
  const fromDb: MachineDefinition = {
    state_transitions: db.prepare('SELECT op_mode, state1, state2, label FROM state_transitions').all() as TransitionRow[],
    state_timeouts: db.prepare('SELECT op_mode, state, timeout, action FROM state_timeouts').all() as TimeoutRow[],
    state_triggers: db.prepare('SELECT node_id, op_mode, state, triggers FROM state_triggers').all() as TriggerRow[],
    mode_transitions: db.prepare('SELECT op_mode1, state1, op_mode2, state2, label FROM mode_transitions').all() as ModeTransitionRow[],
  };
  db.close();
  // Two mode_transitions pairs collide on our key (op_mode1, state1, op_mode2): 87 rows in, 85 kept.
  assert.equal(fromDb.mode_transitions.length, 85);
  assert.deepEqual(new Machine(fromDb).definition(), m.definition());
});

// --- transitions (SPEC §4.1) ----------------------------------------------------

test('transition: Emulab rows', () => {
  // (state_transitions: 'NORMALv2','TBSETUP','ISUP','BootDone')
  assert.equal(m.transition('NORMALv2', 'TBSETUP', 'ISUP'), 'valid');
  // NORMALv2 has rows from ISUP (SHUTDOWN, PXEBOOTING, RECONFIG, POWEROFF via *) but none to BOOTING
  assert.equal(m.transition('NORMALv2', 'ISUP', 'BOOTING'), 'invalid');
  // (state_transitions: 'NORMALv2','*','POWEROFF','Power Off') from any state, named or not
  for (const from of ['ISUP', 'BOOTING', 'TBSETUP', 'WEDGED', 'NEVERHEARDOF']) {
    assert.equal(m.transition('NORMALv2', from, 'POWEROFF'), 'valid', from);
  }
  // (state_transitions: 'NORMALv2','SHUTDOWN','SHUTDOWN','Retry')
  assert.equal(m.transition('NORMALv2', 'SHUTDOWN', 'SHUTDOWN'), 'valid');
  // In MINIMAL there is no '*' row: ISUP -> POWEROFF is invalid there
  assert.equal(m.transition('MINIMAL', 'ISUP', 'POWEROFF'), 'invalid');
});

test('transition: unchecked for new nodes, undescribed states and modes without rows', () => {
  assert.equal(m.transition('NORMALv2', null, 'SHUTDOWN'), 'unchecked');
  assert.equal(m.transition('NORMALv2', undefined, 'SHUTDOWN'), 'unchecked');
  assert.equal(m.transition('NORMALv2', '', 'SHUTDOWN'), 'unchecked');
  // PXEFBSD has rows, none from WEDGED and none from '*': WEDGED is undescribed there
  assert.equal(m.transition('PXEFBSD', 'WEDGED', 'SHUTDOWN'), 'unchecked');
  // TBCOMMAND and EXPTSTATUS have timeouts but no transitions
  assert.equal(m.transition('TBCOMMAND', 'REBOOT', 'POWEROFF'), 'unchecked');
  assert.equal(m.transition('NOSUCHMODE', 'A', 'B'), 'unchecked');
});

// Emulab's IsValidTransition: a mode with a row leaving '*' checks every state.
test('transition: a * source row puts every state of its mode under checking, as Emulab', () => {
  // (state_transitions: 'NORMALv2','*','POWEROFF','Power Off'); no row leaves WEDGED
  assert.equal(m.transition('NORMALv2', 'WEDGED', 'SHUTDOWN'), 'invalid');
  assert.equal(m.transition('NORMALv2', 'NEVERHEARDOF', 'ISUP'), 'invalid');
  assert.equal(m.transition('NORMALv2', 'WEDGED', 'POWEROFF'), 'valid');
});

test('transition: wildcard-mode rows and * targets only grant', () => {
  const w = new Machine(def({
    state_transitions: [
      { op_mode: '*', state1: 'ISUP', state2: 'SHUTDOWN', label: '' },
      { op_mode: 'M', state1: 'A', state2: 'B', label: '' },
      { op_mode: 'M', state1: 'C', state2: '*', label: '' },
    ],
  }));
  assert.equal(w.transition('M', 'ISUP', 'SHUTDOWN'), 'valid'); // op_mode '*'
  assert.equal(w.transition('M', 'ISUP', 'BOOTING'), 'unchecked'); // only a '*'-mode row names ISUP
  assert.equal(w.transition('OTHER', 'ISUP', 'SHUTDOWN'), 'valid');
  assert.equal(w.transition('M', 'A', 'C'), 'invalid');
  assert.equal(w.transition('M', 'C', 'ANYTHING'), 'valid'); // state2 '*'
});

// --- timeouts (SPEC §4.2) -------------------------------------------------------

test('timeout: Emulab rows', () => {
  // (state_timeouts: 'NORMALv2','BOOTING',180,'REBOOT')
  assert.deepEqual(m.timeout('NORMALv2', 'BOOTING'), { seconds: 180, action: 'REBOOT' });
  // (state_timeouts: 'TBCOMMAND','REBOOT',75,'CMDRETRY')
  assert.deepEqual(m.timeout('TBCOMMAND', 'REBOOT'), { seconds: 75, action: 'CMDRETRY' });
  // (state_timeouts: 'SECUREBOOT','BOOTING',300,'STATE:SECVIOLATION')
  assert.deepEqual(m.timeout('SECUREBOOT', 'BOOTING'), { seconds: 300, action: 'STATE:SECVIOLATION' });
  // (state_timeouts: 'TBCOMMAND','POWEROFF',0,'CMDRETRY'): 0 is none
  assert.equal(m.timeout('TBCOMMAND', 'POWEROFF'), null);
  assert.equal(m.timeout('NORMALv2', 'ISUP'), null);
});

test('timeout: exact row beats wildcard rows, even an explicit 0', () => {
  const w = new Machine(def({
    state_timeouts: [
      { op_mode: '*', state: '*', timeout: 1, action: 'NOTIFY' },
      { op_mode: '*', state: 'S', timeout: 2, action: 'NOTIFY' },
      { op_mode: 'M', state: '*', timeout: 3, action: 'NOTIFY' },
      { op_mode: 'M', state: 'S', timeout: 0, action: '' },
    ],
  }));
  assert.equal(w.timeout('M', 'S'), null);
  assert.equal(w.timeout('M', 'T')?.seconds, 3);
  assert.equal(w.timeout('N', 'S')?.seconds, 2);
  assert.equal(w.timeout('N', 'T')?.seconds, 1);
});

// --- triggers (SPEC §4.4) -------------------------------------------------------

test('triggers: Emulab rows', () => {
  // (state_triggers: '*','RELOAD','RELOADDONE','RESET, RELOADDONE')
  assert.deepEqual(m.triggers('pc1', 'RELOAD', 'RELOADDONE'), ['RESET', 'RELOADDONE']);
  // (state_triggers: '*','*','BOOTING','BOOTING, CHECKGENISUP')
  assert.deepEqual(m.triggers('pc1', 'NORMALv2', 'BOOTING'), ['BOOTING', 'CHECKGENISUP']);
  // (state_triggers: '*','*','ISUP','RESET, CHECKPORTREG')
  assert.deepEqual(m.triggers('pc1', 'NORMALv2', 'ISUP'), ['RESET', 'CHECKPORTREG']);
  // (state_triggers: '*','RELOAD','ISUP','REBOOT') overrides the (*,ISUP) row (GetNodeTriggerList)
  assert.deepEqual(m.triggers('pc1', 'RELOAD', 'ISUP'), ['REBOOT']);
  // (state_triggers: '*','MINIMAL','ISUP','RESET'): no CHECKPORTREG in MINIMAL
  assert.deepEqual(m.triggers('pc1', 'MINIMAL', 'ISUP'), ['RESET']);
  // (state_triggers: '*','SECUREBOOT','BOOTING',''): an empty row switches (*,BOOTING) off
  assert.deepEqual(m.triggers('pc1', 'SECUREBOOT', 'BOOTING'), []);
  // (state_triggers: '*','SECURELOAD','BOOTING','BOOTING'): no CHECKGENISUP there
  assert.deepEqual(m.triggers('pc1', 'SECURELOAD', 'BOOTING'), ['BOOTING']);
  assert.deepEqual(m.triggers('pc1', 'NORMALv2', 'TBSETUP'), []);
});

test('triggers: per-node rows come first, then one global row; split, trimmed and deduplicated', () => {
  const w = new Machine(def({
    state_triggers: [
      { node_id: 'pc7', op_mode: '*', state: 'ISUP', triggers: 'SCRIPT:b' },
      { node_id: 'pc7', op_mode: 'M', state: 'ISUP', triggers: ' SCRIPT:a ,, RESET' },
      { node_id: '*', op_mode: '*', state: 'ISUP', triggers: 'RESET,ISUP' },
      { node_id: '*', op_mode: 'M', state: 'ISUP', triggers: 'EMAILNOTIFY, EMAILNOTIFY' },
    ],
  }));
  assert.deepEqual(w.triggers('pc7', 'M', 'ISUP'), ['SCRIPT:a', 'RESET', 'SCRIPT:b', 'EMAILNOTIFY']);
  assert.deepEqual(w.triggers('pc7', 'N', 'ISUP'), ['SCRIPT:b', 'RESET', 'ISUP']);
  assert.deepEqual(w.triggers('pc8', 'M', 'ISUP'), ['EMAILNOTIFY']);
  // a node without rows of its own shares one cached list per (mode, state), which nobody may change
  const shared = w.triggers('pc8', 'M', 'ISUP');
  assert.equal(w.triggers('pc9', 'M', 'ISUP'), shared);
  assert.throws(() => (shared as string[]).push('X'), TypeError);
  assert.deepEqual(w.triggers('pc8', 'M', 'ISUP'), ['EMAILNOTIFY']);
  assert.deepEqual(w.triggers('pc8', 'N', 'ISUP'), ['RESET', 'ISUP']);
});

// --- mode transitions (SPEC §4.5) -----------------------------------------------

test('modeTransition: Emulab rows', () => {
  // (mode_transitions: 'RELOAD','RELOADDONE','NORMALv2','SHUTDOWN','')
  assert.deepEqual(m.modeTransition('RELOAD', 'RELOADDONE', 'NORMALv2'), { mode: 'NORMALv2', state: 'SHUTDOWN' });
  // (mode_transitions: 'NORMALv2','SHUTDOWN','RELOAD','SHUTDOWN','')
  assert.deepEqual(m.modeTransition('NORMALv2', 'SHUTDOWN', 'RELOAD'), { mode: 'RELOAD', state: 'SHUTDOWN' });
  // (mode_transitions: 'RELOAD','RELOADDONE','NORMAL','REBOOTING','')
  assert.deepEqual(m.modeTransition('RELOAD', 'RELOADDONE', 'NORMAL'), { mode: 'NORMAL', state: 'REBOOTING' });
  // the later of the two PXEFBSD/SHUTDOWN -> NORMAL rows wins (key collision, see 002's header)
  assert.deepEqual(m.modeTransition('PXEFBSD', 'SHUTDOWN', 'NORMAL'), { mode: 'NORMAL', state: 'SHUTDOWN' });
  assert.equal(m.modeTransition('NORMALv2', 'ISUP', 'RELOAD'), null);
  assert.equal(m.modeTransition('NORMALv2', 'SHUTDOWN', 'NOSUCHMODE'), null);
});

test('modeTransition: literal beats wildcard; a * target keeps the value', () => {
  const w = new Machine(def({
    mode_transitions: [
      { op_mode1: '*', state1: 'SHUTDOWN', op_mode2: '*', state2: '*', label: '' },
      { op_mode1: 'A', state1: 'SHUTDOWN', op_mode2: 'B', state2: 'BOOTING', label: '' },
    ],
  }));
  assert.deepEqual(w.modeTransition('A', 'SHUTDOWN', 'B'), { mode: 'B', state: 'BOOTING' });
  assert.deepEqual(w.modeTransition('A', 'SHUTDOWN', 'C'), { mode: 'C', state: 'SHUTDOWN' });
  assert.equal(w.modeTransition('A', 'ISUP', 'B'), null);
});

test('modes and definition', () => {
  assert.ok(m.modes().includes('NORMALv2') && m.modes().includes('TBCOMMAND'));
  assert.ok(!m.modes().includes('*'));
  const d = m.definition();
  assert.equal(d.state_transitions.length, 232);
  assert.deepEqual(d.state_timeouts[0], { op_mode: 'EXPTSTATUS', state: 'ACTIVATING', timeout: 0, action: '' });
  d.state_timeouts.length = 0; // a copy
  assert.equal(m.definition().state_timeouts.length, 62);
});

// --- parseEmulabSql -------------------------------------------------------------

test('parseEmulabSql: the forms Emulab and SQLite dumps use', () => {
  const d = parseEmulabSql(`
    -- a comment
    # a MySQL comment
    /* a block
       comment */ /*!40000 ALTER TABLE x DISABLE KEYS */;
    REPLACE INTO state_transitions VALUES ('M','A','B','it''s'), ('M','B','A','back\\'slash\\\\');
    INSERT INTO \`state_timeouts\` (state, op_mode, timeout_seconds) VALUES ('A','M','60');
    INSERT OR REPLACE INTO state_triggers (node_id, op_mode, state, \`trigger\`) VALUES
      ('*','M','A','RESET'),
      ('*','M','A','ISUP')
  `);
  assert.deepEqual(d.state_transitions, [
    { op_mode: 'M', state1: 'A', state2: 'B', label: "it's" },
    { op_mode: 'M', state1: 'B', state2: 'A', label: "back'slash\\" },
  ]);
  assert.deepEqual(d.state_timeouts, [{ op_mode: 'M', state: 'A', timeout: 60, action: '' }]);
  assert.deepEqual(d.state_triggers, [{ node_id: '*', op_mode: 'M', state: 'A', triggers: 'ISUP' }]); // replaced
});

test('parseEmulabSql: errors name the line', () => {
  const cases: [string, RegExp][] = [
    ["REPLACE INTO nodes VALUES ('a');", /^line 1: unknown table "nodes"/],
    ["-- ok\nREPLACE INTO state_transitions VALUES ('M','A','B','');\nREPLACE INTO state_transitions VALUES ('M','A');", /^line 3: state_transitions row has 2 values, expected 4/],
    ["REPLACE INTO state_transitions VALUES ('M','A','B','','x');", /^line 1: state_transitions row has more than 4 values/],
    ["\n\nREPLACE INTO state_transitions VALUES ('M','A,'B','');", /^line 3: /],
    ["REPLACE INTO state_transitions VALUES ('M','A','B','oops);\n\n", /^line 1: unterminated/],
    ["REPLACE INTO state_timeouts VALUES ('M','A',-5,'');", /^line 1: state_timeouts.timeout: expected whole seconds/],
    ["REPLACE INTO state_timeouts VALUES ('M','A',1.5,'');", /^line 1: state_timeouts.timeout/],
    ["REPLACE INTO state_transitions VALUES ('M','has space','B','');", /^line 1: state_transitions.state1: expected '\*' or a name/],
    ["REPLACE INTO state_transitions VALUES (NULL,'A','B','');", /^line 1: state_transitions.op_mode/],
    ["DELETE FROM state_transitions;", /^line 1: expected REPLACE or INSERT, got "DELETE"/],
    ["INSERT INTO state_timeouts (op_mode, timeout) VALUES ('M', 5);", /^line 1: state_timeouts needs column state/],
    ["INSERT INTO state_timeouts (op_mode, state, secs) VALUES ('M','A',5);", /^line 1: state_timeouts has no column "secs"/],
    ["INSERT INTO state_timeouts VALUES ('M','A',5,'');\nINSERT INTO state_timeouts VALUES ('M','A',6,'');", /^line 2: state_timeouts row with the same key as line 1/],
    ["REPLACE INTO state_transitions VALUES ('M','A','B','') REPLACE", /^line 1: expected ";"/],
  ];
  for (const [sql, message] of cases) assert.throws(() => parseEmulabSql(sql), badDefinition(message), sql);
});

// --- parseDefinitionJson --------------------------------------------------------

test('parseDefinitionJson: round trip of the defaults', () => {
  const json = JSON.stringify(m.definition());
  const back = parseDefinitionJson(json);
  assert.deepEqual(back, m.definition());
  assert.deepEqual(new Machine(back).definition(), m.definition());
});

test('parseDefinitionJson: missing arrays are empty, optional fields default to empty', () => {
  const d = parseDefinitionJson('{"state_timeouts":[{"op_mode":"M","state":"A","timeout":5}]}');
  assert.deepEqual(d, def({ state_timeouts: [{ op_mode: 'M', state: 'A', timeout: 5, action: '' }] }));
});

test('parseDefinitionJson: errors name the table, row and field', () => {
  const cases: [string, RegExp][] = [
    ['not json', /^not JSON/],
    ['[]', /^expected an object/],
    ['{"state_transition":[]}', /^unknown table "state_transition"/],
    ['{"state_transitions":{}}', /^state_transitions: expected an array/],
    ['{"state_transitions":[1]}', /^state_transitions\[0\]: expected an object/],
    ['{"state_timeouts":[{"op_mode":"M","state":"A","timeout":"5"}]}', /^state_timeouts\[0\]\.timeout: expected whole seconds/],
    ['{"state_timeouts":[{"op_mode":"M","state":"A"}]}', /^state_timeouts\[0\]\.timeout: .*got nothing/],
    ['{"state_triggers":[{"node_id":"*","op_mode":"M","state":"A","triggers":"X"},{"node_id":"*","op_mode":"M","state":"B","triggers":7}]}', /^state_triggers\[1\]\.triggers: expected a string/],
    ['{"mode_transitions":[{"op_mode1":"A","state1":"S","op_mode2":"B","state2":"S","lable":""}]}', /^mode_transitions\[0\]: unknown field "lable"/],
    ['{"state_transitions":[{"op_mode":"M","state1":"A","state2":"B"},{"op_mode":"M","state1":"A","state2":"B","label":"x"}]}', /^state_transitions\[1\]: .*same key as state_transitions\[0\]/],
  ];
  for (const [json, message] of cases) assert.throws(() => parseDefinitionJson(json), badDefinition(message), json);
});

// --- checkDefinition ------------------------------------------------------------

test('checkDefinition: Emulab\'s shipped tables have warnings but no errors', () => {
  const problems = checkDefinition(DEFAULTS);
  assert.deepEqual(problems.filter((p) => p.severity === 'error'), []);
  assert.ok(problems.some((p) => p.code === 'trigger-noop' && p.message.includes('CHECKPORTREG')));
  assert.ok(!problems.some((p) => p.code === 'trigger-merge' || (p.code === 'trigger-noop' && /PXEBOOT|SECUREBOOT|: BOOTING/.test(p.message))));
  // PXEKERNEL/BOOTING is left by the BOOTING trigger, a mode change
  assert.ok(!problems.some((p) => p.code === 'dead-end-state' && p.message.startsWith('PXEKERNEL/BOOTING')));
  // the RELOAD-MOTE target row left by the key collision
  assert.ok(problems.some((p) => p.code === 'mode-target-unknown' && p.message.includes('RELOAD-MOTE/ISUP')));
});

// A small well-formed node machine; each lint test breaks one thing.
const base = (): MachineDefinition => def({
  state_transitions: [
    { op_mode: 'M', state1: 'SHUTDOWN', state2: 'BOOTING', label: '' },
    { op_mode: 'M', state1: 'BOOTING', state2: 'ISUP', label: '' },
    { op_mode: 'M', state1: 'ISUP', state2: 'SHUTDOWN', label: '' },
  ],
  state_timeouts: [
    { op_mode: 'M', state: 'SHUTDOWN', timeout: 120, action: 'REBOOT' },
    { op_mode: 'M', state: 'BOOTING', timeout: 180, action: 'REBOOT' },
  ],
  state_triggers: [{ node_id: '*', op_mode: '*', state: 'ISUP', triggers: 'RESET' }],
});
const codes = (d: MachineDefinition): string[] => checkDefinition(d).map((p) => `${p.severity} ${p.code}`);

test('checkDefinition: the base machine is clean', () => {
  assert.deepEqual(checkDefinition(base()), []);
});

test('lint unreachable-state and dead-end-state', () => {
  const d = base();
  d.state_transitions.push({ op_mode: 'M', state1: 'ORPHAN', state2: 'SHUTDOWN', label: '' });
  d.state_transitions.push({ op_mode: 'M', state1: 'BOOTING', state2: 'STUCK', label: '' });
  d.state_transitions.push({ op_mode: 'M', state1: 'STUCK', state2: 'STUCK', label: 'Retry' }); // a self-loop is no way out
  assert.deepEqual(codes(d), ['warning unreachable-state', 'warning dead-end-state']);
  assert.match(checkDefinition(d)[0]!.message, /M\/ORPHAN/);
  assert.match(checkDefinition(d)[1]!.message, /M\/STUCK/);
});

test('lint timeout-target-unknown', () => {
  const d = base();
  d.state_timeouts.push({ op_mode: 'M', state: 'ISUP', timeout: 60, action: 'STATE:NOWHERE' });
  assert.deepEqual(codes(d), ['error timeout-target-unknown']);
  d.state_timeouts[2]!.action = 'STATE:ELSEWHERE'; // exists, but in another mode: a warning
  d.state_transitions.push({ op_mode: 'N', state1: 'ELSEWHERE', state2: 'ELSEWHERE', label: '' });
  assert.ok(codes(d).includes('warning timeout-target-unknown'));
  assert.ok(!codes(d).some((c) => c.startsWith('error')));
});

test('lint mode-target-unknown', () => {
  const d = base();
  d.mode_transitions.push({ op_mode1: 'M', state1: 'SHUTDOWN', op_mode2: 'NOPE', state2: 'SHUTDOWN', label: '' });
  assert.deepEqual(codes(d), ['error mode-target-unknown']);
  d.mode_transitions[0] = { op_mode1: 'M', state1: 'SHUTDOWN', op_mode2: 'M', state2: 'NOSTATE', label: '' };
  assert.deepEqual(codes(d), ['error mode-target-unknown']);
});

test('lint boot-state-no-timeout, not for pseudo-modes or explicit 0', () => {
  const d = base();
  d.state_timeouts = d.state_timeouts.filter((r) => r.state !== 'BOOTING');
  assert.deepEqual(codes(d), ['warning boot-state-no-timeout']);
  d.state_timeouts.push({ op_mode: 'M', state: 'BOOTING', timeout: 0, action: '' });
  assert.deepEqual(codes(d), []);
  // NODEALLOC-like pseudo-mode: no SHUTDOWN/ISUP, no mode transitions
  const p = def({ state_transitions: [{ op_mode: 'ALLOC', state1: 'FREE', state2: 'BOOTING', label: '' }, { op_mode: 'ALLOC', state1: 'BOOTING', state2: 'FREE', label: '' }] });
  assert.deepEqual(codes(p), []);
});

test('lint timeout-action-unknown and cmdretry-outside-tbcommand', () => {
  const d = base();
  d.state_timeouts[0]!.action = 'REBOOTT';
  assert.deepEqual(codes(d), ['error timeout-action-unknown']);
  d.state_timeouts[0]!.action = 'STATE:';
  assert.deepEqual(codes(d), ['error timeout-action-unknown']);
  d.state_timeouts[0]!.action = 'CMDRETRY';
  assert.deepEqual(codes(d), ['warning cmdretry-outside-tbcommand']);
});

test('lint trigger-unknown and trigger-noop; an overriding empty row is no finding', () => {
  const d = base();
  d.state_triggers.push({ node_id: '*', op_mode: 'M', state: 'BOOTING', triggers: 'RESETT, SCRIPT:../x, SCRIPT:ok.sh, PXEBOOT, CHECKPORTREG' });
  assert.deepEqual(codes(d), ['error trigger-unknown', 'error trigger-unknown', 'warning trigger-noop']);
  // rows override, never merge (SPEC §4.4): an empty mode row switching off (*,ISUP) is a decision
  const e = base();
  e.state_triggers.push({ node_id: '*', op_mode: 'M', state: 'ISUP', triggers: '' });
  assert.deepEqual(codes(e), []);
});
