/**
 * Who is calling the control plane: bearer tokens (join tokens for proxies, operator tokens for people
 * and tools) and, for certificate renewals, the proxy's current certificate (renewal.ts).
 *
 * Tokens are kept only as SHA-256 digests and compared in constant time: every configured digest is
 * compared with `timingSafeEqual`, whatever matched before, so the time taken says nothing about how
 * much of a guess was right nor which token matched. No token is ever logged or shown in a view: a
 * principal names its scope, never its token.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import type { ProxyIdentity } from '../../api/mesh.ts';
import {
  DEFAULT_GATEWAY_NAME,
  DEFAULT_SPIFFE_NAMESPACE,
  MAX_TOKEN_FILE_BYTES,
  MIN_TOKEN_LENGTH,
} from '../../core/defaults.ts';

/**
 * What a caller proved. `open`: no token is configured at all (loopback only, see the CLI). `operator`:
 * anything. `join`: a proxy, of any service (`scope: 'mesh'`), of one service (`service`), or a gateway
 * of one name (`gateway`). `svid`: a proxy holding a current certificate of this identity.
 */
export type Principal =
  | { readonly kind: 'open' }
  | { readonly kind: 'operator' }
  | { readonly kind: 'join'; readonly scope: 'mesh'; readonly namespace: string }
  | { readonly kind: 'join'; readonly scope: 'service' | 'gateway'; readonly name: string; readonly namespace: string }
  | { readonly kind: 'svid'; readonly namespace: string; readonly serviceAccount: string };

/** One join token's scope, as a token file line gives it (`mesh`, `service NAME`, `gateway NAME`). */
export type JoinScope = Extract<Principal, { kind: 'join' }>;

interface Entry {
  readonly digest: Buffer;
  readonly principal: Principal;
}

const digest = (token: string) => createHash('sha256').update(token, 'utf8').digest();

const NAME = /^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$/;

export class TokenFileError extends Error {}

/**
 * Join tokens, one a line: `mesh TOKEN`, `service NAME TOKEN` or `gateway NAME TOKEN`, each optionally
 * followed by `namespace=NS` (default `default`); `#` starts a comment. Errors name the line, never
 * the token.
 */
export function parseJoinTokens(text: string, file: string): JoinScope[] & { tokens: string[] } {
  const scopes: JoinScope[] = [];
  const tokens: string[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/#.*/, '').trim();
    if (line === '') return;
    const where = `${file}:${i + 1}`;
    const words = line.split(/\s+/);
    let namespace = DEFAULT_SPIFFE_NAMESPACE;
    const last = words[words.length - 1] as string;
    if (last.startsWith('namespace=')) {
      namespace = last.slice('namespace='.length);
      words.pop();
      if (!NAME.test(namespace)) throw new TokenFileError(`${where}: namespace "${namespace}" is not a name`);
    }
    const [kind, ...rest] = words;
    let scope: JoinScope;
    let token: string | undefined;
    if (kind === 'mesh' && rest.length === 1) {
      scope = { kind: 'join', scope: 'mesh', namespace };
      token = rest[0];
    } else if ((kind === 'service' || kind === 'gateway') && rest.length === 2) {
      const name = rest[0] as string;
      if (!NAME.test(name)) throw new TokenFileError(`${where}: ${kind} name "${name}" is not a name`);
      scope = { kind: 'join', scope: kind, name, namespace };
      token = rest[1];
    } else
      throw new TokenFileError(
        `${where}: expected "mesh TOKEN", "service NAME TOKEN" or "gateway NAME TOKEN" (then optionally namespace=NS)`,
      );
    tokens.push(checkToken(token as string, where));
    scopes.push(scope);
  });
  return Object.assign(scopes, { tokens });
}

/** Operator tokens: one a line; `#` starts a comment. */
export function parseOperatorTokens(text: string, file: string): string[] {
  const tokens: string[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/#.*/, '').trim();
    if (line === '') return;
    if (/\s/.test(line)) throw new TokenFileError(`${file}:${i + 1}: one token a line, with no spaces`);
    tokens.push(checkToken(line, `${file}:${i + 1}`));
  });
  return tokens;
}

function checkToken(token: string, where: string): string {
  if (token.length < MIN_TOKEN_LENGTH)
    throw new TokenFileError(`${where}: a token must have at least ${MIN_TOKEN_LENGTH} characters`);
  return token;
}

