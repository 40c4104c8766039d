/**
 * A proxy's key pair and its certificate signing request (PKCS#10, RFC 2986), with node:crypto only.
 *
 * The request is a few fixed DER structures around the public key and one ECDSA signature, so it is
 * built here by hand rather than with an X.509 library: @peculiar/x509 (with reflect-metadata) adds
 * about 21 MiB of RSS to a process (measured on Node 24: 41 → 62 MiB), which every sidecar would pay
 * for one request a day. The control plane, which signs, loads that library; the proxy never does.
 */
import { generateKeyPairSync, type KeyObject, sign } from 'node:crypto';

/**
 * A P-256 key pair held in memory. `privateKeyPem` exists only because `tls.createSecureContext` takes
 * no KeyObject; it is never written to disk nor sent anywhere.
 */
export interface WorkloadKeyPair {
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  readonly privateKeyPem: string;
}

export function generateWorkloadKeyPair(): WorkloadKeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  return {
    privateKey,
    publicKey,
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
  };
}

// DER: tag, length, contents.
function tlv(tag: number, content: Buffer): Buffer {
  const n = content.length;
  let head: Buffer;
  if (n < 0x80) head = Buffer.from([tag, n]);
  else if (n < 0x100) head = Buffer.from([tag, 0x81, n]);
  else if (n < 0x10000) head = Buffer.from([tag, 0x82, n >> 8, n & 0xff]);
  else throw new RangeError('DER value too long for a certificate request');
  return Buffer.concat([head, content]);
}
const seq = (...parts: Buffer[]) => tlv(0x30, Buffer.concat(parts));

/** INTEGER 0: the only PKCS#10 version. */
const VERSION_0 = Buffer.from([0x02, 0x01, 0x00]);
/** OID 2.5.4.3 (commonName). */
const OID_CN = Buffer.from([0x06, 0x03, 0x55, 0x04, 0x03]);
/** AlgorithmIdentifier ecdsa-with-SHA256 (1.2.840.10045.4.3.2), no parameters. */
const ECDSA_WITH_SHA256 = Buffer.from([0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02]);
/** attributes [0] IMPLICIT SET OF Attribute, empty: the CA decides every extension itself. */
const NO_ATTRIBUTES = Buffer.from([0xa0, 0x00]);

/**
 * A PEM certificate signing request for `keys`, signed with its private key (proof of possession).
 * `commonName` is only a hint for people reading the request: the CA ignores the subject and any
 * requested SAN and sets the identity it has authenticated.
 */
export function buildCsr(keys: Pick<WorkloadKeyPair, 'privateKey' | 'publicKey'>, commonName?: string): string {
  const subject =
    commonName === undefined ? seq() : seq(tlv(0x31, seq(OID_CN, tlv(0x0c, Buffer.from(commonName, 'utf8'))))); // SET { CN UTF8String }
  const spki = keys.publicKey.export({ type: 'spki', format: 'der' });
  const info = seq(VERSION_0, subject, spki, NO_ATTRIBUTES);
  // node:crypto signs ECDSA as DER (r, s) by default, which is what X.509 wants.
  const signature = sign('sha256', info, keys.privateKey);
  const der = seq(info, ECDSA_WITH_SHA256, tlv(0x03, Buffer.concat([Buffer.from([0x00]), signature])));
  const b64 = der.toString('base64').replace(/.{64}/g, '$&\n');
  return `-----BEGIN CERTIFICATE REQUEST-----\n${b64}${b64.endsWith('\n') ? '' : '\n'}-----END CERTIFICATE REQUEST-----\n`;
}
