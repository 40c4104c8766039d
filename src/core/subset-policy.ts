/**
 * The effective service config of a subset with its own policies (`services[].subsetPolicies`): the
 * service's config with the subset's fields over it, over exactly the subset's endpoints. The config
 * checker validates it and the data plane compiles it into the subset's own upstream unit.
 */
import type { LoadBalancerConfig, ServiceConfig, SubsetPolicyConfig } from '../api/config.ts';

const HASHING = new Set(['ring-hash', 'maglev']);

/** Whether the service declares policies for any subset: the common case is no. */
export function hasSubsetPolicies(service: ServiceConfig): boolean {
  const policies = service.subsetPolicies;
  return policies !== undefined && Object.keys(policies).length > 0;
}

/**
 * Each field of `policy` replaces the service's field of the same name inside the same object
 * (`loadBalancer.policy` replaces `loadBalancer.policy`, the service's `panicThreshold` stays).
 */
export function mergeSubsetPolicy(service: ServiceConfig, policy: SubsetPolicyConfig): ServiceConfig {
  const merged: ServiceConfig = { ...service };
  if (policy.loadBalancer !== undefined)
    merged.loadBalancer = mergeLoadBalancer(service.loadBalancer, policy.loadBalancer);
  if (policy.circuitBreaker !== undefined)
    merged.circuitBreaker = { ...service.circuitBreaker, ...policy.circuitBreaker };
  if (policy.outlierDetection !== undefined)
    merged.outlierDetection = { ...service.outlierDetection, ...policy.outlierDetection };
  if (policy.timeouts !== undefined) merged.timeouts = { ...service.timeouts, ...policy.timeouts };
  return merged;
}

/**
 * The hashing fields follow the policy they belong to: a subset that changes `policy` to one that does
 * not hash drops the service's `hashOn`, which it would not read (and the checker refuses).
 */
function mergeLoadBalancer(service: LoadBalancerConfig | undefined, subset: LoadBalancerConfig): LoadBalancerConfig {
  const merged = { ...service, ...subset };
  if (subset.policy !== undefined && subset.policy !== service?.policy) {
    if (!HASHING.has(subset.policy) && subset.hashOn === undefined) delete merged.hashOn;
    if (subset.policy !== 'ring-hash' && subset.ringPointsPerWeight === undefined) delete merged.ringPointsPerWeight;
  }
  return merged;
}

/**
 * The config of one subset's own unit: the merged policies, only the endpoints its labels select, no
 * subsets or subset policies of its own.
 */
export function subsetServiceConfig(service: ServiceConfig, subset: string): ServiceConfig {
  const selector = service.subsets?.[subset] ?? {};
  const merged = mergeSubsetPolicy(service, service.subsetPolicies?.[subset] ?? {});
  merged.endpoints = (service.endpoints ?? []).filter((e) => {
    for (const key in selector) if (e.labels?.[key] !== selector[key]) return false;
    return true;
  });
  delete merged.subsets;
  delete merged.subsetPolicies;
  return merged;
}
