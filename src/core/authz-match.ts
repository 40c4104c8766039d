/**
 * The value forms of authorization policies, shared by the validator (src/config/authorization.ts),
 * the policy engine (src/proxy/authz/) and `analyze`: Istio's string match (exact, `*suffix`,
 * `prefix*`, `*`), principals in SPIFFE or Istio form, and `when` keys. Pure, no I/O.
 */
import { BlockList, isIP } from 'node:net';
import { spiffeIdProblem } from './spiffe.ts';

/** A compiled string match: exact values in a set, prefixes and suffixes in lists; `any` for `*`. */
export interface StringMatch {
  readonly any: boolean;
  readonly exact: ReadonlySet<string>;
  readonly prefixes: readonly string[];
  readonly suffixes: readonly string[];
}

/** Why a pattern is not Istio's form (a `*` elsewhere than at one end), or undefined. */
export function patternProblem(pattern: string): string | undefined {
  if (pattern === '*') return undefined;
  const inner = pattern.slice(1, -1);
  if (inner.includes('*') || (pattern.startsWith('*') && pattern.endsWith('*')))
    return `"${pattern}": \`*\` may only start or end a value (prefix*, *suffix, or * alone)`;
  return undefined;
}

/** Compiles patterns; `normalize` applies to the literal part (e.g. lower-case host names). */
export function compileStringMatch(patterns: readonly string[], normalize?: (s: string) => string): StringMatch {
  const n = normalize ?? ((s: string) => s);
  let any = false;
  const exact = new Set<string>();
  const prefixes: string[] = [];
  const suffixes: string[] = [];
  for (const p of patterns) {
    if (p === '*') any = true;
    else if (p.endsWith('*')) prefixes.push(n(p.slice(0, -1)));
    else if (p.startsWith('*')) suffixes.push(n(p.slice(1)));
    else exact.add(n(p));
  }
  return Object.freeze({ any, exact, prefixes: Object.freeze(prefixes), suffixes: Object.freeze(suffixes) });
}

/** Whether a present value matches; an absent one (undefined) never does. */
export function matchString(m: StringMatch, value: string | undefined): boolean {
  if (value === undefined) return false;
  if (m.any || m.exact.has(value)) return true;
  for (const p of m.prefixes) if (value.startsWith(p)) return true;
  for (const s of m.suffixes) if (value.endsWith(s)) return true;
  return false;
}

const SPIFFE = 'spiffe://';
/** Characters of a SPIFFE ID (scheme, trust domain and path segments). */
const PRINCIPAL_CHARS = /^[A-Za-z0-9._\-/:]*$/;

/**
 * A principal pattern in the form compared with peer SPIFFE IDs: Istio's form (no scheme) gets
 * `spiffe://`; a suffix pattern (`*…`) and `*` are left as written.
 */
export function normalizePrincipal(pattern: string): string {
  if (pattern.startsWith('*') || pattern.startsWith(SPIFFE)) return pattern;
  return SPIFFE + pattern;
}

/** Why a principal pattern can never match a SPIFFE ID, or undefined. */
export function principalProblem(pattern: string): string | undefined {
  const wildcard = patternProblem(pattern);
  if (wildcard !== undefined) return wildcard;
  if (pattern === '*') return undefined;
  const literal = pattern.replace(/^\*|\*$/g, '');
  if (!PRINCIPAL_CHARS.test(literal)) return `"${pattern}" has characters no SPIFFE ID has (A-Z a-z 0-9 . - _ /)`;
  if (pattern.startsWith('*')) return undefined;
  const full = normalizePrincipal(pattern);
  if (full.slice(SPIFFE.length).includes(':'))
    return `"${pattern}" is not a SPIFFE ID (spiffe://<trust-domain>/ns/<namespace>/sa/<service>)`;
  if (full.endsWith('*')) return undefined;
  const problem = spiffeIdProblem(full);
  return problem === undefined ? undefined : `"${pattern}" is not a SPIFFE ID: ${problem}`;
}

