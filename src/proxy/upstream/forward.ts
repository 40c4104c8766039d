/**
 * Sending a request upstream and its response back: fault injection, destination and endpoint
 * choice, circuit breaking, tries and retries with per-try timeouts, mirroring, the undici dispatch,
 * response streaming with backpressure, and turning failures into problem replies.
 *
 * The plain path (no fault, no mirror, no retries) costs a few comparisons over a bare dispatch: no
 * timer, closure or buffer is added unless a route or service configures the feature that needs it.
 * Every decision is written on the StreamContext (refusal, retryStop, tryLog, panic…).
 */
import type { Http2ServerResponse } from 'node:http2';
import type { Readable } from 'node:stream';
import { Transform, type TransformCallback } from 'node:stream';
import type { Client, Dispatcher } from 'undici';
import {
  DEFAULT_MIRROR_BODY_BYTES,
  PRECISE_TIMEOUT_BELOW_MS,
  REQUEST_ID_HEADER,
  RETRY_DRAIN_MAX_BYTES,
} from '../../core/defaults.ts';
import { parseDuration } from '../../core/duration.ts';
import type { LocalReplyCode } from '../../core/errors.ts';
import { runBodyTaps, runCompleteFilters, runResponseFilters } from '../chain/filters.ts';
import type { StreamContext } from '../context.ts';
import { connectionListed, RESPONSE_HOP_BY_HOP, removeHeaders } from '../headers.ts';
import { upstreamPath } from '../path.ts';
import { type CompiledDestination, type CompiledRoute, pickDestination } from '../snapshot.ts';
import type { CircuitBreaker } from './circuit-breaker.ts';
import type { Endpoint } from './endpoint.ts';
import { type CompiledFault, roll } from './fault.ts';
import { type HashKeyReader, hash32, randomHash } from './hash.ts';
import { type CompiledMirror, sendMirror } from './mirror.ts';
import type { PooledHandler } from './pool.ts';
import { ReplayableBody } from './replay-body.ts';
import {
  backoffMs,
  FAILURE_CONNECT,
  FAILURE_NONE,
  FAILURE_REQUEST,
  FAILURE_RESET,
  type FailureKind,
  isIdempotent,
  parseRetryAfter,
  type RetryPolicy,
  retriableFailure,
  retriableResponse,
} from './retry.ts';
import { noteStreamedBytes } from './streamed-bytes.ts';

/** Seed for sticky splits, so the side of a split does not correlate with the endpoint a key hashes to. */
const STICKY_SEED = 0x5717c4;

/** Entry from the request path: faults first, then the first try. */
export function forward(ctx: StreamContext): void {
  const route = ctx.route!;
  if (route.fault !== null && injectFault(ctx, route.fault)) return;
  send(ctx, route);
}

function injectFault(ctx: StreamContext, fault: CompiledFault): boolean {
  if (fault.header !== null && ctx.header(fault.header) === undefined) return false;
  if (fault.delayMs > 0 && roll(fault.delayPercent)) {
    ctx.faultDelayMs = fault.delayMs;
    fault.injected.delays++;
    setTimeout(afterFaultDelay, fault.delayMs, ctx, fault);
    return true;
  }
  return abortFault(ctx, fault);
}

function afterFaultDelay(ctx: StreamContext, fault: CompiledFault): void {
  if (ctx.done) return; // the client went away while held
  if (!abortFault(ctx, fault)) send(ctx, ctx.route!);
}

function abortFault(ctx: StreamContext, fault: CompiledFault): boolean {
  if (fault.abortStatus === 0 || !roll(fault.abortPercent)) return false;
  fault.injected.aborts++;
  ctx.refusal = 'fault-abort';
  ctx.reply({
    status: fault.abortStatus,
    code: 'MG_FAULT_INJECTED',
    detail: `route ${ctx.route!.name} injected this failure (fault.abort)`,
  });
  return true;
}

