import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runStoreConformance } from './store.conformance.ts';
import { MemoryStore, type Window } from './store.ts';

runStoreConformance('memory', () => new MemoryStore());

describe('memory store housekeeping', () => {
  const minute: Window = { limit: 10, windowMs: 60_000, algorithm: 'sliding' };

  it('drops counters idle for two windows once it holds many, and keeps the live ones', () => {
    const store = new MemoryStore();
    for (let i = 0; i <= 100_000; i++) store.consume(`client-${i}`, [minute], 0);
    assert.equal(store.size, 100_001);
    store.consume('client-live', [minute], 120_000);
    assert.equal(store.size, 1, 'only the counter used after two idle windows is left');
  });
});
