/**
 * What a proxy holds, as JSON for the admin API: read from the snapshot in force, so it is exactly
 * what the request path uses. Runs inside the process that proxies (a worker, or the only process).
 */
import type { ProxyServer } from './proxy.ts';
import type { CompiledRoute } from './snapshot.ts';
import type { UpstreamService } from './upstream/service.ts';

export type ProxyView = 'status' | 'config' | 'routes' | 'services' | 'metrics';
export const PROXY_VIEWS: readonly ProxyView[] = ['status', 'config', 'routes', 'services', 'metrics'];

const SECRET_KEYS = /^(secret|key|password|token|privateKey|clientSecret)$/i;

/** A copy of a config with secret values replaced, safe to show and log. */
export function redact(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(redact);
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [
        k,
        SECRET_KEYS.test(k) && typeof v === 'string' ? '<redacted>' : redact(v),
      ]),
    );
  }
  return value;
}

export function describeRoute(route: CompiledRoute) {
  const c = route.config;
  return {
    name: route.name,
    match: c.match ?? {},
    action: route.direct ? 'direct-response' : 'forward',
    destinations: route.destinations.map((d, i) => ({
      service: d.service.name,
      subset: d.subset,
      weight: d.upTo - (i === 0 ? 0 : route.destinations[i - 1]!.upTo),
      timeouts: { requestMs: d.requestTimeoutMs, idleMs: d.idleTimeoutMs },
    })),
    directResponse: c.directResponse,
    rewrite: c.rewrite,
    // The chain exactly as it runs: house rule 3 (order decided once, shown as it is).
    plugins: route.filters.map((f) => ({ name: f.name, phase: f.phase, order: f.order, scope: f.scope })),
    consumerPlugins:
      route.consumerChains === null
        ? undefined
        : Object.fromEntries(
            [...route.consumerChains].map(([consumer, chain]) => [
              consumer,
              chain.map((f) => ({ name: f.name, phase: f.phase, order: f.order, scope: f.scope })),
            ]),
          ),
  };
}

export function describeService(service: UpstreamService) {
  return {
    name: service.name,
    timeouts: service.timeouts,
    subsets: service.subsetNames(),
    endpoints: service.all.endpoints.map((e) => ({
      url: e.url,
      labels: e.labels,
      weight: e.weight,
      activeRequests: e.active,
      connections: { open: e.pool.size, busy: e.pool.busy, queuedRequests: e.pool.queued },
    })),
  };
}

export async function describeProxy(proxy: ProxyServer, view: ProxyView): Promise<Record<string, unknown>> {
  const s = proxy.snapshot;
  switch (view) {
    case 'metrics':
      // JSON, so a primary can sum several workers' metrics (prom-client's aggregate).
      return { metrics: await proxy.telemetry.metrics.registry.getMetricsAsJSON() };
    case 'status':
      return {
        pid: process.pid,
        version: s.version,
        hash: s.hash,
        draining: proxy.isDraining,
        listeners: proxy.ports(),
        requestsInFlight: s.inflight.count,
      };
    case 'config':
      return {
        version: s.version,
        hash: s.hash,
        source: s.source,
        loadedAt: s.loadedAt.toISOString(),
        config: redact(s.config),
      };
    case 'routes':
      return { version: s.version, routes: s.routes.map(describeRoute) };
    case 'services':
      return { version: s.version, services: [...s.services.values()].map(describeService) };
  }
}
