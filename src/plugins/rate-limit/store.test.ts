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

describe('memory store, decisions arriving out of order (several workers, one primary)', () => {
  const minute: Window = { limit: 10, windowMs: 60_000, algorithm: 'fixed' };

  it('a decision stamped before the window rolled counts in the window in force and forgets nothing', () => {
    const store = new MemoryStore();
    for (let i = 0; i < 4; i++) assert.ok(store.consume('k', [minute], 60_000).allowed);
    // Another worker read the clock 1 ms before the window edge; its request arrives after.
    const late = store.consume('k', [minute], 59_999);
    assert.ok(late.allowed);
    assert.equal(late.windows[0]!.remaining, 5, 'the 4 of the window in force are still counted');
    for (let i = 0; i < 5; i++) assert.ok(store.consume('k', [minute], 60_001).allowed);
    assert.equal(store.consume('k', [minute], 60_002).allowed, false, 'exactly 10 in the window');
  });
});
