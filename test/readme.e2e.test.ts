// Issue 12 point 9: the README's examples run when pasted in order. Every
// ```sh block of README.md (```console/```text blocks are output, not run),
// concatenated as a reader pastes them into one shell, against a fresh
// `make demo` daemon in an empty directory holding ./dist/stated; then what
// each command printed and exited with is checked against what the README
// says it does.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { http, repoRoot, startDaemon, statedBin, tempDir } from './helpers/daemon.ts';
import { freePort } from './helpers/poll.ts';

/** The ```sh blocks of a Markdown text, in order, each with the line number of its first line. */
export function shellBlocks(md: string): { text: string; line: number }[] {
  return [...md.matchAll(/^```sh\n([^]*?)^```$/gm)].map((m) => ({ text: m[1]!, line: md.slice(0, m.index).split('\n').length + 1 }));
}

const MARK = '##readme.e2e##';

/**
 * The blocks as one bash script, plus bookkeeping that changes nothing the
 * README's lines do: stderr joins stdout (as on a terminal, so each line
 * lands after what came before it), a DEBUG trap prints a marker before every
 * `./dist/stated` and `curl` command and its exit status once it is done,
 * and the end reports each background job's exit status (or that it still
 * runs). `origin[i]` is the README line of script line i + 1 (0: the harness's).
 */