/** Destination, timeouts, body handling and mirror for this request; then its first try. */
function send(ctx: StreamContext, route: CompiledRoute): void {
  const destination = chooseDestination(ctx, route);
  if (destination === null) return;
  ctx.upstreamPath = upstreamPathOf(ctx, route);
  ctx.timeoutMs =
    ctx.requestTimeoutHeader === null
      ? destination.requestTimeoutMs
      : shorten(destination.requestTimeoutMs, ctx.requestTimeoutHeader);

  const policy = destination.retry;
  if (policy !== null) {
    const now = destination.service.clock.now();
    policy.budget.deposit(now);
    if (ctx.timeoutMs > 0) ctx.deadlineAt = now + ctx.timeoutMs;
  }
  // gRPC's `TE: trailers` says the client takes trailers; an HTTP/2 upstream may then send them.
  if (ctx.teTrailers && (destination.service.config.protocol ?? 'http1') !== 'http1')
    ctx.headers.push('te', 'trailers');
  const mirror = route.mirror !== null && roll(route.mirror.percent) ? route.mirror : null;
  if (ctx.hasBody && (mirror !== null || (policy !== null && policy.replayBufferBytes > 0))) {
    const limit = Math.max(policy?.replayBufferBytes ?? 0, mirror === null ? 0 : DEFAULT_MIRROR_BODY_BYTES);
    ctx.body = new ReplayableBody(bodySource(ctx), limit);
  }
  const service = destination.service;
  ctx.hashKey = destination.endpoints.hashing ? requestHash(ctx, service.hashKey) : 0;
  startTry(ctx, false);
  if (mirror !== null && !ctx.done) startMirror(ctx, mirror);
}

/** The client's body, counted against the route's limit when it has no declared length (BodyLimit). */
function bodySource(ctx: StreamContext): Readable {
  return ctx.bodyAllowance >= 0 ? ctx.req.pipe(new BodyLimit(ctx)) : ctx.req;
}

/**
 * For a WebSocket upgrade (websocket.ts): destination, rewrite and one endpoint, no retries. Returns the
 * upstream path, or null after replying when there is nowhere to send the request.
 */
export function prepareUpgrade(ctx: StreamContext): string | null {
  const route = ctx.route!;
  const destination = chooseDestination(ctx, route);
  if (destination === null) return null;
  const service = destination.service;
  const endpoint = destination.endpoints.choose(
    destination.endpoints.hashing ? requestHash(ctx, service.hashKey) : 0,
    null,
  );
  if (endpoint === null) {
    const where = destination.subset ? `subset ${destination.subset} of ` : '';
    refuse(
      ctx,
      'no-healthy-endpoint',
      'MG_NO_HEALTHY_UPSTREAM',
      `${where}service ${service.name} has no healthy endpoint`,
    );
    return null;
  }
  ctx.endpoint = endpoint;
  if (route.rewrite?.host === undefined && route.rewrite?.autoHost) ctx.setHeader('host', endpoint.authority);
  return upstreamPathOf(ctx, route);
}

/** Picks the request's destination (one of the split), or replies and returns null when there is none. */
function chooseDestination(ctx: StreamContext, route: CompiledRoute): CompiledDestination | null {
  const only = route.destinations.length === 1;
  const destination = pickDestination(
    route,
    only ? 0 : route.sticky === null ? Math.random() * 100 : stickyRoll(ctx, route.sticky),
  );
  if (destination === null) {
    ctx.refusal = 'no-destination';
    ctx.fail('MG_NO_HEALTHY_UPSTREAM', `route ${route.name} has no destination with weight`);
    return null;
  }
  ctx.destination = destination;
  return destination;
}

/** The path and query sent upstream: as sent, or after the route's rewrite (which may also set Host). */
function upstreamPathOf(ctx: StreamContext, route: CompiledRoute): string {
  const rw = route.rewrite;
  if (rw?.host !== undefined) ctx.setHeader('host', rw.host);
  return upstreamPath(rw, ctx);
}

/** X-Request-Timeout can only shorten the timeout in force; an unreadable or 0 value is ignored. */
function shorten(timeoutMs: number, header: string): number {
  const ms = parseDuration(header.trim());
  if (ms === undefined || ms === 0) return timeoutMs;
  return timeoutMs === 0 ? ms : Math.min(timeoutMs, ms);
}

function stickyRoll(ctx: StreamContext, reader: HashKeyReader): number {
  const key = reader(ctx);
  return key === undefined ? Math.random() * 100 : (hash32(key, STICKY_SEED) % 10_000) / 100;
}

