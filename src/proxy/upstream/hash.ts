/**
 * Hash keys for consistent hashing and sticky splits: where a request's key comes from (compiled once
 * per service or route) and a fast 32-bit string hash with good avalanche.
 */
import type { HashOnConfig } from '../../api/config.ts';
import { cookieValue, queryValue } from '../../core/request-values.ts';

/** What a hash key may be read from. */
export interface HashInput {
  header(name: string): string | undefined;
  readonly query: string;
  readonly clientAddress: string;
}

/** Reads a request's key; undefined when the request does not carry it. */
export type HashKeyReader = (input: HashInput) => string | undefined;

export function compileHashOn(config: HashOnConfig): HashKeyReader {
  if (config.header !== undefined) {
    const name = config.header.toLowerCase();
    return (input) => input.header(name);
  }
  if (config.cookie !== undefined) {
    const name = config.cookie;
    return (input) => cookieValue(input.header('cookie'), name);
  }
  if (config.query !== undefined) {
    const name = config.query;
    return (input) => queryValue(input.query, name);
  }
  return (input) => (input.clientAddress === '' ? undefined : input.clientAddress);
}

/** 32-bit FNV-1a over UTF-16 code units, finished with murmur3's avalanche step. Unsigned. */
export function hash32(text: string, seed = 0): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return mix32(h);
}

/** murmur3's fmix32: every input bit affects every output bit. Unsigned. */
export function mix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A uniformly random 32-bit key, for requests without one. */
export function randomHash(): number {
  return (Math.random() * 0x1_0000_0000) >>> 0;
}

/** Another key derived from `hash`, for choosing again on a retry. */
export function rehash(hash: number, attempt: number): number {
  return mix32((hash + Math.imul(attempt, 0x9e3779b9)) >>> 0);
}
