/**
 * Circuit breaking with Envoy's semantics, per service and per proxy process: four limits on what
 * is in flight right now. A request over a limit is refused at once (503 MG_CIRCUIT_OPEN), never
 * queued, so an overloaded upstream sheds load instead of building a queue it cannot serve. The
 * counters are exact: the pool reports connections and waiting requests, forward.ts requests and
 * retries.
 */
import type { CircuitBreakerConfig } from '../../api/config.ts';
import {
  DEFAULT_CB_MAX_CONNECTIONS,
  DEFAULT_CB_MAX_PENDING_REQUESTS,
  DEFAULT_CB_MAX_REQUESTS,
  DEFAULT_CB_MAX_RETRIES,
} from '../../core/defaults.ts';
import type { AdaptiveConcurrency } from './adaptive-concurrency.ts';

export const BREAKER_THRESHOLDS = ['maxConnections', 'maxPendingRequests', 'maxRequests', 'maxRetries'] as const;
export type BreakerThreshold = (typeof BREAKER_THRESHOLDS)[number];

export type BreakerOverflows = Record<BreakerThreshold, number>;

export function newBreakerOverflows(): BreakerOverflows {
  return { maxConnections: 0, maxPendingRequests: 0, maxRequests: 0, maxRetries: 0 };
}

export class CircuitBreaker {
  readonly maxConnections: number;
  readonly maxPendingRequests: number;
  readonly maxRequests: number;
  readonly maxRetries: number;

  /** Upstream connections (pool clients) of the service. */
  connections = 0;
  /** Requests waiting in a pool for a connection. */
  pending = 0;
  /** Requests in flight: sent, or waiting for a connection. */
  requests = 0;
  /** Retries in flight. */
  retries = 0;

  /**
   * Times each limit turned something away (a connection not opened, a request or retry refused).
   * Passed in so the count outlives a config change that replaces the breaker (a Prometheus counter).
   */
  readonly overflows: BreakerOverflows;

  /**
   * The service's adaptive limit on tries in flight (`adaptiveConcurrency`), or null: kept beside the
   * fixed limits because every try that counts in and out of `requests` counts in and out of it too.
   */
  readonly adaptive: AdaptiveConcurrency | null;

  constructor(
    config: CircuitBreakerConfig | undefined,
    overflows: BreakerOverflows = newBreakerOverflows(),
    adaptive: AdaptiveConcurrency | null = null,
  ) {
    this.overflows = overflows;
    this.adaptive = adaptive;
    this.maxConnections = config?.maxConnections ?? DEFAULT_CB_MAX_CONNECTIONS;
    this.maxPendingRequests = config?.maxPendingRequests ?? DEFAULT_CB_MAX_PENDING_REQUESTS;
    this.maxRequests = config?.maxRequests ?? DEFAULT_CB_MAX_REQUESTS;
    this.maxRetries = config?.maxRetries ?? DEFAULT_CB_MAX_RETRIES;
  }

  /**
   * Whether each limit is reached right now (Envoy's `*_open` gauges; the `circuit_breaker_open`
   * metric per service and threshold): 1 means the next one over is refused.
   */
  open(): Record<BreakerThreshold, boolean> {
    return {
      maxConnections: this.connections >= this.maxConnections,
      maxPendingRequests: this.pending >= this.maxPendingRequests,
      maxRequests: this.requests >= this.maxRequests,
      maxRetries: this.retries >= this.maxRetries,
    };
  }

  describe() {
    return {
      thresholds: {
        maxConnections: this.maxConnections,
        maxPendingRequests: this.maxPendingRequests,
        maxRequests: this.maxRequests,
        maxRetries: this.maxRetries,
      },
      current: {
        connections: this.connections,
        pendingRequests: this.pending,
        requests: this.requests,
        retries: this.retries,
      },
      open: this.open(),
      overflows: { ...this.overflows },
    };
  }
}
