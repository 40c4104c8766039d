import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runCacheStoreConformance } from './store.conformance.ts';
import { MemoryCacheStore } from './store.ts';

runCacheStoreConformance('memory', () => new MemoryCacheStore(100));

describe('memory cache store', () => {
  it('drops the least recently used entry when full', () => {
    const store = new MemoryCacheStore(2);
    const e = (t: string) => ({
      status: 200,
      headers: [],
      contentType: 'text/plain',
      body: Buffer.from(t),
      storedAt: 0,
      expiresAt: 10,
    });
    store.set('r', 'a', e('a'));
    store.set('r', 'b', e('b'));
    assert.ok(store.get('r', 'a', 1), 'a is used, so b is now the oldest');
    store.set('r', 'c', e('c'));
    assert.equal(store.get('r', 'b', 1), undefined);
    assert.ok(store.get('r', 'a', 1));
    assert.ok(store.get('r', 'c', 1));
  });
});
