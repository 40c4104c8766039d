/**
 * The authorization policies as a filter of the route chain: compiled by the snapshot (not a plugin a
 * route can turn off), placed first in the `authorize` phase, after authentication (so JWT claims are
 * known) and before `acl` and rate limits. Routes to services without policies get no filter at all.
 */
import type { Config } from '../../api/config.ts';
import { type Filter, type LocalReply, PHASE_BASE, PLUGIN_PHASES } from '../../core/plugin.ts';
import { type RouteChains, withFilter } from '../chain/compile.ts';
import type { CompiledFilter } from '../compiled.ts';
import type { StreamContext } from '../context.ts';
import { type CompiledPolicy, compilePolicy, evaluate, type RouteAuthz, routeAuthz } from './engine.ts';

/** The filter's name in the chain (admin `/routes`, config dumps). */
export const AUTHZ_FILTER_NAME = 'authorization-policies';

/** What a refused client sees: the code and request id, never which policy or what it says. */
const DENIED: LocalReply = Object.freeze({
  status: 403,
  code: 'MG_RBAC_DENIED',
  detail: 'denied by an authorization policy',
});

/** Every policy of a config, compiled once per snapshot (empty when there are none). */
export function compilePolicies(config: Config): readonly CompiledPolicy[] {
  return Object.freeze((config.authorizationPolicies ?? []).map(compilePolicy));
}

export function authzFilter(authz: RouteAuthz): CompiledFilter {
  const filter: Filter = {
    onRequestHeaders(ctx) {
      const stream = ctx as StreamContext;
      const outcome = evaluate(authz, stream);
      if (outcome.decisions.length > 0) stream.authz = outcome.decisions;
      return outcome.denied ? DENIED : undefined;
    },
  };
  return Object.freeze({
    name: AUTHZ_FILTER_NAME,
    phase: 'authorize',
    phaseRank: PLUGIN_PHASES.indexOf('authorize'),
    order: PHASE_BASE.authorize,
    scope: 'policy',
    factory: () => filter,
  });
}

/**
 * The chains of a route with its authorization filter added (the consumer chains too: they take over
 * after authentication and must not skip it); unchanged when no policy applies to the route.
 */
export function withAuthorization<C extends RouteChains>(
  chain: C,
  policies: readonly CompiledPolicy[],
  services: readonly string[],
): C {
  if (policies.length === 0) return chain;
  const authz = routeAuthz(policies, services);
  if (authz === null) return chain;
  return withFilter(chain, authzFilter(authz));
}
