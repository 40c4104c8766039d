/**
 * One try upstream: an endpoint (another than before, on a retry, where possible), the circuit
 * breaker's limits, the undici dispatch, and the handler that streams the response back to the client
 * with backpressure, or turns a failure into a retry or a problem reply.
 *
 * The plain path (no retries, no body filters) costs a few comparisons over a bare dispatch: no timer,
 * closure or buffer is added unless a route or service configures the feature that needs it.
 */
import type { Http2ServerResponse } from 'node:http2';
import { performance } from 'node:perf_hooks';
import type { Dispatcher } from 'undici';
import { PRECISE_TIMEOUT_BELOW_MS, REQUEST_ID_HEADER, RETRY_DRAIN_MAX_BYTES } from '../../core/defaults.ts';
import { type LocalReplyCode, LocalReplyCodes } from '../../core/errors.ts';
import {
  BODY_BACKPRESSURE,
  BODY_TOO_LARGE,
  completeResponse,
  endResponse,
  ResponseBodyRewriter,
  responseBodyFiltersFor,
  responseHasBody,
} from '../chain/body.ts';
import { runBodyTaps, runResponseFilters } from '../chain/filters.ts';
import type { StreamContext } from '../context.ts';
import { connectionListed, RESPONSE_HOP_BY_HOP, removeHeaders } from '../headers.ts';
import { pushVersionHeaders } from '../versioning.ts';
import {
  admitTry,
  MAX_PENDING_REQUESTS,
  refusalOf,
  refusalRetryAfter,
  TryHandler,
  type TryRefusal,
} from './attempt.ts';
import type { CircuitBreaker } from './circuit-breaker.ts';
import { classifyUpstreamError } from './classify.ts';
import type { Endpoint } from './endpoint.ts';
import { bodySource } from './request-body.ts';
import {
  FAILURE_CONNECT,
  FAILURE_NONE,
  FAILURE_RESET,
  parseRetryAfter,
  retriableFailure,
  retriableResponse,
} from './retry.ts';
import { recordRefusal, retryTry, type TryStarter } from './retry-state.ts';
import { noteStreamedBytes } from './streamed-bytes.ts';

/** Refuses the request without an upstream answer, recording why. */
export function refuse(
  ctx: StreamContext,
  reason: string,
  code: LocalReplyCode,
  detail: string,
  retryAfter?: string,
): void {
  ctx.body?.drain();
  ctx.refusal = reason;
  recordRefusal(ctx, reason);
  if (retryAfter === undefined) ctx.fail(code, detail);
  else ctx.reply({ status: LocalReplyCodes[code].status, code, detail, headers: [['retry-after', retryAfter]] });
}

/** Refuses the request for a try that could not be sent (attempt.ts), in its words. */
export function refuseTry(ctx: StreamContext, reason: TryRefusal): void {
  const [code, detail] = refusalOf(reason, ctx.destination!);
  refuse(ctx, reason, code, detail, refusalRetryAfter(reason, ctx.destination!));
}

/**
 * What a try sends when it is not the client's request as it is (the transcode action's gRPC call):
 * its method, its headers, and the handler that turns the upstream's answer into the client's.
 */
export interface TryExchange {
  readonly method: string;
  readonly headers: string[];
  makeCall(
    ctx: StreamContext,
    endpoint: Endpoint,
    breaker: CircuitBreaker,
    isRetry: boolean,
    timeoutMs: number,
    perTryLimited: boolean,
  ): UpstreamCall;
}

/** One try of `ctx.destination`; the request's destination, path, headers and timeouts are set. */
export function startTry(ctx: StreamContext, isRetry: boolean): void {
  tryWith(ctx, isRetry, null);
}

/**
 * One try of `ctx.destination` with the endpoint choice, breaker limits, timeouts and retries of the
 * forward path; `exchange` null sends the client's request, else the exchange's.
 */
