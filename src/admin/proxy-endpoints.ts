/**
 * Admin endpoints describing the data plane: /live, /ready, /config, /routes, /listeners, /services,
 * /workers, /consumers/:name/quota, /usage.
 * Views come from the processes that proxy (see proxy/describe.ts); with several workers, counters
 * are summed and /workers shows each.
 */
import { aggregatorRegistry } from '../observability/prom.ts';
import { keyPrefixOf } from '../plugins/cache/policy.ts';
import type { DataPlane } from '../proxy/data-plane.ts';
import type { UpstreamEngine } from '../proxy/upstream/pool.ts';
import type { AdminReply, AdminServer } from './server.ts';
import { addUsageEndpoint } from './usage-endpoint.ts';

type Json = Record<string, unknown>;

interface EndpointView {
  url: string;
  available: boolean;
  activeRequests: number;
  connections: { client: UpstreamEngine; open: number; busy: number; queuedRequests: number };
  health: { status: string };
  outlier: { ejected: boolean; ejectedForMs: number };
}

interface ServiceView {
  name: string;
  circuitBreaker: {
    current: Record<string, number>;
    open: Record<string, boolean>;
    /** Absent from a subset's unit: its overflows count in its service's. */
    overflows?: Record<string, number>;
  };
  adaptiveConcurrency: { limit: number; inFlight: number; shed: number; measuringMinRtt: boolean } | null;
  endpoints: EndpointView[];
  /** The units of subsets with policies of their own (`service/subset`): the same kind of view. */
  subsetUnits?: ServiceView[];
}

const HEALTH_RANK: Record<string, number> = { healthy: 0, unchecked: 1, unhealthy: 2 };

function sumInto(target: Record<string, number>, other: Record<string, number>) {
  for (const key in other) target[key] = (target[key] ?? 0) + other[key]!;
}

/**
 * Merges the views of several workers: counters (requests, connections, breaker counts, adaptive
 * limits) are summed;
 * per-worker state shows the worst (an endpoint is shown ejected or unhealthy if any worker says so,
 * and a breaker threshold open if it is open in any worker). Each worker keeps its own state.
 */
function mergeServices(views: Json[]): Json {
  const [first, ...rest] = views as { services: ServiceView[] }[];
  if (!first) return { services: [] };
  const merged = structuredClone(first) as { services: ServiceView[] } & Json;
  for (const other of rest) {
    for (const service of other.services) {
      const target = merged.services.find((s) => s.name === service.name);
      if (!target) continue;
      mergeUnit(target, service);
    }
  }
  return merged;
}

/** Adds one worker's view of a service (or of a subset's unit) to the merged one. */
function mergeUnit(target: ServiceView, service: ServiceView): void {
  sumInto(target.circuitBreaker.current, service.circuitBreaker.current);
  if (target.circuitBreaker.overflows !== undefined && service.circuitBreaker.overflows !== undefined)
    sumInto(target.circuitBreaker.overflows, service.circuitBreaker.overflows);
  for (const key in service.circuitBreaker.open)
    target.circuitBreaker.open[key] = target.circuitBreaker.open[key]! || service.circuitBreaker.open[key]!;
  // Each worker has its own limit: the gateway's is their sum; latencies stay the first worker's.
  const ac = target.adaptiveConcurrency;
  if (ac !== null && service.adaptiveConcurrency !== null) {
    ac.limit += service.adaptiveConcurrency.limit;
    ac.inFlight += service.adaptiveConcurrency.inFlight;
    ac.shed += service.adaptiveConcurrency.shed;
    ac.measuringMinRtt ||= service.adaptiveConcurrency.measuringMinRtt;
  }
  for (const endpoint of service.endpoints) {
    const e = target.endpoints.find((x) => x.url === endpoint.url);
    if (!e) continue;
    e.activeRequests += endpoint.activeRequests;
    e.connections.open += endpoint.connections.open;
    e.connections.busy += endpoint.connections.busy;
    e.connections.queuedRequests += endpoint.connections.queuedRequests;
    e.available &&= endpoint.available;
    if ((HEALTH_RANK[endpoint.health.status] ?? 0) > (HEALTH_RANK[e.health.status] ?? 0)) e.health = endpoint.health;
    if (endpoint.outlier.ejected && !e.outlier.ejected) e.outlier = endpoint.outlier;
  }
  for (const unit of service.subsetUnits ?? []) {
    const into = target.subsetUnits?.find((u) => u.name === unit.name);
    if (into !== undefined) mergeUnit(into, unit);
  }
}

