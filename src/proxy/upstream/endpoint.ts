/**
 * One instance of a service and its connections. Endpoints outlive snapshots: a reload that leaves a
 * service unchanged keeps its endpoints, so connections stay warm (house rule 2).
 */
import { H2Pool } from './h2-pool.ts';
import { ConnectionPool, type PoolOptions, type UpstreamPool } from './pool.ts';

/** HTTP version towards a service's endpoints (`services[].protocol`). */
export type UpstreamProtocol = 'http1' | 'http2' | 'auto';

export class Endpoint {
  readonly url: string;
  /** `host:port`, for logs and `autoHost`. */
  readonly authority: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly weight: number;
  readonly pool: UpstreamPool;
  readonly protocol: UpstreamProtocol;
  /** Requests sent to this endpoint and not yet finished. */
  active = 0;

  constructor(
    url: string,
    labels: Record<string, string>,
    weight: number,
    options: PoolOptions,
    protocol: UpstreamProtocol = 'http1',
  ) {
    const parsed = new URL(url);
    this.url = parsed.origin;
    this.authority = parsed.host;
    this.labels = labels;
    this.weight = weight;
    this.protocol = protocol;
    this.pool =
      protocol === 'http2'
        ? new H2Pool(this.url, options)
        : new ConnectionPool(this.url, { ...options, allowH2: protocol === 'auto' && parsed.protocol === 'https:' });
  }

  /** Lets in-flight requests finish, then closes the connections. */
  close(): Promise<void> {
    return this.pool.close();
  }

  matches(selector: Readonly<Record<string, string>>): boolean {
    for (const key in selector) if (this.labels[key] !== selector[key]) return false;
    return true;
  }
}
