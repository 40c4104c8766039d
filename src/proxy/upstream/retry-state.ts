/**
 * A request's retries as they happen: whether a failed try is tried again (attempts, idempotency, a
 * replayable body, Retry-After, the deadline, the breaker's retry limit, the budget), the backoff
 * timer, and the record of why it stopped. The policy itself is compiled in retry.ts.
 */
import type { LocalReplyCode } from '../../core/errors.ts';
import type { RequestRetry, StreamContext } from '../context.ts';
import type { Endpoint } from './endpoint.ts';
import { backoffMs, FAILURE_CONNECT, FAILURE_NONE, type FailureKind, isIdempotent, type RetryPolicy } from './retry.ts';
import type { UpstreamService } from './service.ts';

/** Starts the next try of a request (try.ts), given to the state so this module does not import it. */
export type TryStarter = (ctx: StreamContext, isRetry: boolean) => void;

/**
 * A request's retry state, created at its first retry: the endpoints it has tried, the failure to
 * answer with if it cannot go on, and the backoff timer (aborted when the client goes away).
 */
export class RetryState implements RequestRetry {
  readonly tried: Endpoint[] = [];
  lastCode: LocalReplyCode = 'MG_UPSTREAM_RESET';
  lastDetail = '';
  private timer: NodeJS.Timeout | null = null;
  private readonly ctx: StreamContext;
  private readonly startTry: TryStarter;

  constructor(ctx: StreamContext, startTry: TryStarter) {
    this.ctx = ctx;
    this.startTry = startTry;
  }

  wait(ms: number): void {
    this.ctx.upstream = this;
    this.timer = setTimeout(retryNow, ms, this);
  }

  /** The backoff is over: the next try, unless the client has gone. */
  fire(): void {
    this.timer = null;
    const ctx = this.ctx;
    if (ctx.done) {
      ctx.destination!.service.breaker.retries--;
      return;
    }
    this.startTry(ctx, true);
  }

  /** The client went away during the backoff. */
  abort(): void {
    if (this.timer === null) return;
    clearTimeout(this.timer);
    this.timer = null;
    this.ctx.destination!.service.breaker.retries--;
  }
}

function retryNow(state: RetryState): void {
  state.fire();
}

/**
 * Decides whether a failed try is tried again and, if so, schedules it. `kind` is how it failed
 * (FAILURE_NONE for a retriable response), `outcome` the words for the try log.
 */
export function retryTry(
  ctx: StreamContext,
  endpoint: Endpoint,
  kind: FailureKind,
  outcome: string,
  retryAfterMs: number | null,
  startTry: TryStarter,
): boolean {
  const destination = ctx.destination!;
  const policy = destination.retry!;
  if (ctx.done) return false;
  let state = ctx.retry as RetryState | null;
  if (state === null) ctx.retry = state = new RetryState(ctx, startTry);
  state.tried.push(endpoint);
  (ctx.tryLog ??= []).push({ endpoint: endpoint.authority, outcome });
  const service = destination.service;
  const now = service.clock.now();
  const delay = Math.max(backoffMs(policy, ctx.tries), retryAfterMs ?? 0);
  const stop = retryStop(ctx, policy, kind, retryAfterMs, now + delay) ?? admitRetry(service, policy, now);
  if (ctx.trail !== null) ctx.trail.tryFailed(stop === null ? delay : -1);
  if (stop !== null) return stopRetrying(ctx, stop);
  state.wait(delay);
  return true;
}

/**
 * The service's share of a retry decision: the breaker's retry limit, then the budget. Null when the
 * retry may go (it is then counted in flight: the try that ends it gives it back); else why not.
 */
export function admitRetry(service: UpstreamService, policy: RetryPolicy, now: number): string | null {
  const breaker = service.breaker;
  if (breaker.retries >= breaker.maxRetries) {
    breaker.overflows.maxRetries++;
    return 'circuit-open:maxRetries';
  }
  // Last, so a retry the breaker refuses is not charged to the budget.
  if (!policy.budget.tryWithdraw(now)) return 'retry-budget-exhausted';
  breaker.retries++;
  service.stats.retries++;
  return null;
}

/** What the request's own share of a retry decision reads: a StreamContext, or a sub-request. */
export interface RetryFacts {
  readonly tries: number;
  readonly method: string;
  /**
   * Whether a try that may have reached the service can be sent again, when the method does not tell
   * (a sub-request says; a GraphQL query is POSTed but only reads). Unset: by method.
   */
  readonly idempotent?: boolean;
  readonly hasBody: boolean;
  /** The whole body, sent as it is on every try; null when it streams. */
  readonly bufferedBody: Buffer | null;
  readonly body: { readonly replayable: boolean; readonly ended: boolean } | null;
  /** Clock time by which the answer must have come. */
  readonly deadlineAt: number;
}

/** Why the request itself rules out another try (attempts, method, body, Retry-After, deadline), or null. */
export function retryStop(
  ctx: RetryFacts,
  policy: RetryPolicy,
  kind: FailureKind,
  retryAfterMs: number | null,
  retryAt: number,
): string | null {
  if (ctx.tries > policy.attempts) return 'attempts-exhausted';
  // A connect failure means nothing was sent: safe to retry whatever the method.
  if (kind !== FAILURE_CONNECT && !policy.nonIdempotent && !(ctx.idempotent ?? isIdempotent(ctx.method)))
    return 'non-idempotent';
  if (ctx.hasBody && ctx.bufferedBody === null) {
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
export function recordRefusal(ctx: StreamContext, reason: string): void {
  const service = ctx.destination?.service;
  service?.stats.refusals.add({ at: service.clock.now(), requestId: ctx.requestId, route: ctx.routeName, reason });
}

function stopRetrying(ctx: StreamContext, reason: string): false {
  ctx.retryStop = reason;
  recordRefusal(ctx, reason);
  return false;
}