export function tryWith(ctx: StreamContext, isRetry: boolean, exchange: TryExchange | null): void {
  const destination = ctx.destination!;
  const service = destination.service;
  const breaker = service.breaker;
  const retry = ctx.retry;
  const endpoint = admitTry(destination, ctx.hashKey, retry === null ? null : retry.tried, isRetry);
  if (typeof endpoint === 'string') {
    refuseTry(ctx, endpoint);
    return;
  }
  let body: Dispatcher.DispatchOptions['body'] = null;
  if (ctx.hasBody) {
    if (ctx.body === null) body = bodySource(ctx);
    else {
      body = ctx.body.open();
      if (body === null) {
        // The body outgrew the replay buffer while this retry waited: the last failure stands.
        if (isRetry) breaker.retries--;
        breaker.adaptive?.cancel();
        ctx.retryStop = 'body-not-replayable';
        ctx.body.drain();
        ctx.fail(retry!.lastCode, retry!.lastDetail);
        return;
      }
    }
  }
  if (destination.endpoints.panic) {
    ctx.panic = true;
    service.stats.panicTries++;
  }
  ctx.endpoint = endpoint;
  if (ctx.autoHost) ctx.setHeader('host', endpoint.authority);

  let headersTimeout = ctx.timeoutMs;
  let perTryLimited = false;
  const policy = destination.retry;
  if (policy !== null) {
    const left = ctx.deadlineAt - service.clock.now();
    // undici reads 0 as "no timeout": past the deadline, give the try the least there is.
    const remaining = left === Number.POSITIVE_INFINITY ? 0 : Math.max(1, Math.ceil(left));
    const perTry = policy.perTryTimeoutMs;
    perTryLimited = perTry !== 0 && (remaining === 0 || perTry < remaining);
    headersTimeout = perTryLimited ? perTry : remaining;
  }
  const call =
    exchange === null
      ? new UpstreamCall(ctx, endpoint, breaker, isRetry, headersTimeout, perTryLimited)
      : exchange.makeCall(ctx, endpoint, breaker, isRetry, headersTimeout, perTryLimited);
  ctx.upstream = call;
  ctx.tries++;
  if (ctx.trail !== null) ctx.trail.tryStarted(endpoint, breaker, destination.endpoints.panic);
  if (!isRetry) ctx.upstreamStartMs = performance.now();
  endpoint.active++;
  breaker.requests++;
  // undici's own headers timer is cheap but fires up to a second late; short timeouts get ours.
  const precise = headersTimeout > 0 && headersTimeout < PRECISE_TIMEOUT_BELOW_MS;
  if (precise) call.startTimer();
  const queued = endpoint.pool.dispatch(
    {
      method: exchange === null ? ctx.method : exchange.method,
      path: ctx.upstreamPath,
      headers: exchange === null ? ctx.headers : exchange.headers,
      body,
      headersTimeout: precise ? 0 : headersTimeout,
      bodyTimeout: destination.idleTimeoutMs,
    },
    call,
  );
  if (!queued) {
    call.unwind();
    refuseTry(ctx, MAX_PENDING_REQUESTS);
  }
}

/**
 * One try upstream, as an undici dispatch handler: response headers and body go straight to the
 * client's response with backpressure; failures before the response starts are retried or become
 * problem replies. (Node corks the client socket for the tick of a write, so head, a small body and
 * the end still leave in one writev.)
 */
export class UpstreamCall extends TryHandler {
  protected readonly ctx: StreamContext;
  protected aborted = false;
  /** The response is being retried: read and dropped, never sent to the client. */
  private discarding = false;
  private discarded = 0;
  /** gRPC trailers-only response: the head was the whole response. */
  private headOnly = false;
  /** The request's filters rewrite this response's body (null: it streams through untouched). */
  private rewriter: ResponseBodyRewriter | null = null;
  /** A body filter stopped this response (a buffered body over its limit, or a hook that threw). */
  private bodyFailed = false;

  constructor(
    ctx: StreamContext,
    endpoint: Endpoint,
    breaker: CircuitBreaker,
    isRetry: boolean,
    timeoutMs: number,
    perTryLimited: boolean,
  ) {
    super(endpoint, breaker, isRetry, timeoutMs, perTryLimited);
    this.ctx = ctx;
  }

