/**
 * Header hygiene shared by every listener: which request headers never go upstream, which response
 * headers never go back, and the forwarding headers the proxy sets itself.
 */
import { EXPLAIN_REQUEST_HEADER, REQUEST_ID_HEADER, REQUEST_TIMEOUT_HEADER } from '../core/defaults.ts';

/** What the request pass does with a header; everything not listed is forwarded as is. */
export const H_DROP = 1; // hop-by-hop (RFC 9110 §7.6.1) or proxy-only: never forwarded
export const H_HOST = 2;
export const H_CONNECTION = 3;
export const H_REQUEST_ID = 4;
export const H_XFF = 5;
export const H_XF_PROTO = 6;
export const H_XF_HOST = 7;
export const H_FORWARDED = 8;
export const H_CONTENT_LENGTH = 9;
export const H_TRANSFER_ENCODING = 10;
export const H_AUTHORITY = 11;
export const H_TE = 12;
export const H_TRACEPARENT = 13;
export const H_TRACESTATE = 14;
export const H_B3 = 15;
export const H_REQUEST_TIMEOUT = 16;
export const H_XFCC = 17; // X-Forwarded-Client-Cert: set by mesh listeners only, from the verified peer
export const H_EXPLAIN = 18; // X-Meshgate-Explain: consumed by the proxy (explain/trail.ts)

export const REQUEST_HEADER_ACTIONS: ReadonlyMap<string, number> = new Map([
  ['connection', H_CONNECTION],
  ['keep-alive', H_DROP],
  ['proxy-connection', H_DROP],
  ['transfer-encoding', H_TRANSFER_ENCODING],
  ['te', H_TE],
  ['trailer', H_DROP],
  ['upgrade', H_DROP],
  ['http2-settings', H_DROP],
  ['proxy-authorization', H_DROP],
  // The proxy answers `Expect: 100-continue` itself; the upstream gets the body as one request.
  ['expect', H_DROP],
  // Identity headers are set by authentication plugins only; a client must never be able to claim one.
  ['x-consumer-id', H_DROP],
  ['x-consumer-username', H_DROP],
  ['x-consumer-groups', H_DROP],
  ['x-credential-identifier', H_DROP],
  ['host', H_HOST],
  [REQUEST_ID_HEADER, H_REQUEST_ID],
  ['x-forwarded-for', H_XFF],
  // Trace context: read for the trace id, replaced when this proxy records spans.
  ['traceparent', H_TRACEPARENT],
  ['tracestate', H_TRACESTATE],
  ['b3', H_B3],
  ['x-b3-traceid', H_B3],
  ['x-forwarded-proto', H_XF_PROTO],
  ['x-forwarded-host', H_XF_HOST],
  ['forwarded', H_FORWARDED],
  ['content-length', H_CONTENT_LENGTH],
  // HTTP/2 pseudo-headers: the request line in another form; the upstream request gets its own.
  [':authority', H_AUTHORITY],
  [':method', H_DROP],
  [':path', H_DROP],
  [':scheme', H_DROP],
  [':protocol', H_DROP],
  // The client's deadline for this proxy (docs/resilience.md); consumed here, not forwarded.
  [REQUEST_TIMEOUT_HEADER, H_REQUEST_TIMEOUT],
  ['x-forwarded-client-cert', H_XFCC],
  [EXPLAIN_REQUEST_HEADER, H_EXPLAIN],
]);

/** Response headers that describe the upstream connection, not the response. */
export const RESPONSE_HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'proxy-authenticate',
  'http2-settings',
]);

/**
 * Names listed in a `Connection` header, other than `close`/`keep-alive`: the sender declared them
 * hop-by-hop, so they are removed too. Returns null in the common case of nothing to remove.
 */
export function connectionListed(value: string): Set<string> | null {
  // What nearly every client and upstream sends: nothing to strip, nothing to split (a string compare
  // first: the regular expression is a tenth of a microsecond on every response).
  if (value === 'keep-alive' || value === 'close') return null;
  if (value.length <= 10 && /^(?:keep-alive|close)$/i.test(value)) return null;
  let out: Set<string> | null = null;
  for (const token of value.split(',')) {
    const name = token.trim().toLowerCase();
    if (name === '' || name === 'close' || name === 'keep-alive') continue;
    (out ??= new Set()).add(name);
  }
  return out;
}

/** Removes `names` from a flat `[name, value, …]` list in place. */
export function removeHeaders(flat: string[], names: ReadonlySet<string>): void {
  let w = 0;
  for (let r = 0; r < flat.length; r += 2) {
    if (names.has(flat[r]!)) continue;
    flat[w++] = flat[r]!;
    flat[w++] = flat[r + 1]!;
  }
  flat.length = w;
}

/** The value of `name` in a flat `[name, value, …]` list, repeats joined with ", " (RFC 9110 5.3). */
export function headerValue(flat: readonly string[], name: string): string | undefined {
  let value: string | undefined;
  for (let i = 0; i < flat.length; i += 2) {
    if (flat[i] === name) value = value === undefined ? flat[i + 1] : `${value}, ${flat[i + 1]}`;
  }
  return value;
}

/** Removes every entry named `name` from a flat `[name, value, …]` list in place. */
export function removeHeader(flat: unknown[], name: string): void {
  let w = 0;
  for (let r = 0; r < flat.length; r += 2) {
    if (flat[r] === name) continue;
    flat[w++] = flat[r];
    flat[w++] = flat[r + 1];
  }
  flat.length = w;
}

/** Sets `name` to `value` in a flat list: the first entry takes the value, later repeats go. */
export function setHeader(flat: unknown[], name: string, value: string): void {
  let found = false;
  let w = 0;
  for (let r = 0; r < flat.length; r += 2) {
    if (flat[r] === name) {
      if (found) continue;
      found = true;
      flat[r + 1] = value;
    }
    flat[w++] = flat[r];
    flat[w++] = flat[r + 1];
  }
  flat.length = w;
  if (!found) flat.push(name, value);
}

/** `Forwarded` element for one hop (RFC 7239): IPv6 and ports need quoting. */
export function forwardedElement(forAddress: string, host: string, proto: string): string {
  const node = forAddress.includes(':') ? `"[${forAddress}]"` : forAddress;
  return `for=${node};host=${forwardedHost(host)};proto=${proto}`;
}

// The host of the last element, as quoted: requests in a row nearly always name the same host, and
// checking and quoting it takes two regular expressions.
let lastHost = '';
let lastHostQuoted = '';

function forwardedHost(host: string): string {
  if (host === lastHost) return lastHostQuoted;
  lastHostQuoted = /^[A-Za-z0-9.-]+$/.test(host) ? host : `"${host.replace(/["\\]/g, '')}"`;
  lastHost = host;
  return lastHostQuoted;
}

/**
 * The client address as seen through `trustedHops` proxies: the list is the X-Forwarded-For
 * addresses plus the peer; the client is the (trustedHops)th from the right, or the leftmost.
 */
export function clientAddress(xff: string | undefined, peer: string, trustedHops: number): string {
  if (trustedHops === 0 || xff === undefined) return peer;
  const parts = xff.split(',');
  const index = parts.length - trustedHops;
  return (index >= 0 ? parts[index]! : parts[0]!).trim();
}
