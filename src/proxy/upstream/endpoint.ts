/**
 * One instance of a service and its connections. Endpoints outlive snapshots: a reload that leaves a
 * service unchanged keeps its endpoints, so connections stay warm (house rule 2).
 */
import { ConnectionPool, type PoolOptions } from './pool.ts';

export class Endpoint {
  readonly url: string;
  /** `host:port`, for logs and `autoHost`. */
  readonly authority: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly weight: number;
  readonly pool: ConnectionPool;
  /** Requests sent to this endpoint and not yet finished. */
  active = 0;

  constructor(url: string, labels: Record<string, string>, weight: number, options: PoolOptions) {
    const parsed = new URL(url);
    this.url = parsed.origin;
    this.authority = parsed.host;
    this.labels = labels;
    this.weight = weight;
    this.pool = new ConnectionPool(this.url, options);
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
