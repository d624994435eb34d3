// build.mjs loads `.sql` files with esbuild's `text` loader: the import is the file's text.
declare module '*.sql' {
  const text: string;
  export default text;
}
