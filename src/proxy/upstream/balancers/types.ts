/**
 * The load balancer contract. One instance per endpoint set (a service, or a subset of it). The set
 * calls `update` whenever the endpoints it may use change (health, ejection, panic), never per
 * request; `pick` runs per request and must not allocate. Every implementation passes the shared
 * conformance suite (balancers.test.ts, house rule 9).
 */

/** What a balancer reads of an endpoint. */
export interface Balanced {
  /** Stable identity: consistent hashing places the endpoint by it. */
  readonly url: string;
  /** Relative share, ≥ 1. */
  readonly weight: number;
  /** Requests in flight to it (read by `least-request`). */
  readonly active: number;
}

export interface LoadBalancer<E extends Balanced = Balanced> {
  /** Replaces the endpoints to choose among (a subset of those the balancer was created with, in their order). */
  update(endpoints: readonly E[]): void;
  /**
   * One endpoint of the current set, or null when it is empty. `hash` is the request's 32-bit key:
   * the hashing balancers map equal keys to the same endpoint; the others ignore it.
   */
  pick(hash: number): E | null;
}

export interface BalancerOptions {
  /** Uniform in [0, 1); injectable so tests are deterministic. */
  random?: () => number;
  /** `ring-hash`: points on the ring per unit of an endpoint's weight. */
  ringPointsPerWeight?: number;
}
