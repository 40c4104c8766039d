/**
 * An action's own upstream call: a request the proxy builds and sends to a service on a client
 * request's behalf, whose answer it reads whole (the aggregate action's calls, the graphql action's
 * operation). `sendSubRequest` is the one entry point for such calls. A call goes through the
 * machinery of a forwarded try: the endpoint choice and breaker admission and the handler's lifecycle
 * of attempt.ts, the endpoint's connection pool, outlier detection, the failure codes of classify.ts,
 * and the target's retry policy with the forward path's decisions (retry-state.ts: attempts,
 * idempotency, Retry-After, the deadline, the breaker's retry limit, the budget). The difference is
 * the answer: a forwarded response streams to the client; a sub-request's is read whole, up to a
 * limit, and handed to the caller.
 *
 * The forward path keeps its own try (try.ts): it streams, and its state lives on the StreamContext
 * to allocate nothing per try. A sub-request is one object per call plus one per try.
 */
import { performance } from 'node:perf_hooks';
import type { Dispatcher } from 'undici';
import type { LocalReplyCode } from '../../core/errors.ts';
import type { StreamContext } from '../context.ts';
import { type SubRequestNote, tryNote } from '../explain/trail.ts';
import { admitTry, MAX_PENDING_REQUESTS, refusalOf, TryHandler, type TryRefusal, type TryTarget } from './attempt.ts';
import { classifyUpstreamError, type RequestFacts } from './classify.ts';
import type { Endpoint } from './endpoint.ts';
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
import { noteStreamedBytes } from './streamed-bytes.ts';

/**
 * Where a sub-request goes, compiled once per config: a service or a subset of one, with the retry
 * policy and idle timeout in force (a route's `CompiledDestination` is one).
 */
export interface SubRequestTarget extends TryTarget {
  /** The retry policy, or null: one try. */
  readonly retry: RetryPolicy | null;
  /** Longest silence while the answer's body arrives, ms; 0: none. */
  readonly idleTimeoutMs: number;
}

export interface SubRequestOptions {
  readonly method: string;
  /** Path and query. */
  readonly path: string;
  /** `[name, value, …]`, names lower-case; Host is the endpoint's unless set here. */
  readonly headers: readonly string[];
  readonly body: Buffer | null;
  /**
   * Whether a try that may have reached the service can be sent again when the policy retries its
   * failure (a connect failure is retried whatever this says: nothing was sent). Callers say it
   * explicitly: by method for REST calls (RFC 9110 §9.2.2), by operation for GraphQL. The policy's
   * `nonIdempotent: true` retries regardless.
   */
  readonly idempotent: boolean;
  /** For the whole sub-request: every try, backoffs, response headers and body, ms. 0: none. */
  readonly timeoutMs: number;
  /** Largest response body read, bytes; a larger one fails with MG_RESPONSE_TOO_LARGE. 0: no limit. */
  readonly maxBodyBytes: number;
  /** The key a consistent-hashing balancer places it by. */
  readonly hashKey: number;
  /** The client request the call is made for (its id and route name the call's refusals). */
  readonly ctx: StreamContext;
  /**
   * The call is the request's upstream (graphql's one call): its endpoint, tries, timings, refusal
   * and retry decisions are recorded on `ctx` as a forwarded try's are (access log, metrics,
   * Server-Timing), and the client going away aborts it. False for one of several calls (aggregate's:
   * the action records the request's upstream time and aborts its calls itself).
   */
  readonly sole: boolean;
  /** How a request's decision trail names the call (aggregate's call name); default: the service's. */
  readonly name?: string;
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
 * first (then never). A refusal (no endpoint, an open circuit) calls it before this returns.
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
  /** The client request whose upstream this call is (options.sole), or null. */
  readonly recordsOn: StreamContext | null;
  tries = 0;
  deadlineAt = Number.POSITIVE_INFINITY;
  /** RequestFacts: the service, for failure details. */
  readonly destination: { readonly service: SubRequestTarget['service'] };
  readonly method: string;
  readonly idempotent: boolean;
  readonly hasBody: boolean;
  readonly bufferedBody: Buffer | null;
  readonly body = null;
  private readonly onDone: (result: SubResult) => void;
  private tried: Endpoint[] | null = null;
  private current: SubTry | null = null;
  private backoff: NodeJS.Timeout | null = null;
  private done = false;
  /** Its tries in the request's decision trail, when the request has one and this is not its upstream. */
  private readonly note: SubRequestNote | null;

