/**
 * Incremental generation (Kuma's hashed mesh context, Istio's Sidecar scoping): the model is indexed
 * once per version, the registry is kept by service, and what proxies receive is assembled from
 * parts built once and shared:
 *
 * - a **service fragment** (one service as every proxy receives it: the model's policies, its healthy
 *   instances as endpoints, its mTLS) is built once per change of that service, and shared by every
 *   config that includes it;
 * - a **config** is cached by the inputs that decide it (the proxy's identity without its id): proxies
 *   with equal inputs share one config object, one version, one hash computation;
 * - each config records which services it **depends on** (`dependsOn`), or that it depends on the
 *   whole mesh (a sidecar whose service has no `dependsOn` and that names no `--egress`), so a registry change to service A regenerates
 *   only the configs that include A.
 *
 * Every part is deeply frozen and its canonical JSON is kept with it, so a version (the hash of the
 * config's canonical JSON, the same as `hashConfig`, which the proxy computes) costs one pass of
 * SHA-256 over text already made, not a walk of the whole config.
 *
 * The output is exactly `generateProxyConfig`'s (it is built on this class): golden files in
 * test/golden/ pin it, and a test replays registry events against the pure function.
 */
import { createHash } from 'node:crypto';
import type { Config, EndpointConfig, RouteConfig, ServiceConfig } from '../../api/config.ts';
import type { Instance, ProxyIdentity } from '../../api/mesh.ts';
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

/** A generated config with what it was made from. Shared by every proxy with the same inputs: never change it. */
export interface ProxyConfig extends GeneratedConfig {
  /**
   * The services whose registry changes can change this config, sorted; null: every service (a
   * sidecar without `dependsOn` or `--egress`, so a service appearing or leaving changes it too).
   */
  readonly dependsOn: readonly string[] | null;
}

/** A registry change as the context applies it. */
export interface InstanceChange {
  type: 'registered' | 'updated' | 'deregistered' | 'expired';
  instance: Instance;
}

/** What the model says, indexed once per model version. */
interface ModelIndex {
  readonly model: Config;
  readonly declared: ReadonlyMap<string, ServiceConfig>;
  /** Routes without `listeners` that name hosts: they go to the sidecars that may call those hosts. */
  readonly meshRoutes: readonly { route: RouteConfig; hosts: ReadonlySet<string> }[];
  /** The gateway's config but its services, and the services its routes name. */
  gateway: { parts: Omit<Config, 'services'>; services: readonly string[] } | null;
  /** Per sidecar service: the policies bound to its inbound service. */
  readonly authorization: Map<string, Pick<Config, 'authorizationPolicies'>>;
  readonly observability: Pick<Config, 'observability'>;
}

/** A sidecar's config but its services: decided by the model and the services it may call. */
interface SidecarShape {
  /** The model-wide name list it was made with (whole-mesh sidecars change shape when names do). */
  namesVersion: number;
  listeners: Config['listeners'];
  routes: Config['routes'];
  inbound: ServiceConfig;
  /** The services after `inbound`, sorted. */
  services: readonly string[];
  rest: Pick<Config, 'authorizationPolicies' | 'observability'>;
}

interface CacheEntry {
  generated: ProxyConfig;
  /** The registry generation of each service in `dependsOn` when it was made (or the global one, for whole-mesh). */
  stamp: number[];
  shape: SidecarShape | null;
}

export class MeshContext {
  private index: ModelIndex;
  private readonly byService = new Map<string, Instance[]>();
  private readonly byId = new Map<string, Instance>();
  /** Bumped per change of a service's instances; absent is 0. */
  private readonly serviceGeneration = new Map<string, number>();
  /** Bumped per registry change of any service. */
  private generation = 0;
  /** Bumped when a service gains its first instance or loses its last (the mesh's names may change). */
  private namesVersion = 0;
  private names: { version: number; list: readonly string[] } | null = null;
  private flat: readonly Instance[] | null = null;
  private readonly fragments = new Map<string, { generation: number; service: ServiceConfig }>();
  private readonly configs = new Map<string, CacheEntry>();
  private readonly keys = new WeakMap<ProxyIdentity, string>();
  /** Canonical JSON of shared frozen parts (fragments, shapes). */
  private readonly canonicalText = new WeakMap<object, string>();

  constructor(model: Config, instances: readonly Instance[] = []) {
    this.index = indexModel(model);
    for (const i of instances) this.apply({ type: 'registered', instance: i });
  }