  /** The client went away: stop the upstream work, or drop the request if it is still queued. */
  abort() {
    if (this.ended) return;
    this.aborted = true;
    this.stop(new Error('client closed'));
  }

  onResponseStart(
    controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: Record<string, string | string[] | undefined>,
  ): void {
    if (statusCode < 200) return; // interim responses: the proxy answers Expect itself
    this.stopTimer();
    const ctx = this.ctx;
    const destination = ctx.destination!;
    const outlier = destination.service.outlier;
    if (outlier !== null) outlier.observe(this.endpoint, statusCode);
    const policy = destination.retry;
    if (
      policy !== null &&
      retriableResponse(policy, statusCode, headers) &&
      retryTry(
        ctx,
        this.endpoint,
        FAILURE_NONE,
        `status ${statusCode}`,
        parseRetryAfter(headers['retry-after'], ctx.destination!.service.clock.now()),
        startTry,
      )
    ) {
      this.discard(controller, headers['content-length']);
      return;
    }
    ctx.upstreamHeadersMs = performance.now();
    const res = ctx.res;
    if (res.destroyed) {
      controller.abort(new Error('client closed'));
      return;
    }
    const out: (string | string[])[] = [];
    let hasDate = false;
    let listed: Set<string> | null = null;
    for (const name in headers) {
      const value = headers[name];
      if (value === undefined) continue;
      if (RESPONSE_HOP_BY_HOP.has(name)) {
        if (name === 'connection') listed = connectionListed(String(value));
        continue;
      }
      if (name === 'date') hasDate = true;
      // The proxy's own id replaces an upstream's (a sidecar's echo of the same id): one value, not two.
      else if (name === REQUEST_ID_HEADER) continue;
      out.push(name, value);
    }
    if (listed !== null) removeHeaders(out as string[], listed);
    out.push(REQUEST_ID_HEADER, ctx.requestId);
    const version = ctx.route!.version;
    if (version !== null) pushVersionHeaders(out, version);
    const telemetry = ctx.owner.telemetry;
    if (telemetry?.serverTiming) out.push('server-timing', telemetry.serverTimingOf(ctx));
    if (ctx.activeFilters !== null) runResponseFilters(ctx, statusCode, out);
    // Keep the upstream's Date; Node adds one only when it sent none (RFC 9110 §6.6.1).
    if (hasDate) res.sendDate = false;
    // A gRPC error can be trailers-only: grpc-status in the one HEADERS frame, which must end the stream,
    // or the client waits for trailers that never come (docs/listeners.md, gRPC).
    if (ctx.h2 && headers['grpc-status'] !== undefined) {
      this.headOnly = true;
      const head: Record<string, string | string[]> = { ':status': String(statusCode) };
      for (let i = 0; i < out.length; i += 2) head[out[i] as string] = out[i + 1]!;
      res.statusCode = statusCode;
      (res as unknown as Http2ServerResponse).stream.respond(head, { endStream: true });
      return;
    }
    if (ctx.responseBodyFilters !== null && responseHasBody(ctx.method, statusCode)) {
      const filters = responseBodyFiltersFor(ctx, statusCode, out);
      if (filters !== null) {
        this.rewriter = new ResponseBodyRewriter(ctx, filters);
        if (this.rewriter.holdHead(statusCode, out)) return;
      }
    }
    res.writeHead(statusCode, out as string[]);
  }

  /**
   * Drops a response that is being retried: a small one is read to its end so the connection stays
   * usable; one that declares or turns out to be larger is cut.
   */
  private discard(controller: Dispatcher.DispatchController, contentLength: string | string[] | undefined): void {
    this.discarding = true;
    this.discarded = 0;
    if (typeof contentLength === 'string' && Number(contentLength) > RETRY_DRAIN_MAX_BYTES)
      controller.abort(new Error('response dropped for a retry'));
  }

