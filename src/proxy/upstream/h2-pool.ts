/**
 * HTTP/2 towards one endpoint: a single undici client whose connection multiplexes every request as a
 * stream (h2c with prior knowledge for `http://`, ALPN for `https://`). undici carries streaming request
 * and response bodies both ways at once, response trailers (`onResponseEnd`) and cancellation
 * (RST_STREAM on abort), which is what gRPC needs; so no second HTTP/2 client is kept for it.
 */
import { createRequire } from 'node:module';
import type { Client as ClientType, Dispatcher } from 'undici';
import { DEFAULT_UPSTREAM_MAX_CONCURRENT_STREAMS } from '../../core/defaults.ts';
import type { CircuitBreaker } from './circuit-breaker.ts';
import { type PooledHandler, type PoolOptions, UpstreamClient, type UpstreamPool } from './pool.ts';

// As in pool.ts: the dispatcher modules alone, not undici's index.
const H2CClient: typeof ClientType = createRequire(import.meta.url)('undici/lib/dispatcher/h2c-client.js');

export class H2Pool implements UpstreamPool {
  readonly origin: string;
  readonly engine = 'undici' as const;
  private readonly options: PoolOptions;
  private client: ClientType | null = null;
  private inflight = 0;
  /** The service's limits: streams beyond the connection's concurrency count as pending requests. */
  private breaker: CircuitBreaker | undefined;

  constructor(origin: string, options: PoolOptions, breaker?: CircuitBreaker) {
    this.origin = origin;
    this.options = options;
    this.breaker = breaker;
  }

  useBreaker(breaker: CircuitBreaker | undefined): void {
    const old = this.breaker;
    if (old === breaker) return;
    // What this pool holds moves with it, so both breakers' counts stay exact (as ConnectionPool).
    if (old !== undefined) {
      old.connections -= this.size;
      old.pending -= this.queued;
    }
    if (breaker !== undefined) {
      breaker.connections += this.size;
      breaker.pending += this.queued;
    }
    this.breaker = breaker;
  }

  get size(): number {
    return this.client === null ? 0 : 1;
  }

  get busy(): number {
    return this.inflight;
  }

  get queued(): number {
    return Math.max(0, this.inflight - DEFAULT_UPSTREAM_MAX_CONCURRENT_STREAMS);
  }

  /** A stream beyond the connection's concurrency waits in undici's queue: a pending request. */
  dispatch(options: Dispatcher.DispatchOptions, handler: PooledHandler): boolean {
    const breaker = this.breaker;
    if (breaker !== undefined && this.inflight >= DEFAULT_UPSTREAM_MAX_CONCURRENT_STREAMS) {
      if (breaker.pending >= breaker.maxPendingRequests) {
        breaker.overflows.maxPendingRequests++;
        return false;
      }
      breaker.pending++;
    }
    this.inflight++;
    const client = (this.client ??= this.create());
    handler.client = client;
    client.dispatch(options, handler);
    return true;
  }

  /** Idempotent, and a no-op for a handler this pool refused (as ConnectionPool.release). */
  release(handler: PooledHandler): void {
    if (handler.client === null) return;
    handler.client = null;
    // The oldest waiting stream takes the freed slot: one pending request fewer.
    if (this.inflight > DEFAULT_UPSTREAM_MAX_CONCURRENT_STREAMS && this.breaker !== undefined) this.breaker.pending--;
    this.inflight--;
  }

  /** undici holds the queue; an aborted request leaves it through its controller. */
  cancel(_handler: PooledHandler): boolean {
    return false;
  }

  private create(): ClientType {
    if (this.breaker !== undefined) this.breaker.connections++;
    const common = {
      keepAliveTimeout: this.options.keepAliveMs,
      connectTimeout: this.options.connectTimeoutMs,
      headersTimeout: 0,
      bodyTimeout: 0,
      ...(this.options.tls !== undefined && {
        connect: this.options.tls.connector(this.options.connectTimeoutMs, true),
      }),
    };
    return this.origin.startsWith('https:')
      ? new UpstreamClient(this.origin, {
          ...common,
          allowH2: true,
          maxConcurrentStreams: DEFAULT_UPSTREAM_MAX_CONCURRENT_STREAMS,
          pipelining: DEFAULT_UPSTREAM_MAX_CONCURRENT_STREAMS,
        })
      : new H2CClient(this.origin, { ...common, maxConcurrentStreams: DEFAULT_UPSTREAM_MAX_CONCURRENT_STREAMS });
  }

  async close(): Promise<void> {
    await this.client?.close();
    this.forgetClient();
  }

  async destroy(): Promise<void> {
    await this.client?.destroy();
    this.forgetClient();
  }

  private forgetClient(): void {
    if (this.client !== null && this.breaker !== undefined) this.breaker.connections--;
    this.client = null;
  }
}
