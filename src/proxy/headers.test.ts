import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { removeHeader, setHeader } from './headers.ts';

describe('flat header lists', () => {
  it('setHeader replaces the first entry and drops repeats, keeping the order of the rest', () => {
    const h = ['x-consumer-id', 'forged-1', 'accept', '*/*', 'x-consumer-id', 'forged-2', 'host', 'a'];
    setHeader(h, 'x-consumer-id', 'real');
    assert.deepEqual(h, ['x-consumer-id', 'real', 'accept', '*/*', 'host', 'a']);
  });

  it('setHeader appends a header the list lacks, and never matches a value as a name', () => {
    const h = ['x-note', 'x-consumer-id'];
    setHeader(h, 'x-consumer-id', 'real');
    assert.deepEqual(h, ['x-note', 'x-consumer-id', 'x-consumer-id', 'real']);
  });

  it('removeHeader removes every entry of that name', () => {
    const h = ['a', '1', 'b', '2', 'a', '3'];
    removeHeader(h, 'a');
    assert.deepEqual(h, ['b', '2']);
  });
});
