/**
 * Retry policy: when a failed try is tried again, how long to wait, and the budget that keeps retries
 * in proportion to traffic. The request-path mechanics (tries, per-try timeouts, replaying bodies)
 * are in forward.ts; everything here is pure and unit-tested.
 */
import type { RetriesConfig, RetryBudgetConfig, RouteRetriesConfig } from '../../api/config.ts';
import {
  DEFAULT_RETRY_ATTEMPTS,
  DEFAULT_RETRY_BACKOFF_BASE_MS,
  DEFAULT_RETRY_BACKOFF_MAX_MS,
  DEFAULT_RETRY_BUDGET_MIN_PER_SECOND,
  DEFAULT_RETRY_BUDGET_PERCENT,
  DEFAULT_RETRY_BUDGET_WINDOW_MS,
  DEFAULT_RETRY_MAX_RETRY_AFTER_MS,
  DEFAULT_RETRY_ON,
  DEFAULT_RETRY_REPLAY_BUFFER_BYTES,
} from '../../core/defaults.ts';
import { parseDuration } from '../../core/duration.ts';

// Condition bits.
const ON_CONNECT_FAILURE = 1;
const ON_REFUSED_STREAM = 2;
const ON_RESET = 4;
const ON_GATEWAY_ERROR = 8;
const ON_5XX = 16;
const ON_STATUS_CODES = 32;

/** gRPC status codes retried under their condition names (as in Envoy's `retry_on`). */
const GRPC_CONDITIONS: Readonly<Record<string, string>> = {
  cancelled: '1',
  'deadline-exceeded': '4',
  'resource-exhausted': '8',
  internal: '13',
  unavailable: '14',
};

const BITS: Readonly<Record<string, number>> = {
  'connect-failure': ON_CONNECT_FAILURE,
  'refused-stream': ON_REFUSED_STREAM,
  reset: ON_RESET,
  'gateway-error': ON_GATEWAY_ERROR,
  '5xx': ON_5XX,
  'retriable-status-codes': ON_STATUS_CODES,
};

/** How a try failed before any response: what retry conditions and outlier detection look at. */
export const FAILURE_NONE = 0;
/** No connection: the request never left the proxy (safe to retry whatever the method). */
export const FAILURE_CONNECT = 1;
/** The connection closed or reset, the response was malformed, or the per-try timeout fired. */
export const FAILURE_RESET = 2;
/** The request (not the upstream) was at fault, e.g. its body ended early: never retried. */
export const FAILURE_REQUEST = 3;
export type FailureKind = typeof FAILURE_NONE | typeof FAILURE_CONNECT | typeof FAILURE_RESET | typeof FAILURE_REQUEST;

export interface RetryPolicy {
  /** Retries after the first try. */
  readonly attempts: number;
  readonly conditions: readonly string[];
  readonly perTryTimeoutMs: number;
  readonly backoffBaseMs: number;
  readonly backoffMaxMs: number;
  readonly nonIdempotent: boolean;
  readonly replayBufferBytes: number;
  readonly maxRetryAfterMs: number;
  readonly statusCodes: readonly number[];
  /** The service's budget, shared by every route that retries to it. */
  readonly budget: RetryBudget;
  /** Condition bits. */
  readonly on: number;
  readonly grpcStatuses: ReadonlySet<string> | null;
}

/**
 * The policy for one route's destination: the route's fields over the service's (route wins field by
 * field). Null when neither configures retries or `attempts` is 0.
 */
export function compileRetryPolicy(
  service: RetriesConfig | undefined,
  route: RouteRetriesConfig | undefined,
  budget: RetryBudget,
): RetryPolicy | null {
  if (service === undefined && route === undefined) return null;
  const c = { ...service, ...route };
  const attempts = c.attempts ?? DEFAULT_RETRY_ATTEMPTS;
  if (attempts === 0) return null;
  const conditions = c.on ?? DEFAULT_RETRY_ON;
  let on = 0;
  const grpc = new Set<string>();
  for (const name of conditions) {
    if (BITS[name] !== undefined) on |= BITS[name]!;
    else if (GRPC_CONDITIONS[name] !== undefined) grpc.add(GRPC_CONDITIONS[name]!);
  }
  const base = parseDuration(c.backoff?.base ?? '') ?? DEFAULT_RETRY_BACKOFF_BASE_MS;
  return Object.freeze({
    attempts,
    conditions: Object.freeze([...conditions]),
    perTryTimeoutMs: parseDuration(c.perTryTimeout ?? '') ?? 0,
    backoffBaseMs: base,
    backoffMaxMs: Math.max(base, parseDuration(c.backoff?.max ?? '') ?? DEFAULT_RETRY_BACKOFF_MAX_MS),
    nonIdempotent: c.nonIdempotent === true,
    replayBufferBytes: c.replayBufferBytes ?? DEFAULT_RETRY_REPLAY_BUFFER_BYTES,
    maxRetryAfterMs: parseDuration(c.maxRetryAfter ?? '') ?? DEFAULT_RETRY_MAX_RETRY_AFTER_MS,
    statusCodes: Object.freeze([...(c.statusCodes ?? [])]),
    budget,
    on,
    grpcStatuses: grpc.size > 0 ? grpc : null,
  });
}

/** Whether a failure before any response is retriable under the policy's conditions. */
export function retriableFailure(policy: RetryPolicy, kind: FailureKind): boolean {
  if (kind === FAILURE_CONNECT) return (policy.on & (ON_CONNECT_FAILURE | ON_GATEWAY_ERROR | ON_5XX)) !== 0;
  if (kind === FAILURE_RESET) return (policy.on & (ON_RESET | ON_GATEWAY_ERROR | ON_5XX)) !== 0;
  return false;
}

