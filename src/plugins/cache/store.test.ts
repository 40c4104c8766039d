import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runCacheStoreConformance } from './store.conformance.ts';
import { type CacheEntry, entrySize, MemoryCacheStore } from './store.ts';

runCacheStoreConformance('memory', () => new MemoryCacheStore(100));

function entry(text: string, bodyBytes = text.length): CacheEntry {
  const e = {
    status: 200,
    headers: [],
    contentType: 'text/plain',
    body: Buffer.alloc(bodyBytes, text),
    storedAt: 0,
    expiresAt: 10,
    staleUntil: 10,
    keepUntil: 10,
  };
  return { ...e, size: entrySize(e) };
}

describe('memory cache store', () => {
  it('drops the least recently used entry when full', () => {
    const store = new MemoryCacheStore(2);
    store.set('r', 'a', entry('a'));
    store.set('r', 'b', entry('b'));
    assert.ok(store.get('r', 'a', 1), 'a is used, so b is now the oldest');
    store.set('r', 'c', entry('c'));
    assert.equal(store.get('r', 'b', 1), undefined);
    assert.ok(store.get('r', 'a', 1));
    assert.ok(store.get('r', 'c', 1));
  });

  it('keeps within its byte budget, dropping the least recently used first', () => {
    const one = entry('a', 1000).size;
    const store = new MemoryCacheStore(1000, one * 3);
    store.set('r', 'a', entry('a', 1000));
    store.set('r', 'b', entry('b', 1000));
    store.set('r', 'c', entry('c', 1000));
    assert.deepEqual(store.usage(), { entries: 3, bytes: one * 3 });
    assert.ok(store.get('r', 'a', 1), 'a is used: b is the oldest');
    store.set('r', 'd', entry('d', 1000));
    assert.equal(store.get('r', 'b', 1), undefined);
    assert.deepEqual(store.usage(), { entries: 3, bytes: one * 3 });
    // One twice as large needs two entries' room: c, then a, the least recently used, go.
    store.set('r', 'big', entry('x', 2000));
    assert.equal(store.get('r', 'c', 1), undefined);
    assert.equal(store.get('r', 'a', 1), undefined);
    assert.ok(store.get('r', 'd', 1));
    assert.ok(store.get('r', 'big', 1));
    assert.ok(store.usage().bytes <= one * 3);
  });

  it('does not store an entry larger than its whole budget, nor empty itself for it', () => {
    const store = new MemoryCacheStore(1000, 4096);
    store.set('r', 'a', entry('a', 100));
    store.set('r', 'huge', entry('h', 5000));
    assert.equal(store.get('r', 'huge', 1), undefined);
    assert.ok(store.get('r', 'a', 1));
  });

  it('forgets an entry once past its keepUntil, and its bytes with it', () => {
    const store = new MemoryCacheStore(10);
    store.set('r', 'a', entry('a', 100));
    assert.equal(store.get('r', 'a', 10), undefined);
    assert.deepEqual(store.usage(), { entries: 0, bytes: 0 });
  });
});
