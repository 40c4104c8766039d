/**
 * Verification keys per issuer, from the consumers' jwt credentials: an HMAC secret, a PEM public key
 * (inline or from a file), or a JWKS URL. Each issuer accepts only the algorithms its key can verify,
 * so a token cannot pick HS256 and have an RSA public key used as an HMAC secret (algorithm confusion).
 */
import { createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRemoteJWKSet, type KeyObject as JoseKeyObject, type JWTVerifyGetKey } from 'jose';
import { isInlinePem, JWT_ASYMMETRIC_ALGORITHMS, JWT_HMAC_ALGORITHMS, jwtAlgorithmsFor } from '../../core/jwt-keys.ts';
import type { Consumer, ConsumerDefinition, PluginDeps } from '../../core/plugin.ts';

/** JWKS: cache keys this long, refresh in the background at half of it. */
const JWKS_CACHE_MS = 10 * 60_000;
/** JWKS: at most one fetch per this period for unknown key ids (a flood of forged kids cannot hammer the IdP). */
const JWKS_COOLDOWN_MS = 30_000;
const JWKS_FETCH_TIMEOUT_MS = 5_000;

export interface IssuerKey {
  consumer: Consumer;
  issuer: string;
  algorithms: string[];
  audiences: string[] | undefined;
  /** A secret, a public key, or (JWKS) a resolver that picks the key for the token's `kid`. */
  key: JWTVerifyGetKey | Uint8Array | JoseKeyObject;
}

/** A long-lived JWKS set per URL: keys and their refresh timer survive reloads. */
function remoteKeys(url: string, deps: PluginDeps): JWTVerifyGetKey {
  return deps.shared(`jwt:jwks:${url}`, () => {
    const set = createRemoteJWKSet(new URL(url), {
      cacheMaxAge: JWKS_CACHE_MS,
      cooldownDuration: JWKS_COOLDOWN_MS,
      timeoutDuration: JWKS_FETCH_TIMEOUT_MS,
    });
    const timer = setInterval(() => {
      set
        .reload()
        .catch((e: Error) => deps.warn('JWKS refresh failed; keeping the cached keys', { url, err: e.message }));
    }, JWKS_CACHE_MS / 2);
    timer.unref();
    return Object.assign(set, { close: () => clearInterval(timer) });
  });
}

export function issuerKeys(
  consumers: ReadonlyMap<string, ConsumerDefinition>,
  deps: PluginDeps,
): Map<string, IssuerKey> {
  const byIssuer = new Map<string, IssuerKey>();
  for (const consumer of consumers.values()) {
    for (const c of consumer.credentials) {
      if (c.type !== 'jwt') continue;
      const issuer = c.issuer as string;
      const audiences = c.audiences as string[] | undefined;
      const only = c.algorithm as string | undefined;
      let entry: IssuerKey;
      if (typeof c.secret === 'string') {
        entry = {
          consumer,
          issuer,
          audiences,
          algorithms: only ? [only] : [...JWT_HMAC_ALGORITHMS],
          key: new TextEncoder().encode(c.secret),
        };
      } else if (typeof c.publicKey === 'string') {
        const pem = isInlinePem(c.publicKey) ? c.publicKey : readFileSync(c.publicKey, 'utf8');
        const key = createPublicKey(pem);
        const algorithms = jwtAlgorithmsFor(key);
        if (only && !algorithms.includes(only))
          throw new Error(
            `the public key for issuer ${issuer} cannot verify ${only} (it verifies ${algorithms.join(', ')})`,
          );
        entry = { consumer, issuer, audiences, algorithms: only ? [only] : algorithms, key };
      } else {
        entry = {
          consumer,
          issuer,
          audiences,
          algorithms: only ? [only] : [...JWT_ASYMMETRIC_ALGORITHMS],
          key: remoteKeys(c.jwksUrl as string, deps),
        };
      }
      byIssuer.set(issuer, entry);
    }
  }
  return byIssuer;
}
