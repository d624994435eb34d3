// Builds stated.
//   node build.mjs           src/cli/main.ts -> dist/stated.cjs -> dist/stated (a Node SEA)
//   node build.mjs --tests   test/**/*.test.ts -> .build/test/**/*.test.mjs (and bench/*.ts if any)
//   node build.mjs --bench   bench/*.ts -> .build/bench/*.mjs (fails if bench/run.ts is missing)
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const root = path.dirname(fileURLToPath(import.meta.url));
const r = (...p) => path.join(root, ...p);
const ADDON = r('node_modules/better-sqlite3/build/Release/better_sqlite3.node');
// Node's SEA fuse; postject flips it so the binary runs the injected blob.
const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';

const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  loader: { '.sql': 'text' },
  logLevel: 'warning',
};

// In the SEA, better-sqlite3 gets its addon from src/native.ts; if some code
// forgets to pass it, fail with the fix instead of `bindings`' search list.
const noBindings = {
  name: 'no-bindings',
  setup(b) {
    b.onResolve({ filter: /^bindings$/ }, () => ({ path: 'bindings', namespace: 'no-bindings' }));
    b.onLoad({ filter: /.*/, namespace: 'no-bindings' }, () => ({
      contents: `module.exports = () => { throw new Error("stated: open better-sqlite3 with { nativeBinding: sqliteNativeBinding() } (src/native.ts)"); };`,
    }));
  },
};

// The writer thread's code (src/writer-worker.ts), bundled on its own (CommonJS,
// better-sqlite3 inside, the addon passed in) and imported by src/writer.ts as
// text: a Worker can eval it inside the SEA, where there is no file to point at.
const writerWorker = {
  name: 'writer-worker',
  setup(b) {
    b.onResolve({ filter: /^virtual:writer-worker$/ }, () => ({ path: 'writer-worker', namespace: 'writer-worker' }));
    b.onLoad({ filter: /.*/, namespace: 'writer-worker' }, async () => {
      const out = await esbuild.build({
        ...common,
        entryPoints: [r('src/writer-worker.ts')],
        format: 'cjs',
        write: false,
        plugins: [noBindings],
      });
      return { contents: out.outputFiles[0].text, loader: 'text', watchFiles: [r('src/writer-worker.ts'), r('src/writes.ts'), r('src/native.ts')] };
    });
  },
};

