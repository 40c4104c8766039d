/**
 * Prometheus metrics of one proxy (prom-client, one Registry per proxy: no global registry, house rule
 * 7). Names are API and are declared here, in one place (house rule 11), and in docs/metrics.md.
 * `gateway_*` for the gateway role, `mesh_*` for sidecars: the same shapes under two prefixes.
 *
 * Labels are bounded: route and service names come from the config, methods from a fixed list, status
 * as a class (2xx…); never paths, ids or addresses. Per request the proxy touches pre-resolved label
 * children (cached per route), so a request costs a few increments, not label hashing.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

export type MetricsRole = 'gateway' | 'mesh';

/** Seconds; from a cache hit (0.5 ms) to a slow upstream (10 s). */
const DURATION_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** The proxy's own share is small: finer buckets at the low end. */
const OVERHEAD_BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1];

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'CONNECT', 'TRACE'];
const STATUS_CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx'];

/** The `code` of gateway_errors_total for a 5xx the upstream sent (local replies carry an MG_* code). */
export const UPSTREAM_5XX = 'upstream_5xx';

export function methodLabel(method: string): string {
  return METHODS.includes(method) ? method : 'OTHER';
}

export function statusClass(status: number): string {
  return STATUS_CLASSES[Math.floor(status / 100) - 1] ?? 'other';
}

/** What the metrics read of a finished request. */
export interface RequestOutcome {
  route: string;
  service: string;
  method: string;
  status: number;
  /** Code of a local reply or failure (`MG_*`), or null. */
  code: string | null;
  durationSeconds: number;
  /** Time upstream (request sent → response end), or -1 when the request never went upstream. */
  upstreamSeconds: number;
  tries: number;
  bytesIn: number;
  bytesOut: number;
}

interface Children {
  requests: Counter.Internal;
  duration: Histogram.Internal<string>;
  upstream: Histogram.Internal<string>;
  overhead: Histogram.Internal<string>;
}

export class ProxyMetrics {
  readonly registry: Registry;
  readonly role: MetricsRole;
  private readonly requests: Counter<string>;
  private readonly duration: Histogram<string>;
  private readonly upstream: Histogram<string>;
  private readonly overhead: Histogram<string>;
  private readonly errors: Counter<string>;
  private readonly retries: Counter<string>;
  private readonly rateLimited: Counter<string>;
  private readonly authRejected: Counter<string>;
  private readonly bytesIn: Counter<string>;
  private readonly bytesOut: Counter<string>;
  private readonly children = new Map<string, Children>();

  constructor(role: MetricsRole, registry = new Registry()) {
    this.role = role;
    this.registry = registry;
    // The process' own health (memory, CPU, event-loop delay, GC) beside the traffic: a slow proxy is
    // often a blocked event loop or a growing heap.
    collectDefaultMetrics({ register: registry });
    const p = role;
    const labels = ['route', 'service', 'method', 'status_class'];
    this.requests = new Counter({
      name: `${p}_requests_total`,
      help: 'Requests handled, by route, service, method and status class.',
      labelNames: labels,
      registers: [registry],
    });
    this.duration = new Histogram({
      name: `${p}_request_duration_seconds`,
      help: 'Time from the request arriving to the response ending, seconds.',
      labelNames: labels,
      buckets: DURATION_BUCKETS,
      registers: [registry],
    });
    this.upstream = new Histogram({
      name: `${p}_upstream_duration_seconds`,
      help: 'Time the upstream took, from the request sent to the response end (all tries), seconds.',
      labelNames: ['route', 'service'],
      buckets: DURATION_BUCKETS,
      registers: [registry],
    });
    this.overhead = new Histogram({
      name: `${p}_proxy_overhead_seconds`,
      help: 'Time the proxy added: total duration minus upstream time, seconds.',
      labelNames: ['route'],
      buckets: OVERHEAD_BUCKETS,
      registers: [registry],
    });
    this.errors = new Counter({
      name: `${p}_errors_total`,
      help: 'Requests that ended in an error: a local reply or failure by its code (MG_*), or an upstream 5xx (upstream_5xx).',
      labelNames: ['route', 'service', 'code'],
      registers: [registry],
    });
    this.retries = new Counter({
      name: `${p}_upstream_retries_total`,
      help: 'Upstream tries beyond the first.',
      labelNames: ['route', 'service'],
      registers: [registry],
    });
    this.rateLimited = new Counter({
      name: `${p}_rate_limited_total`,
      help: 'Requests refused by a rate limit (429).',
      labelNames: ['route'],
      registers: [registry],
    });
    this.authRejected = new Counter({
      name: `${p}_auth_rejected_total`,
      help: 'Requests refused by authentication or authorization (401/403), by code.',
      labelNames: ['route', 'code'],
      registers: [registry],
    });
    this.bytesIn = new Counter({
      name: `${p}_request_bytes_total`,
      help: 'Request body bytes sent upstream.',
      labelNames: ['route', 'service'],
      registers: [registry],
    });
    this.bytesOut = new Counter({
      name: `${p}_response_bytes_total`,
      help: 'Response body bytes sent to clients from upstreams.',
      labelNames: ['route', 'service'],
      registers: [registry],
    });
  }

