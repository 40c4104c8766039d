/**
 * What every try upstream shares, whoever makes it: a forwarded request's try (try.ts, and the
 * transcode action's gRPC call through it) or an action's own call (sub-request.ts). `admitTry`
 * chooses the endpoint and applies the circuit breaker's request limit; `refusalOf` words a refusal;
 * `TryHandler` is the dispatch handler's lifecycle: the precise timer, stopping the try wherever it
 * is, and the endpoint's and breaker's counts given back exactly once. Classifying a failure is
 * classify.ts's; what a try does with the answer (stream it, read it whole) is the subclass's.
 */
import type { Dispatcher } from 'undici';
import { RETRY_AFTER_NO_HEALTHY_UPSTREAM_SECONDS } from '../../core/defaults.ts';
import type { LocalReplyCode } from '../../core/errors.ts';
import type { CircuitBreaker } from './circuit-breaker.ts';
import type { Endpoint } from './endpoint.ts';
import type { EndpointSet } from './endpoint-set.ts';
import type { PoolClient, PooledHandler } from './pool.ts';
import type { UpstreamService } from './service.ts';

/** Why a try was not sent (the names of the service's recent refusals and the access log's `refusal`). */
export const NO_HEALTHY_ENDPOINT = 'no-healthy-endpoint';
export const MAX_REQUESTS = 'circuit-open:maxRequests';
export const MAX_PENDING_REQUESTS = 'circuit-open:maxPendingRequests';
/** No endpoint is available and outlier detection has ejected some of them: the passive breaker is open. */
export const OUTLIER_EJECTED = 'outlier-ejected';
export const ADAPTIVE_CONCURRENCY = 'adaptive-concurrency';
export type TryRefusal =
  | typeof NO_HEALTHY_ENDPOINT
  | typeof OUTLIER_EJECTED
  | typeof MAX_REQUESTS
  | typeof MAX_PENDING_REQUESTS
  | typeof ADAPTIVE_CONCURRENCY;

/** Where tries go: a route's destination, or an action's call target. */
export interface TryTarget {
  readonly service: UpstreamService;
  readonly subset: string | undefined;
  readonly endpoints: EndpointSet;
}

/**
 * The endpoint of the next try (one not in `tried` where possible), or why there is none: no healthy
 * endpoint, or the breaker's `maxRequests` reached. A refusal is counted in the service's stats, and
 * a refused retry gives back the retry slot it held.
 */
export function admitTry(
  target: TryTarget,
  hashKey: number,
  tried: readonly Endpoint[] | null,
  isRetry: boolean,
): Endpoint | TryRefusal {
  const service = target.service;
  const breaker = service.breaker;
  const endpoint = target.endpoints.choose(hashKey, tried);
  if (endpoint === null) {
    if (isRetry) breaker.retries--;
    service.stats.noHealthyUpstream++;
    return soonestReturn(target.endpoints) > 0 ? OUTLIER_EJECTED : NO_HEALTHY_ENDPOINT;
  }
  if (breaker.requests >= breaker.maxRequests) {
    if (isRetry) breaker.retries--;
    breaker.overflows.maxRequests++;
    return MAX_REQUESTS;
  }
  // Last: a try the fixed limits refuse is not charged to the adaptive one. The handler counts it out.
  if (breaker.adaptive !== null && !breaker.adaptive.tryAcquire()) {
    if (isRetry) breaker.retries--;
    return ADAPTIVE_CONCURRENCY;
  }
  return endpoint;
}

/** The reply code and words of a refusal. */
export function refusalOf(reason: TryRefusal, target: TryTarget): [LocalReplyCode, string] {
  const service = target.service;
  const breaker = service.breaker;
  if (reason === MAX_REQUESTS)
    return [
      'MG_CIRCUIT_OPEN',
      `service ${service.label} has ${breaker.requests} requests in flight, its limit (circuitBreaker.maxRequests)`,
    ];
  if (reason === MAX_PENDING_REQUESTS)
    return [
      'MG_CIRCUIT_OPEN',
      `service ${service.label} has ${breaker.pending} requests waiting for a connection, its limit ` +
        '(circuitBreaker.maxPendingRequests)',
    ];
  if (reason === ADAPTIVE_CONCURRENCY)
    return [
      'MG_CONCURRENCY_LIMITED',
      `service ${service.label} has ${breaker.adaptive!.inFlight} requests in flight, its adaptive concurrency ` +
        `limit (minRTT ${breaker.adaptive!.minRttMs.toFixed(1)} ms, latency now ${breaker.adaptive!.lastSampleMs.toFixed(1)} ms)`,
    ];
  const where = target.subset ? `subset ${target.subset} of ` : '';
  const set = target.endpoints;
  if (reason === OUTLIER_EJECTED)
    return [
      'MG_NO_HEALTHY_UPSTREAM',
      `${where}service ${service.name} has no healthy endpoint: outlier detection ejected ` +
        `${set.endpoints.filter((e) => e.ejected).length} of ${set.endpoints.length}, the first back in ` +
        `${Math.max(0, soonestReturn(set) - service.clock.now())} ms`,
    ];
  return [
    'MG_NO_HEALTHY_UPSTREAM',
    set.endpoints.length === 0
      ? `${where}service ${service.name} has no endpoint`
      : `${where}service ${service.name} has no healthy endpoint (${set.endpoints.length} unhealthy or ejected)`,
  ];
}

