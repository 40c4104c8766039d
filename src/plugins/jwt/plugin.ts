/**
 * jwt: authenticates a request by a JSON Web Token, identifies its consumer by the `iss` claim (as in
 * Kong), and enforces scopes. Signatures are checked with node:crypto against keys made once per
 * credential or JWKS key (verify.ts, jwks.ts); this plugin decides which key and algorithms an issuer
 * may use, where the token is, and what a failure answers (RFC 6750 WWW-Authenticate).
 *
 * A verified token is remembered (per snapshot, bounded) so repeated requests with the same token skip
 * the signature check; `exp` and `nbf` are still checked on every request.
 */
import { parseDuration } from '../../core/duration.ts';
import { definePlugin, type Filter, type LocalReply, type RequestContext } from '../../core/plugin.ts';
import { cookieValue, queryValue, withoutCookie, withoutQueryParam } from '../../core/request-values.ts';
import { authenticate } from '../shared/identity.ts';
import { entryIssuerKeys, type IssuerKey, issuerKeys } from './keys.ts';
import { type JwtConfig, jwtSchema, type TokenSource } from './schema.ts';
import { type DecodedToken, decodeToken, type Verifier } from './verify.ts';

const DEFAULT_CLOCK_SKEW_MS = 30_000;
const DEFAULT_MAX_TOKEN_BYTES = 8192;
/** Verified tokens remembered per snapshot; the oldest is forgotten first. */
const VERIFIED_CACHE_SIZE = 10_000;

interface Verified {
  key: IssuerKey;
  payload: Record<string, unknown>;
  /** Its scopes, read once when it is verified (a remembered token is admitted on every request). */
  scopes: ReadonlySet<string>;
  /** The token's payload part as sent (base64url JSON), for `payloadToHeader`. */
  payloadPart: string;
}

function bearer(description?: string, scope?: string): [string, string] {
  let value = 'Bearer realm="meshgate"';
  if (description !== undefined) value += `, error="invalid_token", error_description="${description}"`;
  if (scope !== undefined) value = `Bearer realm="meshgate", error="insufficient_scope", scope="${scope}"`;
  return ['www-authenticate', value];
}

function invalid(description: string): LocalReply {
  return { status: 401, code: 'MG_UNAUTHORIZED', detail: description, headers: [bearer(description)] };
}

/** The token at one place, or undefined. */
function tokenAt(ctx: RequestContext, source: TokenSource): string | undefined {
  if ('header' in source) {
    const value = ctx.header(source.header);
    if (value === undefined) return undefined;
    if (source.prefix !== undefined)
      return value.startsWith(source.prefix) ? value.slice(source.prefix.length) : undefined;
    if (source.header !== 'authorization') return value;
    if (value.length > 7 && value.slice(0, 7).toLowerCase() === 'bearer ') return value.slice(7).trim();
    return undefined;
  }
  if ('cookie' in source) return cookieValue(ctx.header('cookie'), source.cookie);
  return queryValue(ctx.query, source.query);
}

