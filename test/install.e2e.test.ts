// `make install` (issue 13 point 5, SPEC §6): the layout under DESTDIR, the
// systemd unit's promises (own user, restart on failure, /var/lib/stated,
// SIGHUP on reload), and a completion script and man page generated from the
// same citty definitions as --help. `-o dist/stated`: the test installs the
// executable the suite built and never rebuilds it under the other tests.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { repoRoot, runCli, statedBin, tempDir } from './helpers/daemon.ts';

function makeInstall(destdir: string, vars: string[] = []): void {
  const r = spawnSync('make', ['-s', '-o', 'dist/stated', 'install', `DESTDIR=${destdir}`, ...vars], { cwd: repoRoot, encoding: 'utf8' });
  assert.equal(r.status, 0, `make install:\n${r.stdout}${r.stderr}`);
}

const sha = (file: string): string => crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');

/** The visible subcommands, as `stated --help` lists them. */
async function helpCommands(): Promise<string[]> {
  const r = await runCli(['--help']);
  const usage = /USAGE\s+stated ([\w|]+)/.exec(r.stdout);
  assert.ok(usage, r.stdout);
  return usage[1]!.split('|');
}

test('make install PREFIX=/usr DESTDIR=...: executable, unit, man page and completion where they belong', async () => {
  const dest = tempDir();
  makeInstall(dest, ['PREFIX=/usr']);
  const files = (fs.readdirSync(dest, { recursive: true }) as string[]).filter((f) => fs.statSync(path.join(dest, f)).isFile()).sort();
  assert.deepEqual(files, [
    'usr/bin/stated',
    'usr/lib/systemd/system/stated.service',
    'usr/share/bash-completion/completions/stated',
    'usr/share/man/man1/stated.1',
  ]);
  const bin = path.join(dest, 'usr/bin/stated');
  assert.equal(fs.statSync(bin).mode & 0o777, 0o755);
  assert.equal(sha(bin), sha(statedBin), 'the executable the build made');
  for (const f of files.slice(1)) assert.equal(fs.statSync(path.join(dest, f)).mode & 0o777, 0o644, f);

  const unit = fs.readFileSync(path.join(dest, 'usr/lib/systemd/system/stated.service'), 'utf8');
  const keys = new Map<string, string[]>();
  for (const line of unit.split('\n')) {
    const m = /^(\w+)=(.*)$/.exec(line);
    if (m) keys.set(m[1]!, [...(keys.get(m[1]!) ?? []), m[2]!]);
  }
  const one = (k: string): string | undefined => keys.get(k)?.[0];
  assert.equal(one('ExecStart'), '/usr/bin/stated serve --db /var/lib/stated/stated.db $STATED_OPTS');
  assert.equal(one('User'), 'stated', 'its own user');
  assert.equal(one('DynamicUser'), 'yes', 'no account to create beforehand');
  assert.equal(one('StateDirectory'), 'stated', 'the database under /var/lib/stated');
  assert.equal(one('Restart'), 'on-failure');
  assert.equal(one('ExecReload'), '/bin/kill -HUP $MAINPID', 'reload is SIGHUP (SPEC §1)');
  assert.equal(one('WantedBy'), 'multi-user.target');
  assert.doesNotMatch(unit, /@BINDIR@/);
});

test('PREFIX defaults to /usr/local, and the unit runs the executable installed there', () => {
  const dest = tempDir();
  makeInstall(dest);
  assert.ok(fs.existsSync(path.join(dest, 'usr/local/bin/stated')));
  const unit = fs.readFileSync(path.join(dest, 'usr/local/lib/systemd/system/stated.service'), 'utf8');
  assert.match(unit, /^ExecStart=\/usr\/local\/bin\/stated serve /m);
  assert.ok(fs.existsSync(path.join(dest, 'usr/local/share/man/man1/stated.1')));
  assert.ok(fs.existsSync(path.join(dest, 'usr/local/share/bash-completion/completions/stated')));
});

