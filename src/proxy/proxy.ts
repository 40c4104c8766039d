/**
 * One proxy: listeners plus the runtime holding the snapshot in force. The same class runs as the
 * gateway and, with a config from the control plane, as a sidecar.
 */
import type { ShadowReport } from '../api/shadow.ts';
import type { LoadedConfig } from '../config/load.ts';
import { DEFAULT_LISTENER_DRAIN_MS } from '../core/defaults.ts';
import type { PluginCatalog } from '../core/plugin.ts';
import type { Logger } from '../observability/logger.ts';
import type { MetricsRole } from '../observability/metrics.ts';
import type { CompiledListener, Snapshot } from './compiled.ts';
import type { ListenerRuntime, StreamContext } from './context.ts';
import { type IdentityProvider, MeshTls } from './identity/mesh-tls.ts';
import { Listener } from './listener/listener.ts';
import { loadTls, type TlsMaterial } from './listener/tls.ts';
import { Metering, type PreparedMetering } from './metering.ts';
import { Runtime } from './runtime.ts';
import type { ShadowDeps, ShadowOptions } from './shadow/shadow.ts';
import { routerFor } from './snapshot.ts';
import { type PreparedTelemetry, Telemetry } from './telemetry.ts';

export interface ProxyOptions {
  onStreamEnd?: (ctx: StreamContext) => void;
  /** Plugins the config may use (built-in and loaded by path). */
  catalog?: PluginCatalog;
  /** Plugin warnings and errors (a filter that threw). */
  log?: Pick<Logger, 'warn' | 'error'>;
  /** Milliseconds since the epoch, for plugins; tests inject a fake clock. */
  now?: () => number;
  /** `gateway` (default) or `mesh` (a sidecar): the prefix of its metrics. */
  role?: MetricsRole;
  /** Default `service.name` of spans. */
  serviceName?: string;
  /**
   * The proxy's workload identity (a mesh proxy's `WorkloadIdentity`): what `mtls` listeners present and
   * verify callers against, and what connections to services with mutual TLS carry. Absent: a config
   * asking for mutual TLS is refused.
   */
  identity?: IdentityProvider;
  /** Requests remembered for the dashboard's request lookup (default DEFAULT_RECENT_REQUESTS; 0: none). */
  recentRequests?: number;
}

/**
 * A listener's settings, certificates and router, resolved against one snapshot. The listener and the
 * runtime swap them together in one tick, so a request always sees a router of the snapshot it holds.
 */
function listenerRuntime(
  config: CompiledListener,
  tls: TlsMaterial | null,
  snapshot: Snapshot,
  mesh: MeshTls | null,
): ListenerRuntime {
  // compileSnapshot refused mTLS listeners without an identity.
  const meshTls = config.mtls === 'STRICT' || config.mtls === 'PERMISSIVE' ? mesh : null;
  return Object.freeze({
    config,
    scheme: tls === null ? 'http' : 'https',
    encodedSlashes: config.encodedSlashes,
    tls,
    mesh: meshTls,
    verifiesPeers: meshTls !== null || config.tls?.clientCa != null,
    router: routerFor(snapshot, config.name),
  });
}

/** A change made ready by `ProxyServer.prepare`, waiting for `commit` or `discard`. */
/**
 * Which cached responses a purge removes (the cache plugin's PurgeSelector, by shape): one route's or
 * all, and/or those whose key starts with `keyPrefix` (one URL's entries, or a path prefix).
 */
export interface CachePurge {
  route?: string;
  keyPrefix?: string;
}

export interface PreparedChange {
  readonly snapshot: Snapshot;
  /** Listeners bound for it (new, or moved to another address or port). */
  readonly started: ReadonlyMap<string, Listener>;
  readonly tls: ReadonlyMap<string, TlsMaterial | null>;
  readonly telemetry: PreparedTelemetry;
  readonly metering: PreparedMetering;
}

const sameSocket = (a: CompiledListener, b: CompiledListener) => a.port === b.port && a.address === b.address;

