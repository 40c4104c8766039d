/**
 * The behaviour every CacheStore must have (house rule 9). Run it against each implementation:
 * `runCacheStoreConformance('memory', () => new MemoryCacheStore(100))`. A store made by `create` is
 * empty and sees no other store's entries.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { keyPrefixOf } from './policy.ts';
import { type CacheEntry, type CacheStore, entrySize } from './store.ts';

const t0 = 1_800_000_000_000;

function entry(text: string, ttlMs = 60_000, storedAt = t0, extra: Partial<CacheEntry> = {}): CacheEntry {
  const e = {
    status: 200,
    headers: [
      ['etag', `"${text}"`],
      ['x-multi', 'a'],
      ['x-multi', 'b'],
    ] as [string, string][],
    contentType: 'text/plain; charset=utf-8',
    body: Buffer.from(text),
    storedAt,
    expiresAt: storedAt + ttlMs,
    staleUntil: storedAt + ttlMs,
    keepUntil: storedAt + ttlMs,
    ...extra,
  };
  return { ...e, size: entrySize(e) };
}

/** A key as the plugin makes it: path, query, host (then consumer, key headers, vary values). */
const key = (path: string, query = '', host = 'example.com') => `${keyPrefixOf(path, query, host)}`;

export function runCacheStoreConformance(name: string, create: () => CacheStore | Promise<CacheStore>) {
  describe(`cache store conformance: ${name}`, () => {
    it('returns what was stored, headers in order, times, validators and body byte for byte', async () => {
      const store = await create();
      assert.equal(await store.get('r', 'k', t0), undefined);
      const binary = entry('x', 60_000, t0, {
        staleUntil: t0 + 70_000,
        keepUntil: t0 + 120_000,
        etag: 'W/"x"',
        lastModified: t0 - 5_000,
      });
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
      assert.equal(got.staleUntil, t0 + 70_000);
      assert.equal(got.keepUntil, t0 + 120_000);
      assert.equal(got.etag, 'W/"x"');
      assert.equal(got.lastModified, t0 - 5_000);
      assert.equal(got.size, binary.size);
      assert.equal(got.vary, undefined);
    });

    it('keeps a Vary marker with its header names', async () => {
      const store = await create();
      await store.set('r', key('/v'), entry('', 60_000, t0, { vary: ['accept-encoding', 'accept-language'] }));
      assert.deepEqual((await store.get('r', key('/v'), t0))?.vary, ['accept-encoding', 'accept-language']);
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

    it('keeps an entry past its freshness until its keepUntil, and not at or after it', async () => {
      const store = await create();
      await store.set('r', 'short', entry('s', 5_000, t0, { staleUntil: t0 + 8_000, keepUntil: t0 + 10_000 }));
      assert.ok(await store.get('r', 'short', t0 + 4_999));
      assert.ok(await store.get('r', 'short', t0 + 9_999), 'stale but kept');
      assert.equal(await store.get('r', 'short', t0 + 10_000), undefined);
    });

    it('purges one route, or every route, and says how many entries went', async () => {
      const store = await create();
      await store.set('a', 'k1', entry('1'));
      await store.set('a', 'k2', entry('2'));
      await store.set('a.b', 'k1', entry('3'));
      await store.set('b', 'k1', entry('4'));
      assert.equal(await store.purge({ route: 'a' }), 2);
      assert.equal(await store.get('a', 'k1', t0), undefined);
      assert.ok(await store.get('a.b', 'k1', t0), 'a route whose name extends the purged one is kept');
      assert.equal(await store.purge(), 2);
      assert.equal(await store.get('b', 'k1', t0), undefined);
      assert.equal(await store.purge({ route: 'a' }), 0);
    });

    it('purges by key prefix: one URL with every variant, or a path prefix, in one route or all', async () => {
      const store = await create();
      const homes = key('/api/homes', 'city=Oslo');
      await store.set('a', homes, entry('marker', 60_000, t0, { vary: ['accept-language'] }));
      await store.set('a', `${homes}vary:en\u0000`, entry('en'));
      await store.set('a', `${homes}vary:nb\u0000`, entry('nb'));
      await store.set('a', key('/api/homes', 'city=Bergen'), entry('bergen'));
      await store.set('a', key('/api/homes/1'), entry('one'));
      await store.set('a', key('/api/homesick'), entry('sick'));
      await store.set('b', key('/api/homes', 'city=Oslo'), entry('b'));
      await store.set('b', key('/other/api/homes'), entry('other'));
      // Glob characters in a path are matched as they are, not as patterns.
      await store.set('b', key('/g/*[x]?'), entry('glob'));
      await store.set('b', key('/g/a'), entry('not-glob'));

      assert.equal(await store.purge({ route: 'a', keyPrefix: keyPrefixOf('/api/homes', 'city=Oslo') }), 3);
      assert.equal(await store.get('a', homes, t0), undefined);
      assert.ok(await store.get('a', key('/api/homes', 'city=Bergen'), t0));
      assert.ok(await store.get('b', key('/api/homes', 'city=Oslo'), t0), 'another route is kept');

      assert.equal(await store.purge({ keyPrefix: '/api/homes/' }), 1, 'a path prefix, every route');
      assert.ok(await store.get('a', key('/api/homesick'), t0));
      assert.equal(await store.purge({ keyPrefix: '/api/' }), 3);
      assert.ok(await store.get('b', key('/other/api/homes'), t0), 'a prefix matches from the start of the path');
      assert.equal(await store.purge({ keyPrefix: '/g/*[x]' }), 1);
      assert.ok(await store.get('b', key('/g/a'), t0));
    });

    it('accounts entries and bytes: bodies at least, their size plus a little at most', async () => {
      const store = await create();
      assert.deepEqual(await store.usage(), { entries: 0, bytes: 0 });
      const big = entry('x'.repeat(4000));
      const small = entry('y'.repeat(1000));
      await store.set('a', 'k1', big);
      await store.set('b', 'k1', small);
      let usage = await store.usage();
      assert.equal(usage.entries, 2);
      assert.ok(usage.bytes >= 5000 && usage.bytes <= big.size + small.size + 2 * 256, `bytes ${usage.bytes}`);
      const route = await store.usage('a');
      assert.equal(route.entries, 1);
      assert.ok(route.bytes >= 4000 && route.bytes <= big.size + 256, `bytes ${route.bytes}`);
      const replacement = entry('z');
      await store.set('a', 'k1', replacement);
      usage = await store.usage();
      assert.equal(usage.entries, 2, 'a replaced entry counts once');
      assert.ok(
        usage.bytes >= 1001 && usage.bytes <= small.size + replacement.size + 2 * 256,
        `replaced: bytes ${usage.bytes}`,
      );
      await store.purge({ route: 'b' });
      usage = await store.usage();
      assert.equal(usage.entries, 1);
      assert.ok(usage.bytes >= 1 && usage.bytes <= replacement.size + 256, `purged: bytes ${usage.bytes}`);
    });
  });
}
