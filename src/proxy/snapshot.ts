/**
 * Snapshot: the compiled, frozen form of one validated Config, built once per config version.
 * The request path only reads it; a reload builds a new one and swaps one reference (runtime.ts).
 */
import type { Config, DestinationConfig, ListenerConfig, RouteConfig } from '../api/config.ts';
import type { LoadedConfig } from '../config/load.ts';
import { DEFAULT_LISTENER_ADDRESS, DEFAULT_TRUSTED_HOPS } from '../core/defaults.ts';
import { parseDuration } from '../core/duration.ts';
import type { CompiledFilter } from './chain/filters.ts';
import { Router } from './router/router.ts';
import { type CompiledFault, compileFault } from './upstream/fault.ts';
import { compileHashOn, type HashKeyReader } from './upstream/hash.ts';
import type { CompiledMirror } from './upstream/mirror.ts';
import { compileRetryPolicy, type RetryPolicy } from './upstream/retry.ts';
import { type EndpointSet, UpstreamService as Service, serviceHash, type UpstreamService } from './upstream/service.ts';

export interface CompiledDestination {
  service: UpstreamService;
  subset: string | undefined;
  endpoints: EndpointSet;
  /** Cumulative weight bound (exclusive) in 0..100, for picking. */
  upTo: number;
  /** Overall: from the first try until the response headers, across retries. 0: none. */
  requestTimeoutMs: number;
  idleTimeoutMs: number;
  /** The route's retries over the service's, or null when this destination never retries. */
  retry: RetryPolicy | null;
}

export interface CompiledRewrite {
  /** Path segments of the route pattern that `prefix` replaces (all of them for an exact pattern). */
  prefixSegments: number;
  prefix: string | undefined;
  regex: RegExp | undefined;
  substitution: string;
  host: string | undefined;
  autoHost: boolean;
}

export interface DirectResponse {
  status: number;
  body: Buffer;
  contentType: string;
}

export interface CompiledRoute {
  readonly name: string;
  readonly config: RouteConfig;
  /** Forwarding targets; empty for a direct response. */
  readonly destinations: readonly CompiledDestination[];
  readonly direct: DirectResponse | null;
  readonly rewrite: CompiledRewrite | null;
  /** The plugin chain, in the order it runs (global, service and route entries merged). */
  readonly filters: readonly CompiledFilter[];
  /** Reads the key that keeps a client on one side of the split (`sticky`), or null: destinations drawn at random. */
  readonly sticky: HashKeyReader | null;
  readonly mirror: CompiledMirror | null;
  readonly fault: CompiledFault | null;
}

export interface CompiledListener {
  readonly name: string;
  readonly port: number;
  readonly address: string;
  readonly trustedHops: number;
}

export interface Snapshot {
  readonly version: number;
  readonly hash: string;
  readonly source: string;
  readonly loadedAt: Date;
  readonly config: Config;
  readonly listeners: readonly CompiledListener[];
  readonly routes: readonly CompiledRoute[];
  readonly router: Router<CompiledRoute>;
  readonly services: ReadonlyMap<string, UpstreamService>;
  /** Requests started on this snapshot and not yet ended: the one mutable part, for retiring it. */
  readonly inflight: { count: number };
}

/**
 * Compiles `loaded` into a Snapshot. Services whose definition is unchanged are taken from `previous`
 * with their pools and state; each snapshot holds a reference on its services (see `releaseSnapshot`).
 */
export function compileSnapshot(loaded: LoadedConfig, version: number, previous?: Snapshot): Snapshot {
  const config = loaded.config;
  const services = new Map<string, UpstreamService>();
  for (const sc of config.services ?? []) {
    const old = previous?.services.get(sc.name);
    const service = old && old.hash === serviceHash(sc) ? old : new Service(sc);
    service.refs++;
    services.set(sc.name, service);
  }
  const routes = (config.routes ?? []).map((rc) => compileRoute(rc, services));
  const router = new Router(routes.map((r, order) => ({ match: r.config.match, order, value: r })));
  return Object.freeze({
    version,
    hash: loaded.hash,
    source: loaded.source,
    loadedAt: new Date(),
    config,
    listeners: compileListeners(config),
    routes: Object.freeze(routes),
    router,
    services,
    inflight: { count: 0 },
  });
}