  /** A new model: every part is rebuilt on demand. */
  setModel(model: Config): void {
    this.index = indexModel(model);
    this.fragments.clear();
    this.configs.clear();
    // The model declares services too: the mesh's names may change with it.
    this.namesVersion++;
  }

  /** Applies a registry event; returns the services whose instances changed (one, or two when an id moved). */
  apply(event: InstanceChange): string[] {
    const i = event.instance;
    const touched = new Set<string>();
    const old = this.byId.get(i.id);
    if (old) {
      this.remove(old);
      touched.add(old.service);
    }
    if (event.type === 'registered' || event.type === 'updated') {
      this.insert(i);
      touched.add(i.service);
    }
    for (const s of touched) this.serviceGeneration.set(s, (this.serviceGeneration.get(s) ?? 0) + 1);
    this.generation++;
    this.flat = null;
    return [...touched];
  }

  /** Every instance, ordered by service then id. */
  instances(): readonly Instance[] {
    if (this.flat === null) {
      const list: Instance[] = [];
      for (const name of [...this.byService.keys()].sort()) list.push(...this.byService.get(name)!);
      this.flat = list;
    }
    return this.flat;
  }

  instance(id: string): Instance | undefined {
    return this.byId.get(id);
  }

  instancesOf(service: string): readonly Instance[] {
    return this.byService.get(service) ?? [];
  }

  /** The proxy's config for the model and registry in force; the same object while nothing it depends on changed. */
  generate(proxy: ProxyIdentity): ProxyConfig {
    const key = this.keyOf(proxy);
    const cached = this.configs.get(key);
    if (cached && this.fresh(cached)) return cached.generated;
    const entry = proxy.kind === 'gateway' ? this.gateway() : this.sidecar(proxy, cached?.shape ?? null);
    this.configs.set(key, entry);
    return entry.generated;
  }

  private fresh(entry: CacheEntry): boolean {
    const deps = entry.generated.dependsOn;
    if (deps === null) return entry.stamp[0] === this.generation;
    for (let n = 0; n < deps.length; n++)
      if ((this.serviceGeneration.get(deps[n]!) ?? 0) !== entry.stamp[n]) return false;
    return true;
  }

  private stampOf(deps: readonly string[] | null): number[] {
    return deps === null ? [this.generation] : deps.map((d) => this.serviceGeneration.get(d) ?? 0);
  }

  /** Forgets the config made for `proxy`'s inputs (when no proxy with those inputs is left). */
  drop(proxy: ProxyIdentity): void {
    this.configs.delete(this.keyOf(proxy));
  }

  /** The inputs that decide a config, as a key: equal keys get the same config. */
  keyOf(proxy: ProxyIdentity): string {
    let key = this.keys.get(proxy);
    if (key === undefined) {
      key =
        proxy.kind === 'gateway'
          ? 'gateway'
          : JSON.stringify([
              proxy.service ?? null,
              proxy.service === undefined ? proxy.id : null,
              proxy.address ?? null,
              proxy.inboundPort ?? null,
              proxy.outboundPort ?? null,
              proxy.app ?? null,
              proxy.upstreams ? [...proxy.upstreams].sort() : null,
            ]);
      this.keys.set(proxy, key);
    }
    return key;
  }

  /**
   * The gateway serves the model's listeners and routes, with discovered endpoints for its services, and
   * takes the model's consumers and global plugins (its routes' authentication needs them), their plans,
   * usage metering, the shared Redis and its observability settings.
   */
  private gateway(): CacheEntry {
    const index = this.index;
    if (index.gateway === null) {
      const model = index.model;
      const routes = model.routes ?? [];
      const names = new Set<string>();
      for (const r of routes) for (const d of destinationsOf(r)) names.add(d);
      index.gateway = {
        parts: this.frozen({
          listeners: (model.listeners ?? []).map((l) => ({ ...l })),
          routes: routes.map((r) => structuredClone(r) as RouteConfig),
          ...(model.consumers ? { consumers: structuredClone(model.consumers) as Config['consumers'] } : {}),
          ...(model.plugins ? { plugins: structuredClone(model.plugins) as Config['plugins'] } : {}),
          // What the front door's consumers may use and how their usage is kept: the gateway's alone.
          ...(model.plans ? { plans: structuredClone(model.plans) as Config['plans'] } : {}),
          ...(model.metering ? { metering: { ...model.metering } } : {}),
          ...(model.redis ? { redis: { ...model.redis } } : {}),
          ...index.observability,
        }),
        services: [...names].sort(),
      };
    }
    const { parts, services } = index.gateway;
    const { listeners, ...rest } = parts;
    const config: Config = { listeners, services: services.map((name) => this.fragment(name)), ...rest };
    return { generated: this.finish(config, services), stamp: this.stampOf(services), shape: null };
  }