// The dashboard (GET /): the page's TypeScript (src/dashboard/browser/) bundled
// for the browser and inlined with its stylesheet into two HTML documents (the
// page, and the token form a request without a token gets), imported by
// src/dashboard/page.ts as data. Nothing is fetched from anywhere when the page
// loads; the Content-Security-Policy allows exactly these inline blocks, by hash.
const dashboard = {
  name: 'dashboard',
  setup(b) {
    b.onResolve({ filter: /^virtual:dashboard$/ }, () => ({ path: 'dashboard', namespace: 'dashboard' }));
    b.onLoad({ filter: /.*/, namespace: 'dashboard' }, async () => {
      const dir = r('src/dashboard');
      const out = await esbuild.build({
        entryPoints: [path.join(dir, 'browser/main.ts')],
        bundle: true,
        format: 'iife',
        platform: 'browser',
        target: 'es2022',
        minify: true,
        write: false,
        metafile: true,
        logLevel: 'warning',
      });
      const read = (f) => fs.readFileSync(path.join(dir, f), 'utf8');
      const css = read('style.css');
      const sha = (text) => `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;
      const doc = (template, script) => {
        // '<\/script' cannot end the inline block early; the hash covers the text as inlined.
        const inline = script.replace(/<\/script/gi, '<\\/script');
        // Replaced by functions: a '$' in the script must not be read as a replacement pattern.
        const html = template.replace('/*STYLE*/', () => css).replace('/*SCRIPT*/', () => inline);
        const csp = [
          "default-src 'none'",
          `script-src ${sha(inline)}`,
          `style-src ${sha(css)}`,
          "connect-src 'self'",
          "img-src 'self' data:",
          "base-uri 'none'",
          "form-action 'self'",
          "frame-ancestors 'none'",
        ].join('; ');
        return { html, csp };
      };
      const contents = JSON.stringify({
        app: doc(read('index.html'), out.outputFiles[0].text),
        login: doc(read('login.html'), read('login.js')),
      });
      return { contents, loader: 'json', watchFiles: Object.keys(out.metafile.inputs).map((f) => path.resolve(f)) };
    });
  },
};

async function buildExecutable() {
  const t0 = Date.now();
  fs.mkdirSync(r('dist'), { recursive: true });
  await esbuild.build({
    ...common,
    entryPoints: [r('src/cli/main.ts')],
    outfile: r('dist/stated.cjs'),
    format: 'cjs',
    plugins: [noBindings, writerWorker, dashboard],
    // ws's optional native helpers cannot load in a SEA; the constant makes
    // esbuild drop the require()s altogether instead of trying them at start.
    define: { 'process.env.WS_NO_BUFFER_UTIL': '"1"', 'process.env.WS_NO_UTF_8_VALIDATE': '"1"' },
    external: ['bufferutil', 'utf-8-validate'],
  });

  const blob = r('.build/sea/stated.blob');
  const config = r('.build/sea/sea-config.json');
  fs.mkdirSync(path.dirname(blob), { recursive: true });
  fs.writeFileSync(config, JSON.stringify({
    main: r('dist/stated.cjs'),
    output: blob,
    disableExperimentalSEAWarning: true,
    assets: { 'better_sqlite3.node': ADDON },
  }, null, 2));
  try {
    execFileSync(process.execPath, ['--experimental-sea-config', config], { stdio: 'pipe' });
  } catch (err) {
    process.stderr.write(err.stderr ?? '');
    throw err;
  }

  const exe = r('dist/stated');
  // Injection takes ~5 s (postject's LIEF in wasm); the blob is deterministic,
  // so an unchanged blob on an unchanged node binary needs none.
  const stamp = r('.build/sea/injected.sha256');
  const st = fs.statSync(process.execPath);
  const key = createHash('sha256').update(fs.readFileSync(blob))
    .update(`${process.execPath} ${process.version} ${st.size} ${st.mtimeMs}`).digest('hex');
  const built = () => `${key} ${fs.statSync(exe).mtimeMs}`; // a dist/stated touched since is rebuilt
  if (fs.existsSync(exe) && fs.existsSync(stamp) && fs.readFileSync(stamp, 'utf8') === built()) {
    console.log(`build: dist/stated unchanged (${Date.now() - t0} ms)`);
    return;
  }
  fs.rmSync(stamp, { force: true });
  // Built beside and renamed into place: a running or concurrently built
  // dist/stated is never seen half-written (rename is atomic, and a running
  // copy keeps its old inode).
  const tmp = `${exe}.${process.pid}.tmp`;
  fs.copyFileSync(process.execPath, tmp);
  fs.chmodSync(tmp, 0o755); // execPath may be read-only (e.g. 0555); postject must write
  const { inject } = createRequire(import.meta.url)('postject');
  try {
    await quietly(() => inject(tmp, 'NODE_SEA_BLOB', fs.readFileSync(blob), { sentinelFuse: SEA_FUSE }));
    fs.renameSync(tmp, exe);
  } finally {
    fs.rmSync(tmp, { force: true });
  }
  fs.writeFileSync(stamp, built());
  const mb = (f) => (fs.statSync(f).size / 1048576).toFixed(1);
  console.log(`build: dist/stated (${mb(exe)} MB, bundle ${mb(r('dist/stated.cjs'))} MB) in ${Date.now() - t0} ms`);
}

// postject's LIEF prints harmless ELF notes (e.g. about '.note.100') through console.warn.
async function quietly(fn) {
  const warn = console.warn, log = console.log;
  const said = [];
  console.warn = console.log = (...a) => said.push(a.join(' '));
  try {
    return await fn();
  } catch (err) {
    process.stderr.write(said.join('\n') + '\n');
    throw err;
  } finally {
    console.warn = warn; console.log = log;
  }
}

function filesUnder(dir, test) {
  if (!fs.existsSync(r(dir))) return [];
  return fs.readdirSync(r(dir), { recursive: true })
    .filter((f) => test(f) && !f.split(path.sep).includes('node_modules'))
    .map((f) => r(dir, f));
}

// Tests keep their packages external: better-sqlite3 loads from node_modules as usual.
async function buildScripts(dir, entryPoints) {
  fs.rmSync(r('.build', dir), { recursive: true, force: true });
  if (entryPoints.length === 0) return;
  await esbuild.build({
    ...common,
    entryPoints,
    outbase: r(dir),
    outdir: r('.build', dir),
    outExtension: { '.js': '.mjs' },
    format: 'esm',
    packages: 'external',
    sourcemap: 'inline',
    plugins: [writerWorker, dashboard],
  });
}

const benchEntries = () => filesUnder('bench', (f) => !f.includes(path.sep) && f.endsWith('.ts'));

const arg = process.argv[2];
if (arg === undefined) {
  await buildExecutable();
} else if (arg === '--tests') {
  await Promise.all([
    buildScripts('test', filesUnder('test', (f) => f.endsWith('.test.ts'))),
    buildScripts('bench', benchEntries()),
  ]);
} else if (arg === '--bench') {
  if (!fs.existsSync(r('bench/run.ts'))) {
    console.error('build: bench/run.ts does not exist yet; nothing to benchmark');
    process.exit(1);
  }
  await buildScripts('bench', benchEntries());
} else {
  console.error(`build: unknown argument ${arg}; use no argument, --tests or --bench`);
  process.exit(64);
}