/** Starts what runs in the background for the services of the snapshot now in force (health checks). */
export function startServices(snapshot: Snapshot): void {
  for (const service of snapshot.services.values()) service.start();
}

/**
 * Gives up a snapshot's hold on its services, once it is no longer current and its last request has
 * ended; a service no snapshot holds any more closes its connections.
 */
export function releaseSnapshot(snapshot: Snapshot): void {
  for (const service of snapshot.services.values()) if (--service.refs === 0) void service.close();
}

export function compileListeners(config: Config): readonly CompiledListener[] {
  return Object.freeze((config.listeners ?? []).map(compileListener));
}

function compileListener(l: ListenerConfig): CompiledListener {
  return Object.freeze({
    name: l.name,
    port: l.port,
    address: l.address ?? DEFAULT_LISTENER_ADDRESS,
    trustedHops: l.trustedHops ?? DEFAULT_TRUSTED_HOPS,
  });
}

function compileRoute(rc: RouteConfig, services: ReadonlyMap<string, UpstreamService>): CompiledRoute {
  const list: DestinationConfig[] = rc.destinations ?? (rc.service ? [{ service: rc.service, weight: 100 }] : []);
  let upTo = 0;
  const destinations = list
    .map((d): CompiledDestination => {
      const service = services.get(d.service)!;
      upTo += list.length === 1 ? 100 : (d.weight ?? 0);
      return {
        service,
        subset: d.subset,
        endpoints: service.endpointSet(d.subset),
        upTo,
        requestTimeoutMs: parseDuration(rc.timeouts?.request ?? '') ?? service.timeouts.requestMs,
        idleTimeoutMs: parseDuration(rc.timeouts?.idle ?? '') ?? service.timeouts.idleMs,
        retry:
          service.config.retries || rc.retries
            ? compileRetryPolicy(service.config.retries, rc.retries, service.retryBudget())
            : null,
      };
    })
    .filter((_, i) => list.length === 1 || (list[i]!.weight ?? 0) > 0);
  const direct = rc.directResponse
    ? {
        status: rc.directResponse.status,
        body: Buffer.from(rc.directResponse.body ?? ''),
        contentType: rc.directResponse.contentType ?? 'text/plain; charset=utf-8',
      }
    : null;
  const mirrorService = rc.mirror ? services.get(rc.mirror.service)! : undefined;
  const mirror: CompiledMirror | null =
    rc.mirror && mirrorService
      ? Object.freeze({
          service: mirrorService,
          subset: rc.mirror.subset,
          endpoints: mirrorService.endpointSet(rc.mirror.subset),
          percent: rc.mirror.percent ?? 100,
        })
      : null;
  return Object.freeze({
    name: rc.name,
    config: rc,
    destinations: Object.freeze(destinations),
    direct,
    rewrite: compileRewrite(rc),
    filters: [],
    sticky: rc.sticky ? compileHashOn(rc.sticky) : null,
    mirror: mirror !== null && mirror.percent > 0 ? mirror : null,
    fault: rc.fault && (rc.fault.delay || rc.fault.abort) ? compileFault(rc.fault) : null,
  });
}

function compileRewrite(rc: RouteConfig): CompiledRewrite | null {
  const rw = rc.rewrite;
  if (!rw) return null;
  const path = rc.match?.path ?? '';
  const literal = path.endsWith('/*') ? path.slice(0, -2) : path;
  return {
    prefixSegments: literal.split('/').length - 1,
    prefix: rw.prefix,
    regex: rw.regex ? new RegExp(rw.regex.pattern) : undefined,
    substitution: rw.regex?.substitution ?? '',
    host: rw.host,
    autoHost: rw.autoHost === true,
  };
}

/** Picks a destination by weight; `roll` is uniform in [0, 100). */
export function pickDestination(route: CompiledRoute, roll: number): CompiledDestination | null {
  const list = route.destinations;
  if (list.length === 1) return list[0]!;
  for (let i = 0; i < list.length; i++) if (roll < list[i]!.upTo) return list[i]!;
  return list.length > 0 ? list[list.length - 1]! : null;
}