/** Reads a token file, refusing one that others may read (it holds secrets). */
export function readTokenFile(file: string): string {
  const stat = statSync(file);
  if (stat.size > MAX_TOKEN_FILE_BYTES)
    throw new TokenFileError(`${file} is larger than ${MAX_TOKEN_FILE_BYTES} bytes`);
  if (process.platform !== 'win32' && (stat.mode & 0o077) !== 0)
    throw new TokenFileError(`${file} may be read by others (mode ${(stat.mode & 0o777).toString(8)}): chmod 600 it`);
  return readFileSync(file, 'utf8');
}

export class Authenticator {
  private readonly entries: Entry[];

  constructor(options: {
    join?: { scopes: readonly JoinScope[]; tokens: readonly string[] };
    operator?: readonly string[];
  }) {
    const entries: Entry[] = [];
    const join = options.join;
    if (join)
      join.scopes.forEach((principal, i) => {
        entries.push({ digest: digest(join.tokens[i] as string), principal });
      });
    for (const t of options.operator ?? []) entries.push({ digest: digest(t), principal: { kind: 'operator' } });
    this.entries = entries;
  }

  /** No token configured: every caller is `open` (the CLI allows this on loopback only). */
  get open(): boolean {
    return this.entries.length === 0;
  }

  /** Counts by kind, for the start log and status (never the tokens). */
  summary(): { joinTokens: number; operatorTokens: number } {
    const operatorTokens = this.entries.filter((e) => e.principal.kind === 'operator').length;
    return { joinTokens: this.entries.length - operatorTokens, operatorTokens };
  }

  /** The principal of `Authorization: Bearer TOKEN`, `open` when no token is configured, else undefined. */
  authenticate(req: Pick<IncomingMessage, 'headers'>): Principal | undefined {
    if (this.open) return { kind: 'open' };
    const header = req.headers.authorization;
    if (typeof header !== 'string') return undefined;
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!match) return undefined;
    const presented = digest(match[1] as string);
    let found: Principal | undefined;
    // Every entry is compared: no early exit, so timing does not tell which (or whether one) matched.
    for (const e of this.entries) if (timingSafeEqual(e.digest, presented) && found === undefined) found = e.principal;
    return found;
  }
}

/** May this principal act as this proxy (open its stream, ACK for it, read its config, register its instance)? */
export function mayActAs(p: Principal, proxy: Pick<ProxyIdentity, 'kind' | 'service'>): boolean {
  switch (p.kind) {
    case 'open':
    case 'operator':
      return true;
    case 'join':
      if (p.scope === 'mesh') return true;
      if (p.scope === 'service') return proxy.kind === 'sidecar' && proxy.service === p.name;
      return proxy.kind === 'gateway' && (proxy.service ?? DEFAULT_GATEWAY_NAME) === p.name;
    case 'svid':
      return serviceAccountOf(proxy) === p.serviceAccount;
  }
}

/** May this principal register, heartbeat or remove an instance of `service`? */
export function mayRegister(p: Principal, service: string): boolean {
  if (p.kind === 'join' && p.scope === 'gateway') return false;
  if (p.kind === 'join' && p.scope === 'service') return p.name === service;
  if (p.kind === 'svid') return false;
  return true;
}

/** The service account of a proxy's identity: a sidecar's service, a gateway's name. */
export function serviceAccountOf(proxy: Pick<ProxyIdentity, 'kind' | 'service'>): string {
  return proxy.kind === 'sidecar' ? (proxy.service as string) : (proxy.service ?? DEFAULT_GATEWAY_NAME);
}

/** The namespace a principal's certificates are issued in. */
export function namespaceOf(p: Principal): string {
  return p.kind === 'join' || p.kind === 'svid' ? p.namespace : DEFAULT_SPIFFE_NAMESPACE;
}

/** For logs: what the caller proved, never with what. */
export function describePrincipal(p: Principal): string {
  switch (p.kind) {
    case 'open':
      return 'open (no tokens configured)';
    case 'operator':
      return 'operator token';
    case 'join':
      return p.scope === 'mesh' ? 'mesh join token' : `${p.scope} ${p.name} join token`;
    case 'svid':
      return `certificate ${p.namespace}/${p.serviceAccount}`;
  }
}
