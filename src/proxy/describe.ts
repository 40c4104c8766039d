/**
 * What a proxy holds, as JSON for the admin API: read from the snapshot in force, so it is exactly
 * what the request path uses. Runs inside the process that proxies (a worker, or the only process).
 */
import { MAX_LOOKUP_RECORDS, MAX_LOOKUP_TRAILS } from '../api/values.ts';
import type { LoadedConfig } from '../config/load.ts';
import { redact } from '../config/redact.ts';
import { DEFAULT_PANIC_THRESHOLD_PERCENT } from '../core/defaults.ts';
import type { UsageQuery } from '../stores/usage/store.ts';
import { describeAction } from './actions/index.ts';
import type { CompiledRoute, Snapshot } from './compiled.ts';
import type { Trail } from './explain/trail.ts';
import type { ProxyServer } from './proxy.ts';
import type { UpstreamService } from './upstream/service.ts';

export type ProxyView =
  | 'status'
  | 'config'
  | 'routes'
  | 'services'
  | 'listeners'
  | 'metrics'
  /** Not a view: removes cached responses (every one, or after the colon those a CachePurge as JSON names). */
  | 'purge-cache'
  | `purge-cache:${string}`
  /** A consumer's plan and quota state (after the colon, the consumer's name): `{ status, body }`. */
  | `quota:${string}`
  /** Not a view: writes the pending usage counts to the store now. */
  | 'usage-flush'
  /** Usage rows from the store; after the colon the query as JSON (UsageQuery). */
  | `usage:${string}`
  /** Remembered requests whose request or trace id is in the JSON array after the colon: `{ records }`. */
  | `requests:${string}`
  /** Decision trails of the requests whose request or trace id is in the JSON array after the colon: `{ trails }`. */
  | `explain:${string}`
  /**
   * Not a view: sets the shadow config (after the colon, a ShadowSet as JSON): `{ report }`, or
   * `{ error }` when it does not compile here.
   */
  | `shadow-set:${string}`
  /** Not a view: clears the shadow config: `{ report }`, the last one (null: none was set). */
  | 'shadow-clear'
  /** The shadow config's counts and examples: `{ report }` (null: none is set). */
  | 'shadow-report';

/** What `shadow-set:` carries to each process: the validated candidate and how to sample it. */
export interface ShadowSet {
  id: string;
  loaded: LoadedConfig;
  samplePercent: number;
  maxExamples: number;
}