/** The service (`sa` segment) and namespace (`ns` segment) of a mesh workload ID, if it has that form. */
export function workloadOf(principal: string): { namespace: string; service: string } | undefined {
  if (!principal.startsWith(SPIFFE)) return undefined;
  const slash = principal.indexOf('/', SPIFFE.length);
  if (slash === -1) return undefined;
  const segments = principal.slice(slash + 1).split('/');
  if (segments.length !== 4 || segments[0] !== 'ns' || segments[2] !== 'sa') return undefined;
  return { namespace: segments[1]!, service: segments[3]! };
}

/** A parsed `when` key. */
export type WhenKey =
  | { readonly kind: 'header'; readonly name: string }
  | { readonly kind: 'claim'; readonly path: readonly string[] }
  | {
      readonly kind:
        | 'source.principal'
        | 'source.namespace'
        | 'source.service'
        | 'source.ip'
        | 'remote.ip'
        | 'destination.port'
        | 'request.auth.principal'
        | 'request.auth.audiences'
        | 'request.auth.presenter';
    };

const SIMPLE_KEYS = new Set([
  'source.principal',
  'source.namespace',
  'source.service',
  'source.ip',
  'remote.ip',
  'destination.port',
  'request.auth.principal',
  'request.auth.audiences',
  'request.auth.presenter',
]);

/** Reads a `when` key, or says why it is not one. Claims may be nested: `request.auth.claims[a][b]`. */
export function parseWhenKey(key: string): WhenKey | { problem: string; hint?: string } {
  if (SIMPLE_KEYS.has(key)) return { kind: key as 'source.ip' };
  const header = /^request\.headers\[([^\][]+)\]$/.exec(key);
  if (header) {
    const name = header[1]!.trim();
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) return { problem: `"${name}" is not a header name` };
    return { kind: 'header', name: name.toLowerCase() };
  }
  if (key.startsWith('request.auth.claims[')) {
    const path: string[] = [];
    const re = /\[([^\][]+)\]/gy;
    re.lastIndex = 'request.auth.claims'.length;
    let m: RegExpExecArray | null;
    let end = re.lastIndex;
    while ((m = re.exec(key)) !== null) {
      path.push(m[1]!);
      end = re.lastIndex;
    }
    if (path.length > 0 && end === key.length) return { kind: 'claim', path };
    return {
      problem: `"${key}" is not a claim key`,
      hint: 'e.g. request.auth.claims[iss] or request.auth.claims[groups]',
    };
  }
  return {
    problem: `unknown key "${key}"`,
    hint: 'request.headers[<name>], request.auth.claims[<claim>], request.auth.principal, request.auth.audiences, request.auth.presenter, source.principal, source.namespace, source.service, source.ip, remote.ip or destination.port',
  };
}

/** Addresses and CIDR blocks of `source.ip`/`remote.ip` values; the problems of those that are not. */
export function compileAddresses(values: readonly string[]): { list: BlockList; problems: string[] } {
  const list = new BlockList();
  const problems: string[] = [];
  for (const entry of values) {
    const [address, bits] = entry.split('/');
    const family = isIP(address ?? '');
    const type = family === 4 ? 'ipv4' : 'ipv6';
    if (family === 0) problems.push(`"${entry}" is not an IP address or CIDR block`);
    else if (bits === undefined) list.addAddress(address!, type);
    else if (!/^\d+$/.test(bits) || Number(bits) > (family === 4 ? 32 : 128))
      problems.push(`"/${bits}" is not a prefix length for ${type}`);
    else list.addSubnet(address!, Number(bits), type);
  }
  return { list, problems };
}

/** Whether an address is in the list (`::ffff:10.0.0.1` counts as 10.0.0.1). */
export function addressIn(list: BlockList, address: string | undefined): boolean {
  if (address === undefined) return false;
  const plain = address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
  const family = isIP(plain);
  return family !== 0 && list.check(plain, family === 4 ? 'ipv4' : 'ipv6');
}
