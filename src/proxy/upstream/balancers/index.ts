/** The built-in load balancers, by policy name. */
import type { LbPolicy } from '../../../api/config.ts';
import { LeastRequestBalancer } from './least-request.ts';
import { MaglevBalancer } from './maglev.ts';
import { RandomBalancer } from './random.ts';
import { RingHashBalancer } from './ring-hash.ts';
import { RoundRobinBalancer } from './round-robin.ts';
import type { Balanced, BalancerOptions, LoadBalancer } from './types.ts';

export type { Balanced, BalancerOptions, LoadBalancer };

export type BalancerFactory = <E extends Balanced>(
  endpoints: readonly E[],
  options?: BalancerOptions,
) => LoadBalancer<E>;

export const BALANCERS: Readonly<Record<LbPolicy, BalancerFactory>> = Object.freeze({
  'round-robin': (endpoints, options) => new RoundRobinBalancer(endpoints, options),
  'least-request': (endpoints, options) => new LeastRequestBalancer(endpoints, options),
  random: (endpoints, options) => new RandomBalancer(endpoints, options),
  'ring-hash': (endpoints, options) => new RingHashBalancer(endpoints, options),
  maglev: (endpoints, options) => new MaglevBalancer(endpoints, options),
});

/** Policies that map a request's hash key to an endpoint (the others ignore it). */
export const HASHING_POLICIES: ReadonlySet<LbPolicy> = new Set(['ring-hash', 'maglev']);
