/**
 * One proxy: listeners plus the runtime holding the snapshot in force. The same class runs as the
 * gateway and, with a config from the control plane, as a sidecar.
 */
import type { LoadedConfig } from '../config/load.ts';
import { DEFAULT_LISTENER_DRAIN_MS } from '../core/defaults.ts';
import type { ListenerRuntime, StreamContext } from './context.ts';
import { HttpListener } from './listener/http.ts';
import { Runtime } from './runtime.ts';
import { type CompiledListener, compileListeners, routerFor, type Snapshot } from './snapshot.ts';

export interface ProxyOptions {
  onStreamEnd?: (ctx: StreamContext) => void;
}

/**
 * A listener's settings and router, resolved against one snapshot. The listener and the runtime swap
 * them together in one tick, so a request always sees a router of the snapshot it holds.
 */
function listenerRuntime(config: CompiledListener, snapshot: Snapshot): ListenerRuntime {
  return Object.freeze({
    config,
    scheme: 'http',
    encodedSlashes: 'keep' as const,
    router: routerFor(snapshot, config.name),
  });
}

const sameSocket = (a: CompiledListener, b: CompiledListener) => a.port === b.port && a.address === b.address;

export class ProxyServer {
  readonly runtime: Runtime;
  private readonly listeners = new Map<string, HttpListener>();
  private draining = false;

  private constructor(runtime: Runtime) {
    this.runtime = runtime;
  }

  static async start(loaded: LoadedConfig, options: ProxyOptions = {}): Promise<ProxyServer> {
    const proxy = new ProxyServer(new Runtime(loaded, options.onStreamEnd));
    try {
      for (const l of proxy.runtime.snapshot.listeners) {
        const listener = new HttpListener(proxy.runtime, listenerRuntime(l, proxy.runtime.snapshot));
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

  /**
   * Swaps in a new validated config. New or moved listeners are bound first: if one cannot bind, the
   * change is rejected and nothing changes. Removed listeners drain in the background.
   */
  async apply(loaded: LoadedConfig, drainMs = DEFAULT_LISTENER_DRAIN_MS): Promise<Snapshot> {
    const next = compileListeners(loaded.config);
    const current = new Map(this.runtime.snapshot.listeners.map((l) => [l.name, l]));
    const started = new Map<string, HttpListener>();
    try {
      for (const l of next) {
        const old = current.get(l.name);
        if (old && sameSocket(old, l) && this.listeners.has(l.name)) continue;
        // Until the swap below, a request here is served by the snapshot in force, with its router.
        const listener = new HttpListener(this.runtime, listenerRuntime(l, this.runtime.snapshot));
        await listener.listen();
        started.set(l.name, listener);
      }
    } catch (e) {
      await Promise.all([...started.values()].map((l) => l.close(0)));
      throw e;
    }
    // From here on nothing awaits: the snapshot and every listener's settings change in one tick.
    const snapshot = this.runtime.apply(loaded);
    const retired: HttpListener[] = [];
    for (const [name, listener] of this.listeners) {
      if (started.has(name) || !next.some((l) => l.name === name)) retired.push(listener);
    }
    for (const [name, listener] of started) this.listeners.set(name, listener);
    for (const listener of retired)
      if (this.listeners.get(listener.name) === listener) this.listeners.delete(listener.name);
    for (const l of snapshot.listeners) {
      const listener = this.listeners.get(l.name);
      if (listener) listener.runtime = listenerRuntime(l, snapshot);
    }
    for (const listener of retired) void listener.close(drainMs);
    return snapshot;
  }

  /** Stops accepting, drains in-flight requests up to `drainMs`, then closes upstream connections. */
  async close(drainMs: number): Promise<void> {
    this.draining = true;
    await Promise.all([...this.listeners.values()].map((l) => l.close(drainMs)));
    this.listeners.clear();
    await this.runtime.close();
  }
}