const NO_CONFIG = { status: 503, body: { status: 'waiting for config' } };

function firstView(views: Json[]) {
  return views.length ? { status: 200, body: views[0] } : NO_CONFIG;
}

/**
 * Purges in every process that proxies; 503 when a cache could not be purged (its Redis is down).
 * `?key=/path?query` (with `host=`, that host only) removes one URL's entries, every variant of it;
 * `?prefix=/path/` every entry whose path starts with it.
 */
async function purge(plane: DataPlane, url: URL, route?: string): Promise<AdminReply> {
  const key = url.searchParams.get('key') ?? undefined;
  const host = url.searchParams.get('host') ?? undefined;
  const prefix = url.searchParams.get('prefix') ?? undefined;
  const bad = (detail: string) => ({ status: 400, body: { error: detail } });
  if (key !== undefined && prefix !== undefined) return bad('give key or prefix, not both');
  if (host !== undefined && key === undefined) return bad('host narrows a key: give key=/path?query too');
  if (key !== undefined && !key.startsWith('/')) return bad('key is a path with its query, starting with /');
  if (prefix !== undefined && !prefix.startsWith('/')) return bad('prefix is the start of a path, with its /');
  let keyPrefix: string | undefined = prefix;
  if (key !== undefined) {
    const q = key.indexOf('?');
    keyPrefix = q === -1 ? keyPrefixOf(key, '', host) : keyPrefixOf(key.slice(0, q), key.slice(q + 1), host);
  }
  const selector = { ...(route === undefined ? {} : { route }), ...(keyPrefix === undefined ? {} : { keyPrefix }) };
  const views = await plane.query(
    route === undefined && keyPrefix === undefined ? 'purge-cache' : `purge-cache:${JSON.stringify(selector)}`,
  );
  const removed = views.reduce((n, v) => n + ((v.removed as number) ?? 0), 0);
  const errors = [...new Set(views.flatMap((v) => (v.errors as string[]) ?? []))];
  return {
    status: errors.length > 0 ? 503 : 200,
    body: {
      ...(route ? { route } : {}),
      ...(key ? { key } : {}),
      ...(host ? { host } : {}),
      ...(prefix ? { prefix } : {}),
      removed,
      errors,
    },
  };
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
    // Cached responses (the cache plugin): of every route, or of one; all, one URL's or a path
    // prefix's. A shared (Redis) cache is purged for every gateway on it; memory caches in every
    // worker of this gateway.
    .route('DELETE /cache', (_req, url) => purge(plane, url))
    .route('DELETE /cache/:route', (_req, url, params) => purge(plane, url, params.route))
    // A consumer's plan and where its quotas stand (counted in the primary or Redis: every worker reads the same).
    .route('GET /consumers/:name/quota', async (_req, _url, params) => {
      const [view] = await plane.query(`quota:${params.name}`);
      return view ? { status: view.status as number, body: view.body } : NO_CONFIG;
    })
    .route('GET /workers', async () => ({ status: 200, body: { workers: await plane.query('status') } }))
    .route('GET /metrics', async () => {
      // One worker's metrics as they are; several summed (counters, histograms) by prom-client.
      const views = await plane.query('metrics');
      const registry = aggregatorRegistry().aggregate(views.map((v) => v.metrics as object[]));
      return { status: 200, body: await registry.metrics(), contentType: registry.contentType };
    });
  addUsageEndpoint(admin, plane);
}
