/**
 * One request the proxy makes on a client's behalf and reads whole: the body is a Buffer the proxy
 * built, the response is collected up to a limit and handed back, never streamed to the client. For
 * actions that translate (the `graphql` action maps a GraphQL answer to a REST one). It goes through
 * the same machinery as a forwarded try: the destination's balancer, the service's circuit breaker,
 * the endpoint's connection pool, outlier detection, and the failure classification of try.ts.
 *
 * One try, no retries: the caller decides what a failure means for its client.
 */
import type { Client, Dispatcher } from 'undici';
import { PRECISE_TIMEOUT_BELOW_MS } from '../../core/defaults.ts';
import type { LocalReplyCode } from '../../core/errors.ts';
import type { CompiledDestination } from '../compiled.ts';
import type { StreamContext } from '../context.ts';
import { classifyUpstreamError } from './classify.ts';
import type { Endpoint } from './endpoint.ts';
import type { PooledHandler } from './pool.ts';
import { FAILURE_CONNECT, FAILURE_RESET } from './retry.ts';
import { noteStreamedBytes } from './streamed-bytes.ts';

export interface BufferedRequest {
  readonly method: string;
  /** Path and query at the service. */
  readonly path: string;
  /** `[name, value, …]`, names lower-case; sent as given (the caller sets Content-Length). */
  readonly headers: readonly string[];
  readonly body: Buffer | null;
  /** Until the response headers, ms; 0: none. */
  readonly timeoutMs: number;
  /** Longest silence while the response body arrives, ms; 0: none. */
  readonly idleTimeoutMs: number;
  /** Largest response body read, bytes; 0: no limit. */
  readonly maxResponseBytes: number;
  /** The key a consistent-hashing balancer places the request by (any number otherwise). */
  readonly hashKey: number;
}

export interface BufferedResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: Buffer;
}

/** Why there is no response: a reply code and detail, and a refusal reason when none was sent. */
export interface BufferedFailure {
  readonly code: LocalReplyCode;
  readonly detail: string;
  /** Set when the request was refused before it was sent (`no-healthy-endpoint`, `circuit-open:…`). */
  readonly refusal: string | null;
}

export type BufferedOutcome = { ok: true; response: BufferedResponse } | ({ ok: false } & BufferedFailure);

/**
 * Sends `request` to one endpoint of `destination` for the client request `ctx` (which records the
 * destination, endpoint, try and timings for logs and metrics, and aborts the call if the client goes
 * away). `done` is called once, unless the client went away first.
 */
export function sendBufferedRequest(
  ctx: StreamContext,
  destination: CompiledDestination,
  request: BufferedRequest,
  done: (outcome: BufferedOutcome) => void,
): void {
  const service = destination.service;
  const breaker = service.breaker;
  ctx.destination = destination;
  ctx.timeoutMs = request.timeoutMs;
  const endpoint = destination.endpoints.choose(request.hashKey, null);
  if (endpoint === null) {
    service.stats.noHealthyUpstream++;
    const where = destination.subset
      ? `subset ${destination.subset} of service ${service.name}`
      : `service ${service.name}`;
    done({
      ok: false,
      code: 'MG_NO_HEALTHY_UPSTREAM',
      detail: `${where} has no ${destination.endpoints.endpoints.length === 0 ? '' : 'healthy '}endpoint`,
      refusal: 'no-healthy-endpoint',
    });
    return;
  }
  if (breaker.requests >= breaker.maxRequests) {
    breaker.overflows.maxRequests++;
    done({
      ok: false,
      code: 'MG_CIRCUIT_OPEN',
      detail: `service ${service.name} has ${breaker.requests} requests in flight, its limit (circuitBreaker.maxRequests)`,
      refusal: 'circuit-open:maxRequests',
    });
    return;
  }
  ctx.endpoint = endpoint;
  ctx.tries++;
  ctx.upstreamStartMs = performance.now();
  const call = new BufferedCall(ctx, endpoint, destination, request, done);
  ctx.upstream = call;
  endpoint.active++;
  breaker.requests++;
  const precise = request.timeoutMs > 0 && request.timeoutMs < PRECISE_TIMEOUT_BELOW_MS;
  if (precise) call.startTimer();
  const queued = endpoint.pool.dispatch(
    {
      method: request.method,
      path: request.path,
      headers: request.headers as string[],
      body: request.body,
      headersTimeout: precise ? 0 : request.timeoutMs,
      bodyTimeout: request.idleTimeoutMs,
    },
    call,
  );
  if (!queued) {
    call.unwind();
    done({
      ok: false,
      code: 'MG_CIRCUIT_OPEN',
      detail:
        `service ${service.name} has ${breaker.pending} requests waiting for a connection, its limit ` +
        '(circuitBreaker.maxPendingRequests)',
      refusal: 'circuit-open:maxPendingRequests',
    });
  }
}

