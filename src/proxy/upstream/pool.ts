/**
 * Connections to one endpoint: undici `Client`s, or lean clients (lean-client.ts, `services[].engine:
 * lean`), one connection each, no pipelining, kept on a free stack, so taking one is O(1). undici's own
 * `Pool` scans its clients for a free one on every
 * request, which at 64 concurrent requests cost ~7% of the proxy's instructions; owning the free list
 * also gives the circuit breaker exact counts of connections and waiting requests.
 */
import { createRequire } from 'node:module';
import type { Client as ClientType, Dispatcher } from 'undici';
import type { UpstreamTls } from '../identity/mesh-tls.ts';
import type { CircuitBreaker } from './circuit-breaker.ts';
import { LeanClient } from './lean-client.ts';

// undici's index also loads fetch, WebSocket, caches and mocks: ~13 MB resident the proxy never uses.
// The HTTP/1.1 client module alone is what forwarding needs (the package declares no `exports` map).
const Client: typeof ClientType = createRequire(import.meta.url)('undici/lib/dispatcher/client.js');
type Client = ClientType;

/** The same lean undici client class, for other upstream traffic of the proxy (health checks). */
export { Client as UpstreamClient };

export interface PoolOptions {
  connectTimeoutMs: number;
  /** Most connections open at once; requests beyond wait in a FIFO queue. */
  maxConnections: number;
  keepAliveMs: number;
  /** `https://` origins: offer HTTP/2 by ALPN as well (`protocol: auto`). */
  allowH2?: boolean;
  /**
   * Mutual TLS with the proxy's workload identity (the origin is then `https://`). Each new connection
   * takes the certificate in force when it opens; open ones keep theirs, as a server's do.
   */
  tls?: UpstreamTls;
  /**
   * `lean`: connections by the lean client (lean-client.ts) instead of undici's (`services[].engine`).
   * Plain `http://` HTTP/1.1 only: endpoint.ts gives TLS and HTTP/2 origins undici whatever this says.
   */
  engine?: UpstreamEngine;
}

/** What makes a service's HTTP/1.1 connections (`services[].engine`). */
export type UpstreamEngine = 'undici' | 'lean';

/** One connection slot as the pool uses it: an undici `Client` (pipelining 1), or the lean client. */
export interface PoolClient {
  dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean;
  close(): Promise<void>;
  destroy(): Promise<void>;
}

/** Connections to one endpoint, as the request path uses them (HTTP/1.1 here, HTTP/2 in h2-pool.ts). */
export interface UpstreamPool {
  readonly origin: string;
  /** What makes its connections: undici (HTTP/1.1 or HTTP/2) or the lean client. */
  readonly engine: UpstreamEngine;
  /** Connections in existence. */
  readonly size: number;
  /** Requests in progress. */
  readonly busy: number;
  /** Requests waiting for a connection or stream. */
  readonly queued: number;
  /** False, without queueing, when the service's pending-request limit is reached (MG_CIRCUIT_OPEN). */
  dispatch(options: Dispatcher.DispatchOptions, handler: PooledHandler): boolean;
  /** Called exactly once by a handler when its request has ended, successfully or not. */
  release(handler: PooledHandler): void;
  /** Removes a request still waiting; false when it is not (it then ends through its controller). */
  cancel(handler: PooledHandler): boolean;
  /** Counts against another service's breaker from now on (an endpoint taken over by a changed service). */
  useBreaker(breaker: CircuitBreaker | undefined): void;
  close(): Promise<void>;
  destroy(): Promise<void>;
}

interface Waiting {
  options: Dispatcher.DispatchOptions;
  handler: PooledHandler;
}

/** A dispatch handler that returns its client to the pool when its request is over. */
export interface PooledHandler extends Dispatcher.DispatchHandler {
  client: PoolClient | null;
}

export class ConnectionPool implements UpstreamPool {
  readonly origin: string;
  private readonly options: PoolOptions;
  private readonly idle: PoolClient[] = [];
  private readonly all = new Set<PoolClient>();
  private readonly waiting: Waiting[] = [];
  private waitingHead = 0;
  private closed = false;
  private onEmpty: (() => void) | undefined;
  /** The service's limits, shared by the pools of all its endpoints (none in tests of the pool alone). */
  private breaker: CircuitBreaker | undefined;

  constructor(origin: string, options: PoolOptions, breaker?: CircuitBreaker) {
    this.origin = origin;
    this.options = options;
    this.breaker = breaker;
  }

  get engine(): UpstreamEngine {
    return this.options.engine ?? 'undici';
  }

  useBreaker(breaker: CircuitBreaker | undefined): void {
    const old = this.breaker;
    if (old === breaker) return;
    // What this pool holds moves with it, so both breakers' counts stay exact.
    if (old !== undefined) {
      old.connections -= this.all.size;
      old.pending -= this.queued;
    }
    if (breaker !== undefined) {
      breaker.connections += this.all.size;
      breaker.pending += this.queued;
    }
    this.breaker = breaker;
  }

