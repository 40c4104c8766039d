/**
 * Consistent hashing on a ring (Karger et al.): each endpoint owns `weight × pointsPerWeight` points on
 * a 32-bit ring, a key goes to the owner of the first point at or after its hash. Points depend only
 * on the endpoint's URL and weight, never on the other endpoints, so when an endpoint leaves (ejected,
 * unhealthy, or removed from the config) only its keys move, and when it returns they come back.
 */

import { DEFAULT_RING_POINTS_PER_WEIGHT, MAX_RING_HASH_RING_SIZE } from '../../../core/defaults.ts';
import { hash32 } from '../hash.ts';
import type { Balanced, BalancerOptions, LoadBalancer } from './types.ts';

export class RingHashBalancer<E extends Balanced> implements LoadBalancer<E> {
  /** The whole ring (every endpoint the balancer was created with), sorted by point. */
  private readonly allPoints: Uint32Array;
  private readonly allOwners: Uint32Array;
  private readonly known: readonly E[];
  /** The ring of the current set: points of available endpoints only. */
  private points = new Uint32Array(0);
  private owners: E[] = [];

  constructor(endpoints: readonly E[], options: BalancerOptions = {}) {
    this.known = endpoints;
    const totalWeight = endpoints.reduce((sum, e) => sum + e.weight, 0);
    let perWeight = options.ringPointsPerWeight ?? DEFAULT_RING_POINTS_PER_WEIGHT;
    if (totalWeight * perWeight > MAX_RING_HASH_RING_SIZE)
      perWeight = Math.max(1, Math.floor(MAX_RING_HASH_RING_SIZE / totalWeight));
    const entries: [number, number][] = [];
    endpoints.forEach((e, index) => {
      const count = e.weight * perWeight;
      for (let i = 0; i < count; i++) entries.push([hash32(`${e.url}#${i}`), index]);
    });
    entries.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    this.allPoints = Uint32Array.from(entries, (x) => x[0]);
    this.allOwners = Uint32Array.from(entries, (x) => x[1]);
    this.update(endpoints);
  }

  update(endpoints: readonly E[]): void {
    const keep = new Set(endpoints);
    let n = 0;
    for (let i = 0; i < this.allOwners.length; i++) if (keep.has(this.known[this.allOwners[i]!]!)) n++;
    const points = new Uint32Array(n);
    const owners: E[] = new Array(n);
    let w = 0;
    for (let i = 0; i < this.allOwners.length; i++) {
      const owner = this.known[this.allOwners[i]!]!;
      if (!keep.has(owner)) continue;
      points[w] = this.allPoints[i]!;
      owners[w++] = owner;
    }
    this.points = points;
    this.owners = owners;
  }

  pick(hash: number): E | null {
    const points = this.points;
    const n = points.length;
    if (n === 0) return null;
    // First point ≥ hash; past the last point the ring wraps to the first.
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (points[mid]! < hash) lo = mid + 1;
      else hi = mid;
    }
    return this.owners[lo === n ? 0 : lo]!;
  }
}
