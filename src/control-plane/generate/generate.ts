/**
 * Per-proxy config: a pure function of (model, registry view, proxy identity) → Config, in the very
 * schema a gateway file uses, so the proxy validates and applies it like any other config.
 *
 * Output is deterministic (services by name, instances by id): equal inputs give equal bytes and so
 * equal versions, which is how the control plane knows a proxy needs nothing new. Golden files in
 * test/golden/ pin the output.
 */
import type { Config, EndpointConfig, RouteConfig, ServiceConfig } from '../../api/config.ts';
import type { Instance, ProxyIdentity } from '../../api/mesh.ts';
import { hashConfig } from '../../config/load.ts';
import {
  DEFAULT_SIDECAR_ADDRESS,
  DEFAULT_SIDECAR_INBOUND_PORT,
  DEFAULT_SIDECAR_OUTBOUND_PORT,
} from '../../core/defaults.ts';
import { serviceIdentities, serviceMtlsMode } from '../../core/mtls.ts';
import { INBOUND, inboundServiceName, OUTBOUND, outboundRouteName } from '../model/model.ts';

export interface GeneratedConfig {
  config: Config;
  /** Hash of `config` (the push version). */
  version: string;
}

export function generateProxyConfig(
  model: Config,
  instances: readonly Instance[],
  proxy: ProxyIdentity,
): GeneratedConfig {
  const config = proxy.kind === 'gateway' ? gatewayConfig(model, instances) : sidecarConfig(model, instances, proxy);
  return { config, version: hashConfig(config) };
}

/**
 * The gateway serves the model's listeners and routes, with discovered endpoints for its services, and
 * takes the model's consumers and global plugins (its routes' authentication needs them), their plans,
 * usage metering, the shared Redis and its observability settings.
 */
function gatewayConfig(model: Config, instances: readonly Instance[]): Config {
  const routes = model.routes ?? [];
  const names = new Set<string>();
  for (const r of routes) for (const d of destinationsOf(r)) names.add(d);
  return {
    listeners: (model.listeners ?? []).map((l) => ({ ...l })),
    services: [...names].sort().map((name) => meshService(model, instances, name)),
    routes: routes.map((r) => structuredClone(r) as RouteConfig),
    ...(model.consumers ? { consumers: structuredClone(model.consumers) as Config['consumers'] } : {}),
    ...(model.plugins ? { plugins: structuredClone(model.plugins) as Config['plugins'] } : {}),
    // What the front door's consumers may use and how their usage is kept: the gateway's alone.
    ...(model.plans ? { plans: structuredClone(model.plans) as Config['plans'] } : {}),
    ...(model.metering ? { metering: { ...model.metering } } : {}),
    ...(model.redis ? { redis: { ...model.redis } } : {}),
    ...observabilityOf(model),
  };
}

/** Every proxy reports the same way: the model's access log, tracing and timing settings go to each. */
function observabilityOf(model: Config): Pick<Config, 'observability'> {
  return model.observability ? { observability: structuredClone(model.observability) as Config['observability'] } : {};
}

/**
 * A sidecar has two listeners. `inbound` (the registered address) forwards everything to the app,
 * under the service's own policy. `outbound` (loopback) is where the app calls other services by
 * name: for each service it may call, the model's routes whose `hosts` name that service (canaries,
 * splits), then a default route on the name itself. Consumers and global plugins are the gateway's
 * (authentication of API clients), not a sidecar's.
 */
