/** The token parser and the node:crypto verifiers, against signatures made by node:crypto itself. */
import assert from 'node:assert/strict';
import { createHmac, generateKeyPairSync, sign } from 'node:crypto';
import { describe, it } from 'node:test';
import { decodeToken, p1363ToDer, verifierFor } from './verify.ts';

const b64 = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

describe('jwt verify', () => {
  it('an ECDSA r||s signature verifies as the DER form, on every curve, with leading zeros and high bits', () => {
    for (const [alg, curve, hash] of [
      ['ES256', 'P-256', 'sha256'],
      ['ES384', 'P-384', 'sha384'],
      ['ES512', 'P-521', 'sha512'],
    ] as const) {
      const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: curve });
      const verifier = verifierFor(alg, publicKey)!;
      let high = 0;
      // Half of the halves start with the high bit set (a pad byte in DER), 1 in 256 with a zero byte.
      for (let i = 0; i < 400; i++) {
        const input = Buffer.from(`message ${i}`);
        const sig = sign(hash, input, { key: privateKey, dsaEncoding: 'ieee-p1363' });
        const half = sig.length / 2;
        if (sig[0]! & 0x80 || sig[half]! & 0x80) high++;
        assert.ok(verifier(input, sig), `${alg} #${i}`);
        assert.ok(!verifier(Buffer.from(`other ${i}`), sig), `${alg} #${i} on other input`);
      }
      // A P-521 half is 66 bytes for a 521-bit number: its first byte is 0 or 1, so it exercises the
      // stripping of leading zeros instead.
      if (alg !== 'ES512') assert.ok(high > 0, 'some halves had the high bit set');
    }
    // Hand-made: r = 0x00 0x80 …, s = 0x00 0x01 … (a stripped zero, then a pad byte for the sign bit).
    const x = Buffer.alloc(64);
    x[1] = 0x80;
    x[33] = 0x01;
    assert.equal(p1363ToDer(x).toString('hex'), `3043022000${'80'.padEnd(62, '0')}021f${'01'.padEnd(62, '0')}`);
  });

  it('a verifier exists only for a key that can verify the algorithm', () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey;
    const small = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey;
    const p256 = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey;
    const ed = generateKeyPairSync('ed25519').publicKey;
    assert.ok(verifierFor('RS384', rsa) && verifierFor('PS512', rsa));
    assert.equal(verifierFor('RS256', small), undefined, 'RSA keys under 2048 bits are refused');
    assert.equal(verifierFor('ES384', p256), undefined, 'the curve must match the algorithm');
    assert.equal(verifierFor('HS256', rsa), undefined, 'a public key is never an HMAC secret');
    assert.equal(verifierFor('RS256', Buffer.from('secret')), undefined);
    assert.equal(verifierFor('EdDSA', p256), undefined);
    assert.ok(verifierFor('EdDSA', ed));
    assert.equal(verifierFor('none', rsa), undefined);
  });

  it('HMAC signatures compare whole and in length', () => {
    const secret = Buffer.from('s'.repeat(32));
    const input = Buffer.from('a.b');
    const mac = createHmac('sha384', secret).update(input).digest();
    const v = verifierFor('HS384', secret)!;
    assert.ok(v(input, mac));
    assert.ok(!v(input, mac.subarray(0, 32)), 'a truncated MAC');
    assert.ok(!v(input, Buffer.alloc(48)));
  });

  it('decodes only compact JWS with JSON object parts and a string alg', () => {
    const ok = decodeToken(`${b64({ alg: 'HS256' })}.${b64({ iss: 'x' })}.${b64('sig')}`);
    assert.equal(ok?.header.alg, 'HS256');
    assert.equal(ok?.payload.iss, 'x');
    assert.equal(ok?.signature.toString(), 'sig');
    for (const bad of [
      'a.b',
      `${b64({ alg: 'HS256' })}.${b64({ iss: 'x' })}.sig.extra`,
      `${b64({ alg: 'HS256' })}.${b64('[1]')}.sig`,
      `${b64({ alg: 'HS256' })}.${b64('null')}.sig`,
      `${b64({ alg: 1 })}.${b64({})}.sig`,
      `${b64({ alg: 'HS256' })}.${b64({})}.s+g`,
      `${b64({ alg: 'HS256' })}.${b64('not json')}.sig`,
      `${b64({ alg: 'HS256' })}=.${b64({})}.sig`,
    ])
      assert.equal(decodeToken(bad), undefined, bad);
  });
});
