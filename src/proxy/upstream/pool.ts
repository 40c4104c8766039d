/**
 * Connections to one endpoint: undici `Client`s (one connection each, no pipelining) kept on a
 * free stack, so taking one is O(1). undici's own `Pool` scans its clients for a free one on every
 * request, which at 64 concurrent requests cost ~7% of the proxy's instructions; owning the free list
 * also gives the circuit breaker exact counts of connections and waiting requests.
 */
import { createRequire } from 'node:module';
import type { Client as ClientType, Dispatcher } from 'undici';

// undici's index also loads fetch, WebSocket, caches and mocks: ~13 MB resident the proxy never uses.
// The HTTP/1.1 client module alone is what forwarding needs (the package declares no `exports` map).
const Client: typeof ClientType = createRequire(import.meta.url)('undici/lib/dispatcher/client.js');
type Client = ClientType;

export interface PoolOptions {
  connectTimeoutMs: number;
  /** Most connections open at once; requests beyond wait in a FIFO queue. */
  maxConnections: number;
  keepAliveMs: number;
  /** `https://` origins: offer HTTP/2 by ALPN as well (`protocol: auto`). */
  allowH2?: boolean;
}

/** Connections to one endpoint, as the request path uses them (HTTP/1.1 here, HTTP/2 in h2-pool.ts). */
export interface UpstreamPool {
  readonly origin: string;
  /** Connections in existence. */
  readonly size: number;
  /** Requests in progress. */
  readonly busy: number;
  /** Requests waiting for a connection or stream. */
  readonly queued: number;
  dispatch(options: Dispatcher.DispatchOptions, handler: PooledHandler): void;
  /** Called exactly once by a handler when its request has ended, successfully or not. */
  release(handler: PooledHandler): void;
  /** Removes a request still waiting; false when it is not (it then ends through its controller). */
  cancel(handler: PooledHandler): boolean;
  close(): Promise<void>;
  destroy(): Promise<void>;
}

interface Waiting {
  options: Dispatcher.DispatchOptions;
  handler: PooledHandler;
}

/** A dispatch handler that returns its client to the pool when its request is over. */
export interface PooledHandler extends Dispatcher.DispatchHandler {
  client: Client | null;
}

export class ConnectionPool implements UpstreamPool {
  readonly origin: string;
  private readonly options: PoolOptions;
  private readonly idle: Client[] = [];
  private readonly all = new Set<Client>();
  private readonly waiting: Waiting[] = [];
  private waitingHead = 0;
  private closed = false;
  private onEmpty: (() => void) | undefined;

  constructor(origin: string, options: PoolOptions) {
    this.origin = origin;
    this.options = options;
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

  /** Sends a request on a free connection, or queues it until one is free. */
  dispatch(options: Dispatcher.DispatchOptions, handler: PooledHandler): void {
    const client = this.idle.pop() ?? (this.all.size < this.options.maxConnections ? this.create() : undefined);
    if (client === undefined) {
      this.waiting.push({ options, handler });
      return;
    }
    handler.client = client;
    client.dispatch(options, handler);
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
      next.handler.client = client;
      client.dispatch(next.options, next.handler);
      return;
    }
    if (this.closed) {
      this.all.delete(client);
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
        return true;
      }
    }
    return false;
  }

  private create(): Client {
    const client = new Client(this.origin, {
      pipelining: 1,
      keepAliveTimeout: this.options.keepAliveMs,
      // undici: 0 disables the connect timeout, as `timeouts.connect: 0` documents.
      connectTimeout: this.options.connectTimeoutMs,
      allowH2: this.options.allowH2 === true,
      // Per-request timeouts come from the route and service; disable the client-wide ones.
      headersTimeout: 0,
      bodyTimeout: 0,
    });
    this.all.add(client);
    return client;
  }

  /** Lets running requests finish, then closes every connection. Queued requests still run. */
  close(): Promise<void> {
    this.closed = true;
    const idle = this.idle.splice(0);
    for (const client of idle) this.all.delete(client);
    const busyDone = this.all.size === 0 ? Promise.resolve() : new Promise<void>((resolve) => (this.onEmpty = resolve));
    return Promise.all([...idle.map((c) => c.close()), busyDone]).then(() => undefined);
  }

  async destroy(): Promise<void> {
    this.closed = true;
    this.idle.length = 0;
    const clients = [...this.all];
    this.all.clear();
    await Promise.all(clients.map((c) => c.destroy()));
  }
}