function sidecarConfig(model: Config, instances: readonly Instance[], proxy: ProxyIdentity): Config {
  const self = proxy.service ?? proxy.id;
  const scope = proxy.upstreams ? [...proxy.upstreams].sort() : allServiceNames(model, instances);
  // Host matching ignores case, so scope does too.
  const inScope = new Set(scope.map((n) => n.toLowerCase()));
  const meshRoutes = (model.routes ?? []).filter(
    (r) => r.listeners === undefined && r.match?.hosts?.some((h) => inScope.has(h.toLowerCase())),
  );
  const services = new Set(scope);
  for (const r of meshRoutes) for (const d of destinationsOf(r)) services.add(d);

  const own = (model.services ?? []).find((s) => s.name === self);
  const inbound: ServiceConfig = {
    name: inboundServiceName(self),
    endpoints: proxy.app ? [{ url: proxy.app.replace(/\/$/, '') }] : [],
    // The service's inbound policy. Retries and balancing are the caller's business, so only what
    // applies on arrival is taken over.
    ...(own?.timeouts ? { timeouts: { ...own.timeouts } } : {}),
  };
  return {
    listeners: [
      {
        name: INBOUND,
        port: proxy.inboundPort ?? DEFAULT_SIDECAR_INBOUND_PORT,
        address: proxy.address ?? DEFAULT_SIDECAR_ADDRESS,
        // What callers must offer: the service's own mode (it is the server of this hop).
        ...(model.mesh ? { mtls: { mode: serviceMtlsMode(model, own ?? {}) } } : {}),
      },
      // The app is on this host: the outbound listener is never reachable from elsewhere.
      { name: OUTBOUND, port: proxy.outboundPort ?? DEFAULT_SIDECAR_OUTBOUND_PORT, address: '127.0.0.1' },
    ],
    services: [inbound, ...[...services].sort().map((name) => meshService(model, instances, name))],
    routes: [
      { name: INBOUND, listeners: [INBOUND], service: inbound.name },
      ...meshRoutes.map((r) => {
        const { name, ...rest } = structuredClone(r) as RouteConfig;
        return { name, listeners: [OUTBOUND], ...rest };
      }),
      ...scope.map((name) => ({
        name: outboundRouteName(name),
        listeners: [OUTBOUND],
        match: { hosts: [name] },
        service: name,
      })),
    ],
    ...authorizationOf(model, self, inbound.name),
    ...observabilityOf(model),
  };
}

/**
 * The policies a sidecar enforces: its own service's and the mesh-wide ones, all bound to its inbound
 * service, so they apply to calls arriving for the app and never to the app's own outbound calls.
 * The gateway gets none: a service's policies are enforced by its own sidecars, where the caller's
 * workload identity is known.
 */
function authorizationOf(model: Config, self: string, inbound: string): Pick<Config, 'authorizationPolicies'> {
  const own = (model.authorizationPolicies ?? []).filter((p) => p.service === undefined || p.service === self);
  if (own.length === 0) return {};
  return {
    authorizationPolicies: own.map((p) => ({ ...(structuredClone(p) as typeof p), service: inbound })),
  };
}

/** Every service the mesh knows: declared in the model or registered. */
function allServiceNames(model: Config, instances: readonly Instance[]): string[] {
  const names = new Set((model.services ?? []).map((s) => s.name));
  for (const i of instances) names.add(i.service);
  return [...names].sort();
}

/**
 * A service as the model defines it (every policy field carried over, so fields added to the schema
 * later reach proxies untouched), with its healthy registered instances after its static endpoints.
 * A service only the registry knows gets default policies.
 */
function meshService(model: Config, instances: readonly Instance[], name: string): ServiceConfig {
  const declared = (model.services ?? []).find((s) => s.name === name);
  const service: ServiceConfig = declared ? (structuredClone(declared) as ServiceConfig) : { name, endpoints: [] };
  const discovered: EndpointConfig[] = [];
  for (const i of instances) {
    if (i.service !== name || i.health !== 'healthy') continue;
    discovered.push({
      url: `http://${i.address.includes(':') ? `[${i.address}]` : i.address}:${i.port}`,
      ...(Object.keys(i.labels).length > 0 ? { labels: { ...i.labels } } : {}),
    });
  }
  service.endpoints = [...(service.endpoints ?? []), ...discovered];
  // The proxy gets the mode and the identities spelled out: its config has no `mesh` to derive them from.
  if (model.mesh) {
    const mode = serviceMtlsMode(model, service);
    service.mtls =
      mode === 'DISABLE' ? { mode } : { mode, identities: serviceIdentities(model, { name, mtls: service.mtls }) };
  }
  return service;
}

function destinationsOf(route: RouteConfig): string[] {
  if (route.service !== undefined) return [route.service];
  if (route.aggregate !== undefined) return route.aggregate.calls.map((c) => c.service);
  if (route.graphql !== undefined) return [route.graphql.service];
  if (route.transcode !== undefined) return [route.transcode.service];
  return (route.destinations ?? []).map((d) => d.service);
}
