/**
 * The endpoints a destination may use (a whole service or one subset) with its balancer. Which of
 * them may get traffic changes only on health and ejection events: the set then recomputes what its
 * balancer chooses among, and the request path just calls `choose`.
 */
import type { LbPolicy } from '../../api/config.ts';
import { RETRY_HOST_RESELECT_ATTEMPTS } from '../../core/defaults.ts';
import { BALANCERS, type BalancerOptions, HASHING_POLICIES, type LoadBalancer } from './balancers/index.ts';
import type { Endpoint } from './endpoint.ts';
import { rehash } from './hash.ts';

export class EndpointSet {
  readonly endpoints: readonly Endpoint[];
  readonly balancer: LoadBalancer<Endpoint>;
  /** The balancer maps request keys to endpoints (ring-hash, maglev). */
  readonly hashing: boolean;
  /** Endpoints that may get traffic (healthy and not ejected). */
  availableCount: number;
  /**
   * Too few endpoints are available (below the panic threshold): the balancer chooses among all of
   * them, as an overloaded remainder would fail anyway.
   */
  panic = false;
  private readonly panicThreshold: number;

  constructor(
    endpoints: readonly Endpoint[],
    policy: LbPolicy,
    panicThresholdPercent: number,
    options?: BalancerOptions,
  ) {
    this.endpoints = endpoints;
    this.balancer = BALANCERS[policy](endpoints, options);
    this.hashing = HASHING_POLICIES.has(policy);
    this.panicThreshold = panicThresholdPercent;
    this.availableCount = endpoints.length;
    this.refresh();
  }

  /** Recomputes the endpoints the balancer chooses among; called on every health or ejection change. */
  refresh(): void {
    const available = this.endpoints.filter((e) => e.available);
    this.availableCount = available.length;
    const total = this.endpoints.length;
    this.panic = total > 0 && available.length * 100 < this.panicThreshold * total;
    this.balancer.update(this.panic || available.length === total ? this.endpoints : available);
  }

  /**
   * An endpoint for one try. On a retry (`tried` non-empty) it asks again a few times for an
   * endpoint this request has not used yet, and accepts a repeat only when there is no other.
   */
  choose(hash: number, tried: readonly Endpoint[] | null): Endpoint | null {
    let endpoint = this.balancer.pick(hash);
    if (tried === null || endpoint === null) return endpoint;
    for (let i = 1; i <= RETRY_HOST_RESELECT_ATTEMPTS && tried.includes(endpoint!); i++)
      endpoint = this.balancer.pick(rehash(hash, i));
    if (!tried.includes(endpoint!)) return endpoint;
    // The balancer keeps landing on tried endpoints (a hash key, a heavy weight): take any other.
    const all = this.endpoints;
    for (let i = 0; i < all.length; i++) {
      const other = all[(hash + i) % all.length]!;
      if ((this.panic || other.available) && !tried.includes(other)) return other;
    }
    return endpoint;
  }
}