function requestHash(ctx: StreamContext, reader: HashKeyReader | null): number {
  const key = reader === null ? undefined : reader(ctx);
  return key === undefined ? randomHash() : hash32(key);
}

function startMirror(ctx: StreamContext, mirror: CompiledMirror): void {
  ctx.mirrored = true;
  if (!ctx.hasBody) {
    sendMirror(mirror, ctx.method, ctx.upstreamPath, ctx.headers, null);
    return;
  }
  const method = ctx.method;
  const path = ctx.upstreamPath;
  const headers = ctx.headers.slice();
  ctx.body!.whenComplete((body) => {
    if (body === null) mirror.service.stats.mirrorDropped++;
    else sendMirror(mirror, method, path, headers, body);
  });
}

/** Refuses the request without an upstream answer, recording why. */
function refuse(ctx: StreamContext, reason: string, code: LocalReplyCode, detail: string): void {
  ctx.body?.drain();
  ctx.refusal = reason;
  recordRefusal(ctx, reason);
  ctx.fail(code, detail);
}

/** One try: an endpoint (another than before, on a retry, where possible), limits, dispatch. */
function startTry(ctx: StreamContext, isRetry: boolean): void {
  const destination = ctx.destination!;
  const service = destination.service;
  const breaker = service.breaker;
  const set = destination.endpoints;
  const retry = ctx.retry;
  const endpoint = set.choose(ctx.hashKey, retry === null ? null : retry.tried);
  if (endpoint === null) {
    if (isRetry) breaker.retries--;
    service.stats.noHealthyUpstream++;
    const where = destination.subset ? `subset ${destination.subset} of ` : '';
    refuse(
      ctx,
      'no-healthy-endpoint',
      'MG_NO_HEALTHY_UPSTREAM',
      set.endpoints.length === 0
        ? `${where}service ${service.name} has no endpoint`
        : `${where}service ${service.name} has no healthy endpoint (${set.endpoints.length} unhealthy or ejected)`,
    );
    return;
  }
  if (breaker.requests >= breaker.maxRequests) {
    if (isRetry) breaker.retries--;
    breaker.overflows.maxRequests++;
    refuse(
      ctx,
      'circuit-open:maxRequests',
      'MG_CIRCUIT_OPEN',
      `service ${service.name} has ${breaker.requests} requests in flight, its limit (circuitBreaker.maxRequests)`,
    );
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
        ctx.retryStop = 'body-not-replayable';
        ctx.body.drain();
        ctx.fail(retry!.lastCode, retry!.lastDetail);
        return;
      }
    }
  }
  if (set.panic) {
    ctx.panic = true;
    service.stats.panicTries++;
  }
  ctx.endpoint = endpoint;
  const rw = ctx.route!.rewrite;
  if (rw !== null && rw.host === undefined && rw.autoHost) ctx.setHeader('host', endpoint.authority);

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
  const call = new UpstreamCall(ctx, endpoint, breaker, isRetry, headersTimeout, perTryLimited);
  ctx.upstream = call;
  ctx.tries++;
  if (!isRetry) ctx.upstreamStartMs = performance.now();
  endpoint.active++;
  breaker.requests++;
  // undici's own headers timer is cheap but fires up to a second late; short timeouts get ours.
  const precise = headersTimeout > 0 && headersTimeout < PRECISE_TIMEOUT_BELOW_MS;
  if (precise) call.startTimer();
  const queued = endpoint.pool.dispatch(
    {
      method: ctx.method,
      path: ctx.upstreamPath,
      headers: ctx.headers,
      body,
      headersTimeout: precise ? 0 : headersTimeout,
      bodyTimeout: destination.idleTimeoutMs,
    },
    call,
  );
  if (!queued) {
    call.unwind();
    refuse(
      ctx,
      'circuit-open:maxPendingRequests',
      'MG_CIRCUIT_OPEN',
      `service ${service.name} has ${breaker.pending} requests waiting for a connection, its limit ` +
        '(circuitBreaker.maxPendingRequests)',
    );
  }
}