export class ProxyServer {
  readonly runtime: Runtime;
  /** Mutual TLS with the workload identity, when the proxy has one. */
  readonly mesh: MeshTls | null;
  /** Usage metering (`metering`): its recorder outlives snapshots, like the telemetry. */
  readonly metering: Metering;
  private readonly listeners = new Map<string, Listener>();
  private draining = false;

  /** Plugin state that outlives snapshots (see PluginDeps.shared). */
  private shared = new SharedPluginState();
  /** What compiling a shadow config uses (its plugin state is its own). */
  private shadowDeps: ShadowDeps = { now: Date.now, warn: () => {} };

  private constructor(runtime: Runtime, mesh: MeshTls | null, metering: Metering) {
    this.runtime = runtime;
    this.mesh = mesh;
    this.metering = metering;
  }

  static async start(loaded: LoadedConfig, options: ProxyOptions = {}): Promise<ProxyServer> {
    // State plugins keep across reloads (rate-limit counters, key caches) lives while configs use it.
    const shared = new SharedPluginState();
    const log = options.log;
    const telemetry = new Telemetry(options.role ?? 'gateway', options.serviceName, options.recentRequests);
    const mesh = options.identity === undefined ? null : new MeshTls(options.identity, log);
    const deps = {
      catalog: options.catalog,
      ...(mesh !== null && { mesh }),
      plugins: {
        now: options.now ?? Date.now,
        warn: (message: string, fields?: Record<string, unknown>) => log?.warn(fields ?? {}, message),
        shared: <T>(key: string, create: () => T): T => shared.get(key, create),
        counter: (name: string, help: string, labelNames: readonly string[]) =>
          telemetry.metrics.pluginCounter(name, help, labelNames),
      },
    };
    await telemetry.configure(loaded.config.observability);
    const metering = new Metering(deps.plugins.now, log);
    try {
      metering.commit(await metering.prepare(loaded.config));
    } catch (e) {
      mesh?.close();
      await telemetry.close();
      throw e;
    }
    const onStreamEnd = options.onStreamEnd;
    const record = (ctx: StreamContext) => {
      telemetry.record(ctx);
      metering.record(ctx);
      onStreamEnd?.(ctx);
    };
    let runtime: Runtime;
    try {
      runtime = await Runtime.create(loaded, deps, record, (ctx, plugin, error) =>
        log?.error(
          { requestId: ctx.requestId, plugin, err: (error as Error)?.message ?? String(error) },
          'plugin failed',
        ),
      );
    } catch (e) {
      mesh?.close();
      await metering.close();
      throw e;
    }
    runtime.telemetry = telemetry;
    telemetry.watch(() => runtime.snapshot);
    if (mesh !== null) telemetry.watchMtls(mesh);
    const proxy = new ProxyServer(runtime, mesh, metering);
    proxy.shared = shared;
    proxy.shadowDeps = {
      ...(options.catalog === undefined ? {} : { catalog: options.catalog }),
      ...(mesh === null ? {} : { mesh }),
      now: deps.plugins.now,
      warn: deps.plugins.warn,
    };
    try {
      for (const l of proxy.runtime.snapshot.listeners) {
        const tls = l.tls === null ? null : await loadTls(l.tls, l.name);
        const listener = new Listener(proxy.runtime, listenerRuntime(l, tls, proxy.runtime.snapshot, mesh));
        await listener.listen();
        proxy.listeners.set(l.name, listener);
      }
    } catch (e) {
      await proxy.close(0);
      throw e;
    }
    return proxy;
  }

  get snapshot(): Snapshot {
    return this.runtime.snapshot;
  }

  get isDraining(): boolean {
    return this.draining;
  }

  /** Bound ports by listener name. */
  ports(): Record<string, number> {
    return Object.fromEntries([...this.listeners].map(([name, l]) => [name, l.port]));
  }

  get telemetry(): Telemetry {
    return this.runtime.telemetry!;
  }

