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
  readonly labels: Readonly<Record<string, string>>;
  readonly weight: number;
  readonly pool: UpstreamPool;
  readonly protocol: UpstreamProtocol;
  /** Requests sent to this endpoint and not yet finished. */
  active = 0;

  /** Active health checks' verdict; `healthy` when the service has none. Written by health-check.ts. */
  health: HealthStatus = 'healthy';
  /** Ejected by outlier detection until `ejectedUntil` (clock time). Written by outlier.ts. */
  ejected = false;
  ejectedUntil = 0;
  /** Ejections so far, less those forgiven: the next ejection lasts (this + 1) × base. */
  ejections = 0;
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
    this.labels = labels;
    this.weight = weight;
    this.protocol = protocol;
    this.pool =
      protocol === 'http2'
        ? new H2Pool(this.url, options, breaker)
        : new ConnectionPool(
            this.url,
            { ...options, allowH2: protocol === 'auto' && parsed.protocol === 'https:' },
            breaker,
          );
  }

  /** May get traffic: not failing its health checks and not ejected. */
  get available(): boolean {
    return !this.ejected && this.health !== 'unhealthy' && this.health !== 'unchecked';
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
