/**
 * Request-target handling: split, normalise before matching, rewrite before forwarding.
 * Normalising here means every route and plugin sees the same path the upstream will get, so
 * `/api/../admin` cannot slip past a route guarding `/admin`.
 */
import type { CompiledRewrite } from './compiled.ts';

/** How `%2F` / `%5C` in a path are treated (listener setting `encodedSlashes`). */
export type EncodedSlashPolicy = 'keep' | 'decode' | 'reject';

export const PATH_OUTSIDE_ROOT = 1;
export const PATH_INVALID = 2;

/**
 * True when the path may need normalising: `//`, a `.` segment, a `%`-escape or a backslash.
 * A cheap scan so that clean paths (nearly all of them) skip the work.
 */
export function needsNormalising(path: string): boolean {
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c === 0x25 /* % */ || c === 0x5c /* \ */) return true;
    if (c === 0x2f /* / */) {
      const n = path.charCodeAt(i + 1);
      if (n === 0x2f || n === 0x2e) return true;
    }
  }
  return false;
}

const UNRESERVED = /%(2[dDeE]|[46][1-9a-fA-F]|[57][0-9aA]|3[0-9]|5[fF]|7[eE])/g;

/**
 * Normalises a path (without query): decodes escapes of unreserved characters (so `%2e` is `.`),
 * merges repeated slashes, resolves `.` and `..` segments (RFC 3986 §5.2.4).
 * Returns the path, or PATH_OUTSIDE_ROOT when `..` climbs above `/`, or PATH_INVALID.
 */
export function normalisePath(path: string, encodedSlashes: EncodedSlashPolicy): string | number {
  let p = path;
  if (p.includes('%')) {
    p = p.replace(UNRESERVED, (e) => String.fromCharCode(Number.parseInt(e.slice(1), 16)));
    if (/%(2[fF]|5[cC])/.test(p)) {
      if (encodedSlashes === 'reject') return PATH_INVALID;
      if (encodedSlashes === 'decode') p = p.replace(/%2[fF]/g, '/').replace(/%5[cC]/g, '/');
    }
  }
  if (p.includes('\\')) return PATH_INVALID;
  const out: string[] = [];
  const segments = p.split('/');
  for (let i = 1; i < segments.length; i++) {
    const s = segments[i]!;
    const last = i === segments.length - 1;
    if (s === '' && !last) continue;
    if (s === '.') {
      if (last) out.push('');
      continue;
    }
    if (s === '..') {
      if (out.length === 0) return PATH_OUTSIDE_ROOT;
      out.pop();
      if (last) out.push('');
      continue;
    }
    out.push(s);
  }
  return '/' + out.join('/');
}

/** The upstream path for a route's rewrite; `path` is normalised, `query` includes its `?` or is ''. */
export function rewritePath(rw: CompiledRewrite, path: string, query: string): string {
  let p = path;
  if (rw.prefix !== undefined) {
    let end = 0;
    for (let n = 0; n < rw.prefixSegments && end !== -1; n++) end = p.indexOf('/', end + 1);
    // `rest` starts with `/` or is empty; join without doubling the slash.
    const rest = end === -1 ? '' : p.slice(end);
    const prefix = rw.prefix.endsWith('/') && rest !== '' ? rw.prefix.slice(0, -1) : rw.prefix;
    p = prefix + rest;
  }
  if (rw.regex !== undefined) p = p.replace(rw.regex, rw.substitution);
  return p + query;
}
