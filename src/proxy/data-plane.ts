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