/**
 * A request's retry state, created at its first retry: the endpoints it has tried, the failure to
 * answer with if it cannot go on, and the backoff timer (aborted when the client goes away).
 */
export class RetryState {
  readonly tried: Endpoint[] = [];
  lastCode: LocalReplyCode = 'MG_UPSTREAM_RESET';
  lastDetail = '';
  private timer: NodeJS.Timeout | null = null;
  private readonly ctx: StreamContext;

  constructor(ctx: StreamContext) {
    this.ctx = ctx;
  }

  wait(ms: number): void {
    this.ctx.upstream = this;
    this.timer = setTimeout(retryNow, ms, this.ctx);
  }

  /** The timer fired. */
  fired(): void {
    this.timer = null;
  }

  /** The client went away during the backoff. */
  abort(): void {
    if (this.timer === null) return;
    clearTimeout(this.timer);
    this.timer = null;
    this.ctx.destination!.service.breaker.retries--;
  }
}

function retryNow(ctx: StreamContext): void {
  ctx.retry!.fired();
  if (ctx.done) {
    ctx.destination!.service.breaker.retries--;
    return;
  }
  startTry(ctx, true);
}

/**
 * Decides whether a failed try is tried again and, if so, schedules it. `kind` is how it failed
 * (FAILURE_NONE for a retriable response), `outcome` the words for the try log.
 */
function retryTry(
  ctx: StreamContext,
  endpoint: Endpoint,
  kind: FailureKind,
  outcome: string,
  retryAfterMs: number | null,
): boolean {
  const destination = ctx.destination!;
  const policy = destination.retry!;
  if (ctx.done) return false;
  let state = ctx.retry;
  if (state === null) state = ctx.retry = new RetryState(ctx);
  state.tried.push(endpoint);
  (ctx.tryLog ??= []).push({ endpoint: endpoint.authority, outcome });
  const service = destination.service;
  const now = service.clock.now();
  const delay = Math.max(backoffMs(policy, ctx.tries), retryAfterMs ?? 0);
  const stop = retryStop(ctx, policy, kind, retryAfterMs, now + delay);
  if (stop !== null) return stopRetrying(ctx, stop);
  const breaker = service.breaker;
  if (breaker.retries >= breaker.maxRetries) {
    breaker.overflows.maxRetries++;
    return stopRetrying(ctx, 'circuit-open:maxRetries');
  }
  // Last, so a retry the breaker refuses is not charged to the budget.
  if (!policy.budget.tryWithdraw(now)) return stopRetrying(ctx, 'retry-budget-exhausted');
  breaker.retries++;
  service.stats.retries++;
  state.wait(delay);
  return true;
}

function retryStop(
  ctx: StreamContext,
  policy: RetryPolicy,
  kind: FailureKind,
  retryAfterMs: number | null,
  retryAt: number,
): string | null {
  if (ctx.tries > policy.attempts) return 'attempts-exhausted';
  // A connect failure means nothing was sent: safe to retry whatever the method.
  if (kind !== FAILURE_CONNECT && !policy.nonIdempotent && !isIdempotent(ctx.method)) return 'non-idempotent';
  if (ctx.hasBody) {
    const body = ctx.body;
    if (body === null || !body.replayable) return 'body-not-replayable';
    // The upstream answered before the body was in: a retry would have to wait for it. Not worth it.
    if (kind === FAILURE_NONE && !body.ended) return 'body-not-replayable';
  }
  if (retryAfterMs !== null && retryAfterMs > policy.maxRetryAfterMs) return 'retry-after-too-long';
  if (retryAt >= ctx.deadlineAt) return 'deadline';
  return null;
}

/** Kept in the service's recent refusals (admin `/services`). */
function recordRefusal(ctx: StreamContext, reason: string): void {
  const service = ctx.destination?.service;
  service?.stats.refusals.add({ at: service.clock.now(), requestId: ctx.requestId, route: ctx.routeName, reason });
}

function stopRetrying(ctx: StreamContext, reason: string): false {
  ctx.retryStop = reason;
  recordRefusal(ctx, reason);
  return false;
}

/**
 * One try upstream, as an undici dispatch handler: response headers and body go straight to the
 * client's response with backpressure; failures before the response starts are retried or become
 * problem replies. (Node corks the client socket for the tick of a write, so head, a small body and
 * the end still leave in one writev.)
 */
