import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { newRequestId } from './request-id.ts';

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('request ids', () => {
  it('are version 4 UUIDs, all distinct, across several batches of random bytes', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 1000; i++) {
      const id = newRequestId();
      assert.match(id, UUID_V4);
      seen.add(id);
    }
    assert.equal(seen.size, 1000);
  });

  it('use every hex digit in the random positions', () => {
    const counts = new Map<string, number>();
    for (let i = 0; i < 500; i++)
      for (const c of newRequestId().replace(/-/g, '').slice(16)) counts.set(c, (counts.get(c) ?? 0) + 1);
    assert.equal(counts.size, 16);
  });
});
