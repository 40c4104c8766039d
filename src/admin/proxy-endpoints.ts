/**
 * Admin endpoints describing the data plane: /live, /ready, /config, /routes, /listeners, /services,
 * /workers.
 * Views come from the processes that proxy (see proxy/describe.ts); with several workers, counters
 * are summed and /workers shows each.
 */
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

const NO_CONFIG = { status: 503, body: { status: 'waiting for config' } };

function firstView(views: Json[]) {
  return views.length ? { status: 200, body: views[0] } : NO_CONFIG;
}

export function addProxyEndpoints(admin: AdminServer, plane: DataPlane): void {
  admin
    .route('GET /live', () => ({ status: 200, body: { status: 'live' } }))
    .route('GET /ready', async () => {
      if (plane.isDraining) return { status: 503, body: { status: 'draining' } };
      const statuses = await plane.query('status');
      // A proxy fed by a control plane has nothing to serve until its first config arrives.
      if (statuses.length === 0) return NO_CONFIG;
      return { status: 200, body: { status: 'ready', version: statuses[0]?.version, workers: statuses.length } };
    })
    .route('GET /config', async () => {
      const [view] = await plane.query('config');
      return view ? { status: 200, body: { ...view, listeners: plane.ports() } } : NO_CONFIG;
    })
    .route('GET /routes', async () => firstView(await plane.query('routes')))
    .route('GET /listeners', async () => firstView(await plane.query('listeners')))
    .route('GET /services', async () => {
      const views = await plane.query('services');
      return views.length ? { status: 200, body: mergeServices(views) } : NO_CONFIG;
    })
    .route('GET /workers', async () => ({ status: 200, body: { workers: await plane.query('status') } }));
}