export class UpstreamCall implements PooledHandler {
  client: Client | null = null;
  protected readonly ctx: StreamContext;
  protected readonly endpoint: Endpoint;
  private readonly breaker: CircuitBreaker;
  private readonly isRetry: boolean;
  /** This try's headers timeout (ms, 0: none) and whether it is the per-try limit rather than what was left overall. */
  readonly timeoutMs: number;
  readonly perTryLimited: boolean;
  protected controller: Dispatcher.DispatchController | null = null;
  protected ended = false;
  protected aborted = false;
  /**
   * Why the try must stop, when it had to before undici handed over its controller (still connecting,
   * or queued in an HTTP/2 client) and the pool could not take it back: applied in onRequestStart.
   */
  private pendingAbort: Error | null = null;
  /** The response is being retried: read and dropped, never sent to the client. */
  private discarding = false;
  private discarded = 0;
  /** gRPC trailers-only response: the head was the whole response. */
  private headOnly = false;

  constructor(
    ctx: StreamContext,
    endpoint: Endpoint,
    breaker: CircuitBreaker,
    isRetry: boolean,
    timeoutMs: number,
    perTryLimited: boolean,
  ) {
    this.ctx = ctx;
    this.endpoint = endpoint;
    this.breaker = breaker;
    this.isRetry = isRetry;
    this.timeoutMs = timeoutMs;
    this.perTryLimited = perTryLimited;
  }

  get authority(): string {
    return this.endpoint.authority;
  }

  /** The client went away: stop the upstream work, or drop the request if it is still queued. */
  abort() {
    if (this.ended) return;
    this.aborted = true;
    const error = new Error('client closed');
    if (this.controller !== null) this.controller.abort(error);
    else if (this.endpoint.pool.cancel(this)) this.end();
    else this.pendingAbort = error;
  }

  private timer: NodeJS.Timeout | null = null;

  /** Keeps this try's headers timeout with a timer of its own (see PRECISE_TIMEOUT_BELOW_MS). */
  startTimer(): void {
    this.timer = setTimeout(onTryTimeout, this.timeoutMs, this);
  }

  /** The headers did not arrive in time: fail the try as undici's own timeout would. */
  timedOut(): void {
    this.timer = null;
    if (this.ended) return;
    const error = Object.assign(new Error('headers timeout'), { code: 'UND_ERR_HEADERS_TIMEOUT' });
    if (this.controller !== null) this.controller.abort(error);
    else if (this.endpoint.pool.cancel(this))
      this.onResponseError(null as unknown as Dispatcher.DispatchController, error);
    // undici was given no headers timeout of its own (this timer is it): keep the verdict for the start.
    else this.pendingAbort = error;
  }