  constructor(target: SubRequestTarget, options: SubRequestOptions, onDone: (result: SubResult) => void) {
    this.target = target;
    this.options = options;
    this.onDone = onDone;
    this.recordsOn = options.sole ? options.ctx : null;
    const trail = options.ctx.trail;
    this.note =
      trail === null || options.sole
        ? null
        : trail.subRequest(options.name ?? target.service.name, target.service.name);
    this.destination = { service: target.service };
    this.method = options.method;
    this.idempotent = options.idempotent;
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
    const ctx = this.recordsOn;
    if (ctx !== null) {
      ctx.upstream = this;
      ctx.upstreamStartMs = performance.now();
    }
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
    const target = this.target;
    const endpoint = admitTry(target, this.options.hashKey, this.tried, isRetry);
    if (typeof endpoint === 'string') {
      this.refuse(endpoint);
      return;
    }
    const service = target.service;
    const ctx = this.recordsOn;
    if (target.endpoints.panic) {
      service.stats.panicTries++;
      if (ctx !== null) ctx.panic = true;
    }
    let timeoutMs = 0;
    let perTryLimited = false;
    if (this.deadlineAt !== Number.POSITIVE_INFINITY)
      timeoutMs = Math.max(1, Math.ceil(this.deadlineAt - service.clock.now()));
    const perTry = target.retry?.perTryTimeoutMs ?? 0;
    if (perTry !== 0 && (timeoutMs === 0 || perTry < timeoutMs)) {
      timeoutMs = perTry;
      perTryLimited = true;
    }
    if (this.note !== null) this.note.tries.push(tryNote(endpoint, service.breaker, target.endpoints.panic));
    else if (ctx !== null && ctx.trail !== null)
      ctx.trail.tryStarted(endpoint, service.breaker, target.endpoints.panic);
    const attempt = new SubTry(this, endpoint, isRetry, timeoutMs, perTryLimited);
    this.current = attempt;
    this.tries++;
    if (ctx !== null) {
      ctx.endpoint = endpoint;
      ctx.tries++;
    }
    endpoint.active++;
    service.breaker.requests++;
    // The timer covers the answer's body too, so undici's headers timeout is not used.
    if (timeoutMs > 0) attempt.startTimer();
    const o = this.options;
    const queued = endpoint.pool.dispatch(
      {
        method: o.method,
        path: o.path,
        headers: o.headers as string[],
        body: o.body,
        headersTimeout: 0,
        bodyTimeout: target.idleTimeoutMs,
      },
      attempt,
    );
    if (!queued) {
      attempt.unwind();
      this.tries--;
      if (ctx !== null) ctx.tries--;
      this.refuse(MAX_PENDING_REQUESTS);
    }
  }

  /**
   * Whether a failed try is tried again (the same rules as a forwarded request's); if so, the next try
   * is scheduled after the backoff. `outcome` is the try's line in the request's try log.
   */
  retry(endpoint: Endpoint, kind: FailureKind, outcome: string, retryAfterMs: number | null): boolean {
    const policy = this.target.retry;
    if (policy === null || this.done) return false;
    (this.tried ??= []).push(endpoint);
    const ctx = this.recordsOn;
    if (ctx !== null) (ctx.tryLog ??= []).push({ endpoint: endpoint.authority, outcome });
    const service = this.target.service;
    const now = service.clock.now();
    const delay = Math.max(backoffMs(policy, this.tries), retryAfterMs ?? 0);
    const stop = retryStop(this, policy, kind, retryAfterMs, now + delay) ?? admitRetry(service, policy, now);
    if (this.note !== null) noteFailedTry(this.note, outcome, stop, delay);
    else if (ctx !== null && ctx.trail !== null) ctx.trail.tryFailed(stop === null ? delay : -1);
    if (stop !== null) {
      if (ctx !== null) ctx.retryStop = stop;
      this.record(stop);
      return false;
    }
    this.current = null;
    this.backoff = setTimeout(retryNow, delay, this);
    return true;
  }

  /** The answer's head is in and will be read (not retried). */
  answered(): void {
    if (this.recordsOn !== null) this.recordsOn.upstreamHeadersMs = performance.now();
  }

