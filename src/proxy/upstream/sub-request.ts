/**
 * Sub-requests: one buffered request the proxy sends to a service on a client request's behalf (the
 * aggregate action's calls), through the same machinery as a forwarded request: the endpoint set's
 * balancer (health, ejection, panic), the circuit breaker's limits, the endpoint's connection pool,
 * outlier detection, the service's retry policy and budget (retry-state.ts's decisions), and the same
 * failure codes (classify.ts). The difference is the answer: a forwarded response streams to the
 * client; a sub-request's is read whole, up to a limit, and handed to the caller.
 *
 * The forward path keeps its own try (try.ts): it streams, and its state lives on the StreamContext
 * to allocate nothing per try. A sub-request is one object per call plus one per try.
 */
import type { Client, Dispatcher } from 'undici';
import type { LocalReplyCode } from '../../core/errors.ts';
import type { CircuitBreaker } from './circuit-breaker.ts';
import { classifyUpstreamError, type RequestFacts } from './classify.ts';
import type { Endpoint } from './endpoint.ts';
import type { EndpointSet } from './endpoint-set.ts';
import type { PooledHandler } from './pool.ts';
import {
  backoffMs,
  FAILURE_CONNECT,
  FAILURE_NONE,
  FAILURE_RESET,
  type FailureKind,
  parseRetryAfter,
  type RetryPolicy,
  retriableFailure,
  retriableResponse,
} from './retry.ts';
import { admitRetry, type RetryFacts, retryStop } from './retry-state.ts';
import type { UpstreamService } from './service.ts';

/** Where a sub-request goes, compiled once per config (a service, or a subset of one). */
export interface SubRequestTarget {
  readonly service: UpstreamService;
  readonly subset: string | undefined;
  readonly endpoints: EndpointSet;
  /** The service's retry policy, or null: one try. */
  readonly retry: RetryPolicy | null;
}

export interface SubRequestOptions {
  readonly method: string;
  /** Path and query. */
  readonly path: string;
  /** `[name, value, …]`, names lower-case; Host is the endpoint's unless set here. */
  readonly headers: readonly string[];
  readonly body: Buffer | null;
  /** For the whole sub-request: every try, backoffs, response headers and body, ms. 0: none. */
  readonly timeoutMs: number;
  /** Largest response body read, bytes; a larger one fails with MG_RESPONSE_TOO_LARGE. 0: no limit. */
  readonly maxBodyBytes: number;
  /** The key a consistent-hashing balancer places it by. */
  readonly hashKey: number;
  /** For the service's recent refusals (admin `/services`). */
  readonly requestId: string;
  readonly route: string;
}

/** An answer, whatever its status (a retriable status was retried first, per the policy). */
export interface SubResponse {
  readonly ok: true;
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: Buffer;
  readonly tries: number;
}

/** No answer: the code and words a forwarded request would have failed with. */
export interface SubFailure {
  readonly ok: false;
  readonly code: LocalReplyCode;
  readonly detail: string;
  readonly tries: number;
}

export type SubResult = SubResponse | SubFailure;

/**
 * Sends a sub-request; `onDone` is called exactly once with its outcome, unless `abort()` is called
 * first (then never).
 */
export function sendSubRequest(
  target: SubRequestTarget,
  options: SubRequestOptions,
  onDone: (result: SubResult) => void,
): SubRequest {
  const request = new SubRequest(target, options, onDone);
  request.start();
  return request;
}

export class SubRequest implements RequestFacts, RetryFacts {
  readonly target: SubRequestTarget;
  readonly options: SubRequestOptions;
  tries = 0;
  deadlineAt = Number.POSITIVE_INFINITY;
  /** RequestFacts: the service, for failure details. */
  readonly destination: { readonly service: UpstreamService };
  readonly method: string;
  readonly hasBody: boolean;
  readonly bufferedBody: Buffer | null;
  readonly body = null;
  private readonly onDone: (result: SubResult) => void;
  private tried: Endpoint[] | null = null;
  private current: SubTry | null = null;
  private backoff: NodeJS.Timeout | null = null;
  private done = false;

  constructor(target: SubRequestTarget, options: SubRequestOptions, onDone: (result: SubResult) => void) {
    this.target = target;
    this.options = options;
    this.onDone = onDone;
    this.destination = { service: target.service };
    this.method = options.method;
    this.hasBody = options.body !== null;
    this.bufferedBody = options.body;
  }

  /** RequestFacts: the overall timeout. */
  get timeoutMs(): number {
    return this.options.timeoutMs;
  }

  start(): void {
    const policy = this.target.retry;
    const now = this.target.service.clock.now();
    if (this.options.timeoutMs > 0) this.deadlineAt = now + this.options.timeoutMs;
    if (policy !== null) policy.budget.deposit(now);
    this.tryOnce(false);
  }

  /** The caller no longer wants the answer (its client went away): stop whatever is in progress. */
  abort(): void {
    if (this.done) return;
    this.done = true;
    if (this.backoff !== null) {
      clearTimeout(this.backoff);
      this.backoff = null;
      this.target.service.breaker.retries--;
    }
    this.current?.abort();
  }