  private stopTimer(): void {
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
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
    this.ctx.bytesOut += chunk.length;
    noteStreamedBytes(chunk.length);
    if (this.ctx.bodyTaps !== null) runBodyTaps(this.ctx, chunk);
    if (!this.ctx.res.write(chunk)) {
      controller.pause();
      this.ctx.res.once('drain', () => controller.resume());
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
    if (!this.headOnly) {
      // Trailers (gRPC's grpc-status) go on to HTTP/2 clients; HTTP/1.1 responses are sent without them.
      if (ctx.h2 && trailers !== undefined) {
        let any = false;
        for (const _name in trailers) {
          any = true;
          break;
        }
        if (any) (ctx.res as unknown as Http2ServerResponse).addTrailers(trailers as Record<string, string>);
      }
      ctx.res.end();
    }
    if (ctx.activeFilters !== null) runCompleteFilters(ctx);
    ctx.finish();
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    if (this.ended) return;
    this.end();
    if (this.aborted || this.discarding) return;
    const ctx = this.ctx;
    const [code, detail, kind] = classifyUpstreamError(error, ctx, this);
    const destination = ctx.destination!;
    const responded = ctx.upstreamHeadersMs !== 0;
    if (!responded && (kind === FAILURE_CONNECT || kind === FAILURE_RESET)) {
      destination.service.outlier?.failure(this.endpoint, true);
      const policy = destination.retry;
      if (policy !== null && retriableFailure(policy, kind) && retryTry(ctx, this.endpoint, kind, code, null)) {
        ctx.retry!.lastCode = code;
        ctx.retry!.lastDetail = detail;
        return;
      }
    }
    if (ctx.body !== null) ctx.body.drain();
    ctx.fail(code, detail);
  }

  /** Undoes the bookkeeping of a try the pool refused to queue. */
  unwind(): void {
    this.stopTimer();
    this.ended = true;
    this.endpoint.active--;
    this.breaker.requests--;
    if (this.isRetry) this.breaker.retries--;
    this.ctx.tries--;
  }

  /** Bookkeeping once the try is over: the connection goes back to the pool. */
  protected end() {
    this.stopTimer();
    this.ended = true;
    this.endpoint.active--;
    this.breaker.requests--;
    if (this.isRetry) this.breaker.retries--;
    this.releaseConnection();
  }

  /** Gives the connection back to the endpoint's pool (an upgraded one is closed instead). */
  protected releaseConnection(): void {
    this.endpoint.pool.release(this);
  }
}

function onTryTimeout(call: UpstreamCall): void {
  call.timedOut();
}

function classifyUpstreamError(
  error: Error,
  ctx: StreamContext,
  call: UpstreamCall,
): [LocalReplyCode, string, FailureKind] {
  const code = (error as NodeJS.ErrnoException).code;
  const to = `${ctx.destination?.service.name} (${call.authority})`;
  switch (code) {
    case 'UND_ERR_HEADERS_TIMEOUT':
      return [
        'MG_UPSTREAM_TIMEOUT',
        call.perTryLimited
          ? `${to} did not answer within the per-try timeout of ${call.timeoutMs} ms (try ${ctx.tries})`
          : `${to} did not answer within ${ctx.timeoutMs} ms`,
        FAILURE_RESET,
      ];
    case 'UND_ERR_CONNECT_TIMEOUT':
      return ['MG_UPSTREAM_TIMEOUT', `connecting to ${to} timed out`, FAILURE_CONNECT];
    case 'UND_ERR_BODY_TIMEOUT':
      return ['MG_UPSTREAM_TIMEOUT', `${to} stopped sending the response body`, FAILURE_RESET];
    case 'ECONNREFUSED':
    case 'ENOTFOUND':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'EAI_AGAIN':
      return ['MG_UPSTREAM_CONNECT_FAILURE', `cannot connect to ${to}: ${code}`, FAILURE_CONNECT];
    case 'ECONNRESET':
    case 'EPIPE':
    case 'UND_ERR_SOCKET':
    case 'UND_ERR_CLOSED':
      return ['MG_UPSTREAM_RESET', `${to} closed the connection before responding`, FAILURE_RESET];
    default:
      if (error.name === 'HTTPParserError' || code?.startsWith('HPE_'))
        return ['MG_UPSTREAM_PROTOCOL_ERROR', `${to} sent a malformed response`, FAILURE_RESET];
      if (code === 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH' || code === 'UND_ERR_ABORTED')
        return ['MG_BAD_REQUEST', 'the request body ended early', FAILURE_REQUEST];
      return ['MG_UPSTREAM_RESET', `${to} failed: ${error.message}`, FAILURE_RESET];
  }
}

/**
 * Counts a chunked request body against the route's limit as it streams; past the limit the upstream
 * request is aborted and the client gets 413 (the connection closes: the rest of its body is unread).
 * Only chunked bodies on routes with a limit pass through here.
 */
class BodyLimit extends Transform {
  private readonly ctx: StreamContext;

  constructor(ctx: StreamContext) {
    super();
    this.ctx = ctx;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    const ctx = this.ctx;
    ctx.bodyAllowance -= chunk.length;
    if (ctx.bodyAllowance >= 0) {
      callback(null, chunk);
      return;
    }
    if (!ctx.done) {
      ctx.upstream?.abort();
      ctx.failAndClose(
        'MG_BODY_TOO_LARGE',
        `the body exceeds ${ctx.bodyLimit} bytes, the limit of route ${ctx.route!.name}`,
      );
    }
    callback();
  }
}