/** Whether an upstream response (status and head) is retriable under the policy's conditions. */
export function retriableResponse(
  policy: RetryPolicy,
  status: number,
  headers: Record<string, string | string[] | undefined>,
): boolean {
  const on = policy.on;
  if (status >= 500) {
    if ((on & ON_5XX) !== 0) return true;
    if ((on & ON_GATEWAY_ERROR) !== 0 && status >= 502 && status <= 504) return true;
  }
  if ((on & ON_STATUS_CODES) !== 0 && policy.statusCodes.includes(status)) return true;
  if (policy.grpcStatuses !== null) {
    const grpc = headers['grpc-status'];
    if (typeof grpc === 'string' && policy.grpcStatuses.has(grpc)) return true;
  }
  return false;
}

/** Methods a retry cannot harm (RFC 9110 §9.2.2). */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

export function isIdempotent(method: string): boolean {
  return IDEMPOTENT.has(method);
}

/**
 * Wait before retry number `retry` (1-based): exponential backoff with full jitter, a uniformly
 * random time in [0, min(max, base × 2^(retry-1))), so clients that failed together do not retry
 * together.
 */
export function backoffMs(policy: RetryPolicy, retry: number, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.backoffMaxMs, policy.backoffBaseMs * 2 ** (retry - 1));
  return Math.floor(random() * ceiling);
}

/**
 * Milliseconds a `Retry-After` value asks to wait: delay-seconds or an HTTP date (RFC 9110 §10.2.3).
 * Null when absent or unreadable (then it is ignored).
 */
export function parseRetryAfter(value: string | string[] | undefined, nowEpochMs: number): number | null {
  if (typeof value !== 'string') return null;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const date = Date.parse(text);
  return Number.isNaN(date) ? null : Math.max(0, date - nowEpochMs);
}

export interface RetryBudgetSettings {
  percent: number;
  minPerSecond: number;
  windowMs: number;
}

export function retryBudgetSettings(config: RetryBudgetConfig | undefined): RetryBudgetSettings {
  return {
    percent: config?.percent ?? DEFAULT_RETRY_BUDGET_PERCENT,
    minPerSecond: config?.minPerSecond ?? DEFAULT_RETRY_BUDGET_MIN_PER_SECOND,
    windowMs: parseDuration(config?.window ?? '') || DEFAULT_RETRY_BUDGET_WINDOW_MS,
  };
}

const BUDGET_SLOTS = 10;

/**
 * A retry budget in Linkerd's manner: over a sliding window, retries may number at most `percent`%
 * of the requests plus `minPerSecond` per second of the window. The minimum accrues from the first
 * request on (one second's worth at once, then per second up to the window), so a fleet of proxies
 * restarted in the middle of an outage does not start with a window's worth of retries each. Each first try deposits one request; each retry withdraws one.
 * So over any stretch of time, upstream load ≤ requests × (1 + percent/100) + minPerSecond × seconds,
 * however hard the upstream fails. Counts are kept in ten slots: O(1) per call, no timers. Times are
 * clock milliseconds passed in by the caller.
 */
export class RetryBudget {
  readonly settings: RetryBudgetSettings;
  private readonly slotMs: number;
  private readonly requests = new Float64Array(BUDGET_SLOTS);
  private readonly retries = new Float64Array(BUDGET_SLOTS);
  private requestsInWindow = 0;
  private retriesInWindow = 0;
  /** Absolute index (time / slotMs) of the newest slot. */
  private slot: number;
  /** Clock time of the first request or retry: the minimum rate accrues from then, up to the window. */
  private startedAt = Number.NaN;
  /** Retries refused, for metrics and the admin API. */
  exhausted = 0;

  constructor(settings: RetryBudgetSettings, now: number) {
    this.settings = settings;
    this.slotMs = settings.windowMs / BUDGET_SLOTS;
    this.slot = Math.floor(now / this.slotMs);
  }

  /** A request's first try. */
  deposit(now: number): void {
    this.advance(now);
    this.requests[this.slot % BUDGET_SLOTS]!++;
    this.requestsInWindow++;
  }

  /** Takes one retry from the budget; false (and nothing taken) when it is spent. */
  tryWithdraw(now: number): boolean {
    this.advance(now);
    if (this.retriesInWindow + 1 > this.allowed(now)) {
      this.exhausted++;
      return false;
    }
    this.retries[this.slot % BUDGET_SLOTS]!++;
    this.retriesInWindow++;
    return true;
  }

  private allowed(now: number): number {
    const s = this.settings;
    const elapsed = Number.isNaN(this.startedAt) ? 0 : now - this.startedAt;
    const seconds = Math.max(1000, Math.min(s.windowMs, elapsed)) / 1000;
    return (this.requestsInWindow * s.percent) / 100 + s.minPerSecond * seconds;
  }

  private advance(now: number): void {
    if (Number.isNaN(this.startedAt)) this.startedAt = now;
    const slot = Math.floor(now / this.slotMs);
    if (slot <= this.slot) return;
    const expired = Math.min(slot - this.slot, BUDGET_SLOTS);
    for (let i = 1; i <= expired; i++) {
      const index = (this.slot + i) % BUDGET_SLOTS;
      this.requestsInWindow -= this.requests[index]!;
      this.retriesInWindow -= this.retries[index]!;
      this.requests[index] = 0;
      this.retries[index] = 0;
    }
    this.slot = slot;
  }

  describe(now: number) {
    if (!Number.isNaN(this.startedAt)) this.advance(now);
    return {
      ...this.settings,
      requestsInWindow: this.requestsInWindow,
      retriesInWindow: this.retriesInWindow,
      retriesAllowedInWindow: Math.floor(this.allowed(now)),
      exhausted: this.exhausted,
    };
  }
}