  /** One try: an endpoint not tried yet where possible, within the breaker's limits. */
  tryOnce(isRetry: boolean): void {
    this.backoff = null;
    const { service, endpoints } = this.target;
    const breaker = service.breaker;
    const endpoint = endpoints.choose(this.options.hashKey, this.tried);
    if (endpoint === null) {
      if (isRetry) breaker.retries--;
      service.stats.noHealthyUpstream++;
      this.refuse('no-healthy-endpoint', 'MG_NO_HEALTHY_UPSTREAM', this.noEndpointDetail());
      return;
    }
    if (breaker.requests >= breaker.maxRequests) {
      if (isRetry) breaker.retries--;
      breaker.overflows.maxRequests++;
      this.refuse(
        'circuit-open:maxRequests',
        'MG_CIRCUIT_OPEN',
        `service ${service.name} has ${breaker.requests} requests in flight, its limit (circuitBreaker.maxRequests)`,
      );
      return;
    }
    if (endpoints.panic) service.stats.panicTries++;
    let timeoutMs = 0;
    let perTryLimited = false;
    if (this.deadlineAt !== Number.POSITIVE_INFINITY)
      timeoutMs = Math.max(1, Math.ceil(this.deadlineAt - service.clock.now()));
    const perTry = this.target.retry?.perTryTimeoutMs ?? 0;
    if (perTry !== 0 && (timeoutMs === 0 || perTry < timeoutMs)) {
      timeoutMs = perTry;
      perTryLimited = true;
    }
    const attempt = new SubTry(this, endpoint, breaker, isRetry, timeoutMs, perTryLimited);
    this.current = attempt;
    this.tries++;
    endpoint.active++;
    breaker.requests++;
    if (timeoutMs > 0) attempt.startTimer();
    const o = this.options;
    const queued = endpoint.pool.dispatch(
      {
        method: o.method,
        path: o.path,
        headers: o.headers as string[],
        body: o.body,
        headersTimeout: 0, // the try's own timer covers headers and body
        bodyTimeout: service.timeouts.idleMs,
      },
      attempt,
    );
    if (!queued) {
      attempt.unwind();
      this.refuse(
        'circuit-open:maxPendingRequests',
        'MG_CIRCUIT_OPEN',
        `service ${service.name} has ${breaker.pending} requests waiting for a connection, its limit ` +
          '(circuitBreaker.maxPendingRequests)',
      );
    }
  }

  /**
   * Whether a failed try is tried again (the same rules as a forwarded request's); if so, the next try
   * is scheduled after the backoff.
   */
  retry(endpoint: Endpoint, kind: FailureKind, retryAfterMs: number | null): boolean {
    const policy = this.target.retry;
    if (policy === null || this.done) return false;
    (this.tried ??= []).push(endpoint);
    const service = this.target.service;
    const now = service.clock.now();
    const delay = Math.max(backoffMs(policy, this.tries), retryAfterMs ?? 0);
    const stop = retryStop(this, policy, kind, retryAfterMs, now + delay) ?? admitRetry(service, policy, now);
    if (stop !== null) {
      this.record(stop);
      return false;
    }
    this.current = null;
    this.backoff = setTimeout(retryNow, delay, this);
    return true;
  }

  succeed(status: number, headers: SubResponse['headers'], body: Buffer): void {
    if (this.done) return;
    this.done = true;
    this.current = null;
    this.onDone({ ok: true, status, headers, body, tries: this.tries });
  }

  fail(code: LocalReplyCode, detail: string): void {
    if (this.done) return;
    this.done = true;
    this.current = null;
    this.onDone({ ok: false, code, detail, tries: this.tries });
  }

  private refuse(reason: string, code: LocalReplyCode, detail: string): void {
    this.record(reason);
    this.fail(code, detail);
  }

  private record(reason: string): void {
    const service = this.target.service;
    service.stats.refusals.add({
      at: service.clock.now(),
      requestId: this.options.requestId,
      route: this.options.route,
      reason,
    });
  }

  private noEndpointDetail(): string {
    const { service, subset, endpoints } = this.target;
    const where = subset === undefined ? '' : `subset ${subset} of `;
    return endpoints.endpoints.length === 0
      ? `${where}service ${service.name} has no endpoint`
      : `${where}service ${service.name} has no healthy endpoint (${endpoints.endpoints.length} unhealthy or ejected)`;
  }
}

function retryNow(request: SubRequest): void {
  request.tryOnce(true);
}

/** One try of a sub-request, as an undici dispatch handler that collects the answer. */
class SubTry implements PooledHandler {
  client: Client | null = null;
  readonly authority: string;
  /** TryFacts: this try's timeout, ms, and whether it was the per-try limit. */
  readonly timeoutMs: number;
  readonly perTryLimited: boolean;
  private readonly request: SubRequest;
  private readonly endpoint: Endpoint;
  private readonly breaker: CircuitBreaker;
  private readonly isRetry: boolean;
  private controller: Dispatcher.DispatchController | null = null;
  private pendingAbort: Error | null = null;
  private timer: NodeJS.Timeout | null = null;
  private ended = false;
  /** The try no longer reports: aborted by the caller, or dropped for a retry. */
  private silenced = false;
  private timedOut = false;
  private tooLarge = false;
  private status = 0;
  private headers: SubResponse['headers'] = {};
  private chunks: Buffer[] = [];
  private received = 0;

