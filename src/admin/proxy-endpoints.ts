/**
 * Admin endpoints describing one proxy: /live, /ready, /config, /routes, /services.
 * What they show is read from the snapshot in force, so it is exactly what the request path uses.
 */
import type { ProxyServer } from '../proxy/proxy.ts';
import type { CompiledRoute } from '../proxy/snapshot.ts';
import type { UpstreamService } from '../proxy/upstream/service.ts';
import type { AdminServer } from './server.ts';

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

export function addProxyEndpoints(admin: AdminServer, proxy: ProxyServer): void {
  admin
    .route('GET /live', () => ({ status: 200, body: { status: 'live' } }))
    .route('GET /ready', () =>
      proxy.isDraining
        ? { status: 503, body: { status: 'draining' } }
        : { status: 200, body: { status: 'ready', version: proxy.snapshot.version } },
    )
    .route('GET /config', () => {
      const s = proxy.snapshot;
      return {
        status: 200,
        body: {
          version: s.version,
          hash: s.hash,
          source: s.source,
          loadedAt: s.loadedAt.toISOString(),
          listeners: proxy.ports(),
          config: redact(s.config),
        },
      };
    })
    .route('GET /routes', () => ({
      status: 200,
      body: { version: proxy.snapshot.version, routes: proxy.snapshot.routes.map(describeRoute) },
    }))
    .route('GET /services', () => ({
      status: 200,
      body: { version: proxy.snapshot.version, services: [...proxy.snapshot.services.values()].map(describeService) },
    }));
}
