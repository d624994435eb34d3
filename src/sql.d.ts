// build.mjs loads `.sql` files with esbuild's `text` loader: the import is the file's text.
declare module '*.sql' {
  const text: string;
  export default text;
}

// build.mjs bundles src/writer-worker.ts on its own and hands it over as text:
// the writer thread runs it with `new Worker(source, { eval: true })`, which
// works inside the single executable, where there is no file to point at.
declare module 'virtual:writer-worker' {
  const source: string;
  export default source;
}

// build.mjs bundles the dashboard (src/dashboard/browser/) for the browser and
// inlines it into its HTML: the page and the token form, each with the
// Content-Security-Policy that allows its inline script and style by hash.
declare module 'virtual:dashboard' {
  const pages: Record<'app' | 'login', { html: string; csp: string }>;
  export default pages;
}