/** Takes the token out of the request where it was found (`forwardToken: false`). */
function removeToken(ctx: RequestContext, source: TokenSource): void {
  if ('header' in source) ctx.removeHeader(source.header);
  else if ('cookie' in source) {
    const rest = withoutCookie(ctx.header('cookie'), source.cookie);
    if (rest === '') ctx.removeHeader('cookie');
    else if (rest !== undefined) ctx.setHeader('cookie', rest);
  } else ctx.query = withoutQueryParam(ctx.query, source.query);
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

const TIME_CLAIMS = ['exp', 'nbf', 'iat'] as const;

/** `aud` (a string or a list, RFC 7519 §4.1.3) names at least one of the accepted audiences. */
function audienceMatches(aud: unknown, accepted: readonly string[]): boolean {
  if (typeof aud === 'string') return accepted.includes(aud);
  return Array.isArray(aud) && aud.some((a) => typeof a === 'string' && accepted.includes(a));
}

function scopesOf(payload: Record<string, unknown>): string[] {
  const scope = payload.scope ?? payload.scp;
  if (typeof scope === 'string') return scope.split(' ').filter(Boolean);
  if (Array.isArray(scope)) return scope.filter((s): s is string => typeof s === 'string');
  return [];
}

export default definePlugin<JwtConfig>({
  name: 'jwt',
  phase: 'authenticate',
  order: 100,
  description:
    'Authenticate consumers by JWT (HS*, RS*, PS*, ES*, EdDSA; keys inline, from files or JWKS) and require scopes.',
  configSchema: jwtSchema,
  compile(config, deps) {
    // An entry with its own issuers trusts only them, so it neither shares the consumers' keys nor
    // admits a token another entry verified against keys this one does not trust.
    const own = config.issuers === undefined ? '' : `:${JSON.stringify(config.issuers)}`;
    const keys = deps.perSnapshot(`jwt:issuers${own}`, () =>
      config.issuers === undefined ? issuerKeys(deps.consumers, deps) : entryIssuerKeys(config.issuers, deps),
    );
    const verified = deps.perSnapshot(`jwt:verified${own}`, () => new Map<string, Verified>());
    const optional = config.optional === true;
    const forward = config.forwardToken !== false;
    const payloadHeader = config.payloadToHeader?.toLowerCase();
    // Request header names are held lower-case (RequestContext.header).
    const sources: TokenSource[] = (config.tokenFrom ?? [{ header: 'authorization' }]).map((source) =>
      'header' in source ? { ...source, header: source.header.toLowerCase() } : source,
    );
    const skewMs = parseDuration(config.clockSkew ?? '') ?? DEFAULT_CLOCK_SKEW_MS;
    const requireExp = config.requireExpiration !== false;
    const maxBytes = config.maxTokenBytes ?? DEFAULT_MAX_TOKEN_BYTES;
    const required = config.scopes ?? [];
    const any = config.scopesMatch === 'any';
    const claimHeaders = Object.entries(config.claimsToHeaders ?? {}).map(([claim, header]) => [
      claim,
      header.toLowerCase(),
    ]);
    const missing: LocalReply = {
      status: 401,
      code: 'MG_UNAUTHORIZED',
      detail: 'this route needs a bearer token',
      headers: [bearer()],
    };
    const insufficient: LocalReply = {
      status: 403,
      code: 'MG_INSUFFICIENT_SCOPE',
      detail: any
        ? `the token has none of the scopes ${required.join(' ')}`
        : `the token lacks a required scope (${required.join(' ')})`,
      headers: [bearer(undefined, required.join(' '))],
    };

    /** The outcome for a verified token, checked again on every use (time passes). */
    const admit = (ctx: RequestContext, v: Verified, at: TokenSource): LocalReply | undefined => {
      const now = deps.now();
      const { exp, nbf } = v.payload;
      // The verified-token cache is shared by every jwt entry of the snapshot: a token verified for a
      // route that does not require `exp` must not pass here without one.
      if (requireExp && typeof exp !== 'number') return invalid('the token has no expiry (exp)');
      if (typeof exp === 'number' && exp * 1000 + skewMs <= now) return invalid('the token has expired');
      if (typeof nbf === 'number' && nbf * 1000 - skewMs > now) return invalid('the token is not valid yet');
      if (required.length > 0) {
        const held = v.scopes;
        const ok = any ? required.some((s) => held.has(s)) : required.every((s) => held.has(s));
        if (!ok) return insufficient;
      }
      if (v.key.consumer !== undefined) authenticate(ctx, v.key.consumer, { type: 'jwt', id: v.key.issuer });
      // Read-only for later filters (authorization policies' request.auth.claims[…]).
      ctx.claims = v.payload;
      for (const [claim, header] of claimHeaders) {
        const value = v.payload[claim!];
        if (value !== undefined) ctx.setHeader(header!, typeof value === 'string' ? value : JSON.stringify(value));
      }
      if (payloadHeader !== undefined) ctx.setHeader(payloadHeader, v.payloadPart);
      if (!forward) removeToken(ctx, at);
      return undefined;
    };

    /** The signature, then the claims no later request re-checks; then the token is remembered. */
    const verify = (
      ctx: RequestContext,
      token: string,
      decoded: DecodedToken,
      key: IssuerKey,
      verifier: Verifier | undefined,
      at: TokenSource,
    ): LocalReply | undefined => {
      if (verifier === undefined)
        return invalid(
          key.jwks
            ? 'no key of the issuer matches the token (kid)'
            : "the issuer's key cannot verify the token (an RSA key needs 2048 bits)",
        );
      let ok: boolean;
      try {
        ok = verifier(decoded.signingInput, decoded.signature);
      } catch {
        ok = false;
      }
      if (!ok) return invalid('the token signature does not verify');
      const { payload } = decoded;
      for (const claim of TIME_CLAIMS)
        if (payload[claim] !== undefined && typeof payload[claim] !== 'number')
          return invalid(`the token's ${claim} claim is not acceptable`);
      if (key.audiences !== undefined && key.audiences.length > 0 && !audienceMatches(payload.aud, key.audiences))
        return invalid('the token is not meant for this API (aud)');
      // Frozen: the same payload is handed to every request that presents this token (ctx.claims).
      const first = token.indexOf('.');
      const v = {
        key,
        payload: deepFreeze(payload),
        scopes: new Set(scopesOf(payload)),
        payloadPart: token.slice(first + 1, token.indexOf('.', first + 1)),
      };
      if (verified.size >= VERIFIED_CACHE_SIZE) verified.delete(verified.keys().next().value!);
      verified.set(token, v);
      return admit(ctx, v, at);
    };

    const explained = Object.freeze({ requiredScopes: required, scopesMatch: any ? 'any' : 'all' });
    const filter: Filter = {
      explain: () => explained,
      onRequestHeaders(ctx) {
        for (const [, header] of claimHeaders) ctx.removeHeader(header!);
        if (payloadHeader !== undefined) ctx.removeHeader(payloadHeader);
        let token: string | undefined;
        let at = sources[0]!;
        for (const source of sources) {
          token = tokenAt(ctx, source);
          if (token !== undefined) {
            at = source;
            break;
          }
        }
        if (token === undefined || token === '') return optional ? undefined : missing;
        if (token.length > maxBytes) return invalid(`the token is longer than ${maxBytes} bytes`);
        const known = verified.get(token);
        if (known !== undefined) return admit(ctx, known, at);
        const decoded = decodeToken(token);
        if (decoded === undefined) return invalid('the token is malformed');
        const { alg, crit, kid } = decoded.header;
        if (alg === 'none') return invalid('unsigned tokens (alg none) are not accepted');
        // RFC 7515 §4.1.11: a token whose critical extensions are not understood must be refused.
        if (crit !== undefined) return invalid('the token has critical header parameters (crit) not supported here');
        const issuer = decoded.payload.iss;
        const key = typeof issuer === 'string' ? keys.get(issuer) : undefined;
        if (key === undefined) return invalid('the token issuer is not known here');
        if (!key.algorithms.includes(alg)) return invalid('the token algorithm is not accepted for its issuer');
        let verifier: ReturnType<IssuerKey['verifier']>;
        try {
          verifier = key.verifier(alg, kid);
        } catch {
          return invalid('the token cannot be verified');
        }
        if (!(verifier instanceof Promise)) return verify(ctx, token, decoded, key, verifier, at);
        const found = token;
        return verifier.then(
          (v) => verify(ctx, found, decoded, key, v, at),
          () => invalid('the token cannot be verified (the issuer keys are unavailable)'),
        );
      },
    };
    return () => filter;
  },
});