  onBodySent(chunk: Buffer): void {
    this.ctx.bytesIn += chunk.length;
    noteStreamedBytes(chunk.length);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.discarding) {
      this.discarded += chunk.length;
      if (this.discarded > RETRY_DRAIN_MAX_BYTES) controller.abort(new Error('response dropped for a retry'));
      return;
    }
    if (this.headOnly) return;
    const ctx = this.ctx;
    ctx.bytesOut += chunk.length;
    noteStreamedBytes(chunk.length);
    if (this.rewriter !== null) {
      this.rewriteChunk(controller, chunk);
      return;
    }
    if (ctx.bodyTaps !== null) runBodyTaps(ctx, chunk);
    ctx.lastWriteMs = performance.now();
    if (!ctx.res.write(chunk)) {
      controller.pause();
      ctx.res.once('drain', () => controller.resume());
    }
  }

  private rewriteChunk(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    const ctx = this.ctx;
    let written: number;
    try {
      written = this.rewriter!.chunk(chunk);
    } catch (e) {
      ctx.owner.onFilterError?.(ctx, 'body hook', e);
      this.bodyFailed = true;
      controller.abort(e as Error);
      return;
    }
    if (written === BODY_TOO_LARGE) {
      this.bodyFailed = true;
      controller.abort(new Error('response body over the filter limit'));
    } else if (written === BODY_BACKPRESSURE) {
      controller.pause();
      ctx.res.once('drain', () => controller.resume());
    }
  }

  onResponseEnd(
    _controller: Dispatcher.DispatchController,
    trailers: Record<string, string | string[] | undefined>,
  ): void {
    this.end();
    if (this.discarding) return;
    const ctx = this.ctx;
    ctx.upstreamEndMs = performance.now();
    if (ctx.body !== null) ctx.body.drain();
    if (this.headOnly) {
      completeResponse(ctx);
      return;
    }
    // Trailers (gRPC's grpc-status) go on to HTTP/2 clients; HTTP/1.1 responses are sent without them.
    if (ctx.h2 && trailers !== undefined) {
      let any = false;
      for (const _name in trailers) {
        any = true;
        break;
      }
      if (any) (ctx.res as unknown as Http2ServerResponse).addTrailers(trailers as Record<string, string>);
    }
    endResponse(ctx, this.rewriter);
  }

  override onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    if (this.ended) return;
    this.end();
    // A response that failed after some of its body lasted until the failure, not its last chunk.
    this.ctx.lastWriteMs = 0;
    if (this.aborted || this.discarding) return;
    const ctx = this.ctx;
    if (this.bodyFailed) {
      ctx.body?.drain();
      const limit = this.rewriter?.limit ?? 0;
      ctx.fail(
        limit > 0 ? 'MG_RESPONSE_TOO_LARGE' : 'MG_INTERNAL',
        limit > 0
          ? `the response of ${ctx.destination!.service.name} exceeds ${limit} bytes, the most a plugin of route ${ctx.routeName} reads`
          : `a plugin of route ${ctx.routeName} failed on the response body`,
      );
      return;
    }
    const [code, detail, kind] = classifyUpstreamError(error, ctx, this);
    const destination = ctx.destination!;
    const responded = ctx.upstreamHeadersMs !== 0;
    if (!responded && (kind === FAILURE_CONNECT || kind === FAILURE_RESET)) {
      destination.service.outlier?.failure(this.endpoint, true);
      const policy = destination.retry;
      if (
        policy !== null &&
        retriableFailure(policy, kind) &&
        retryTry(ctx, this.endpoint, kind, code, null, this.retryStarter())
      ) {
        ctx.retry!.lastCode = code;
        ctx.retry!.lastDetail = detail;
        return;
      }
    }
    this.failTry(code, detail);
  }

  /** Starts this request's next try (an exchange's call starts another of its own kind). */
  protected retryStarter(): TryStarter {
    return startTry;
  }

  /** The try failed for good: the client gets the failure as a problem reply. */
  protected failTry(code: LocalReplyCode, detail: string): void {
    const ctx = this.ctx;
    if (ctx.body !== null) ctx.body.drain();
    ctx.fail(code, detail);
  }

  override unwind(): void {
    super.unwind();
    this.ctx.tries--;
  }
}
