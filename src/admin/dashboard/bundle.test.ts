/**
 * The page stays small: its JavaScript and CSS together, gzipped as the server sends them, under
 * 300 KB; and nothing in it points at another host. Reads the bundle `npm run build` made in
 * dist/dashboard/ (the build runs before the tests).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { DASHBOARD_DIR } from './static.ts';

const BUDGET_BYTES = 300 * 1024;

it('the dashboard bundle is under 300 KB compressed and loads nothing from elsewhere', () => {
  const js = readFileSync(new URL('app.js', DASHBOARD_DIR));
  const css = readFileSync(new URL('app.css', DASHBOARD_DIR));
  const html = readFileSync(new URL('index.html', DASHBOARD_DIR), 'utf8');
  const compressed = gzipSync(js, { level: 9 }).length + gzipSync(css, { level: 9 }).length;
  assert.ok(compressed < BUDGET_BYTES, `${compressed} bytes compressed`);
  // The page's own references are relative; no URL in the markup or the styles names a host.
  assert.doesNotMatch(html, /(src|href)="(https?:)?\/\//);
  assert.doesNotMatch(css.toString('utf8'), /url\((['"]?)(https?:)?\/\//);
  assert.doesNotMatch(css.toString('utf8'), /@import/);
});