/** The dispatch handler: collects the response, then reports once. */
class BufferedCall implements PooledHandler {
  client: Client | null = null;
  private readonly ctx: StreamContext;
  private readonly endpoint: Endpoint;
  private readonly destination: CompiledDestination;
  private readonly request: BufferedRequest;
  private readonly done: (outcome: BufferedOutcome) => void;
  private controller: Dispatcher.DispatchController | null = null;
  private pendingAbort: Error | null = null;
  private timer: NodeJS.Timeout | null = null;
  private ended = false;
  private aborted = false;
  private tooLarge = false;
  private status = 0;
  private headers: Record<string, string | string[] | undefined> = {};
  private readonly chunks: Buffer[] = [];
  private size = 0;
  /** For the failure classification (classify.ts `TryFacts`). */
  readonly perTryLimited = false;

  constructor(
    ctx: StreamContext,
    endpoint: Endpoint,
    destination: CompiledDestination,
    request: BufferedRequest,
    done: (outcome: BufferedOutcome) => void,
  ) {
    this.ctx = ctx;
    this.endpoint = endpoint;
    this.destination = destination;
    this.request = request;
    this.done = done;
  }

  get authority(): string {
    return this.endpoint.authority;
  }

  get timeoutMs(): number {
    return this.request.timeoutMs;
  }

  /** The client went away: stop the call; `done` is not called. */
  abort(): void {
    if (this.ended) return;
    this.aborted = true;
    this.fail(new Error('client closed'));
  }

  startTimer(): void {
    this.timer = setTimeout(onTimeout, this.request.timeoutMs, this);
  }

  timedOut(): void {
    this.timer = null;
    if (!this.ended) this.fail(Object.assign(new Error('headers timeout'), { code: 'UND_ERR_HEADERS_TIMEOUT' }));
  }

  /** Stops the call with `error`, wherever it is (queued, connecting, or under way). */
  private fail(error: Error): void {
    if (this.controller !== null) this.controller.abort(error);
    else if (this.endpoint.pool.cancel(this)) this.onResponseError(null, error);
    else this.pendingAbort = error;
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.pendingAbort !== null) controller.abort(this.pendingAbort);
  }

  onResponseStart(
    controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: Record<string, string | string[] | undefined>,
  ): void {
    if (statusCode < 200) return;
    this.stopTimer();
    this.destination.service.outlier?.observe(this.endpoint, statusCode);
    this.ctx.upstreamHeadersMs = performance.now();
    this.status = statusCode;
    this.headers = headers;
    const max = this.request.maxResponseBytes;
    const length = headers['content-length'];
    if (max > 0 && typeof length === 'string' && Number(length) > max) {
      this.tooLarge = true;
      controller.abort(new Error('response over the limit'));
    }
  }

  onBodySent(chunk: Buffer): void {
    this.ctx.bytesIn += chunk.length;
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.size += chunk.length;
    noteStreamedBytes(chunk.length);
    const max = this.request.maxResponseBytes;
    if (max > 0 && this.size > max) {
      this.tooLarge = true;
      controller.abort(new Error('response over the limit'));
      return;
    }
    this.chunks.push(chunk);
  }

  onResponseEnd(): void {
    if (this.ended) return;
    this.end();
    this.ctx.upstreamEndMs = performance.now();
    const body = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.size);
    this.done({ ok: true, response: { status: this.status, headers: this.headers, body } });
  }

  onResponseError(_controller: Dispatcher.DispatchController | null, error: Error): void {
    if (this.ended) return;
    this.end();
    if (this.aborted) return;
    const service = this.destination.service;
    if (this.tooLarge) {
      this.done({
        ok: false,
        code: 'MG_RESPONSE_TOO_LARGE',
        detail: `the response of ${service.name} exceeds ${this.request.maxResponseBytes} bytes, the most route ${this.ctx.routeName} reads`,
        refusal: null,
      });
      return;
    }
    const [code, detail, kind] = classifyUpstreamError(error, this.ctx, this);
    if (this.status === 0 && (kind === FAILURE_CONNECT || kind === FAILURE_RESET))
      service.outlier?.failure(this.endpoint, true);
    this.done({ ok: false, code, detail, refusal: null });
  }

  /** Undoes the bookkeeping of a call the pool refused to queue. */
  unwind(): void {
    this.stopTimer();
    this.ended = true;
    this.endpoint.active--;
    this.destination.service.breaker.requests--;
    this.ctx.tries--;
  }

  private end(): void {
    this.stopTimer();
    this.ended = true;
    this.endpoint.active--;
    this.destination.service.breaker.requests--;
    this.endpoint.pool.release(this);
  }

  private stopTimer(): void {
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
  }
}

function onTimeout(call: BufferedCall): void {
  call.timedOut();
}
