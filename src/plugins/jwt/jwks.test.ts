/** A remote key set against a real JWKS server, with the clock and the cooldown injected. */
import assert from 'node:assert/strict';
import { generateKeyPairSync, sign } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { RemoteKeySet } from './jwks.ts';

const first = generateKeyPairSync('rsa', { modulusLength: 2048 });
const second = generateKeyPairSync('ed25519');
const jwk = (k: typeof first.publicKey, extra: Record<string, unknown>) => ({
  ...k.export({ format: 'jwk' }),
  ...extra,
});
const input = Buffer.from('header.payload');

describe('RemoteKeySet', () => {
  let hits = 0;
  let status = 200;
  let keys: Record<string, unknown>[] = [];
  const server = createServer((_req, res) => {
    hits++;
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ keys }));
  });
  let url: string;
  let now = 1_000_000;
  const warnings: string[] = [];
  let set: RemoteKeySet;

  before(async () => {
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`;
    set = new RemoteKeySet(url, { now: () => now, warn: (m) => warnings.push(m), cooldownMs: 5_000, cacheMs: 0 });
  });
  after(() => {
    set.close();
    server.close();
  });

  it('fetches on first use, then rotates to a new key once per cooldown, whatever the burst', async () => {
    keys = [
      jwk(first.publicKey, { kid: 'a', use: 'sig' }),
      // Not signature keys, or not for this algorithm: never chosen.
      jwk(generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey, { kid: 'enc', use: 'enc' }),
      jwk(generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey, { kid: 'ps', alg: 'PS256' }),
    ];
    const v = await set.verifier('RS256', 'a');
    assert.ok(v?.(input, sign('sha256', input, first.privateKey)));
    assert.equal(hits, 1);
    assert.equal(set.verifier('RS256', 'enc'), undefined, 'an encryption key is not used');
    assert.equal(set.verifier('RS256', 'ps'), undefined, "a key's own alg binds it");
    assert.equal(hits, 1, 'no fetch within the cooldown');

    // The issuer rotates to an Ed25519 key.
    keys = [jwk(second.publicKey, { kid: 'b' })];
    now += 4_999;
    assert.equal(set.verifier('EdDSA', 'b'), undefined, 'still within the cooldown: unknown');
    assert.equal(hits, 1);
    now += 1;
    const burst = await Promise.all([
      set.verifier('EdDSA', 'b'),
      ...Array.from({ length: 20 }, (_, i) => set.verifier('RS256', `forged-${i}`)),
    ]);
    assert.equal(hits, 2, 'one fetch for the burst');
    assert.ok(burst[0]?.(input, sign(null, input, second.privateKey)), 'the new key verifies');
    assert.ok(burst.slice(1).every((v) => v === undefined));
    assert.equal(set.verifier('RS256', 'a'), undefined, 'the retired key is gone');
    assert.equal(hits, 2);
  });

  it('a failed fetch keeps the held keys, and is retried no sooner than the cooldown', async () => {
    now += 5_000;
    status = 500;
    await assert.rejects(Promise.resolve(set.verifier('EdDSA', 'c')), /answered 500/);
    assert.equal(hits, 3);
    assert.ok(set.verifier('EdDSA', 'b'), 'the held key still verifies');
    assert.equal(set.verifier('EdDSA', 'c'), undefined);
    assert.equal(hits, 3);
    status = 200;
    keys.push(jwk(first.publicKey, { kid: 'c' }));
    now += 5_000;
    assert.ok(await set.verifier('RS256', 'c'));
    assert.equal(hits, 4);
  });
});