  /**
   * A sidecar has two listeners. `inbound` (the registered address) forwards everything to the app,
   * under the service's own policy. `outbound` (loopback) is where the app calls other services by
   * name: for each service it may call, the model's routes whose `hosts` name that service (canaries,
   * splits), then a default route on the name itself. Consumers and global plugins are the gateway's
   * (authentication of API clients), not a sidecar's.
   */
  private sidecar(proxy: ProxyIdentity, previous: SidecarShape | null): CacheEntry {
    const wholeMesh = this.egress(proxy) === null;
    // Only the services change with the registry; the rest is kept while the names it was made from are.
    const shape =
      previous !== null && (!wholeMesh || previous.namesVersion === this.namesVersion)
        ? previous
        : this.sidecarShape(proxy);
    const config: Config = {
      listeners: shape.listeners,
      services: [shape.inbound, ...shape.services.map((name) => this.fragment(name))],
      routes: shape.routes,
      ...shape.rest,
    };
    const deps = wholeMesh ? null : shape.services;
    return { generated: this.finish(config, deps), stamp: this.stampOf(deps), shape };
  }

  private sidecarShape(proxy: ProxyIdentity): SidecarShape {
    const index = this.index;
    const self = proxy.service ?? proxy.id;
    const scope = this.egress(proxy) ?? this.allServiceNames();
    // Host matching ignores case, so scope does too.
    const inScope = new Set(scope.map((n) => n.toLowerCase()));
    const meshRoutes = index.meshRoutes.filter((r) => [...r.hosts].some((h) => inScope.has(h))).map((r) => r.route);
    const services = new Set(scope);
    for (const r of meshRoutes) for (const d of destinationsOf(r)) services.add(d);

    const declaredSelf = index.declared.get(self);
    const inbound: ServiceConfig = {
      name: inboundServiceName(self),
      endpoints: proxy.app ? [{ url: proxy.app.replace(/\/$/, '') }] : [],
      // The service's inbound policy. Retries and balancing are the caller's business, so only what
      // applies on arrival is taken over.
      ...(declaredSelf?.timeouts ? { timeouts: { ...declaredSelf.timeouts } } : {}),
    };
    let authorization = index.authorization.get(self);
    if (authorization === undefined)
      index.authorization.set(self, (authorization = authorizationOf(index.model, self, inbound.name)));
    const model = index.model;
    const shape: SidecarShape = this.frozen({
      namesVersion: this.namesVersion,
      listeners: [
        {
          name: INBOUND,
          port: proxy.inboundPort ?? DEFAULT_SIDECAR_INBOUND_PORT,
          address: proxy.address ?? DEFAULT_SIDECAR_ADDRESS,
          // What callers must offer: the service's own mode (it is the server of this hop).
          ...(model.mesh ? { mtls: { mode: serviceMtlsMode(model, declaredSelf ?? {}) } } : {}),
        },
        // The app is on this host: the outbound listener is never reachable from elsewhere.
        { name: OUTBOUND, port: proxy.outboundPort ?? DEFAULT_SIDECAR_OUTBOUND_PORT, address: '127.0.0.1' },
      ],
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
      inbound,
      services: [...services].sort(),
      rest: { ...authorization, ...index.observability },
    });
    for (const part of [shape.listeners, shape.routes, shape.inbound, ...Object.values(shape.rest)])
      this.canonical(part);
    return shape;
  }

  /**
   * The services a sidecar may call, sorted: its service's `dependsOn` in the model and its own
   * `--egress` (`upstreams`) together, since either may name a call the other does not know of (a
   * model written before the app's new client, a flag added for one instance). Null: neither says,
   * so the whole mesh.
   */
  private egress(proxy: ProxyIdentity): readonly string[] | null {
    const declared = this.index.declared.get(proxy.service ?? proxy.id)?.dependsOn;
    if (declared === undefined) return proxy.upstreams ? [...proxy.upstreams].sort() : null;
    return [...new Set([...declared, ...(proxy.upstreams ?? [])])].sort();
  }

  /** Every service the mesh knows: declared in the model or registered. */
  private allServiceNames(): readonly string[] {
    if (this.names?.version !== this.namesVersion) {
      const names = new Set(this.index.declared.keys());
      for (const [name, list] of this.byService) if (list.length > 0) names.add(name);
      this.names = { version: this.namesVersion, list: [...names].sort() };
    }
    return this.names.list;
  }