function instrument(blocks: { text: string; line: number }[], ports: Record<string, string>): { script: string; origin: number[] } {
  const lines: string[] = [];
  const origin: number[] = [];
  const add = (l: string, from = 0): void => { lines.push(l); origin.push(from); };
  add('exec 2>&1');
  // What the script left running in the background (the retry demo's daemon and fleet) is stopped at its end.
  add(`trap 'kill $(jobs -p) 2>/dev/null || true' EXIT`);
  add('declare -A __bg; __cur=');
  // $1: the status of the command just run; $2: the line of the next one; $3: its text. A
  // command started with & has no status yet: the __bg line that follows it takes none.
  add(`__mark() { if [[ -n $__cur ]]; then __cur=; [[ $3 == __bg\\[* ]] || printf '${MARK} exit %s\\n' "$1"; fi; `
    + `case $3 in './dist/stated '*|'curl '*) __cur=1; printf '${MARK} run %s %s\\n' "$2" "\${3%%$'\\n'*}";; esac; }`);
  add(`trap '__mark "$?" "$LINENO" "$BASH_COMMAND"' DEBUG`);
  for (const b of blocks) {
    b.text.replace(/\n$/, '').split('\n').forEach((l, i) => {
      let line = l;
      for (const [from, to] of Object.entries(ports)) line = line.replaceAll(from, to);
      add(line, b.line + i);
      if (/(^|[^&])&\s*(#.*)?$/.test(line)) add('__bg[$!]=$((LINENO - 1))', b.line + i);
    });
  }
  add('__rc=$?');
  add('trap - DEBUG');
  add(`for p in "\${!__bg[@]}"; do if kill -0 "$p" 2>/dev/null; then s=running; else wait "$p"; s=$?; fi; printf '${MARK} bg %s %s\\n' "\${__bg[$p]}" "$s"; done`);
  add('exit $__rc');
  return { script: `${lines.join('\n')}\n`, origin };
}

/** One command the walkthrough ran: its README line, its text, what it printed, its exit status. */
interface Step { line: number; command: string; out: string; code: number | 'running' | undefined }

/** The output split into the commands that printed it (a background job's lines land where they came). */
function steps(out: string, origin: number[]): Step[] {
  const all: Step[] = [];
  let cur: Step | undefined; // the command running: what is printed meanwhile is its output
  const parts = out.split(new RegExp(`${MARK} (run|exit|bg) ([^\\n]*)\\n`));
  for (let i = 1; i < parts.length; i += 3) {
    const [kind, arg, text] = [parts[i]!, parts[i + 1]!, parts[i + 2]!];
    if (kind === 'run') {
      const [, at, command] = /^(\d+) (.*)$/.exec(arg)!;
      cur = { line: origin[Number(at) - 1] ?? 0, command: command!, out: '', code: undefined };
      all.push(cur);
    } else if (kind === 'exit' && cur) {
      cur.code = Number(arg);
      cur = undefined;
    } else if (kind === 'bg') {
      const [at, status] = arg.split(' ');
      const line = origin[Number(at) - 1];
      for (const s of all) if (s.line === line) s.code = status === 'running' ? 'running' : Number(status);
    }
    if (cur) cur.out += text;
  }
  return all;
}

test('9. the README walkthrough runs when pasted in order, and does what it says', async (t) => {
  const readme = fs.readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
  const readmeLines = readme.split('\n');
  const blocks = shellBlocks(readme);
  assert.ok(blocks.length >= 3, `README has its walkthrough (${blocks.length} sh blocks)`);
  const dir = tempDir();
  fs.mkdirSync(path.join(dir, 'dist'));
  fs.symlinkSync(statedBin, path.join(dir, 'dist', 'stated'));
  // The README's fixed ports (the default 16505, the retry demo's 16600) become free
  // ones, so the test runs beside other daemons; nothing else of the text changes.
  const demoPort = await freePort();
  const retryPort = await freePort();
  const demo = await startDaemon({ dir, args: ['--simulate', '5', '--listen', `127.0.0.1:${demoPort}`] }); // Terminal 1: make demo
  t.after(() => demo.stop());
  const { script, origin } = instrument(blocks, { 16505: String(demoPort), 16600: String(retryPort) });
  // As a terminal runs a paste: line after line, whatever each exits with (the retry demo's
  // node_reboot exits 1 by design); errors show as `stated: E_...` lines.
  const { STATED_URL: _u, STATED_TOKEN: _t, ...env } = process.env;
  const r = await new Promise<{ code: number | null; out: string }>((resolve) => {
    // Its own process group: on a hang, the shell and everything it started go at once.
    const p = spawn('bash', ['-c', script], { cwd: dir, detached: true, env: { ...env, NO_COLOR: '1', STATED_URL: `ws://127.0.0.1:${demoPort}` }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.setEncoding('utf8').on('data', (s: string) => { out += s; });
    p.stderr.setEncoding('utf8').on('data', (s: string) => { out += s; });
    const kill = (): void => { try { process.kill(-p.pid!, 'SIGKILL'); } catch { /* gone */ } };
    t.after(kill);
    const timer = setTimeout(() => { out += '\n[the pasted README did not finish within 120 s]\n'; kill(); }, 120_000);
    p.on('close', (code) => { clearTimeout(timer); resolve({ code, out }); });
  });
  assert.equal(r.code, 0, `the pasted README failed:\n${r.out}`);

  const ran = steps(r.out, origin);
  const show = (s: Step): string => `README.md:${s.line}: ${s.command} (exit ${s.code})\n${s.out}\n--- the whole paste:\n${r.out}`;
  const one = (re: RegExp): Step => {
    const found = ran.filter((s) => re.test(s.command));
    assert.equal(found.length, 1, `one command matches ${re}: ${found.map((s) => s.command).join('; ')}\n${r.out}`);
    return found[0]!;
  };
  assert.ok(ran.length >= 20, `the markers found the commands (${ran.length})\n${r.out}`);

  // Terminal 2, in order. The demo's nodes are the project demo's, as the daemon has them at the end.
  const nodes = (await http(demo, 'GET', '/v1/nodes')).json.nodes as { node: string; project: string | null }[];
  const demoNodes = nodes.filter((n) => n.project === 'demo').map((n) => n.node).sort();
  assert.deepEqual(demoNodes, ['sim1', 'sim2', 'sim3', 'sim4', 'sim5']);
  const status = one(/^\.\/dist\/stated status$/);
  assert.deepEqual(status.out.split('\n').slice(1).filter(Boolean).map((l) => l.split(/\s+/)[0]).sort(), demoNodes, show(status));
  const add = one(/node add pc1 pc2/);
  assert.match(add.out, /^added pc1: type pc, mode NORMALv2, state -\nadded pc2: type pc, mode NORMALv2, state -\n/, show(add));
  const sends = ran.filter((s) => /^\.\/dist\/stated send pc[12] \$s$/.test(s.command));
  assert.equal(sends.length, 10, 'five states for each of pc1 and pc2');
  const seqs = sends.map((s) => {
    assert.doesNotMatch(s.out, /valid: false/, show(s));
    return Number(/^seq (\d+)$/m.exec(s.out)?.[1]);
  });
  assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b), 'each send got a seq, in order');
  assert.equal(new Set(seqs).size, 10, `ten seqs: ${seqs.join(' ')}`);
  const waiter = one(/ waitForState .*pc1 pc2/);
  assert.equal(waiter.code, 0, 'the waiter exits 0 at the last ISUP');
  assert.match(r.out, /^finished 2\/2: pc1 pc2$/m, 'the background waiter saw both boots');
  const reboot = one(/ node_reboot -w .*sim1 sim2 sim3$/);
  assert.match(reboot.out, /^finished 3\/3: sim1 sim2 sim3$/m, show(reboot));
  const load = one(/ os_load .*sim4$/);
  // os_load waits for the reload to close (RELOADDONE): the node is back in NORMALv2, headed nowhere else.
  assert.match(load.out, /^reloading 1: sim4\n[^]*^finished 1\/1: sim4\nsim4: now NORMALv2\/[A-Z0-9]+\n$/m, show(load));
  const next = one(/set-next-mode sim5 RELOAD$/);
  assert.match(next.out, /^sim5: next op mode RELOAD$/m, show(next));
  const setup = one(/ os_setup .*sim1 sim5$/);
  assert.match(setup.out, /^reloading 1: sim5\nrebooting 1: sim1\n/m, show(setup));
  assert.match(setup.out, /^reloaded 1: sim5\nrebooted 1: sim1\n$/m, show(setup));
  const restart = one(/ tbrestart .*demo$/);
  assert.match(restart.out, new RegExp(`^reloaded 0\\nrebooted ${demoNodes.length}: ${demoNodes.join(' ')}\\n$`, 'm'), show(restart));
  const waits = one(/waits list$/);
  assert.match(waits.out, /^WAIT +STATES +DONE\/FAILED\/LEFT +OWNER +AGE +WAITING FOR\n$/, `nothing left open: ${show(waits)}`);

  // The retry demo: its daemon and fleet ran to the end; node_reboot's summary accounts for
  // every node, and its exit status follows it.
  for (const re of [/serve --db w\.db/, /simulate --nodes 6/]) assert.equal(one(re).code, 'running', show(one(re)));
  const retry = one(/node_reboot -w sim1 sim2 sim3 sim4 sim5 sim6$/);
  assert.match(retry.out, /^rebooting 6: sim1 sim2 sim3 sim4 sim5 sim6$/m, show(retry));
  const finished = Number(/^finished (\d+)\/6\b/m.exec(retry.out)?.[1] ?? NaN);
  const failed = Number(/^failed (\d+):$/m.exec(retry.out)?.[1] ?? 0);
  assert.equal([...retry.out.matchAll(/^ {2}sim\d: [A-Z_]+ /gm)].length, failed, `a reason for each failed node: ${show(retry)}`);
  assert.equal(finished + failed, 6, show(retry));
  assert.equal(retry.code, failed > 0 ? 1 : 0, show(retry));
  assert.match(r.out, new RegExp(`^exit ${retry.code}$`, 'm'), 'the README prints that status');

  // The protocol by example.
  const post = one(/-X POST .*\/v1\/events/);
  assert.match(post.out, /^\{"accepted":\[\{"seq":\d+,"duplicate":false\},\{"seq":\d+,"duplicate":false\}\]\}$/, show(post));
  const pc1 = one(/\/v1\/nodes\/pc1$/);
  assert.deepEqual([JSON.parse(pc1.out).node, JSON.parse(pc1.out).state], ['pc1', 'PXEBOOTING'], show(pc1));
  const history = one(/\/v1\/nodes\/pc1\/history\?limit=20'$/);
  const accepted = (JSON.parse(post.out) as { accepted: { seq: number }[] }).accepted.map((a) => a.seq);
  // Newest first: the two events just posted.
  assert.deepEqual((JSON.parse(history.out) as { events: { seq: number }[] }).events.slice(0, 2).map((e) => e.seq), accepted.reverse(), show(history));
  assert.match(one(/\/healthz/).out, /^\{"ok":true,"seq":\d+\}$/, '/healthz answered');
  assert.match(one(/\/metrics$/).out, /^stated_events_total \d+$/m, show(one(/\/metrics$/)));
  assert.deepEqual(JSON.parse(one(/\/v1\/waits$/).out), { waits: [] }, 'GET /v1/waits: nothing open');

  // Exit statuses, also of the commands checked for nothing else: every command exits 0 but one
  // whose README line prints its status itself (`; echo "exit $?"`); a background job has exited
  // 0 by the end or still runs.
  for (const s of ran) {
    const text = readmeLines[s.line - 1] ?? '';
    assert.notEqual(s.line, 0, `a marked command comes from the README: ${s.command}`);
    if (/&\s*(#.*)?$/.test(text)) assert.ok(s.code === 0 || s.code === 'running', show(s));
    else if (!text.includes('echo "exit $?"')) assert.equal(s.code, 0, show(s));
  }
  assert.doesNotMatch(r.out, /No such file|command not found|stated: E_[A-Z_]+:/, r.out);
});

// A fence with text after it is no fence in CommonMark: everything up to the next one renders as code.
test('every README code fence stands on a line of its own (```, or ``` and a language)', () => {
  const lines = fs.readFileSync(path.join(repoRoot, 'README.md'), 'utf8').split('\n');
  const bad = lines.map((l, i) => [i + 1, l] as const).filter(([, l]) => l.startsWith('```') && !/^```[a-z]*$/.test(l));
  assert.deepEqual(bad, []);
  assert.equal(lines.filter((l) => l.startsWith('```')).length % 2, 0, 'fences come in pairs');
});