  constructor(
    request: SubRequest,
    endpoint: Endpoint,
    breaker: CircuitBreaker,
    isRetry: boolean,
    timeoutMs: number,
    perTryLimited: boolean,
  ) {
    this.request = request;
    this.endpoint = endpoint;
    this.authority = endpoint.authority;
    this.breaker = breaker;
    this.isRetry = isRetry;
    this.timeoutMs = timeoutMs;
    this.perTryLimited = perTryLimited;
  }

  startTimer(): void {
    this.timer = setTimeout(onSubTryTimeout, this.timeoutMs, this);
  }

  /** The caller went away: end the try without a word. */
  abort(): void {
    this.silenced = true;
    this.stop(new Error('client closed'));
  }

  /** The timer fired: the try fails as a timeout. */
  expire(): void {
    this.timer = null;
    if (this.ended) return;
    this.timedOut = true;
    this.stop(Object.assign(new Error('sub-request timeout'), { code: 'UND_ERR_HEADERS_TIMEOUT' }));
  }

  private stop(error: Error): void {
    if (this.ended) return;
    if (this.controller !== null) this.controller.abort(error);
    else if (this.endpoint.pool.cancel(this))
      this.onResponseError(null as unknown as Dispatcher.DispatchController, error);
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
    const request = this.request;
    const service = request.target.service;
    service.outlier?.observe(this.endpoint, statusCode);
    const policy = request.target.retry;
    if (
      policy !== null &&
      retriableResponse(policy, statusCode, headers) &&
      request.retry(this.endpoint, FAILURE_NONE, parseRetryAfter(headers['retry-after'], service.clock.now()))
    ) {
      // Dropped with its connection: a retried answer is rare enough not to drain it for reuse.
      this.silenced = true;
      controller.abort(new Error('response dropped for a retry'));
      return;
    }
    const limit = request.options.maxBodyBytes;
    const declared = headers['content-length'];
    if (limit > 0 && typeof declared === 'string' && Number(declared) > limit) {
      this.tooLarge = true;
      controller.abort(new Error('response over the limit'));
      return;
    }
    this.status = statusCode;
    this.headers = headers;
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.silenced || this.tooLarge) return;
    this.received += chunk.length;
    const limit = this.request.options.maxBodyBytes;
    if (limit > 0 && this.received > limit) {
      this.tooLarge = true;
      this.chunks = [];
      controller.abort(new Error('response over the limit'));
      return;
    }
    this.chunks.push(chunk);
  }

  onResponseEnd(): void {
    if (this.ended) return;
    this.end();
    if (this.silenced) return;
    const body = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.received);
    this.request.succeed(this.status, this.headers, body);
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    if (this.ended) return;
    this.end();
    if (this.silenced) return;
    const request = this.request;
    const service = request.target.service;
    if (this.tooLarge) {
      request.fail(
        'MG_RESPONSE_TOO_LARGE',
        `the answer of ${service.name} (${this.authority}) exceeds ${request.options.maxBodyBytes} bytes (maxBodyBytes)`,
      );
      return;
    }
    let code: LocalReplyCode;
    let detail: string;
    let kind: FailureKind;
    if (this.timedOut) {
      code = 'MG_UPSTREAM_TIMEOUT';
      kind = FAILURE_RESET;
      detail = this.perTryLimited
        ? `${service.name} (${this.authority}) did not answer within the per-try timeout of ${this.timeoutMs} ms (try ${request.tries})`
        : `${service.name} (${this.authority}) did not answer within ${request.options.timeoutMs} ms`;
    } else [code, detail, kind] = classifyUpstreamError(error, request, this);
    const responded = this.status !== 0;
    if (!responded && (kind === FAILURE_CONNECT || kind === FAILURE_RESET)) {
      service.outlier?.failure(this.endpoint, true);
      const policy = request.target.retry;
      if (policy !== null && retriableFailure(policy, kind) && request.retry(this.endpoint, kind, null)) return;
    }
    request.fail(code, detail);
  }

  /** Undoes the bookkeeping of a try the pool refused to queue. */
  unwind(): void {
    this.stopTimer();
    this.ended = true;
    this.endpoint.active--;
    this.breaker.requests--;
    if (this.isRetry) this.breaker.retries--;
  }

  private end(): void {
    this.stopTimer();
    this.ended = true;
    this.endpoint.active--;
    this.breaker.requests--;
    if (this.isRetry) this.breaker.retries--;
    this.endpoint.pool.release(this);
  }

  private stopTimer(): void {
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
  }
}

function onSubTryTimeout(attempt: SubTry): void {
  attempt.expire();
}