  /** `prepare` then `commit`: the whole change in this process. */
  async apply(loaded: LoadedConfig, drainMs = DEFAULT_LISTENER_DRAIN_MS): Promise<Snapshot> {
    const prepared = await this.prepare(loaded);
    this.commit(prepared, drainMs);
    return prepared.snapshot;
  }

  /**
   * Does everything a new config needs that can fail, changing nothing in force: compiles the
   * snapshot, reads certificates, binds new or moved listeners (a request there is served by the
   * snapshot in force until the commit), builds the access log and tracing it asks for. Throws (having
   * undone its work) if any of it fails. At most one change is prepared at a time; it must be followed
   * by `commit` or `discard`.
   */
  async prepare(loaded: LoadedConfig): Promise<PreparedChange> {
    this.shared.beginBuild();
    const snapshot = await this.runtime.prepare(loaded);
    const next = snapshot.listeners;
    const current = new Map(this.runtime.snapshot.listeners.map((l) => [l.name, l]));
    const started = new Map<string, Listener>();
    const tls = new Map<string, TlsMaterial | null>();
    let telemetry: PreparedTelemetry | undefined;
    let metering: PreparedMetering;
    try {
      // Certificates are read before anything changes: a missing or broken file rejects the whole config.
      for (const l of next) tls.set(l.name, l.tls === null ? null : await loadTls(l.tls, l.name));
      // A listener kept open may switch engine at the commit: the lean engine's code is loaded by then.
      if (next.some((l) => l.engine === 'lean')) await Listener.loadLean();
      for (const l of next) {
        const old = current.get(l.name);
        if (old && sameSocket(old, l) && this.listeners.has(l.name)) continue;
        // Until the commit, a request here is served by the snapshot in force, with its router.
        const listener = new Listener(
          this.runtime,
          listenerRuntime(l, tls.get(l.name)!, this.runtime.snapshot, this.mesh),
        );
        await listener.listen();
        started.set(l.name, listener);
      }
      telemetry = await this.telemetry.prepare(loaded.config.observability);
      metering = await this.metering.prepare(loaded.config);
    } catch (e) {
      if (telemetry !== undefined) this.telemetry.discard(telemetry);
      await Promise.all([...started.values()].map((l) => l.close(0)));
      this.runtime.discard(snapshot);
      throw e;
    }
    return { snapshot, started, tls, telemetry, metering };
  }

  /**
   * Puts a prepared change in force. Nothing awaits: the snapshot, every listener's settings and the
   * telemetry settings change in one tick. Removed or moved listeners drain in the background.
   */
  commit(prepared: PreparedChange, drainMs = DEFAULT_LISTENER_DRAIN_MS): void {
    const { snapshot, started, tls } = prepared;
    this.runtime.commit(snapshot);
    this.telemetry.commit(prepared.telemetry);
    this.metering.commit(prepared.metering);
    this.shared.closeUnused();
    const retired: Listener[] = [];
    for (const [name, listener] of this.listeners) {
      if (started.has(name) || !snapshot.listeners.some((l) => l.name === name)) retired.push(listener);
    }
    for (const [name, listener] of started) this.listeners.set(name, listener);
    for (const listener of retired)
      if (this.listeners.get(listener.name) === listener) this.listeners.delete(listener.name);
    for (const l of snapshot.listeners) {
      const listener = this.listeners.get(l.name);
      if (listener) listener.runtime = listenerRuntime(l, tls.get(l.name)!, snapshot, this.mesh);
    }
    for (const listener of retired) void listener.close(drainMs);
  }

  /** Undoes a prepared change that will not be committed (another worker refused it). */
  async discard(prepared: PreparedChange): Promise<void> {
    this.telemetry.discard(prepared.telemetry);
    this.metering.discard(prepared.metering);
    this.runtime.discard(prepared.snapshot);
    await Promise.all([...prepared.started.values()].map((l) => l.close(0)));
  }

