/**
 * Bundles the dashboard's page (src/dashboard/) into dist/dashboard/: index.html, app.js and app.css,
 * minified, with no source maps and nothing loaded from elsewhere at run time. Part of `npm run build`.
 * `--metafile` prints what the bundle is made of.
 */
import { copyFileSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = fileURLToPath(new URL('..', import.meta.url));
const out = `${root}dist/dashboard`;
mkdirSync(out, { recursive: true });
const result = await build({
  entryPoints: [
    { in: `${root}src/dashboard/main.tsx`, out: 'app' },
    { in: `${root}src/dashboard/app.css`, out: 'app' },
  ],
  outdir: out,
  bundle: true,
  minify: true,
  format: 'esm',
  target: ['chrome120', 'firefox120'],
  platform: 'browser',
  jsx: 'automatic',
  jsxImportSource: 'preact',
  legalComments: 'none',
  metafile: process.argv.includes('--metafile'),
  logLevel: 'warning',
});
copyFileSync(`${root}src/dashboard/index.html`, `${out}/index.html`);
if (result.metafile)
  console.log(
    Object.entries(result.metafile.outputs)
      .map(([f, o]) => `${f} ${o.bytes}`)
      .join('\n'),
  );
