/**
 * Verification keys per issuer, from the consumers' jwt credentials: an HMAC secret, a PEM public key
 * (inline or from a file), or a JWKS URL. Each issuer accepts only the algorithms its key can verify,
 * so a token cannot pick HS256 and have an RSA public key used as an HMAC secret (algorithm confusion).
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isInlinePem, JWT_ASYMMETRIC_ALGORITHMS, JWT_HMAC_ALGORITHMS, jwtAlgorithmsFor } from '../../core/jwt-keys.ts';
import type { Consumer, ConsumerDefinition, PluginDeps } from '../../core/plugin.ts';
import { RemoteKeySet, StaticKeySet } from './jwks.ts';
import type { JwtIssuer } from './schema.ts';
import { type Verifier, verifierFor } from './verify.ts';

export interface IssuerKey {
  /** Undefined for an issuer of the plugin entry's own `issuers`: its tokens authenticate no consumer. */
  consumer: Consumer | undefined;
  issuer: string;
  /** What a token of this issuer may name as its `alg`. */
  algorithms: readonly string[];
  audiences: string[] | undefined;
  /** Its keys come from a JWKS (a missing key means an unknown `kid`). */
  jwks: boolean;
  /**
   * The verifier for a token's `alg` (one of `algorithms`) and `kid`; for a JWKS issuer possibly a
   * promise, after a fetch. Undefined: no key of the issuer matches.
   */
  verifier(alg: string, kid: unknown): Verifier | undefined | Promise<Verifier | undefined>;
}

/** A long-lived JWKS set per URL: keys and their refresh timer survive reloads. */
function remoteKeys(url: string, deps: PluginDeps): RemoteKeySet {
  return deps.shared(`jwt:jwks:${url}`, () => new RemoteKeySet(url, { now: deps.now, warn: deps.warn }));
}

/** Verifiers made once for a fixed key: one per algorithm it may verify. */
function fixed(algorithms: readonly string[], key: Buffer | KeyObject) {
  const verifiers = new Map<string, Verifier>();
  for (const alg of algorithms) {
    const v = verifierFor(alg, key);
    if (v !== undefined) verifiers.set(alg, v);
  }
  return (alg: string) => verifiers.get(alg);
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
        const algorithms = only ? [only] : [...JWT_HMAC_ALGORITHMS];
        entry = {
          consumer,
          issuer,
          audiences,
          algorithms,
          jwks: false,
          verifier: fixed(algorithms, Buffer.from(c.secret)),
        };
      } else if (typeof c.publicKey === 'string') {
        const pem = isInlinePem(c.publicKey) ? c.publicKey : readFileSync(c.publicKey, 'utf8');
        const key = createPublicKey(pem);
        const usable = jwtAlgorithmsFor(key);
        if (only && !usable.includes(only))
          throw new Error(
            `the public key for issuer ${issuer} cannot verify ${only} (it verifies ${usable.join(', ')})`,
          );
        const algorithms = only ? [only] : usable;
        entry = { consumer, issuer, audiences, algorithms, jwks: false, verifier: fixed(algorithms, key) };
      } else {
        const set = remoteKeys(c.jwksUrl as string, deps);
        entry = {
          consumer,
          issuer,
          audiences,
          algorithms: only ? [only] : [...JWT_ASYMMETRIC_ALGORITHMS],
          jwks: true,
          verifier: (alg, kid) => set.verifier(alg, kid),
        };
      }
      byIssuer.set(issuer, entry);
    }
  }
  return byIssuer;
}

/** Keys of the issuers an entry trusts by itself (`issuers`): a JWKS URL or an inline JWKS each. */
export function entryIssuerKeys(issuers: readonly JwtIssuer[], deps: PluginDeps): Map<string, IssuerKey> {
  const byIssuer = new Map<string, IssuerKey>();
  for (const { issuer, jwksUrl, jwks, audiences } of issuers) {
    let set: { verifier(alg: string, kid: unknown): ReturnType<IssuerKey['verifier']> };
    if (jwks !== undefined) {
      try {
        set = new StaticKeySet(jwks);
      } catch (e) {
        throw new Error(`the inline JWKS of issuer ${issuer} is not a JWKS document: ${(e as Error).message}`);
      }
    } else set = remoteKeys(jwksUrl as string, deps);
    byIssuer.set(issuer, {
      consumer: undefined,
      issuer,
      audiences,
      algorithms: [...JWT_ASYMMETRIC_ALGORITHMS],
      jwks: true,
      verifier: (alg, kid) => set.verifier(alg, kid),
    });
  }
  return byIssuer;
}
