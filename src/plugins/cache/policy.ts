/**
 * The HTTP caching rules the cache plugin follows (RFC 9111 for a shared cache, RFC 9110 for
 * conditional requests), as pure functions: what a response allows, how long it is fresh, how a
 * request is keyed, and whether a conditional request is answered with 304. Everything here runs
 * when a response is stored or a request misses, except the key (every request) and the conditional
 * check (hits that carry a validator), which are kept to string work without regular expressions.
 */

/** The response `Cache-Control` directives a shared cache acts on. */
export interface ResponseDirectives {
  noStore: boolean;
  /** `private` or `no-cache`, qualified or not: this cache does not store the response. */
  noCache: boolean;
  /** `must-revalidate`, `proxy-revalidate` or `s-maxage`: never served stale. */
  mustRevalidate: boolean;
  /** Seconds: `s-maxage` when present (a shared cache prefers it), else `max-age`; -1 when neither. */
  maxAge: number;
  /** Seconds of `stale-while-revalidate`; -1 when absent. */
  staleWhileRevalidate: number;
}

/** The request `Cache-Control` directives the plugin acts on. */
export interface RequestDirectives {
  noStore: boolean;
  noCache: boolean;
  /** Seconds; -1 when absent. `max-age=0` asks for a response validated now, like `no-cache`. */
  maxAge: number;
}

/** Calls `each(name, value)` for every directive of a Cache-Control value (names lower-case, quotes removed). */
function directives(value: string, each: (name: string, argument: string) => void): void {
  for (const part of value.split(',')) {
    const eq = part.indexOf('=');
    const name = (eq === -1 ? part : part.slice(0, eq)).trim().toLowerCase();
    if (name === '') continue;
    let argument = eq === -1 ? '' : part.slice(eq + 1).trim();
    if (argument.startsWith('"') && argument.endsWith('"') && argument.length >= 2) argument = argument.slice(1, -1);
    each(name, argument);
  }
}

/** Delta-seconds (RFC 9111 §1.2.2): digits only; anything else is -1 (the directive is ignored). */
function seconds(argument: string): number {
  if (!/^\d+$/.test(argument)) return -1;
  return Math.min(Number(argument), 2 ** 31);
}

export function responseDirectives(value: string | undefined): ResponseDirectives {
  const d: ResponseDirectives = {
    noStore: false,
    noCache: false,
    mustRevalidate: false,
    maxAge: -1,
    staleWhileRevalidate: -1,
  };
  if (value === undefined) return d;
  let sMaxAge = -1;
  directives(value, (name, argument) => {
    switch (name) {
      case 'no-store':
        d.noStore = true;
        break;
      case 'private':
      case 'no-cache':
        d.noCache = true;
        break;
      case 'must-revalidate':
      case 'proxy-revalidate':
        d.mustRevalidate = true;
        break;
      case 'max-age':
        d.maxAge = seconds(argument);
        break;
      case 's-maxage':
        sMaxAge = seconds(argument);
        break;
      case 'stale-while-revalidate':
        d.staleWhileRevalidate = seconds(argument);
        break;
    }
  });
  if (sMaxAge >= 0) {
    d.maxAge = sMaxAge;
    // s-maxage also carries proxy-revalidate's meaning (RFC 9111 §5.2.2.10).
    d.mustRevalidate = true;
  }
  return d;
}

export function requestDirectives(value: string): RequestDirectives {
  const d: RequestDirectives = { noStore: false, noCache: false, maxAge: -1 };
  directives(value, (name, argument) => {
    if (name === 'no-store') d.noStore = true;
    else if (name === 'no-cache') d.noCache = true;
    else if (name === 'max-age') d.maxAge = seconds(argument);
  });
  return d;
}

/** An HTTP date in milliseconds, or NaN. */
export function httpDate(value: string | undefined): number {
  return value === undefined ? Number.NaN : Date.parse(value);
}

/** The times of an entry, worked out when its response is stored. */
export interface Freshness {
  /** When the response was generated, as far as this cache knows: now less the upstream's `Age`. */
  storedAt: number;
  /** Fresh before this instant. */
  expiresAt: number;
  /** May be served stale (while one request refreshes it) before this instant. */
  staleUntil: number;
  /** Kept before this instant (for stale serving, and for a 304 from upstream to refresh it). */
  keepUntil: number;
}

export interface FreshnessInput {
  cacheControl: ResponseDirectives;
  expires: string | undefined;
  date: string | undefined;
  age: string | undefined;
  hasValidator: boolean;
  now: number;
  /** Lifetime when the response states none (the plugin's `ttl`). */
  defaultTtlMs: number;
  /** Upper bound of any lifetime (the plugin's `maxTtl`); Infinity when none. */
  maxTtlMs: number;
  /** Stale window when the response states none (the plugin's `staleWhileRevalidate`). */
  defaultStaleMs: number;
}

