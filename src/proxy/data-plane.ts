/**
 * The data plane as the gateway command sees it: started with a validated config, given new ones,
 * asked what it holds, drained. Either in this process or in worker processes (cluster/primary.ts),
 * behind one interface so the admin API and the reload logic do not care which.
 */
import type { LoadedConfig } from '../config/load.ts';
import { describeProxy, type ProxyView } from './describe.ts';
import { type PreparedChange, type ProxyOptions, ProxyServer } from './proxy.ts';

export interface ApplyReport {
  version: number;
  hash: string;
  /** Processes that applied it (1 in process, N workers). */
  applied: number;
}

/**
 * A config every process that proxies has prepared (compiled, certificates read, new listeners bound),
 * none of them serving it yet. Opaque: only the plane that made it may commit or discard it.
 */
export interface PreparedConfig {
  readonly loaded: LoadedConfig;
}

/**
 * Config changes are two-phase, so a change reaches every process or none: `prepare` everywhere, then
 * `commit` everywhere, or `discard` everywhere if any process refused. One change at a time: the
 * caller (the config pipeline) serializes them.
 */
export interface DataPlane {
  /** Bound ports by listener name. */
  ports(): Record<string, number>;
  readonly isDraining: boolean;
  /** Prepares a validated config in every process; rejects (having discarded it everywhere) if one refuses. */
  prepare(loaded: LoadedConfig): Promise<PreparedConfig>;
  /** Puts a prepared config in force in every process. */
  commit(prepared: PreparedConfig): Promise<ApplyReport>;
  /** Drops a prepared config everywhere; the config in force stays. */
  discard(prepared: PreparedConfig): Promise<void>;
  /** `prepare` then `commit`: rejects, keeping the running config, if it cannot apply. */
  apply(loaded: LoadedConfig): Promise<ApplyReport>;
  /** The view from every process that proxies, one entry each. */
  query(view: ProxyView): Promise<Record<string, unknown>[]>;
  close(drainMs: number): Promise<void>;
}

interface InProcessPrepared extends PreparedConfig {
  change: PreparedChange;
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

  async prepare(loaded: LoadedConfig): Promise<PreparedConfig> {
    return { loaded, change: await this.proxy.prepare(loaded) } as InProcessPrepared;
  }

  async commit(prepared: PreparedConfig): Promise<ApplyReport> {
    const { change } = prepared as InProcessPrepared;
    this.proxy.commit(change);
    return { version: change.snapshot.version, hash: change.snapshot.hash, applied: 1 };
  }

  discard(prepared: PreparedConfig): Promise<void> {
    return this.proxy.discard((prepared as InProcessPrepared).change);
  }

  async apply(loaded: LoadedConfig): Promise<ApplyReport> {
    return this.commit(await this.prepare(loaded));
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
interface DeferredPrepared extends PreparedConfig {
  /** Prepared by the running plane… */
  inner?: PreparedConfig;
  /** …or, for the first config, a plane started on it and not yet in use. */
  started?: DataPlane;
}

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

  /** The first config starts the plane (its listeners bind); until the commit nothing serves it. */
  async prepare(loaded: LoadedConfig): Promise<PreparedConfig> {
    if (this.closed) throw new Error('the proxy is shutting down');
    if (this.inner !== null) return { loaded, inner: await this.inner.prepare(loaded) } as DeferredPrepared;
    const plane = await this.start(loaded);
    if (this.closed) {
      await plane.close(0);
      throw new Error('the proxy is shutting down');
    }
    return { loaded, started: plane } as DeferredPrepared;
  }

  async commit(prepared: PreparedConfig): Promise<ApplyReport> {
    const p = prepared as DeferredPrepared;
    if (p.inner !== undefined) return this.inner!.commit(p.inner);
    this.inner = p.started!;
    const statuses = await this.inner.query('status');
    return { version: (statuses[0]?.version as number) ?? 1, hash: p.loaded.hash, applied: statuses.length };
  }

  async discard(prepared: PreparedConfig): Promise<void> {
    const p = prepared as DeferredPrepared;
    if (p.inner !== undefined) await this.inner!.discard(p.inner);
    else await p.started!.close(0);
  }

  async apply(loaded: LoadedConfig): Promise<ApplyReport> {
    return this.commit(await this.prepare(loaded));
  }

  query(view: ProxyView) {
    return this.inner?.query(view) ?? Promise.resolve([]);
  }

  async close(drainMs: number) {
    this.closed = true;
    await this.inner?.close(drainMs);
  }
}
