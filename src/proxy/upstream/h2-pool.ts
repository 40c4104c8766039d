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

  dispatch(options: Dispatcher.DispatchOptions, handler: PooledHandler): boolean {
    const breaker = this.breaker;
    if (
      breaker !== undefined &&
      this.inflight >= DEFAULT_UPSTREAM_MAX_CONCURRENT_STREAMS &&
      this.queued >= breaker.maxPendingRequests
    ) {
      breaker.overflows.maxPendingRequests++;
      return false;
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
    this.inflight--;
  }

  /** undici holds the queue; an aborted request leaves it through its controller. */
  cancel(_handler: PooledHandler): boolean {
    return false;
  }

  private create(): ClientType {
    const common = {
      keepAliveTimeout: this.options.keepAliveMs,
      connectTimeout: this.options.connectTimeoutMs,
      headersTimeout: 0,
      bodyTimeout: 0,
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
  }

  async destroy(): Promise<void> {
    await this.client?.destroy();
  }
}
