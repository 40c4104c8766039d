/**
 * Snapshot: the compiled, frozen form of one validated Config, built once per config version.
 * The request path only reads it; a reload builds a new one and swaps one reference (runtime.ts).
 */

import { dirname, resolve } from 'node:path';
import type { Config, DestinationConfig, ListenerConfig, RouteConfig } from '../api/config.ts';
import type { LoadedConfig } from '../config/load.ts';
import {
  DEFAULT_BODY_IDLE_TIMEOUT_MS,
  DEFAULT_BODY_MIN_BYTES_PER_SECOND,
  DEFAULT_BODY_MIN_RATE_GRACE_MS,
  DEFAULT_CLIENT_KEEPALIVE_MS,
  DEFAULT_CLIENT_REQUEST_TIMEOUT_MS,
  DEFAULT_HEADERS_TIMEOUT_MS,
  DEFAULT_HTTPS_PORT,
  DEFAULT_LISTENER_ADDRESS,
  DEFAULT_MAX_BODY_BYTES,
  DEFAULT_MAX_CLIENT_CONNECTIONS,
  DEFAULT_MAX_CONCURRENT_STREAMS,
  DEFAULT_MAX_HEADER_BYTES,
  DEFAULT_MAX_URL_BYTES,
  DEFAULT_TLS_MIN_VERSION,
  DEFAULT_TRUSTED_HOPS,
  DEFAULT_WEBSOCKET_IDLE_TIMEOUT_MS,
} from '../core/defaults.ts';
import { parseDuration } from '../core/duration.ts';
import type { PluginCatalog } from '../core/plugin.ts';
import { type ChainDepsBase, createChainCompiler } from './chain/compile.ts';
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
  /** `body.length` as the header value. */
  contentLength: string;
}

export interface CompiledRoute {
  readonly name: string;
  readonly config: RouteConfig;
  /** The path pattern the route matches (`match.grpc` as its path), for `http.route` in spans. */
  readonly pathPattern: string | undefined;
  /** Forwarding targets; empty for a direct response. */
  readonly destinations: readonly CompiledDestination[];
  readonly direct: DirectResponse | null;
  readonly rewrite: CompiledRewrite | null;
  /** The plugin chain, in the order it runs (global, service and route entries merged). */
  readonly filters: readonly CompiledFilter[];
  /** Chains for consumers with plugins of their own, taking over after authentication (null: none). */
  readonly consumerChains: ReadonlyMap<string, readonly CompiledFilter[]> | null;
  /** Request body limit in bytes; 0: none; -1: the listener's. */
  readonly maxBodyBytes: number;
  readonly redirectToHttps: boolean;
  /** Reads the key that keeps a client on one side of the split (`sticky`), or null: destinations drawn at random. */
  readonly sticky: HashKeyReader | null;
  readonly mirror: CompiledMirror | null;
  readonly fault: CompiledFault | null;
}

export interface CompiledCertificate {
  /** Absolute paths. */
  readonly cert: string;
  readonly key: string;
  /** Empty: the names in the certificate's subjectAltName. */
  readonly serverNames: readonly string[];
}

export interface CompiledTls {
  readonly certificates: readonly CompiledCertificate[];
  readonly clientCa: string | null;
  readonly requireClientCert: boolean;
  readonly minVersion: 'TLSv1.2' | 'TLSv1.3';
}

