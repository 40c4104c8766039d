/** Weighted random: each pick independent, an endpoint's chance in proportion to its weight. */
import type { Balanced, BalancerOptions, LoadBalancer } from './types.ts';

export class RandomBalancer<E extends Balanced> implements LoadBalancer<E> {
  private readonly draw: WeightedDraw<E>;

  constructor(endpoints: readonly E[], options: BalancerOptions = {}) {
    this.draw = new WeightedDraw(endpoints, options.random ?? Math.random);
  }

  update(endpoints: readonly E[]): void {
    this.draw.update(endpoints);
  }

  pick(_hash: number): E | null {
    return this.draw.next();
  }
}

/** Draws endpoints at random in proportion to weight: O(1) when weights are equal, O(log n) otherwise. */
export class WeightedDraw<E extends Balanced> {
  endpoints: readonly E[] = [];
  /** Cumulative weights (exclusive upper bounds); null when all weights are equal. */
  private bounds: Float64Array | null = null;
  private total = 0;
  private readonly random: () => number;

  constructor(endpoints: readonly E[], random: () => number) {
    this.random = random;
    this.update(endpoints);
  }

  update(endpoints: readonly E[]): void {
    this.endpoints = endpoints;
    const equal = endpoints.every((e) => e.weight === endpoints[0]!.weight);
    if (equal) {
      this.bounds = null;
      return;
    }
    this.bounds = new Float64Array(endpoints.length);
    let total = 0;
    endpoints.forEach((e, i) => {
      total += e.weight;
      this.bounds![i] = total;
    });
    this.total = total;
  }

  next(): E | null {
    const list = this.endpoints;
    if (list.length <= 1) return list.length === 1 ? list[0]! : null;
    const bounds = this.bounds;
    if (bounds === null) return list[Math.floor(this.random() * list.length)]!;
    const roll = this.random() * this.total;
    let lo = 0;
    let hi = bounds.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (roll < bounds[mid]!) hi = mid;
      else lo = mid + 1;
    }
    return list[lo]!;
  }
}
