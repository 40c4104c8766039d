/**
 * One instance of a service, its connections and its standing: active health and passive ejection.
 * Endpoints outlive snapshots: a reload that leaves a service unchanged keeps its endpoints, so
 * connections stay warm and health and ejection state carry over (house rule 2).
 */
import type { CircuitBreaker } from './circuit-breaker.ts';
import { H2Pool } from './h2-pool.ts';
import { ConnectionPool, type PoolOptions, type UpstreamPool } from './pool.ts';

/** HTTP version towards a service's endpoints (`services[].protocol`). */
export type UpstreamProtocol = 'http1' | 'http2' | 'auto';

export type HealthStatus = 'healthy' | 'unhealthy' | 'unchecked';

export class Endpoint {
  readonly url: string;
  /** `host:port`, for logs and `autoHost`. */
  readonly authority: string;
  /** What connections go to: `url`, or its `https://` form under mutual TLS. */
  readonly origin: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly weight: number;
  readonly pool: UpstreamPool;
  readonly protocol: UpstreamProtocol;
  /** Requests sent to this endpoint and not yet finished. */
  active = 0;
  /** Services holding this endpoint (one, or two while a changed service replaces its predecessor). */
  refs = 0;
  /** The pool settings it was made with: an endpoint is reused only by a service asking the same. */
  readonly options: PoolOptions;

  /** Active health checks' verdict; `healthy` when the service has none. Written by health-check.ts. */
  health: HealthStatus = 'healthy';
  /** Ejected by outlier detection until `ejectedUntil` (clock time). Written by outlier.ts. */
  ejected = false;
  ejectedUntil = 0;
  /** Ejections so far, less those forgiven: the next ejection lasts (this + 1) × base. */
  ejections = 0;
  /** Clock time it last came back from an ejection (-1: never), for forgiving past ejections. */
  returnedAt = -1;
  /** Consecutive failures seen by outlier detection (reset by any success). */
  consecutiveErrors = 0;
  consecutiveGatewayErrors = 0;

  constructor(
    url: string,
    labels: Record<string, string>,
    weight: number,
    options: PoolOptions,
    protocol: UpstreamProtocol = 'http1',
    breaker?: CircuitBreaker,
  ) {
    const parsed = new URL(url);
    this.url = parsed.origin;
    this.authority = parsed.host;
    // Mutual TLS between proxies: the endpoint is a sidecar registered as `http://`; its connections are TLS.
    const origin = options.tls !== undefined ? `https://${parsed.host}` : this.url;
    this.origin = origin;
    this.labels = labels;
    this.weight = weight;
    this.protocol = protocol;
    this.options = options;
    this.pool =
      protocol === 'http2'
        ? new H2Pool(origin, options, breaker)
        : new ConnectionPool(
            origin,
            {
              ...options,
              allowH2: protocol === 'auto' && origin.startsWith('https:'),
              // The lean client speaks plain HTTP/1.1: a TLS origin, or mutual TLS in the mesh, keeps undici.
              engine:
                options.engine === 'lean' && origin.startsWith('http:') && options.tls === undefined
                  ? 'lean'
                  : 'undici',
            },
            breaker,
          );
  }

  /** May get traffic: not failing its health checks and not ejected. */
  get available(): boolean {
    return !this.ejected && this.health !== 'unhealthy' && this.health !== 'unchecked';
  }

  /** Forgets outlier detection's verdict and history (its settings changed). */
  resetEjection(): void {
    this.ejected = false;
    this.ejectedUntil = 0;
    this.ejections = 0;
    this.returnedAt = -1;
    this.consecutiveErrors = 0;
    this.consecutiveGatewayErrors = 0;
  }

  /** Lets in-flight requests finish, then closes the connections. */
  close(): Promise<void> {
    return this.pool.close();
  }

  /** True when a service may take this endpoint over as is (same instance, labels, weight, pool settings, protocol). */
  sameAs(
    url: string,
    labels: Readonly<Record<string, string>>,
    weight: number,
    options: PoolOptions,
    protocol: UpstreamProtocol,
  ): boolean {
    if (this.url !== url || this.weight !== weight || this.protocol !== protocol) return false;
    const o = this.options;
    if (o.connectTimeoutMs !== options.connectTimeoutMs || o.maxConnections !== options.maxConnections) return false;
    if (o.keepAliveMs !== options.keepAliveMs || (o.engine ?? 'undici') !== (options.engine ?? 'undici')) return false;
    if (o.tls?.key !== options.tls?.key) return false;
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