/**
 * How long a response may be served (RFC 9111 §4.2): `s-maxage`, else `max-age`, else `Expires` less
 * `Date`, else the plugin's ttl; less the `Age` it already had. Null when it would be stale at once.
 */
export function freshness(input: FreshnessInput): Freshness | null {
  const cc = input.cacheControl;
  let lifetimeMs: number;
  if (cc.maxAge >= 0) lifetimeMs = cc.maxAge * 1000;
  else if (input.expires !== undefined) {
    // An Expires that does not parse (`0`, `-1`) means already expired (RFC 9111 §5.3).
    const expires = httpDate(input.expires);
    const date = httpDate(input.date);
    lifetimeMs = Number.isNaN(expires) ? 0 : expires - (Number.isNaN(date) ? input.now : date);
  } else lifetimeMs = input.defaultTtlMs;
  lifetimeMs = Math.min(lifetimeMs, input.maxTtlMs);
  const ageS = input.age === undefined ? 0 : seconds(input.age.trim());
  const storedAt = input.now - Math.max(0, ageS) * 1000;
  const expiresAt = storedAt + lifetimeMs;
  if (expiresAt <= input.now) return null;
  const staleMs = cc.mustRevalidate
    ? 0
    : cc.staleWhileRevalidate >= 0
      ? cc.staleWhileRevalidate * 1000
      : input.defaultStaleMs;
  const staleUntil = expiresAt + staleMs;
  // With a validator, a stale entry is worth keeping one more lifetime: a client's conditional request
  // that the upstream answers 304 then refreshes it instead of it being fetched whole again.
  const keepUntil = input.hasValidator ? Math.max(staleUntil, expiresAt + lifetimeMs) : staleUntil;
  return { storedAt, expiresAt, staleUntil, keepUntil };
}

/**
 * The query with its parameters in a stable order (by name; repeated names keep their order, which
 * may matter to the upstream), empty parameters dropped. Values are compared byte for byte.
 */
export function normaliseQuery(query: string): string {
  if (query === '' || query.indexOf('&') === -1) return query;
  const parts = query.split('&').filter((p) => p !== '');
  parts.sort((a, b) => {
    const na = nameOf(a);
    const nb = nameOf(b);
    return na < nb ? -1 : na > nb ? 1 : 0;
  });
  return parts.join('&');
}

function nameOf(parameter: string): string {
  const eq = parameter.indexOf('=');
  return eq === -1 ? parameter : parameter.slice(0, eq);
}

/** A request header's value as it counts in a key: lower-case, no space around commas or at the ends. */
export function normaliseFieldValue(value: string | undefined): string {
  if (value === undefined) return '';
  let out = '';
  for (const part of value.split(',')) {
    const trimmed = part.trim();
    out = out === '' ? trimmed : `${out},${trimmed}`;
  }
  return out.toLowerCase();
}

/** The header names of a `Vary` value, lower-case, sorted, once each; null for `Vary: *`. */
export function varyNames(value: string): string[] | null {
  const names = new Set<string>();
  for (const part of value.split(',')) {
    const name = part.trim().toLowerCase();
    if (name === '*') return null;
    if (name !== '') names.add(name);
  }
  return [...names].sort();
}

/** Separates the parts of a key; it cannot occur in a path, a query, a host or a header value. */
export const KEY_SEPARATOR = '\u0000';

/**
 * The start every key of one URL shares (`path`, query, then host): a purge by URL or by path prefix
 * removes the keys that start with it. `query` undefined leaves the query open (every query).
 */
export function keyPrefixOf(path: string, query?: string, host?: string): string {
  if (query === undefined) return path;
  const base = `${path}${KEY_SEPARATOR}${normaliseQuery(query)}${KEY_SEPARATOR}`;
  return host === undefined ? base : `${base}${host.toLowerCase()}${KEY_SEPARATOR}`;
}

/**
 * The weak comparison of RFC 9110 §8.8.3.2 between an `If-None-Match` list and an entity tag:
 * `W/` is ignored on both sides; `*` matches any.
 */
export function noneMatch(ifNoneMatch: string, etag: string): boolean {
  const tag = opaque(etag);
  if (ifNoneMatch.indexOf(',') === -1) {
    const one = ifNoneMatch.trim();
    return one === '*' || opaque(one) === tag;
  }
  for (const part of ifNoneMatch.split(',')) {
    const one = part.trim();
    if (one === '*' || opaque(one) === tag) return true;
  }
  return false;
}

function opaque(tag: string): string {
  return tag.startsWith('W/') ? tag.slice(2) : tag;
}
