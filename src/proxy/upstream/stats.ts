/**
 * What a service's resilience machinery did, kept for the admin API and for metrics: counters (read
 * by name, never reset while a service of that name is configured: a changed definition takes the
 * previous one's stats over) and the latest notable events and refusals. Only exceptional paths write
 * here; the plain request path does not.
 */
import { type BreakerOverflows, newBreakerOverflows } from './circuit-breaker.ts';

/** Most recent entries kept per ring. */
const RING_SIZE = 32;

export interface ServiceEvent {
  /** Epoch milliseconds. */
  at: number;
  /** `ejected`, `returned`, `not-ejected`, `healthy`, `unhealthy`. */
  kind: string;
  endpoint: string;
  detail: string;
}

export interface RefusalRecord {
  at: number;
  requestId: string;
  route: string;
  /** Stable words: see StreamContext.refusal and StreamContext.retryStop. */
  reason: string;
}

class Ring<T> {
  private readonly items: T[] = [];
  private next = 0;

  add(item: T): void {
    if (this.items.length < RING_SIZE) this.items.push(item);
    else this.items[this.next] = item;
    this.next = (this.next + 1) % RING_SIZE;
  }

  /** Oldest first. */
  list(): T[] {
    return this.items.length < RING_SIZE
      ? [...this.items]
      : [...this.items.slice(this.next), ...this.items.slice(0, this.next)];
  }
}

export class ServiceStats {
  /** Retries sent. */
  retries = 0;
  /** Requests that got MG_NO_HEALTHY_UPSTREAM. */
  noHealthyUpstream = 0;
  /** Tries sent while their endpoint set was in panic mode. */
  panicTries = 0;
  /** Copies sent to this service as a mirror, and copies dropped (limits, body too large) or failed. */
  mirrorSent = 0;
  mirrorDropped = 0;
  mirrorFailed = 0;
  /** Calls of aggregate routes to this service, by how they ended (the aggregate action writes them). */
  aggregateOk = 0;
  aggregateFailed = 0;
  aggregateSkipped = 0;
  /** Endpoints ejected by outlier detection. */
  ejections = 0;
  /** Refusals by each circuit breaker limit (the service's CircuitBreaker writes here). */
  readonly breakerOverflows: BreakerOverflows = newBreakerOverflows();
  readonly events = new Ring<ServiceEvent>();
  readonly refusals = new Ring<RefusalRecord>();
}
