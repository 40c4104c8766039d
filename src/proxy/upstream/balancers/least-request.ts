/**
 * Least request by the power of two choices: draw two endpoints by weight and take the one with
 * fewer requests in flight for its weight. Nearly as good as scanning every endpoint, O(1), and
 * without the herd a full scan causes when many proxies all see the same "least loaded" endpoint.
 */
import { WeightedDraw } from './random.ts';
import type { Balanced, BalancerOptions, LoadBalancer } from './types.ts';

export class LeastRequestBalancer<E extends Balanced> implements LoadBalancer<E> {
  private readonly draw: WeightedDraw<E>;

  constructor(endpoints: readonly E[], options: BalancerOptions = {}) {
    this.draw = new WeightedDraw(endpoints, options.random ?? Math.random);
  }

  update(endpoints: readonly E[]): void {
    this.draw.update(endpoints);
  }

  pick(_hash: number): E | null {
    const first = this.draw.next();
    if (first === null || this.draw.endpoints.length === 1) return first;
    let second = this.draw.next()!;
    // A second draw of the same endpoint would make this a plain weighted random pick; draw once more.
    if (second === first) second = this.draw.next()!;
    // Fewer in flight per unit of weight wins; a tie keeps the first draw, so idle sets follow the weights.
    return second.active * first.weight < first.active * second.weight ? second : first;
  }
}
