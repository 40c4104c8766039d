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
  /** Services holding this endpoint (one, or two while a changed service replaces its predecessor). */
  refs = 0;
  /** The pool settings it was made with: an endpoint is reused only by a service asking the same. */
  readonly options: PoolOptions;

  constructor(url: string, labels: Record<string, string>, weight: number, options: PoolOptions) {
    const parsed = new URL(url);
    this.url = parsed.origin;
    this.authority = parsed.host;
    this.labels = labels;
    this.weight = weight;
    this.options = options;
    this.pool = new ConnectionPool(this.url, options);
  }

  /** Lets in-flight requests finish, then closes the connections. */
  close(): Promise<void> {
    return this.pool.close();
  }

  /** True when a service may take this endpoint over as is (same instance, labels, weight and pool settings). */
  sameAs(url: string, labels: Readonly<Record<string, string>>, weight: number, options: PoolOptions): boolean {
    if (this.url !== url || this.weight !== weight) return false;
    const o = this.options;
    if (o.connectTimeoutMs !== options.connectTimeoutMs || o.maxConnections !== options.maxConnections) return false;
    if (o.keepAliveMs !== options.keepAliveMs) return false;
    const keys = Object.keys(labels);
    if (keys.length !== Object.keys(this.labels).length) return false;
    for (const k of keys) if (this.labels[k] !== labels[k]) return false;
    return true;
  }

  matches(selector: Readonly<Record<string, string>>): boolean {
    for (const key in selector) if (this.labels[key] !== selector[key]) return false;
    return true;
  }
}
