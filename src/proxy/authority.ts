/**
 * The authority of a request (Host, `:authority`, or the authority of an absolute-form target) checked
 * against RFC 3986 §3.2.2–3.2.3 as RFC 9112 §3.2 requires: `host [ ":" port ]`, where host is an
 * IP-literal in brackets or a reg-name of unreserved characters, sub-delims and percent-escapes, and
 * port is digits. Anything else (spaces, `/`, `@` userinfo, a second `:`, a bad escape, a non-ASCII
 * byte) is a malformed Host: 400, never forwarded, so an upstream or cache can never read it
 * differently from the route that matched it.
 */
import { isIPv6 } from 'node:net';

/** 1 for the characters of a reg-name besides `%`: ALPHA DIGIT `-._~` and the sub-delims `!$&'()*+,;=`. */
const REG_NAME = new Uint8Array(128);
for (const c of "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=")
  REG_NAME[c.charCodeAt(0)] = 1;

function isHex(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}

/**
 * True when `value` is a valid Host field value. The empty value is valid (RFC 9112 §3.2: the target
 * URI had no authority); a port without a host is not (RFC 9110 §4.2.1).
 */
export function isValidAuthority(value: string): boolean {
  const n = value.length;
  if (n === 0) return true;
  let i = 0;
  if (value.charCodeAt(0) === 0x5b /* [ */) {
    const close = value.indexOf(']');
    if (close === -1 || !isIpLiteral(value.slice(1, close))) return false;
    i = close + 1;
  } else {
    for (; i < n; i++) {
      const c = value.charCodeAt(i);
      if (c === 0x3a /* : */) break;
      if (c === 0x25 /* % */) {
        if (!isHex(value.charCodeAt(i + 1)) || !isHex(value.charCodeAt(i + 2))) return false;
        i += 2;
      } else if (c >= 128 || REG_NAME[c] === 0) return false;
    }
    if (i === 0) return false;
  }
  if (i === n) return true;
  if (value.charCodeAt(i) !== 0x3a) return false;
  // port = *DIGIT (RFC 3986 §3.2.3): possibly empty.
  for (i++; i < n; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return false;
  }
  return true;
}

/** Inside the brackets: an IPv6 address (no zone: RFC 3986 has none) or IPvFuture `v1.x`. */
function isIpLiteral(s: string): boolean {
  if (s.charCodeAt(0) === 0x76 || s.charCodeAt(0) === 0x56 /* v V */) {
    const dot = s.indexOf('.');
    if (dot < 2 || dot === s.length - 1) return false;
    for (let i = 1; i < dot; i++) if (!isHex(s.charCodeAt(i))) return false;
    for (let i = dot + 1; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c !== 0x3a && (c >= 128 || REG_NAME[c] === 0)) return false;
    }
    return true;
  }
  return !s.includes('%') && isIPv6(s);
}

/** An absolute-form request target split into its parts; null when it is not an http(s) URI. */
export interface AbsoluteTarget {
  authority: string;
  /** Path and query as sent; `/` when the URI has an empty path (RFC 9112 §3.2.1). */
  target: string;
}

/**
 * Splits `http://authority/path?query` (RFC 9112 §3.2.2). Only `http` and `https` (any case); the
 * authority must be valid and have a host. The path is kept byte for byte.
 */
export function splitAbsoluteForm(target: string): AbsoluteTarget | null {
  const sep = target.indexOf('://');
  if (sep !== 4 && sep !== 5) return null;
  const scheme = target.slice(0, sep).toLowerCase();
  if (scheme !== 'http' && scheme !== 'https') return null;
  const start = sep + 3;
  let end = start;
  while (end < target.length) {
    const c = target.charCodeAt(end);
    if (c === 0x2f /* / */ || c === 0x3f /* ? */ || c === 0x23 /* # */) break;
    end++;
  }
  const authority = target.slice(start, end);
  if (authority === '' || authority.charCodeAt(0) === 0x3a || !isValidAuthority(authority)) return null;
  const rest = target.slice(end);
  return { authority, target: rest.charCodeAt(0) === 0x2f ? rest : `/${rest}` };
}