  /** Clients (≈ connections) in existence. */
  get size(): number {
    return this.all.size;
  }

  get busy(): number {
    return this.all.size - this.idle.length;
  }

  get queued(): number {
    return this.waiting.length - this.waitingHead;
  }

  /**
   * Sends a request on a free connection, or queues it until one is free. Returns false, without
   * queueing, when the service's pending-request limit is reached (the caller answers MG_CIRCUIT_OPEN).
   */
  dispatch(options: Dispatcher.DispatchOptions, handler: PooledHandler): boolean {
    const client = this.idle.pop() ?? (this.mayCreate() ? this.create() : undefined);
    if (client === undefined) {
      const breaker = this.breaker;
      if (breaker !== undefined) {
        if (breaker.pending >= breaker.maxPendingRequests) {
          breaker.overflows.maxPendingRequests++;
          return false;
        }
        breaker.pending++;
      }
      this.waiting.push({ options, handler });
      return true;
    }
    handler.client = client;
    client.dispatch(options, handler);
    return true;
  }

  /**
   * A new connection is allowed below this endpoint's cap and the service's `maxConnections`; an
   * endpoint with no connection may always open one, or requests queued for it could never run while
   * other endpoints hold the service's connections (Envoy does the same).
   */
  private mayCreate(): boolean {
    if (this.all.size >= this.options.maxConnections) return false;
    const breaker = this.breaker;
    if (breaker === undefined || breaker.connections < breaker.maxConnections || this.all.size === 0) return true;
    breaker.overflows.maxConnections++;
    return false;
  }

  release(handler: PooledHandler): void {
    const client = handler.client;
    if (client === null) return;
    handler.client = null;
    if (this.waitingHead < this.waiting.length) {
      const next = this.waiting[this.waitingHead]!;
      this.waiting[this.waitingHead++] = undefined as unknown as Waiting;
      if (this.waitingHead === this.waiting.length) {
        this.waiting.length = 0;
        this.waitingHead = 0;
      }
      if (this.breaker !== undefined) this.breaker.pending--;
      next.handler.client = client;
      client.dispatch(next.options, next.handler);
      return;
    }
    if (this.closed) {
      this.forget(client);
      void client.close().finally(() => this.all.size === 0 && this.onEmpty?.());
      return;
    }
    this.idle.push(client);
  }

  /** Removes a queued request (its client went away before a connection was free). */
  cancel(handler: PooledHandler): boolean {
    for (let i = this.waitingHead; i < this.waiting.length; i++) {
      if (this.waiting[i]?.handler === handler) {
        this.waiting.splice(i, 1);
        if (this.breaker !== undefined) this.breaker.pending--;
        return true;
      }
    }
    return false;
  }

  private create(): PoolClient {
    const client: PoolClient =
      this.options.engine === 'lean'
        ? new LeanClient(this.origin, {
            connectTimeoutMs: this.options.connectTimeoutMs,
            keepAliveMs: this.options.keepAliveMs,
          })
        : this.createUndici();
    this.all.add(client);
    if (this.breaker !== undefined) this.breaker.connections++;
    return client;
  }

  private createUndici(): Client {
    return new Client(this.origin, {
      pipelining: 1,
      keepAliveTimeout: this.options.keepAliveMs,
      // undici: 0 disables the connect timeout, as `timeouts.connect: 0` documents.
      connectTimeout: this.options.connectTimeoutMs,
      allowH2: this.options.allowH2 === true,
      // Per-request timeouts come from the route and service; disable the client-wide ones.
      headersTimeout: 0,
      bodyTimeout: 0,
      ...(this.options.tls !== undefined && {
        connect: this.options.tls.connector(this.options.connectTimeoutMs, this.options.allowH2 === true),
      }),
    });
  }

  private forget(client: PoolClient) {
    if (this.all.delete(client) && this.breaker !== undefined) this.breaker.connections--;
  }

  /** Lets running requests finish, then closes every connection. Queued requests still run. */
  close(): Promise<void> {
    this.closed = true;
    const idle = this.idle.splice(0);
    for (const client of idle) this.forget(client);
    const busyDone = this.all.size === 0 ? Promise.resolve() : new Promise<void>((resolve) => (this.onEmpty = resolve));
    return Promise.all([...idle.map((c) => c.close()), busyDone]).then(() => undefined);
  }

  async destroy(): Promise<void> {
    this.closed = true;
    this.idle.length = 0;
    const clients = [...this.all];
    for (const client of clients) this.forget(client);
    await Promise.all(clients.map((c) => c.destroy()));
  }
}