  /**
   * A service as the model defines it (every policy field carried over, so fields added to the schema
   * later reach proxies untouched), with its healthy registered instances after its static endpoints.
   * A service only the registry knows gets default policies. Built once per change of its instances.
   */
  private fragment(name: string): ServiceConfig {
    const generation = this.serviceGeneration.get(name) ?? 0;
    const cached = this.fragments.get(name);
    if (cached?.generation === generation) return cached.service;
    const model = this.index.model;
    const declared = this.index.declared.get(name);
    const service: ServiceConfig = declared ? (structuredClone(declared) as ServiceConfig) : { name, endpoints: [] };
    // What a service calls decides its own sidecars' scope, not how others reach it: callers' configs
    // stay the same when it changes.
    delete service.dependsOn;
    const discovered: EndpointConfig[] = [];
    for (const i of this.byService.get(name) ?? []) {
      if (i.health !== 'healthy') continue;
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
    const frozen = this.frozen(service);
    this.canonical(frozen);
    this.fragments.set(name, { generation, service: frozen });
    return frozen;
  }

  private finish(config: Config, dependsOn: readonly string[] | null): ProxyConfig {
    const frozen = this.frozen(config);
    // The same digest as hashConfig (config/load.ts): canonical JSON, SHA-256, 16 hex digits.
    const version = createHash('sha256').update(this.canonical(frozen, false)).digest('hex').slice(0, 16);
    return Object.freeze({ config: frozen, version, dependsOn });
  }

  /** Canonical JSON (keys sorted at every level), kept for frozen shared parts when `keep`. */
  private canonical(value: unknown, keep = true): string {
    if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
    const known = this.canonicalText.get(value);
    if (known !== undefined) return known;
    let text: string;
    if (Array.isArray(value)) text = `[${value.map((v) => this.canonical(v, false)).join(',')}]`;
    else {
      const record = value as Record<string, unknown>;
      text = `{${Object.keys(record)
        .sort()
        .map((k) => `${JSON.stringify(k)}:${this.canonical(record[k], false)}`)
        .join(',')}}`;
    }
    if (keep && Object.isFrozen(value)) this.canonicalText.set(value, text);
    return text;
  }

  private frozen<T>(value: T): T {
    if (value && typeof value === 'object' && !Object.isFrozen(value)) {
      Object.freeze(value);
      for (const v of Object.values(value)) this.frozen(v);
    }
    return value;
  }

  private insert(i: Instance) {
    this.byId.set(i.id, i);
    let list = this.byService.get(i.service);
    if (list === undefined) this.byService.set(i.service, (list = []));
    if (list.length === 0) this.namesVersion++;
    // Kept sorted by id (binary search): endpoints come out in id order.
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (list[mid]!.id < i.id) lo = mid + 1;
      else hi = mid;
    }
    list.splice(lo, 0, i);
  }

  private remove(i: Instance) {
    this.byId.delete(i.id);
    const list = this.byService.get(i.service);
    if (list === undefined) return;
    const at = list.findIndex((x) => x.id === i.id);
    if (at !== -1) list.splice(at, 1);
    if (list.length === 0) {
      this.byService.delete(i.service);
      this.fragments.delete(i.service);
      this.namesVersion++;
    }
  }
}

function indexModel(model: Config): ModelIndex {
  const declared = new Map<string, ServiceConfig>();
  // The first declaration of a name wins, as a linear search would find it.
  for (const s of model.services ?? []) if (!declared.has(s.name)) declared.set(s.name, s);
  return {
    model,
    declared,
    meshRoutes: (model.routes ?? [])
      .filter((r) => r.listeners === undefined && (r.match?.hosts?.length ?? 0) > 0)
      .map((route) => ({ route, hosts: new Set(route.match!.hosts!.map((h) => h.toLowerCase())) })),
    gateway: null,
    authorization: new Map(),
    observability: model.observability
      ? { observability: structuredClone(model.observability) as Config['observability'] }
      : {},
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

export function destinationsOf(route: RouteConfig): string[] {
  if (route.service !== undefined) return [route.service];
  if (route.aggregate !== undefined) return route.aggregate.calls.map((c) => c.service);
  if (route.graphql !== undefined) return [route.graphql.service];
  if (route.transcode !== undefined) return [route.transcode.service];
  return (route.destinations ?? []).map((d) => d.service);
}