test('the man page and the completion come from the command definitions: every command and option of --help', async () => {
  const commands = await helpCommands();
  assert.ok(commands.includes('history') && commands.includes('watch') && commands.includes('stats'), commands.join(' '));
  assert.ok(!commands.includes('docs'), 'the generator is hidden from --help');
  const man = (await runCli(['docs', 'man'])).stdout;
  const bash = (await runCli(['docs', 'bash'])).stdout;
  assert.match(man, /^\.TH STATED 1 /m);
  for (const c of commands) {
    assert.match(man, new RegExp(`^\\.SS "stated ${c}[ "]`, 'm'), `man page: ${c}`);
    assert.match(bash, new RegExp(`^    " ${c}"\\) words=`, 'm'), `completion: ${c}`);
  }
  // Every command's options, as its --help shows them, in both (stats pinned, so the scan cannot come up empty).
  let seen = 0;
  for (const c of commands) {
    const help = (await runCli([c, '--help'])).stdout;
    // Option rows only (`  -t, --timeout`), not a mention in a description; a group's options are its subcommands'.
    const options = [...new Set([...help.matchAll(/^\s+(?:-\w, )?--([a-z][\w-]*)/gm)].map((m) => m[1]!).filter((o) => o !== 'help'))];
    if (c === 'stats') assert.deepEqual(options.sort(), ['json', 'since', 'token', 'url']);
    for (const o of options) {
      seen++;
      assert.match(man, new RegExp(`^\\.B \\\\-\\\\-${o.replaceAll('-', '\\\\-')}\\b`, 'm'), `man: ${c} --${o}`); // roff escapes every -
      assert.match(bash, new RegExp(`" ${c}"\\) words="[^"]*--${o}\\b`), `completion: ${c} --${o}`);
    }
  }
  assert.ok(seen > 40, `options checked: ${seen}`);
  const groff = spawnSync('groff', ['-man', '-ww', '-z'], { input: man, encoding: 'utf8' });
  if (!groff.error) assert.deepEqual([groff.status, groff.stderr], [0, ''], 'groff reads the page without a warning');

  // The script completes as bash would call it.
  const file = path.join(tempDir(), 'stated.bash');
  fs.writeFileSync(file, bash);
  const complete = (words: string[]): string[] => {
    const script = `source ${file}; COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _stated; printf '%s\\n' "\${COMPREPLY[@]}"`;
    const r = spawnSync('bash', ['-c', script], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout.split('\n').filter((l) => l !== '');
  };
  assert.deepEqual(complete(['stated', 'st']), ['status', 'stats']);
  assert.deepEqual(complete(['stated', 'node', 'trigger', '']), ['add', 'list', 'clear', '--help']);
  assert.ok(complete(['stated', 'history', 'pc1', '--']).includes('--limit'));
  assert.deepEqual(complete(['stated', 'stats', '--since', '']), [], 'a value is not completed with option names');
});

test('systemd-analyze verify accepts the installed unit', async (t) => {
  if (spawnSync('systemd-analyze', ['--version']).error) {
    t.skip('systemd-analyze is not installed (Debian package systemd)');
    return;
  }
  const dest = tempDir();
  makeInstall(dest, ['PREFIX=/usr']);
  // verify checks that ExecStart's file exists and that `man stated(1)` resolves: point both into DESTDIR.
  const unit = fs.readFileSync(path.join(dest, 'usr/lib/systemd/system/stated.service'), 'utf8')
    .replace('ExecStart=/usr/bin/stated', `ExecStart=${dest}/usr/bin/stated`);
  const dir = tempDir();
  fs.writeFileSync(path.join(dir, 'stated.service'), unit);
  const r = spawnSync('systemd-analyze', ['verify', path.join(dir, 'stated.service')], {
    encoding: 'utf8', env: { ...process.env, MANPATH: path.join(dest, 'usr/share/man'), SYSTEMD_LOG_LEVEL: 'notice' },
  });
  assert.equal(r.status, 0, `systemd-analyze verify:\n${r.stdout}${r.stderr}`);
  assert.doesNotMatch(r.stderr, /stated\.service/, r.stderr);
});
