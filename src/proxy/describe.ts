/**
 * What a proxy holds, as JSON for the admin API: read from the snapshot in force, so it is exactly
 * what the request path uses. Runs inside the process that proxies (a worker, or the only process).
 */
import { redact } from '../config/redact.ts';
import type { ProxyServer } from './proxy.ts';
import type { CompiledRoute } from './snapshot.ts';
import type { UpstreamService } from './upstream/service.ts';

export type ProxyView = 'status' | 'config' | 'routes' | 'services' | 'listeners';
export const PROXY_VIEWS: readonly ProxyView[] = ['status', 'config', 'routes', 'services', 'listeners'];

export function describeRoute(route: CompiledRoute) {
  const c = route.config;
  return {
    name: route.name,
    ...(c.listeners ? { listeners: c.listeners } : {}),
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

export function describeProxy(proxy: ProxyServer, view: ProxyView): Record<string, unknown> {
  const s = proxy.snapshot;
  switch (view) {
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
    case 'listeners': {
      const bound = proxy.ports();
      return {
        version: s.version,
        listeners: s.listeners.map((l) => ({
          name: l.name,
          address: l.address,
          port: l.port,
          boundPort: bound[l.name] ?? null,
          trustedHops: l.trustedHops,
          // In declaration order; docs/routing.md gives the order they are tried in.
          routes: s.routes
            .filter((r) => r.config.listeners === undefined || r.config.listeners.includes(l.name))
            .map((r) => r.name),
        })),
      };
    }
  }
}
