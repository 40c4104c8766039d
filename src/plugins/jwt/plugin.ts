/**
 * jwt: authenticates a request by a JSON Web Token, identifies its consumer by the `iss` claim (as in
 * Kong), and enforces scopes. Verification is jose's; this plugin decides which key and algorithms an
 * issuer may use, where the token is, and what a failure answers (RFC 6750 WWW-Authenticate).
 *
 * A verified token is remembered (per snapshot, bounded) so repeated requests with the same token skip
 * the signature check; `exp` and `nbf` are still checked on every request.
 */
import { decodeJwt, decodeProtectedHeader, errors, type JWTPayload, jwtVerify } from 'jose';
import { parseDuration } from '../../core/duration.ts';
import { definePlugin, type Filter, type LocalReply, type RequestContext } from '../../core/plugin.ts';
import { cookieValue, queryValue } from '../../core/request-values.ts';
import { authenticate } from '../shared/identity.ts';
import { type IssuerKey, issuerKeys } from './keys.ts';
import { type JwtConfig, jwtSchema, type TokenSource } from './schema.ts';

const DEFAULT_CLOCK_SKEW_MS = 30_000;
const DEFAULT_MAX_TOKEN_BYTES = 8192;
/** Verified tokens remembered per snapshot; the oldest is forgotten first. */
const VERIFIED_CACHE_SIZE = 10_000;

interface Verified {
  key: IssuerKey;
  payload: JWTPayload;
  /** Its scopes, read once when it is verified (a remembered token is admitted on every request). */
  scopes: ReadonlySet<string>;
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

/** What went wrong, in words that name no secret. */
function reason(e: unknown): string {
  if (e instanceof errors.JWTExpired) return 'the token has expired';
  if (e instanceof errors.JWTClaimValidationFailed) {
    if (e.claim === 'nbf') return 'the token is not valid yet';
    if (e.claim === 'aud') return 'the token is not meant for this API (aud)';
    if (e.claim === 'exp') return 'the token has no expiry (exp)';
    return `the token's ${e.claim} claim is not acceptable`;
  }
  if (e instanceof errors.JWSSignatureVerificationFailed) return 'the token signature does not verify';
  if (e instanceof errors.JOSEAlgNotAllowed) return 'the token algorithm is not accepted for its issuer';
  if (e instanceof errors.JWKSNoMatchingKey) return 'no key of the issuer matches the token (kid)';
  if (e instanceof errors.JWKSTimeout || e instanceof errors.JOSEError) return 'the token cannot be verified';
  return 'the token is malformed';
}

function tokenOf(ctx: RequestContext, sources: readonly TokenSource[]): string | undefined {
  for (const source of sources) {
    if ('header' in source) {
      const value = ctx.header(source.header);
      if (value === undefined) continue;
      if (source.header !== 'authorization') return value;
      if (value.length > 7 && value.slice(0, 7).toLowerCase() === 'bearer ') return value.slice(7).trim();
    } else if ('cookie' in source) {
      const value = cookieValue(ctx.header('cookie'), source.cookie);
      if (value !== undefined) return value;
    } else {
      const value = queryValue(ctx.query, source.query);
      if (value !== undefined) return value;
    }
  }
  return undefined;
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

function scopesOf(payload: JWTPayload): string[] {
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
    const keys = deps.perSnapshot('jwt:issuers', () => issuerKeys(deps.consumers, deps));
    const verified = deps.perSnapshot('jwt:verified', () => new Map<string, Verified>());
    // Request header names are held lower-case (RequestContext.header).
    const sources = (config.tokenFrom ?? [{ header: 'authorization' }]).map((source) =>
      'header' in source ? { header: source.header.toLowerCase() } : source,
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
    const admit = (ctx: RequestContext, v: Verified): LocalReply | undefined => {
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
      authenticate(ctx, v.key.consumer, { type: 'jwt', id: v.key.issuer });
      // Read-only for later filters (authorization policies' request.auth.claims[…]).
      ctx.claims = v.payload;
      for (const [claim, header] of claimHeaders) {
        const value = v.payload[claim!];
        if (value !== undefined) ctx.setHeader(header!, typeof value === 'string' ? value : JSON.stringify(value));
      }
      return undefined;
    };

    const verify = async (ctx: RequestContext, token: string, key: IssuerKey): Promise<LocalReply | undefined> => {
      try {
        const { payload } = await jwtVerify(token, key.key as Parameters<typeof jwtVerify>[1], {
          algorithms: key.algorithms,
          issuer: key.issuer,
          audience: key.audiences,
          clockTolerance: skewMs / 1000,
          requiredClaims: requireExp ? ['exp'] : [],
          currentDate: new Date(deps.now()),
        });
        // Frozen: the same payload is handed to every request that presents this token.
        const v = { key, payload: deepFreeze(payload), scopes: new Set(scopesOf(payload)) };
        if (verified.size >= VERIFIED_CACHE_SIZE) verified.delete(verified.keys().next().value!);
        verified.set(token, v);
        return admit(ctx, v);
      } catch (e) {
        return invalid(reason(e));
      }
    };

    const filter: Filter = {
      onRequestHeaders(ctx) {
        for (const [, header] of claimHeaders) ctx.removeHeader(header!);
        const token = tokenOf(ctx, sources);
        if (token === undefined || token === '') return missing;
        if (token.length > maxBytes) return invalid(`the token is longer than ${maxBytes} bytes`);
        const known = verified.get(token);
        if (known !== undefined) return admit(ctx, known);
        let issuer: unknown;
        try {
          if (decodeProtectedHeader(token).alg === 'none')
            return invalid('unsigned tokens (alg none) are not accepted');
          issuer = decodeJwt(token).iss;
        } catch {
          return invalid('the token is malformed');
        }
        const key = typeof issuer === 'string' ? keys.get(issuer) : undefined;
        if (key === undefined) return invalid('the token issuer is not known here');
        return verify(ctx, token, key);
      },
    };
    return () => filter;
  },
});