  /**
   * Removes cached responses (of one route or all, and/or under a key prefix: one URL, or a path
   * prefix) from every response cache the config in force uses (plugin state with a `purgeCache`
   * method): how many went, and why a cache could not be purged (a shared store that is unreachable).
   * Never rejects.
   */
  async purgeCaches(selector: CachePurge = {}): Promise<{ removed: number; errors: string[] }> {
    let removed = 0;
    const errors: string[] = [];
    for (const value of this.shared.all()) {
      const cache = value as { purgeCache?: (selector: CachePurge) => number | Promise<number> };
      if (typeof cache.purgeCache !== 'function') continue;
      try {
        removed += await cache.purgeCache(selector);
      } catch (e) {
        errors.push((e as Error)?.message ?? String(e));
      }
    }
    return { removed, errors };
  }

  /**
   * Compiles `loaded` (validated) as the shadow config and puts it beside the live one, replacing any
   * shadow set before; throws, leaving things as they were, if it does not compile. The live snapshot,
   * its services and its plugin state are not touched. Docs: docs/shadow.md.
   */
  async setShadow(loaded: LoadedConfig, options: ShadowOptions): Promise<ShadowReport> {
    // The shadow's code is loaded by the first proxy that gets one.
    const { startShadow } = await import('./shadow/shadow.ts');
    const next = await startShadow(loaded, this.shadowDeps, options);
    const previous = this.runtime.shadow;
    this.runtime.shadow = next;
    previous?.close();
    return next.report();
  }

  /** Removes the shadow config: requests stop being evaluated by it. Its last report, or null when none was set. */
  clearShadow(): ShadowReport | null {
    const shadow = this.runtime.shadow;
    if (shadow === null) return null;
    this.runtime.shadow = null;
    shadow.close();
    return shadow.report();
  }

  /** The shadow's counts and examples so far, or null when none is set. */
  shadowReport(): ShadowReport | null {
    return this.runtime.shadow?.report() ?? null;
  }

  /** Stops accepting, drains in-flight requests up to `drainMs`, then closes upstream connections. */
  async close(drainMs: number): Promise<void> {
    this.draining = true;
    await Promise.all([...this.listeners.values()].map((l) => l.close(drainMs)));
    this.listeners.clear();
    await this.runtime.close();
    // After the drain: the requests that finished during it are counted in the last flush.
    await this.metering.close();
    this.mesh?.close();
    this.clearShadow();
    this.shared.closeAll();
    await this.runtime.telemetry?.close();
  }
}

/**
 * PluginDeps.shared: state that outlives snapshots (rate-limit counters, response caches, JWKS sets
 * with their refresh timers). Each entry remembers the last config build that asked for it; once a
 * config is in force, entries it did not ask for are closed and forgotten (a removed JWKS URL stops
 * being fetched, a changed cache's old store is freed). Requests of the previous snapshot still hold
 * the objects they were compiled with.
 */
class SharedPluginState {
  private readonly values = new Map<string, unknown>();
  private readonly askedBy = new Map<string, number>();
  private build = 0;

  get<T>(key: string, create: () => T): T {
    this.askedBy.set(key, this.build);
    if (!this.values.has(key)) this.values.set(key, create());
    return this.values.get(key) as T;
  }

  all(): Iterable<unknown> {
    return this.values.values();
  }

  /** A new config is about to be compiled: what it asks for is marked with its build. */
  beginBuild(): void {
    this.build++;
  }

  /** The config built last is in force: close what it did not ask for. */
  closeUnused(): void {
    for (const [key, build] of this.askedBy)
      if (build < this.build) {
        close(this.values.get(key));
        this.values.delete(key);
        this.askedBy.delete(key);
      }
  }

  closeAll(): void {
    for (const value of this.values.values()) close(value);
    this.values.clear();
    this.askedBy.clear();
  }
}

function close(value: unknown): void {
  (value as { close?: () => void } | undefined)?.close?.();
}