export function describeRoute(route: CompiledRoute) {
  const c = route.config;
  return {
    name: route.name,
    ...(c.origin ? { origin: c.origin } : {}),
    ...(c.listeners ? { listeners: c.listeners } : {}),
    match: c.match ?? {},
    ...(c.version ? { version: c.version } : {}),
    action: describeAction(route.action, c),
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
  const view = describeUnit(service);
  const units = service.subsetUnits();
  if (units.size === 0) return view;
  // A subset with policies of its own has its own balancer, breaker, detector and endpoints, shown
  // as `service/subset`; its counters (overflows, `stats`) are counted in the service's.
  const subsetUnits = [...units.values()].map((unit) => {
    const { stats: _shared, subsets: _none, circuitBreaker, ...own } = describeUnit(unit);
    const { overflows: _counted, ...breaker } = circuitBreaker;
    return { ...own, circuitBreaker: breaker };
  });
  return { ...view, subsetUnits };
}

function describeUnit(service: UpstreamService) {
  const now = service.clock.now();
  const c = service.config;
  const sets = [
    { subset: null as string | null, set: service.all },
    ...[...service.subsetSets()].map(([subset, set]) => ({ subset, set })),
  ];
  const outlier = service.outlier;
  return {
    name: service.label,
    ...(c.origin ? { origin: c.origin } : {}),
    timeouts: service.timeouts,
    subsets: service.subsetNames(),
    loadBalancer: {
      policy: service.policy,
      hashOn: c.loadBalancer?.hashOn ?? null,
      panicThreshold: c.loadBalancer?.panicThreshold ?? DEFAULT_PANIC_THRESHOLD_PERCENT,
    },
    endpointSets: sets.map(({ subset, set }) => ({
      subset,
      endpoints: set.endpoints.length,
      available: set.availableCount,
      panic: set.panic,
    })),
    circuitBreaker: service.breaker.describe(),
    adaptiveConcurrency: service.breaker.adaptive?.describe() ?? null,
    retryBudget: service.hasRetryBudget ? service.retryBudget().describe(now) : null,
    outlierDetection:
      outlier === null
        ? null
        : {
            ...outlier.settings,
            ejected: outlier.ejectedCount,
            ejectionsTotal: outlier.ejectionsTotal,
            ejectionsPrevented: outlier.ejectionsPrevented,
          },
    healthCheck: service.health === null ? null : service.health.settings,
    stats: {
      retries: service.stats.retries,
      noHealthyUpstream: service.stats.noHealthyUpstream,
      panicTries: service.stats.panicTries,
      mirror: {
        sent: service.stats.mirrorSent,
        dropped: service.stats.mirrorDropped,
        failed: service.stats.mirrorFailed,
      },
      recentEvents: service.stats.events.list().map((e) => ({ ...e, at: new Date(e.at).toISOString() })),
      recentRefusals: service.stats.refusals.list().map((r) => ({ ...r, at: new Date(r.at).toISOString() })),
    },
    endpoints: service.all.endpoints.map((e) => {
      const health = service.health?.record(e);
      return {
        url: e.url,
        labels: e.labels,
        weight: e.weight,
        available: e.available,
        activeRequests: e.active,
        connections: { client: e.pool.engine, open: e.pool.size, busy: e.pool.busy, queuedRequests: e.pool.queued },
        health: health
          ? {
              ...health,
              lastCheckAt: health.lastCheckAt === 0 ? null : new Date(health.lastCheckAt).toISOString(),
            }
          : { status: e.health },
        outlier: {
          ejected: e.ejected,
          ejectedForMs: e.ejected ? Math.max(0, Math.round(e.ejectedUntil - now)) : 0,
          ejections: e.ejections,
          consecutiveErrors: e.consecutiveErrors,
          consecutiveGatewayErrors: e.consecutiveGatewayErrors,
        },
      };
    }),
  };
}

export async function describeProxy(proxy: ProxyServer, view: ProxyView): Promise<Record<string, unknown>> {
  const s = proxy.snapshot;
  if (view.startsWith('quota:')) return describeQuota(s, view.slice('quota:'.length));
  if (view.startsWith('explain:')) {
    const match = JSON.parse(view.slice('explain:'.length)) as string[];
    const { explainTrail } = await import('./explain/read.ts');
    const trails = proxy.telemetry.recent?.findTrails<Trail>(match, MAX_LOOKUP_TRAILS) ?? [];
    return { trails: trails.map(explainTrail) };
  }
  if (view.startsWith('shadow-set:')) {
    const set = JSON.parse(view.slice('shadow-set:'.length)) as ShadowSet;
    try {
      return { report: await proxy.setShadow(set.loaded, set) };
    } catch (e) {
      return { error: (e as Error)?.message ?? String(e) };
    }
  }
  if (view === 'shadow-clear') return { report: proxy.clearShadow() };
  if (view === 'shadow-report') return { report: proxy.shadowReport() };
  if (view.startsWith('requests:')) {
    const match = JSON.parse(view.slice('requests:'.length)) as string[];
    return { records: proxy.telemetry.recent?.find(match, MAX_LOOKUP_RECORDS) ?? [] };
  }
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
        requestsServed: proxy.runtime.requestsServed,
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
          // What serves its HTTP/1.1 (lean unless named or unless it serves TLS, HTTP/2 or mesh TLS).
          engine: l.engine,
          trustedHops: l.trustedHops,
          // In declaration order; docs/routing.md gives the order they are tried in.
          routes: s.routes
            .filter((r) => r.config.listeners === undefined || r.config.listeners.includes(l.name))
            .map((r) => r.name),
        })),
      };
    }
    case 'usage-flush':
      return { metered: await proxy.metering.flush() };
    default:
      if (view.startsWith('usage:')) {
        const rows = await proxy.metering.query(JSON.parse(view.slice('usage:'.length)) as UsageQuery);
        return rows === null ? { metered: false } : { metered: true, rows };
      }
      // purge-cache, purge-cache:<CachePurge as JSON>
      return proxy.purgeCaches(view === 'purge-cache' ? {} : JSON.parse(view.slice('purge-cache:'.length)));
  }
}

/**
 * A consumer's plan and its counts now, as `{ status, body }` (404: no such consumer; 503: the count
 * could not be read). Never rejects: a worker answers every query.
 */
async function describeQuota(s: Snapshot, consumer: string): Promise<Record<string, unknown>> {
  const configured = (s.config.consumers ?? []).find((c) => c.name === consumer);
  if (configured === undefined) return { status: 404, body: { error: `no consumer "${consumer}"` } };
  try {
    const state = await s.plans?.describe(consumer);
    return {
      status: 200,
      body: state ?? { consumer, plan: configured.plan ?? null, quotas: {}, rateLimits: [] },
    };
  } catch (e) {
    return { status: 503, body: { consumer, error: `the count could not be read: ${(e as Error)?.message ?? e}` } };
  }
}
