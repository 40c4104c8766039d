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
import { type EndpointSet, UpstreamService as Service, serviceHash, type UpstreamService } from './upstream/service.ts';

export interface CompiledDestination {
  service: UpstreamService;
  subset: string | undefined;
  endpoints: EndpointSet;
  /** Cumulative weight bound (exclusive) in 0..100, for picking. */
  upTo: number;
  requestTimeoutMs: number;
  idleTimeoutMs: number;
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
  /** Routes served on every listener (those without `listeners`). */
  readonly router: Router<CompiledRoute>;
  /**
   * Per listener name, its router when some route is limited to certain listeners; a listener not in
   * the map uses `router`. Empty (no cost) unless a route sets `listeners`.
   */
  readonly listenerRouters: ReadonlyMap<string, Router<CompiledRoute>>;
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
    const service = old && old.hash === serviceHash(sc) ? old : new Service(sc, old);
    service.refs++;
    services.set(sc.name, service);
  }
  const routes = (config.routes ?? []).map((rc) => compileRoute(rc, services));
  const routerOf = (keep: (r: CompiledRoute) => boolean) =>
    new Router(routes.flatMap((r, order) => (keep(r) ? [{ match: r.config.match, order, value: r }] : [])));
  const router = routerOf((r) => r.config.listeners === undefined);
  const listenerRouters = new Map<string, Router<CompiledRoute>>();
  if (routes.some((r) => r.config.listeners !== undefined))
    for (const l of config.listeners ?? [])
      listenerRouters.set(
        l.name,
        routerOf((r) => r.config.listeners === undefined || r.config.listeners.includes(l.name)),
      );
  return Object.freeze({
    version,
    hash: loaded.hash,
    source: loaded.source,
    loadedAt: new Date(),
    config,
    listeners: compileListeners(config),
    routes: Object.freeze(routes),
    router,
    listenerRouters,
    services,
    inflight: { count: 0 },
  });
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
  return Object.freeze({
    name: rc.name,
    config: rc,
    destinations: Object.freeze(destinations),
    direct,
    rewrite: compileRewrite(rc),
    filters: [],
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

/** The router a listener uses in this snapshot. */
export function routerFor(snapshot: Snapshot, listener: string): Router<CompiledRoute> {
  return snapshot.listenerRouters.get(listener) ?? snapshot.router;
}

/** Picks a destination by weight; `roll` is uniform in [0, 100). */
export function pickDestination(route: CompiledRoute, roll: number): CompiledDestination | null {
  const list = route.destinations;
  if (list.length === 1) return list[0]!;
  for (let i = 0; i < list.length; i++) if (roll < list[i]!.upTo) return list[i]!;
  return list.length > 0 ? list[list.length - 1]! : null;
}
