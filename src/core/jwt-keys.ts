/**
 * Which JWT algorithms a key can verify: shared by the config checks (a key that cannot verify its
 * credential's algorithm is a config error with a position) and the jwt plugin (an issuer accepts only
 * these, so a token cannot pick HS256 and have a public key used as an HMAC secret).
 */
import type { KeyObject } from 'node:crypto';

export const JWT_HMAC_ALGORITHMS = ['HS256', 'HS384', 'HS512'] as const;
export const JWT_ASYMMETRIC_ALGORITHMS = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'EdDSA',
] as const;
/** Every algorithm a jwt credential may name (the config schema's list). */
export const JWT_ALGORITHMS = [...JWT_HMAC_ALGORITHMS, ...JWT_ASYMMETRIC_ALGORITHMS] as const;

/** The algorithms a public key verifies; throws for a key type JWTs do not use. */
export function jwtAlgorithmsFor(key: KeyObject): string[] {
  switch (key.asymmetricKeyType) {
    case 'rsa':
      return ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'];
    case 'rsa-pss':
      return ['PS256', 'PS384', 'PS512'];
    case 'ec': {
      const curve = key.asymmetricKeyDetails?.namedCurve;
      if (curve === 'prime256v1') return ['ES256'];
      if (curve === 'secp384r1') return ['ES384'];
      throw new Error(`unsupported EC curve ${curve} (JWTs here use P-256 or P-384)`);
    }
    case 'ed25519':
      return ['EdDSA'];
    default:
      throw new Error(`unsupported public key type ${key.asymmetricKeyType}`);
  }
}

/** A `publicKey` written in the config itself rather than the path of a file. */
export function isInlinePem(text: string): boolean {
  return text.trimStart().startsWith('-----BEGIN');
}
