/**
 * The dashboard's page: the files `npm run build` bundles into dist/dashboard/ (scripts/build-dashboard.ts),
 * read once and served from memory, gzipped when the browser accepts it, under a Content-Security-Policy
 * that allows nothing but this origin: no inline script or style, no other host.
 */
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname } from 'node:path';
import { gzipSync } from 'node:zlib';

export const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** Security headers of every dashboard response, the API's included. */
export const DASHBOARD_HEADERS: Record<string, string> = {
  'content-security-policy': CONTENT_SECURITY_POLICY,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
};

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

/** The page's files, by name: index.html, app.js, app.css. */
export const DASHBOARD_FILES = ['index.html', 'app.js', 'app.css'] as const;

/**
 * Where the bundle is: dist/dashboard/ beside the compiled code (from dist/admin/dashboard/ and from
 * src/admin/dashboard/ alike, three levels up is the package root).
 */
export const DASHBOARD_DIR = new URL('../../../dist/dashboard/', import.meta.url);

interface File {
  type: string;
  body: Buffer;
  gzip: Buffer;
}

export class DashboardFiles {
  private readonly files = new Map<string, File>();
  /** Why the page cannot be served (no bundle), or null. */
  readonly missing: string | null;

  constructor(dir: URL = DASHBOARD_DIR) {
    let missing: string | null = null;
    for (const name of DASHBOARD_FILES) {
      try {
        const body = readFileSync(new URL(name, dir));
        this.files.set(name, { type: TYPES[extname(name)] ?? 'application/octet-stream', body, gzip: gzipSync(body) });
      } catch {
        missing = `the dashboard is not built (${new URL(name, dir).pathname} is missing): run \`npm run build\``;
      }
    }
    this.missing = missing;
  }

  /** Serves `name` (index.html for ''); false when there is no such file. */
  serve(name: string, req: IncomingMessage, res: ServerResponse): boolean {
    const file = this.files.get(name === '' ? 'index.html' : name);
    if (file === undefined) return false;
    const gzip = /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''));
    const body = gzip ? file.gzip : file.body;
    res.writeHead(200, {
      ...DASHBOARD_HEADERS,
      'content-type': file.type,
      'content-length': body.length,
      // The names do not change with the content: revalidate each time (the files are small and local).
      'cache-control': 'no-cache',
      vary: 'accept-encoding',
      ...(gzip ? { 'content-encoding': 'gzip' } : {}),
    });
    res.end(req.method === 'HEAD' ? undefined : body);
    return true;
  }
}
