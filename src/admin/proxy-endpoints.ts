/**
 * Admin endpoints describing the data plane: /live, /ready, /config, /routes, /services, /workers.
 * Views come from the processes that proxy (see proxy/describe.ts); with several workers, counters
 * are summed and /workers shows each.
 */
import { AggregatorRegistry } from 'prom-client';
import type { DataPlane } from '../proxy/data-plane.ts';
import type { AdminServer } from './server.ts';

type Json = Record<string, unknown>;

interface EndpointView {
  url: string;
  activeRequests: number;
  connections: { open: number; busy: number; queuedRequests: number };
}

/** Sums per-endpoint counters of the same service across workers. */
function mergeServices(views: Json[]): Json {
  const [first, ...rest] = views as { services: { name: string; endpoints: EndpointView[] }[] }[];
  if (!first) return { services: [] };
  const merged = structuredClone(first) as { services: { name: string; endpoints: EndpointView[] }[] } & Json;
  for (const other of rest) {
    for (const service of other.services) {
      const target = merged.services.find((s) => s.name === service.name);
      for (const endpoint of service.endpoints) {
        const e = target?.endpoints.find((x) => x.url === endpoint.url);
        if (!e) continue;
        e.activeRequests += endpoint.activeRequests;
        e.connections.open += endpoint.connections.open;
        e.connections.busy += endpoint.connections.busy;
        e.connections.queuedRequests += endpoint.connections.queuedRequests;
      }
    }
  }
  return merged;
}

export function addProxyEndpoints(admin: AdminServer, plane: DataPlane): void {
  admin
    .route('GET /live', () => ({ status: 200, body: { status: 'live' } }))
    .route('GET /ready', async () => {
      if (plane.isDraining) return { status: 503, body: { status: 'draining' } };
      const statuses = await plane.query('status');
      return { status: 200, body: { status: 'ready', version: statuses[0]?.version, workers: statuses.length } };
    })
    .route('GET /config', async () => {
      const [view] = await plane.query('config');
      return { status: 200, body: { ...view, listeners: plane.ports() } };
    })
    .route('GET /routes', async () => ({ status: 200, body: (await plane.query('routes'))[0] }))
    .route('GET /services', async () => ({ status: 200, body: mergeServices(await plane.query('services')) }))
    .route('GET /workers', async () => ({ status: 200, body: { workers: await plane.query('status') } }))
    .route('GET /metrics', async () => {
      // One worker's metrics as they are; several summed (counters, histograms) by prom-client.
      const views = await plane.query('metrics');
      const registry = AggregatorRegistry.aggregate(views.map((v) => v.metrics as object[]));
      return { status: 200, body: await registry.metrics(), contentType: registry.contentType };
    });
}
