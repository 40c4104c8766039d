/**
 * The data plane as the gateway command sees it: started with a validated config, given new ones,
 * asked what it holds, drained. Either in this process or in worker processes (cluster/primary.ts),
 * behind one interface so the admin API and the reload logic do not care which.
 */
import type { LoadedConfig } from '../config/load.ts';
import { describeProxy, type ProxyView } from './describe.ts';
import { type ProxyOptions, ProxyServer } from './proxy.ts';

export interface ApplyReport {
  version: number;
  hash: string;
  /** Processes that applied it (1 in process, N workers). */
  applied: number;
}

export interface DataPlane {
  /** Bound ports by listener name. */
  ports(): Record<string, number>;
  readonly isDraining: boolean;
  /** Swaps in a validated config everywhere; rejects (keeping the running one) if it cannot apply. */
  apply(loaded: LoadedConfig): Promise<ApplyReport>;
  /** The view from every process that proxies, one entry each. */
  query(view: ProxyView): Promise<Record<string, unknown>[]>;
  close(drainMs: number): Promise<void>;
}

export class InProcessDataPlane implements DataPlane {
  readonly proxy: ProxyServer;

  constructor(proxy: ProxyServer) {
    this.proxy = proxy;
  }

  static async start(loaded: LoadedConfig, options: ProxyOptions = {}): Promise<InProcessDataPlane> {
    return new InProcessDataPlane(await ProxyServer.start(loaded, options));
  }

  ports() {
    return this.proxy.ports();
  }

  get isDraining() {
    return this.proxy.isDraining;
  }

  async apply(loaded: LoadedConfig): Promise<ApplyReport> {
    const s = await this.proxy.apply(loaded);
    return { version: s.version, hash: s.hash, applied: 1 };
  }

  async query(view: ProxyView) {
    return [await describeProxy(this.proxy, view)];
  }

  close(drainMs: number) {
    return this.proxy.close(drainMs);
  }
}

/**
 * A data plane that starts with its first config, for proxies fed by a control plane: until a config
 * arrives nothing listens and the admin API answers `waiting for config`; after that it is the plane
 * `start` made.
 */
export class DeferredDataPlane implements DataPlane {
  private inner: DataPlane | null = null;
  private closed = false;
  private readonly start: (loaded: LoadedConfig) => Promise<DataPlane>;

  constructor(start: (loaded: LoadedConfig) => Promise<DataPlane>) {
    this.start = start;
  }

  ports() {
    return this.inner?.ports() ?? {};
  }

  get isDraining() {
    return this.closed || (this.inner?.isDraining ?? false);
  }

  async apply(loaded: LoadedConfig): Promise<ApplyReport> {
    if (this.closed) throw new Error('the proxy is shutting down');
    if (this.inner !== null) return this.inner.apply(loaded);
    const plane = await this.start(loaded);
    if (this.closed) {
      await plane.close(0);
      throw new Error('the proxy is shutting down');
    }
    this.inner = plane;
    const statuses = await plane.query('status');
    return { version: (statuses[0]?.version as number) ?? 1, hash: loaded.hash, applied: statuses.length };
  }

  query(view: ProxyView) {
    return this.inner?.query(view) ?? Promise.resolve([]);
  }

  async close(drainMs: number) {
    this.closed = true;
    await this.inner?.close(drainMs);
  }
}