/**
 * The `Retry-After` (seconds) of a refusal when it can be known better than its code's default
 * (local-reply.ts): the first ejected endpoint's return, or sooner, one health-check interval's
 * default, when an endpoint is out for failing checks instead. Undefined: the code's default.
 */
export function refusalRetryAfter(reason: TryRefusal, target: TryTarget): string | undefined {
  if (reason !== OUTLIER_EJECTED) return undefined;
  const set = target.endpoints;
  let seconds = Math.max(1, Math.ceil((soonestReturn(set) - target.service.clock.now()) / 1000));
  if (set.endpoints.some((e) => !e.ejected) && seconds > RETRY_AFTER_NO_HEALTHY_UPSTREAM_SECONDS)
    seconds = RETRY_AFTER_NO_HEALTHY_UPSTREAM_SECONDS;
  return String(seconds);
}

/** Clock time the first ejected endpoint of the set returns, or 0 when none is ejected. */
function soonestReturn(set: EndpointSet): number {
  let soonest = 0;
  for (const e of set.endpoints) if (e.ejected && (soonest === 0 || e.ejectedUntil < soonest)) soonest = e.ejectedUntil;
  return soonest;
}

/**
 * One try as an undici dispatch handler. The creator counts the try in (`endpoint.active`,
 * `breaker.requests`, and `breaker.retries` for a retry, which `admitRetry` took); `end` or `unwind`
 * counts it out, once. A subclass handles the answer and `onResponseError`, which must call `end`
 * first unless `ended` is already set.
 */
export abstract class TryHandler implements PooledHandler {
  client: PoolClient | null = null;
  protected readonly endpoint: Endpoint;
  private readonly breaker: CircuitBreaker;
  private readonly isRetry: boolean;
  /** This try's timeout (ms, 0: none) and whether it is the per-try limit rather than what was left overall. */
  readonly timeoutMs: number;
  readonly perTryLimited: boolean;
  protected controller: Dispatcher.DispatchController | null = null;
  protected ended = false;
  /**
   * Why the try must stop, when it had to before undici handed over its controller (still connecting,
   * or queued in an HTTP/2 client) and the pool could not take it back: applied in onRequestStart.
   */
  private pendingAbort: Error | null = null;
  private timer: NodeJS.Timeout | null = null;
  /** Clock time the try was admitted, for the adaptive limit's latency sample (0 without one). */
  private readonly admittedAt: number;

  constructor(
    endpoint: Endpoint,
    breaker: CircuitBreaker,
    isRetry: boolean,
    timeoutMs: number,
    perTryLimited: boolean,
  ) {
    this.endpoint = endpoint;
    this.breaker = breaker;
    this.isRetry = isRetry;
    this.timeoutMs = timeoutMs;
    this.perTryLimited = perTryLimited;
    this.admittedAt = breaker.adaptive === null ? 0 : breaker.adaptive.now();
  }

  get authority(): string {
    return this.endpoint.authority;
  }

  abstract onResponseError(controller: Dispatcher.DispatchController, error: Error): void;

  /** Keeps this try's timeout with a timer of its own (undici's fires up to a second late). */
  startTimer(): void {
    this.timer = setTimeout(onTryTimeout, this.timeoutMs, this);
  }

  protected stopTimer(): void {
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
  }

  /** The timer fired: the try fails as undici's own headers timeout would (classify.ts words it). */
  timedOut(): void {
    this.timer = null;
    if (!this.ended) this.stop(Object.assign(new Error('headers timeout'), { code: 'UND_ERR_HEADERS_TIMEOUT' }));
  }

  /**
   * Stops the try wherever it is: under way (through its controller), still queued in the pool (taken
   * back, and failed at once with `error`), or connecting (when undici hands over the controller).
   */
  protected stop(error: Error): void {
    if (this.controller !== null) this.controller.abort(error);
    else if (this.endpoint.pool.cancel(this))
      this.onResponseError(null as unknown as Dispatcher.DispatchController, error);
    else this.pendingAbort = error;
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.pendingAbort !== null) controller.abort(this.pendingAbort);
  }

  /** Undoes the bookkeeping of a try the pool refused to queue. */
  unwind(): void {
    this.stopTimer();
    this.ended = true;
    this.endpoint.active--;
    this.breaker.requests--;
    if (this.isRetry) this.breaker.retries--;
    this.breaker.adaptive?.cancel();
  }

  /** Bookkeeping once the try is over: the connection goes back to the pool. */
  protected end(): void {
    this.stopTimer();
    this.ended = true;
    this.endpoint.active--;
    this.breaker.requests--;
    if (this.isRetry) this.breaker.retries--;
    this.breaker.adaptive?.release(this.admittedAt);
    this.releaseConnection();
  }

  /** Gives the connection back to the endpoint's pool (an upgraded one is closed instead). */
  protected releaseConnection(): void {
    this.endpoint.pool.release(this);
  }
}

function onTryTimeout(handler: TryHandler): void {
  handler.timedOut();
}
