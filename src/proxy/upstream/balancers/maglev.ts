/**
 * Maglev consistent hashing (Eisenbud et al., NSDI 2016): a lookup table of prime size M where each
 * endpoint claims slots in the order of its own permutation (offset and skip from two hashes of its
 * URL), in turn, until the table is full. A lookup is one array read; when an endpoint leaves, most
 * slots of the others stay theirs ("minimal disruption"). Weights: an endpoint claims slots at a rate
 * in proportion to its weight.
 */
import { MAGLEV_TABLE_SIZE } from '../../../core/defaults.ts';
import { hash32 } from '../hash.ts';
import type { Balanced, BalancerOptions, LoadBalancer } from './types.ts';

const OFFSET_SEED = 0x6d61676c;
const SKIP_SEED = 0x65763121;

export class MaglevBalancer<E extends Balanced> implements LoadBalancer<E> {
  private readonly size: number;
  private table: Int32Array = new Int32Array(0);
  private endpoints: readonly E[] = [];

  constructor(endpoints: readonly E[], _options: BalancerOptions = {}, tableSize = MAGLEV_TABLE_SIZE) {
    this.size = tableSize;
    this.update(endpoints);
  }

  update(endpoints: readonly E[]): void {
    this.endpoints = endpoints;
    this.table = endpoints.length === 0 ? new Int32Array(0) : buildTable(endpoints, this.size);
  }

  pick(hash: number): E | null {
    const table = this.table;
    if (table.length === 0) return null;
    return this.endpoints[table[hash % table.length]!]!;
  }
}

function buildTable(endpoints: readonly Balanced[], size: number): Int32Array {
  const n = endpoints.length;
  const offset = new Float64Array(n);
  const skip = new Float64Array(n);
  const next = new Float64Array(n);
  const rate = new Float64Array(n);
  const credit = new Float64Array(n);
  const maxWeight = Math.max(...endpoints.map((e) => e.weight));
  endpoints.forEach((e, i) => {
    offset[i] = hash32(e.url, OFFSET_SEED) % size;
    skip[i] = (hash32(e.url, SKIP_SEED) % (size - 1)) + 1;
    rate[i] = e.weight / maxWeight;
  });
  const table = new Int32Array(size).fill(-1);
  let filled = 0;
  while (filled < size) {
    for (let i = 0; i < n && filled < size; i++) {
      credit[i]! += rate[i]!;
      if (credit[i]! < 1) continue;
      credit[i]! -= 1;
      let slot = (offset[i]! + skip[i]! * next[i]!) % size;
      while (table[slot]! >= 0) {
        next[i]!++;
        slot = (offset[i]! + skip[i]! * next[i]!) % size;
      }
      table[slot] = i;
      next[i]!++;
      filled++;
    }
  }
  return table;
}
