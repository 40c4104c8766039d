/**
 * The forward action: send the request to one of the route's weighted destinations (a service, or a
 * subset of one), with the route's rewrite, sticky split, mirror and faults. Compiled once per
 * snapshot from `service` or `destinations`; run by forward.ts.
 */
import type { DestinationConfig, RouteConfig } from '../../../api/config.ts';
import { parseDuration } from '../../../core/duration.ts';
import type { CompiledDestination, ForwardAction } from '../../compiled.ts';
import { compileRewrite } from '../../path.ts';
import { compileFault } from '../../upstream/fault.ts';
import { compileHashOn } from '../../upstream/hash.ts';
import type { CompiledMirror } from '../../upstream/mirror.ts';
import { compileRetryPolicy } from '../../upstream/retry.ts';
import type { UpstreamService } from '../../upstream/service.ts';

/** True when the route config asks for this action. */
export function isForward(rc: RouteConfig): boolean {
  return rc.service !== undefined || rc.destinations !== undefined;
}

/** The route's destinations as configured (`service` is one destination with weight 100). */
export function destinationsOf(rc: RouteConfig): DestinationConfig[] {
  return rc.destinations ?? (rc.service ? [{ service: rc.service, weight: 100 }] : []);
}

/**
 * One destination of a route: the service (and subset) with the route's timeouts over the service's and
 * the retry policy of both. The forward action compiles one per weighted target; the transcode and
 * graphql actions their single one (`upTo` 100).
 */
export function compileDestination(
  rc: RouteConfig,
  named: UpstreamService,
  subset: string | undefined,
  upTo: number,
): CompiledDestination {
  // A subset with policies of its own is a unit of its own (service.ts `units`): chosen here, once.
  const service = named.unitFor(subset);
  return {
    service,
    subset,
    endpoints: service === named ? named.endpointSet(subset) : service.all,
    upTo,
    requestTimeoutMs: parseDuration(rc.timeouts?.request ?? '') ?? service.timeouts.requestMs,
    idleTimeoutMs: parseDuration(rc.timeouts?.idle ?? '') ?? service.timeouts.idleMs,
    retry:
      service.config.retries || rc.retries
        ? compileRetryPolicy(service.config.retries, rc.retries, service.retryBudget())
        : null,
  };
}

export function compileForward(rc: RouteConfig, services: ReadonlyMap<string, UpstreamService>): ForwardAction {
  const list = destinationsOf(rc);
  let upTo = 0;
  const destinations = list
    .map((d): CompiledDestination => {
      upTo += list.length === 1 ? 100 : (d.weight ?? 0);
      return compileDestination(rc, services.get(d.service)!, d.subset, upTo);
    })
    .filter((_, i) => list.length === 1 || (list[i]!.weight ?? 0) > 0);
  const mirrorService = rc.mirror ? services.get(rc.mirror.service)?.unitFor(rc.mirror.subset) : undefined;
  const mirror: CompiledMirror | null =
    rc.mirror && mirrorService && (rc.mirror.percent ?? 100) > 0
      ? Object.freeze({
          service: mirrorService,
          subset: rc.mirror.subset,
          endpoints: mirrorService.endpointSet(rc.mirror.subset),
          percent: rc.mirror.percent ?? 100,
        })
      : null;
  return Object.freeze({
    kind: 'forward',
    destinations: Object.freeze(destinations),
    rewrite: rc.rewrite ? compileRewrite(rc, rc.rewrite) : null,
    sticky: rc.sticky ? compileHashOn(rc.sticky) : null,
    mirror,
    fault: rc.fault && (rc.fault.delay || rc.fault.abort) ? compileFault(rc.fault) : null,
  });
}

/** For the admin API and `proxy-config routes`: the action with its effective settings. */
export function describeForward(action: ForwardAction, rc: RouteConfig): Record<string, unknown> {
  const list = action.destinations;
  return {
    kind: 'forward',
    destinations: list.map((d, i) => ({
      service: d.service.name,
      subset: d.subset,
      weight: d.upTo - (i === 0 ? 0 : list[i - 1]!.upTo),
      timeouts: { requestMs: d.requestTimeoutMs, idleMs: d.idleTimeoutMs },
      retries:
        d.retry === null
          ? null
          : {
              attempts: d.retry.attempts,
              on: d.retry.conditions,
              statusCodes: d.retry.statusCodes,
              perTryTimeoutMs: d.retry.perTryTimeoutMs,
              backoff: { baseMs: d.retry.backoffBaseMs, maxMs: d.retry.backoffMaxMs },
              nonIdempotent: d.retry.nonIdempotent,
              replayBufferBytes: d.retry.replayBufferBytes,
              maxRetryAfterMs: d.retry.maxRetryAfterMs,
            },
    })),
    rewrite: rc.rewrite ?? null,
    sticky: rc.sticky ?? null,
    mirror: action.mirror === null ? null : { ...rc.mirror, percent: action.mirror.percent },
    fault: action.fault === null ? null : { ...rc.fault, injected: { ...action.fault.injected } },
  };
}
