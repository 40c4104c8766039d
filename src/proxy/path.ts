/**
 * Request-target handling: split, normalise before matching, rewrite before forwarding.
 * The normalised path is for matching and policy only, so `/api/../admin` cannot slip past a route
 * guarding `/admin`; the upstream gets the path byte for byte as the client sent it (merging `//` or
 * decoding an escape could change which resource it serves), except where a rewrite cannot keep it.
 */
import type { RewriteConfig, RouteConfig } from '../api/config.ts';
import type { CompiledRewrite } from './compiled.ts';
import { effectiveMatch } from './router/router.ts';

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

/** What the upstream path is built from: the request's target as matched and as sent. */
export interface RequestTarget {
  /** Normalised path (what routes matched). */
  readonly path: string;
  /** The path as the client sent it (equal to `path` when it needed no normalising). */
  readonly rawPath: string;
  /** Query without `?`, '' when absent. */
  readonly query: string;
  readonly listener: { readonly encodedSlashes: EncodedSlashPolicy };
}

/**
 * The path and query sent upstream. Without a rewrite: the path as sent. With `rewrite.prefix`: the
 * route's matched segments are replaced and the rest of the path goes as sent, provided the raw path
 * starts with exactly those segments and its rest normalises to the normalised path's rest (so the
 * rest neither climbs into the replaced prefix nor changes meaning); otherwise, and for
 * `rewrite.regex` (its pattern is written against normalised paths), the rewrite applies to the
 * normalised path.
 */
export function upstreamPath(rw: CompiledRewrite | null, target: RequestTarget): string {
  const query = target.query;
  const raw = target.rawPath;
  if (rw === null) return query === '' ? raw : `${raw}?${query}`;
  const path = target.path;
  const q = query === '' ? '' : `?${query}`;
  if (raw === path || rw.regex !== undefined || rw.prefix === undefined) return rewritePath(rw, path, q);
  const end = prefixEnd(path, rw.prefixSegments);
  if (end === -1) return rewritePath(rw, path, q);
  const rawRest = raw.length > end && raw.startsWith(path.slice(0, end)) ? raw.slice(end) : null;
  if (rawRest === null || rawRest.charCodeAt(0) !== 0x2f /* / */) return rewritePath(rw, path, q);
  const normalisedRest = needsNormalising(rawRest) ? normalisePath(rawRest, target.listener.encodedSlashes) : rawRest;
  if (normalisedRest !== path.slice(end)) return rewritePath(rw, path, q);
  return joinPrefix(rw.prefix, rawRest) + q;
}

/** Index of the `/` after the first `segments` segments of a normalised path, or -1 when there is none. */
function prefixEnd(path: string, segments: number): number {
  let end = 0;
  for (let n = 0; n < segments && end !== -1; n++) end = path.indexOf('/', end + 1);
  return end;
}

/** `rest` starts with `/` or is empty; join without doubling the slash. */
function joinPrefix(prefix: string, rest: string): string {
  return (prefix.endsWith('/') && rest !== '' ? prefix.slice(0, -1) : prefix) + rest;
}

/** The upstream path for a route's rewrite; `path` is normalised, `query` includes its `?` or is ''. */
export function rewritePath(rw: CompiledRewrite, path: string, query: string): string {
  let p = path;
  if (rw.prefix !== undefined) {
    const end = prefixEnd(p, rw.prefixSegments);
    p = joinPrefix(rw.prefix, end === -1 ? '' : p.slice(end));
  }
  if (rw.regex !== undefined) p = p.replace(rw.regex, rw.substitution);
  return p + query;
}

/**
 * Compiles a route's rewrite (or a redirect's prefix, written as a rewrite): how many segments of the
 * route's path pattern a `prefix` replaces is decided here, once per config.
 */
export function compileRewrite(rc: RouteConfig, rw: RewriteConfig): CompiledRewrite {
  const pattern = effectiveMatch(rc)?.path ?? '';
  const literal = pattern.endsWith('/*') ? pattern.slice(0, -2) : pattern;
  return Object.freeze({
    prefixSegments: literal.split('/').length - 1,
    prefix: rw.prefix,
    regex: rw.regex ? new RegExp(rw.regex.pattern) : undefined,
    substitution: rw.regex?.substitution ?? '',
    host: rw.host,
    autoHost: rw.autoHost === true,
  });
}
