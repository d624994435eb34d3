/**
 * The command-template driver: argv from the config with {node} substituted,
 * run without a shell (a node name can never become shell syntax), time-limited,
 * its output logged.
 */
import { spawn } from 'node:child_process';
import type { Action, ActionResult, Driver } from './action.ts';

export class CommandDriver implements Driver {
  readonly name = 'command';

  constructor(
    private readonly templates: Record<string, string[]>,
    private readonly log: (line: string) => void,
  ) {}

  cannotRun(command: string): string | null {
    const template = this.templates[command];
    return template && template.length > 0 ? null : `no command template for ${command}`;
  }

  run(a: Action, timeoutMs: number): Promise<ActionResult> {
    const missing = this.cannotRun(a.command);
    if (missing !== null) return Promise.resolve({ ok: false, message: missing });
    const template = this.templates[a.command]!;
    // Names are validated at the edge, but one that looks like an option or a
    // path climb must not reach a template either (`ssh {node}` with -F...).
    if (a.node.startsWith('-') || a.node.split('/').includes('..')) {
      return Promise.resolve({ ok: false, message: `node name ${a.node} is unsafe in a command template` });
    }
    const argv = template.map((part) => part.split('{node}').join(a.node));
    // The daemon's own admin token is not the power script's business.
    const { STATED_TOKEN: _t, ...env } = process.env;
    return new Promise((resolve) => {
      // Its own process group, so the time limit reaches the helpers a power script starts.
      const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], shell: false, detached: true, env });
      let hung = false;
      let out = '';
      const keep = (d: Buffer): void => { if (out.length < 8192) out += d.toString(); };
      child.stdout.on('data', keep);
      child.stderr.on('data', keep);
      const timer = setTimeout(() => {
        hung = true;
        try { process.kill(-child.pid!, 'SIGKILL'); } catch { child.kill('SIGKILL'); }
        // A helper that left the group must not hold the result: stop reading.
        child.stdout.destroy();
        child.stderr.destroy();
      }, timeoutMs);
      child.on('error', (err) => {
        clearTimeout(timer);
        resolve({ ok: false, message: `${argv[0]}: ${err.message}` });
      });
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        const tail = out.trim().slice(-500);
        this.log(`stated: ${a.command} ${a.node} (attempt ${a.attempt}): ${argv.join(' ')} -> ${code ?? signal}${tail ? `: ${tail}` : ''}`);
        if (code === 0) resolve({ ok: true });
        else if (hung) resolve({ ok: false, message: `killed after ${timeoutMs} ms (hung)` });
        else if (signal) resolve({ ok: false, message: `killed by ${signal}${tail ? `: ${tail.slice(-200)}` : ''}` });
        else resolve({ ok: false, message: `exit ${code}${tail ? `: ${tail.slice(-200)}` : ''}` });
      });
    });
  }
}
