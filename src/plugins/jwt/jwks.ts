/**
 * A remote JWKS: fetched on first use, refreshed in the background, and fetched again when a token
 * names a key id it does not hold (the issuer rotated its keys) — at most once per cooldown, so a flood
 * of tokens with forged `kid`s costs the identity provider one request per cooldown, not one each.
 * Every JWK becomes a node:crypto `KeyObject` once, when its set is fetched.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import {
  DEFAULT_JWKS_CACHE_MS,
  DEFAULT_JWKS_FETCH_TIMEOUT_MS,
  DEFAULT_JWKS_UNKNOWN_KID_COOLDOWN_MS,
} from '../../core/defaults.ts';
import { type Verifier, verifierFor } from './verify.ts';

export interface RemoteKeySetOptions {
  /** Milliseconds since the epoch: the clock the cooldown is measured on. */
  now(): number;
  warn(message: string, fields?: Record<string, unknown>): void;
  /** Background refresh period is half of this; 0: no background refresh. */
  cacheMs?: number;
  /** Least time between two fetches on demand (first use, unknown kid, a failed fetch); 0: no limit. */
  cooldownMs?: number;
  /** A fetch that has not answered in this long fails (the cached keys stay). */
  fetchTimeoutMs?: number;
}

interface SetKey {
  kid: string | undefined;
  /** The JWK's `alg`, when it names one: the only algorithm the key may verify. */
  alg: string | undefined;
  key: KeyObject;
  /** Verifiers by algorithm, built on first use (undefined: this key cannot verify that algorithm). */
  verifiers: Map<string, Verifier | undefined>;
}

/** The JWKs of a JWKS document as keys; a JWK that is not a public signature key is left out. */
function parseSet(body: unknown): SetKey[] {
  const jwks = (body as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(jwks)) throw new Error('the JWKS has no keys array');
  const keys: SetKey[] = [];
  for (const jwk of jwks as Record<string, unknown>[]) {
    if (typeof jwk !== 'object' || jwk === null) continue;
    if (jwk.use !== undefined && jwk.use !== 'sig') continue;
    if (Array.isArray(jwk.key_ops) && !jwk.key_ops.includes('verify')) continue;
    let key: KeyObject;
    try {
      // A private JWK yields its public half; symmetric (`oct`) keys do not parse and are skipped.
      key = createPublicKey({ key: jwk as never, format: 'jwk' });
    } catch {
      continue;
    }
    keys.push({
      kid: typeof jwk.kid === 'string' ? jwk.kid : undefined,
      alg: typeof jwk.alg === 'string' ? jwk.alg : undefined,
      key,
      verifiers: new Map(),
    });
  }
  return keys;
}

/** The verifier of the keys of a set that match a token's `alg` and `kid`, or undefined. */
function findVerifier(keys: readonly SetKey[], alg: string, kid: unknown): Verifier | undefined {
  let found: Verifier | undefined;
  let more: Verifier[] | undefined;
  for (const k of keys) {
    if (kid !== undefined && k.kid !== kid) continue;
    if (k.alg !== undefined && k.alg !== alg) continue;
    let v = k.verifiers.get(alg);
    if (v === undefined && !k.verifiers.has(alg)) {
      v = verifierFor(alg, k.key);
      k.verifiers.set(alg, v);
    }
    if (v === undefined) continue;
    if (found === undefined) found = v;
    else (more ??= [found]).push(v);
  }
  // A token without a kid may be signed by any key of its algorithm.
  if (more !== undefined) {
    const all = more;
    return (input, signature) => all.some((v) => v(input, signature));
  }
  return found;
}

/** A key set given inline (a JWKS document): parsed once, never fetched. */
export class StaticKeySet {
  readonly #keys: SetKey[];

  /** Throws when the document is not JSON or has no `keys` array. */
  constructor(document: string) {
    this.#keys = parseSet(JSON.parse(document));
  }

  verifier(alg: string, kid: unknown): Verifier | undefined {
    return findVerifier(this.#keys, alg, kid);
  }
}

export class RemoteKeySet {
  readonly url: string;
  readonly #options: Required<RemoteKeySetOptions>;
  #keys: SetKey[] = [];
  /** When the last fetch started; -Infinity before the first. */
  #fetchedAt = Number.NEGATIVE_INFINITY;
  #loading: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(url: string, options: RemoteKeySetOptions) {
    this.url = url;
    this.#options = {
      cacheMs: DEFAULT_JWKS_CACHE_MS,
      cooldownMs: DEFAULT_JWKS_UNKNOWN_KID_COOLDOWN_MS,
      fetchTimeoutMs: DEFAULT_JWKS_FETCH_TIMEOUT_MS,
      ...options,
    };
    if (this.#options.cacheMs > 0) {
      this.#timer = setInterval(() => {
        this.reload().catch((e: Error) =>
          this.#options.warn('JWKS refresh failed; keeping the cached keys', { url, err: e.message }),
        );
      }, this.#options.cacheMs / 2);
      this.#timer.unref();
    }
  }

  /**
   * The verifier for a token's `alg` and `kid`: at once when a held key matches; otherwise a promise
   * settled after one fetch, if the cooldown allows one (rejected when that fetch fails); undefined
   * when no key matches and no fetch is allowed.
   */
  verifier(alg: string, kid: unknown): Verifier | undefined | Promise<Verifier | undefined> {
    const found = this.#find(alg, kid);
    if (found !== undefined) return found;
    if (this.#loading === undefined && this.#options.now() - this.#fetchedAt < this.#options.cooldownMs)
      return undefined;
    return this.reload().then(() => this.#find(alg, kid));
  }

  /** Fetches the set now (joining a fetch under way); the held keys stay if it fails. */
  reload(): Promise<void> {
    if (this.#loading !== undefined) return this.#loading;
    this.#fetchedAt = this.#options.now();
    this.#loading = this.#fetch().finally(() => {
      this.#loading = undefined;
    });
    return this.#loading;
  }

  close(): void {
    clearInterval(this.#timer);
  }

  async #fetch(): Promise<void> {
    const res = await fetch(this.url, {
      headers: { accept: 'application/json, application/jwk-set+json' },
      redirect: 'manual',
      signal: AbortSignal.timeout(this.#options.fetchTimeoutMs),
    });
    if (res.status !== 200) {
      await res.body?.cancel();
      throw new Error(`the JWKS endpoint answered ${res.status}`);
    }
    this.#keys = parseSet(await res.json());
  }

  #find(alg: string, kid: unknown): Verifier | undefined {
    return findVerifier(this.#keys, alg, kid);
  }
}
