/**
 * The behaviour every CacheStore must have (house rule 9). Run it against each implementation:
 * `runCacheStoreConformance('memory', () => new MemoryCacheStore(100))`. A store made by `create` is
 * empty and sees no other store's entries.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CacheEntry, CacheStore } from './store.ts';

const t0 = 1_800_000_000_000;

function entry(text: string, ttlMs = 60_000, storedAt = t0): CacheEntry {
  return {
    status: 200,
    headers: [
      ['etag', `"${text}"`],
      ['x-multi', 'a'],
      ['x-multi', 'b'],
    ],
    contentType: 'text/plain; charset=utf-8',
    body: Buffer.from(text),
    storedAt,
    expiresAt: storedAt + ttlMs,
  };
}

export function runCacheStoreConformance(name: string, create: () => CacheStore | Promise<CacheStore>) {
  describe(`cache store conformance: ${name}`, () => {
    it('returns what was stored, headers in order and body byte for byte', async () => {
      const store = await create();
      assert.equal(await store.get('r', 'k', t0), undefined);
      const binary = entry('x');
      binary.body = Buffer.from([0, 255, 10, 13, 0x80, 0x7f]);
      await store.set('r', 'k', binary);
      const got = await store.get('r', 'k', t0 + 1);
      assert.ok(got);
      assert.equal(got.status, 200);
      assert.deepEqual(got.headers, binary.headers);
      assert.equal(got.contentType, binary.contentType);
      assert.deepEqual([...got.body], [0, 255, 10, 13, 0x80, 0x7f]);
      assert.equal(got.storedAt, t0);
      assert.equal(got.expiresAt, t0 + 60_000);
    });

    it('keeps routes and keys apart, and replaces an entry on set', async () => {
      const store = await create();
      await store.set('a', 'k', entry('a'));
      await store.set('b', 'k', entry('b'));
      await store.set('a', 'k2', entry('a2'));
      assert.equal((await store.get('a', 'k', t0))?.body.toString(), 'a');
      assert.equal((await store.get('b', 'k', t0))?.body.toString(), 'b');
      await store.set('a', 'k', entry('a-new'));
      assert.equal((await store.get('a', 'k', t0))?.body.toString(), 'a-new');
    });

    it('does not serve an entry at or after its expiry', async () => {
      const store = await create();
      await store.set('r', 'short', entry('s', 5_000));
      assert.ok(await store.get('r', 'short', t0 + 4_999));
      assert.equal(await store.get('r', 'short', t0 + 5_000), undefined);
    });

    it('purges one route, or every route, and says how many entries went', async () => {
      const store = await create();
      await store.set('a', 'k1', entry('1'));
      await store.set('a', 'k2', entry('2'));
      await store.set('a.b', 'k1', entry('3'));
      await store.set('b', 'k1', entry('4'));
      assert.equal(await store.purge('a'), 2);
      assert.equal(await store.get('a', 'k1', t0), undefined);
      assert.ok(await store.get('a.b', 'k1', t0), 'a route whose name extends the purged one is kept');
      assert.equal(await store.purge(), 2);
      assert.equal(await store.get('b', 'k1', t0), undefined);
      assert.equal(await store.purge('a'), 0);
    });
  });
}