  /**
   * A gauge whose value is read at scrape time (pools, breakers): `collect` sets it. Over workers the
   * values are summed, or the largest is kept with `aggregate: 'max'` (a state such as "open").
   */
  gauge(
    name: string,
    help: string,
    labelNames: string[],
    collect: (g: Gauge<string>) => void,
    aggregate: 'sum' | 'max' = 'sum',
  ): void {
    new Gauge({
      name: `${this.role}_${name}`,
      help,
      labelNames,
      registers: [this.registry],
      aggregator: aggregate,
      collect() {
        this.reset();
        collect(this);
      },
    });
  }

  /**
   * A counter kept elsewhere (a service's stats, which outlive config changes) and copied in at scrape
   * time: `collect` calls `set` with each series' running total.
   */
  counterOf(
    name: string,
    help: string,
    labelNames: string[],
    collect: (set: (labels: Record<string, string>, total: number) => void) => void,
  ): void {
    new Counter({
      name: `${this.role}_${name}`,
      help,
      labelNames,
      registers: [this.registry],
      collect() {
        this.reset();
        collect((labels, total) => this.inc(labels, total));
      },
    });
  }

  observe(o: RequestOutcome): void {
    const cls = statusClass(o.status);
    const key = `${o.route}\u0000${o.service}\u0000${o.method}\u0000${cls}`;
    let c = this.children.get(key);
    if (c === undefined) {
      const values = [o.route, o.service, methodLabel(o.method), cls];
      c = {
        requests: this.requests.labels(...values),
        duration: this.duration.labels(...values),
        upstream: this.upstream.labels(o.route, o.service),
        overhead: this.overhead.labels(o.route),
      };
      this.children.set(key, c);
    }
    c.requests.inc();
    c.duration.observe(o.durationSeconds);
    if (o.upstreamSeconds >= 0) {
      c.upstream.observe(o.upstreamSeconds);
      c.overhead.observe(Math.max(0, o.durationSeconds - o.upstreamSeconds));
    }
    if (o.tries > 1) this.retries.labels(o.route, o.service).inc(o.tries - 1);
    if (o.bytesIn > 0) this.bytesIn.labels(o.route, o.service).inc(o.bytesIn);
    if (o.bytesOut > 0) this.bytesOut.labels(o.route, o.service).inc(o.bytesOut);
    if (o.code !== null && (o.status >= 400 || o.status === 0)) {
      this.errors.labels(o.route, o.service, o.code).inc();
      if (o.status === 429) this.rateLimited.labels(o.route).inc();
      else if (o.status === 401 || o.status === 403) this.authRejected.labels(o.route, o.code).inc();
    } else if (o.status >= 500) {
      this.errors.labels(o.route, o.service, UPSTREAM_5XX).inc();
    }
  }
}
