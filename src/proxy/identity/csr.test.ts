import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { openssl } from '../../../test/helpers/certs.ts';
import { buildCsr, generateWorkloadKeyPair } from './csr.ts';

describe('certificate signing request (node:crypto only)', () => {
  it('is a PKCS#10 request openssl parses and whose self-signature verifies', () => {
    const keys = generateWorkloadKeyPair();
    const pem = buildCsr(keys, 'photo-service.default');
    assert.match(
      pem,
      /^-----BEGIN CERTIFICATE REQUEST-----\n([A-Za-z0-9+/=]{1,64}\n)+-----END CERTIFICATE REQUEST-----\n$/,
    );
    const text = openssl(['req', '-verify', '-noout', '-text'], pem);
    assert.match(text, /Subject: CN\s?=\s?photo-service\.default/);
    assert.match(text, /NIST CURVE: P-256/);
    assert.match(text, /ecdsa-with-SHA256/);
    // The request carries the public key of the pair, and nothing of the private one.
    const pub = openssl(['req', '-noout', '-pubkey'], pem);
    assert.equal(pub, keys.publicKey.export({ type: 'spki', format: 'pem' }));
    assert.doesNotMatch(pem, /PRIVATE/);
  });

  it('may leave the subject empty: the CA decides the identity', () => {
    const pem = buildCsr(generateWorkloadKeyPair());
    const text = openssl(['req', '-verify', '-noout', '-subject'], pem);
    assert.match(text, /^subject=\s*$/m);
  });

  it('makes a new key pair each time', () => {
    const a = generateWorkloadKeyPair();
    const b = generateWorkloadKeyPair();
    assert.notEqual(a.privateKeyPem, b.privateKeyPem);
    assert.equal(a.privateKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
  });
});