/** A listener's settings with defaults applied, durations in ms and paths absolute. */
export interface CompiledListener {
  readonly name: string;
  readonly port: number;
  readonly address: string;
  readonly trustedHops: number;
  readonly tls: CompiledTls | null;
  readonly http2: boolean;
  readonly redirectToHttps: boolean;
  readonly httpsPort: number;
  readonly encodedSlashes: 'keep' | 'decode' | 'reject';
  readonly limits: {
    readonly maxHeaderBytes: number;
    readonly maxUrlBytes: number;
    readonly maxBodyBytes: number;
    readonly maxConnections: number;
    readonly maxConcurrentStreams: number;
    readonly headersTimeoutMs: number;
    readonly requestTimeoutMs: number;
    readonly keepAliveTimeoutMs: number;
    readonly websocketIdleTimeoutMs: number;
    readonly bodyIdleTimeoutMs: number;
    readonly bodyMinBytesPerSecond: number;
    readonly bodyMinRateGraceMs: number;
  };
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

/** What compiling needs besides the config: where plugins come from and how they reach shared state. */
export interface CompileDeps {
  catalog?: PluginCatalog;
  plugins: ChainDepsBase;
}

/**
 * Compiles `loaded` into a Snapshot. Services whose definition is unchanged are taken from `previous`
 * with their pools and state; each snapshot holds a reference on its services (see `releaseSnapshot`).
 * If anything fails (a plugin refuses its config), the services it created are closed and it throws.
 */
export async function compileSnapshot(
  loaded: LoadedConfig,
  version: number,
  deps: CompileDeps,
  previous?: Snapshot,
): Promise<Snapshot> {
  const config = loaded.config;
  const services = new Map<string, UpstreamService>();
  for (const sc of config.services ?? []) {
    const old = previous?.services.get(sc.name);
    const service = old && old.hash === serviceHash(sc) ? old : new Service(sc, { previous: old });
    service.refs++;
    services.set(sc.name, service);
  }
  let routes: CompiledRoute[];
  try {
    const chains = createChainCompiler(config, deps.catalog, deps.plugins);
    routes = await Promise.all(
      (config.routes ?? []).map(async (rc) => {
        const names = (rc.destinations ?? (rc.service ? [{ service: rc.service }] : [])).map((d) => d.service);
        return compileRoute(rc, services, await chains.compileRoute(rc, names));
      }),
    );
  } catch (e) {
    for (const service of services.values()) if (--service.refs === 0) void service.close();
    throw e;
  }
  const routerOf = (keep: (r: CompiledRoute) => boolean) =>
    new Router(routes.flatMap((r, order) => (keep(r) ? [{ match: effectiveMatch(r.config), order, value: r }] : [])));
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
    listeners: compileListeners(config, loaded.source),
    routes: Object.freeze(routes),
    router,
    listenerRouters,
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

/** `source` is the config file (relative paths in it resolve from its directory) or a label such as `admin-api`. */
export function compileListeners(config: Config, source: string): readonly CompiledListener[] {
  return Object.freeze((config.listeners ?? []).map((l) => compileListener(l, source)));
}

/** A path in a config, made absolute: relative to the config file's directory (the working directory for others). */
export function configPath(path: string, source: string): string {
  return resolve(dirname(source), path);
}

const ms = (value: string | undefined, fallback: number) =>
  value === undefined ? fallback : (parseDuration(value) ?? fallback);

function compileListener(l: ListenerConfig, source: string): CompiledListener {
  const limits = l.limits ?? {};
  const tls = l.tls
    ? Object.freeze({
        certificates: Object.freeze(
          l.tls.certificates.map((c) =>
            Object.freeze({
              cert: configPath(c.cert, source),
              key: configPath(c.key, source),
              serverNames: Object.freeze((c.serverNames ?? []).map((n) => n.toLowerCase())),
            }),
          ),
        ),
        clientCa: l.tls.clientCa === undefined ? null : configPath(l.tls.clientCa, source),
        requireClientCert: l.tls.requireClientCert ?? true,
        minVersion: l.tls.minVersion ?? DEFAULT_TLS_MIN_VERSION,
      })
    : null;
  return Object.freeze({
    name: l.name,
    port: l.port,
    address: l.address ?? DEFAULT_LISTENER_ADDRESS,
    trustedHops: l.trustedHops ?? DEFAULT_TRUSTED_HOPS,
    tls,
    http2: l.http2 ?? tls !== null,
    redirectToHttps: l.redirectToHttps ?? false,
    httpsPort: l.httpsPort ?? DEFAULT_HTTPS_PORT,
    encodedSlashes: l.encodedSlashes ?? 'keep',
    limits: Object.freeze({
      maxHeaderBytes: limits.maxHeaderBytes ?? DEFAULT_MAX_HEADER_BYTES,
      maxUrlBytes: limits.maxUrlBytes ?? DEFAULT_MAX_URL_BYTES,
      maxBodyBytes: limits.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES,
      maxConnections: limits.maxConnections ?? DEFAULT_MAX_CLIENT_CONNECTIONS,
      maxConcurrentStreams: limits.maxConcurrentStreams ?? DEFAULT_MAX_CONCURRENT_STREAMS,
      headersTimeoutMs: ms(limits.headersTimeout, DEFAULT_HEADERS_TIMEOUT_MS),
      requestTimeoutMs: ms(limits.requestTimeout, DEFAULT_CLIENT_REQUEST_TIMEOUT_MS),
      keepAliveTimeoutMs: ms(limits.keepAliveTimeout, DEFAULT_CLIENT_KEEPALIVE_MS),
      websocketIdleTimeoutMs: ms(limits.websocketIdleTimeout, DEFAULT_WEBSOCKET_IDLE_TIMEOUT_MS),
      bodyIdleTimeoutMs: ms(limits.bodyIdleTimeout, DEFAULT_BODY_IDLE_TIMEOUT_MS),
      bodyMinBytesPerSecond: limits.bodyMinBytesPerSecond ?? DEFAULT_BODY_MIN_BYTES_PER_SECOND,
      bodyMinRateGraceMs: ms(limits.bodyMinRateGrace, DEFAULT_BODY_MIN_RATE_GRACE_MS),
    }),
  });
}

/** `match.grpc` is sugar for a path: `/service/method`, or `/service/*` for every method. */
export function effectiveMatch(rc: RouteConfig): RouteConfig['match'] {
  const match = rc.match;
  if (match?.grpc === undefined) return match;
  const { grpc, ...rest } = match;
  return { ...rest, path: grpc.method === undefined ? `/${grpc.service}/*` : `/${grpc.service}/${grpc.method}` };
}

function compileRoute(
  rc: RouteConfig,
  services: ReadonlyMap<string, UpstreamService>,
  chain: Pick<CompiledRoute, 'filters' | 'consumerChains'>,
): CompiledRoute {
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
  const body = Buffer.from(rc.directResponse?.body ?? '');
  const direct = rc.directResponse
    ? {
        status: rc.directResponse.status,
        body,
        contentType: rc.directResponse.contentType ?? 'text/plain; charset=utf-8',
        contentLength: String(body.length),
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
    pathPattern: effectiveMatch(rc)?.path,
    destinations: Object.freeze(destinations),
    direct,
    rewrite: compileRewrite(rc),
    filters: Object.freeze(chain.filters),
    consumerChains: chain.consumerChains,
    maxBodyBytes: rc.limits?.maxBodyBytes ?? -1,
    redirectToHttps: rc.redirectToHttps === true,
    sticky: rc.sticky ? compileHashOn(rc.sticky) : null,
    mirror: mirror !== null && mirror.percent > 0 ? mirror : null,
    fault: rc.fault && (rc.fault.delay || rc.fault.abort) ? compileFault(rc.fault) : null,
  });
}

function compileRewrite(rc: RouteConfig): CompiledRewrite | null {
  const rw = rc.rewrite;
  if (!rw) return null;
  const path = effectiveMatch(rc)?.path ?? '';
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