  succeed(status: number, headers: SubResponse['headers'], body: Buffer): void {
    if (this.done) return;
    if (this.note !== null) noteLastTry(this.note, `status ${status}`);
    this.settle();
    this.onDone({ ok: true, status, headers, body, tries: this.tries });
  }

  fail(code: LocalReplyCode, detail: string): void {
    if (this.done) return;
    if (this.note !== null) noteLastTry(this.note, code);
    this.settle();
    this.onDone({ ok: false, code, detail, tries: this.tries });
  }

  private settle(): void {
    this.done = true;
    this.current = null;
    if (this.recordsOn !== null) this.recordsOn.upstreamEndMs = performance.now();
  }

  private refuse(reason: TryRefusal): void {
    const [code, detail] = refusalOf(reason, this.target);
    if (this.recordsOn !== null) this.recordsOn.refusal = reason;
    if (this.note !== null) this.note.stop = reason;
    this.record(reason);
    this.fail(code, detail);
  }

  /** Kept in the service's recent refusals (admin `/services`). */
  private record(reason: string): void {
    const service = this.target.service;
    const ctx = this.options.ctx;
    service.stats.refusals.add({ at: service.clock.now(), requestId: ctx.requestId, route: ctx.routeName, reason });
  }
}

/** A try that failed: its outcome, then the backoff before the retry, or why none follows. */
function noteFailedTry(note: SubRequestNote, outcome: string, stop: string | null, delayMs: number): void {
  const last = note.tries.at(-1);
  if (last === undefined) return;
  last.endMs = performance.now();
  last.retryDelayMs = stop === null ? delayMs : -1;
  note.outcomes.push(outcome);
  if (stop !== null) note.stop = stop;
}

/** The call's result, as the outcome of its last try when no retry decision gave one already. */
function noteLastTry(note: SubRequestNote, outcome: string): void {
  const last = note.tries.at(-1);
  if (last === undefined || note.outcomes.length >= note.tries.length) return;
  last.endMs = performance.now();
  note.outcomes.push(outcome);
}

function retryNow(request: SubRequest): void {
  request.tryOnce(true);
}

/** One try of a sub-request: collects the answer up to the limit, or turns a failure into a retry. */
class SubTry extends TryHandler {
  private readonly request: SubRequest;
  /** The try no longer reports: aborted by the caller, or dropped for a retry. */
  private silenced = false;
  private tooLarge = false;
  private status = 0;
  private headers: SubResponse['headers'] = {};
  private chunks: Buffer[] = [];
  private received = 0;

  constructor(request: SubRequest, endpoint: Endpoint, isRetry: boolean, timeoutMs: number, perTryLimited: boolean) {
    super(endpoint, request.target.service.breaker, isRetry, timeoutMs, perTryLimited);
    this.request = request;
  }

  /** The caller went away: end the try without a word. */
  abort(): void {
    if (this.ended) return;
    this.silenced = true;
    this.stop(new Error('client closed'));
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
      request.retry(
        this.endpoint,
        FAILURE_NONE,
        `status ${statusCode}`,
        parseRetryAfter(headers['retry-after'], service.clock.now()),
      )
    ) {
      // Dropped with its connection: a retried answer is rare enough not to drain it for reuse.
      this.silenced = true;
      controller.abort(new Error('response dropped for a retry'));
      return;
    }
    request.answered();
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

  onBodySent(chunk: Buffer): void {
    const ctx = this.request.recordsOn;
    if (ctx !== null) ctx.bytesIn += chunk.length;
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.silenced || this.tooLarge) return;
    this.received += chunk.length;
    noteStreamedBytes(chunk.length);
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
    const target = request.target;
    if (this.tooLarge) {
      request.fail(
        'MG_RESPONSE_TOO_LARGE',
        `the answer of ${target.service.name} (${this.authority}) exceeds ${request.options.maxBodyBytes} bytes, ` +
          `the most route ${request.options.ctx.routeName} reads`,
      );
      return;
    }
    const [code, detail, kind] = classifyUpstreamError(error, request, this);
    if (this.status === 0 && (kind === FAILURE_CONNECT || kind === FAILURE_RESET)) {
      target.service.outlier?.failure(this.endpoint, true);
      const policy = target.retry;
      if (policy !== null && retriableFailure(policy, kind) && request.retry(this.endpoint, kind, code, null)) return;
    }
    request.fail(code, detail);
  }
}
