/**
 * Snapshot: the compiled, frozen form of one validated Config, built once per config version.
 * The request path only reads it; a reload builds a new one and swaps one reference (runtime.ts).
 */

import { dirname, resolve } from 'node:path';
import type { Config, ListenerConfig, RouteConfig, ServiceConfig } from '../api/config.ts';
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
import { listenerEngine } from '../core/listener-engine.ts';
import { serviceIdentities, serviceMtlsMode } from '../core/mtls.ts';
import type { PluginCatalog } from '../core/plugin.ts';
import { actionServiceNames, actionServices, compileAction } from './actions/index.ts';
import { httpsRedirect } from './actions/redirect/action.ts';
import { compilePolicies, withAuthorization } from './authz/filter.ts';
import { type ChainDepsBase, createChainCompiler } from './chain/compile.ts';
import type { CompiledFilter, CompiledListener, CompiledRoute, Snapshot } from './compiled.ts';
import { type MeshTls, UpstreamTls } from './identity/mesh-tls.ts';
import type { PlanTable } from './plans/filter.ts';
import { effectiveMatch, Router } from './router/router.ts';
import { UpstreamService as Service, serviceHash, type UpstreamService } from './upstream/service.ts';
import { compileVersion } from './versioning.ts';

/** What compiling needs besides the config: where plugins come from and how they reach shared state. */
export interface CompileDeps {
  catalog?: PluginCatalog;
  plugins: ChainDepsBase;
  /** The proxy's workload identity, for mutual TLS; a config asking for mTLS without one is refused. */
  mesh?: MeshTls;
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
  checkMeshListeners(config, deps.mesh);
  const services = new Map<string, UpstreamService>();
  for (const sc of config.services ?? []) {
    const old = previous?.services.get(sc.name);
    let tls: UpstreamTls | undefined;
    try {
      tls = upstreamTlsOf(config, sc, deps.mesh);
    } catch (e) {
      for (const service of services.values()) if (--service.refs === 0) void service.close();
      throw e;
    }
    // The mesh-wide mode lives outside the service's own config, so it takes part in reuse too.
    const reusable = old && old.hash === serviceHash(sc) && old.tls?.key === tls?.key && old.tls?.mesh === tls?.mesh;
    const service = reusable ? old : new Service(sc, { previous: old, ...(tls !== undefined && { tls }) });
    service.refs++;
    services.set(sc.name, service);
  }
  let routes: CompiledRoute[];
  let plans: PlanTable | null = null;
  try {
    const chains = createChainCompiler(config, deps.catalog, deps.plugins);
    const policies = compilePolicies(config);
    // Plans' code is loaded only by a config that puts a consumer on a plan.
    if (usesPlans(config)) plans = await (await import('./plans/filter.ts')).compilePlans(config, deps.plugins);
    routes = await Promise.all(
      (config.routes ?? []).map(async (rc) => {
        const names = actionServiceNames(rc);
        const chain = withAuthorization(await chains.compileRoute(rc, names), policies, names);
        return compileRoute(rc, services, plans === null ? chain : plans.apply(chain, rc));
      }),
    );
  } catch (e) {
    for (const service of services.values()) if (--service.refs === 0) void service.close();
    throw e;
  }
  const routerOf = (keep: (r: CompiledRoute) => boolean) =>
    new Router(
      routes.flatMap((r, order) =>
        keep(r) ? [{ match: effectiveMatch(r.config), order, priority: r.config.priority, value: r }] : [],
      ),
    );
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
    plans,
  });
}

/** Whether a consumer is on a plan: only then is the plans' filter compiled and added. */
function usesPlans(config: Config): boolean {
  return (config.consumers ?? []).some((c) => c.plan !== undefined);
}

/** Mutual TLS towards a service, or undefined for plaintext; throws when the config asks for what cannot be. */
function upstreamTlsOf(config: Config, sc: ServiceConfig, mesh: MeshTls | undefined): UpstreamTls | undefined {
  const mode = serviceMtlsMode(config, sc);
  if (mode === 'DISABLE') return undefined;
  if (mesh === undefined)
    throw new Error(
      `service ${sc.name}: mtls mode ${mode} needs a workload identity, and this proxy has none ` +
        "(set the service's mtls.mode to DISABLE, or run the proxy in the mesh)",
    );
  const identities = serviceIdentities(config, sc, mesh.trustDomain);
  return new UpstreamTls(mesh, identities);
}

function checkMeshListeners(config: Config, mesh: MeshTls | undefined): void {
  if (mesh !== undefined) return;
  for (const l of config.listeners ?? [])
    if (l.mtls !== undefined && l.mtls.mode !== 'DISABLE')
      throw new Error(
        `listener ${l.name}: mtls mode ${l.mtls.mode} needs a workload identity, and this proxy has none`,
      );
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
    mtls: l.mtls?.mode ?? null,
    http2: l.http2 ?? tls !== null,
    engine: listenerEngine(l),
    redirectToHttps: l.redirectToHttps ?? false,
    httpsPort: l.httpsPort ?? DEFAULT_HTTPS_PORT,
    httpsRedirect: httpsRedirect(l.httpsPort ?? DEFAULT_HTTPS_PORT),
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

function compileRoute(
  rc: RouteConfig,
  services: ReadonlyMap<string, UpstreamService>,
  chain: { filters: readonly CompiledFilter[]; consumerChains: CompiledRoute['consumerChains'] },
): CompiledRoute {
  const action = compileAction(rc, services);
  return Object.freeze({
    name: rc.name,
    config: rc,
    pathPattern: effectiveMatch(rc)?.path,
    action,
    services: Object.freeze(actionServices(action)),
    filters: Object.freeze(chain.filters),
    consumerChains: chain.consumerChains,
    maxBodyBytes: rc.limits?.maxBodyBytes ?? -1,
    redirectToHttps: rc.redirectToHttps === true,
    version: compileVersion(rc.version),
  });
}

/** The router a listener uses in this snapshot. */
export function routerFor(snapshot: Snapshot, listener: string): Router<CompiledRoute> {
  return snapshot.listenerRouters.get(listener) ?? snapshot.router;
}
