/**
 * Prometheus metrics of one proxy (prom-client, one Registry per proxy: no global registry, house rule
 * 7). Names are API and are declared here, in one place (house rule 11), and in docs/metrics.md.
 * `gateway_*` for the gateway role, `mesh_*` for sidecars: the same shapes under two prefixes.
 *
 * Labels are bounded: route and service names come from the config, methods from a fixed list, status
 * as a class (2xx…); never paths, ids or addresses. Per request the proxy touches series resolved once
 * per (route, service, method, status class) (series.ts), so a request costs a few additions, not
 * label hashing. Errors, retries and refusals are counted the same way, their series made on first use
 * (a flood of 404s or 429s is exactly when they are not rare). Gauges and stats read at scrape time
 * use prom-client's own metrics.
 */
import { Counter, collectDefaultMetrics, Gauge, Registry } from './prom.ts';
import { type CounterSeries, type HistogramSeries, SeriesCounter, SeriesHistogram } from './series.ts';

export type MetricsRole = 'gateway' | 'mesh';

/** Seconds; from a cache hit (0.5 ms) to a slow upstream (10 s). */
const DURATION_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** The proxy's own share is small: finer buckets at the low end. */
const OVERHEAD_BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1];

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'CONNECT', 'TRACE'];
const METHOD_INDEX = new Map(METHODS.map((m, i) => [m, i]));
const STATUS_CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx'];
/** Slots per method in a route and service's children: the five classes and `other`. */
const CLASS_SLOTS = STATUS_CLASSES.length + 1;

/** The `code` of gateway_errors_total for a 5xx the upstream sent (local replies carry an MG_* code). */
export const UPSTREAM_5XX = 'upstream_5xx';

/**
 * Why a request (or a retry) was shed: the `reason` of `*_shed_total`. A client's own limit answers
 * 429, the service's protection 503 with Retry-After; retries not made leave the last try's answer.
 * docs/resilience.md ("Overload") lists what answers what.
 */
export const SHED_REASONS = [
  'rate_limit',
  'quota',
  'circuit_open',
  'max_pending',
  'max_requests',
  'max_retries',
  'retry_budget',
  'adaptive_concurrency',
] as const;
export type ShedReason = (typeof SHED_REASONS)[number];

const SHED_BY_CODE: Record<string, ShedReason> = {
  MG_RATE_LIMITED: 'rate_limit',
  MG_QUOTA_EXCEEDED: 'quota',
  MG_CONCURRENCY_LIMITED: 'adaptive_concurrency',
};
/** By the request's `refusal` (upstream/attempt.ts) and `retryStop` (upstream/retry-state.ts). */
const SHED_BY_DECISION: Record<string, ShedReason> = {
  'outlier-ejected': 'circuit_open',
  'circuit-open:maxPendingRequests': 'max_pending',
  'circuit-open:maxRequests': 'max_requests',
  'circuit-open:maxRetries': 'max_retries',
  'retry-budget-exhausted': 'retry_budget',
};

/** The shed reason of a finished request, from its code, refusal and retry stop; null: not shed. */
export function shedReasonOf(code: string | null, refusal: string | null, retryStop: string | null): ShedReason | null {
  return (
    (code === null ? undefined : SHED_BY_CODE[code]) ??
    (refusal === null ? undefined : SHED_BY_DECISION[refusal]) ??
    (retryStop === null ? undefined : SHED_BY_DECISION[retryStop]) ??
    null
  );
}

export function methodLabel(method: string): string {
  return METHOD_INDEX.has(method) ? method : 'OTHER';
}

export function statusClass(status: number): string {
  return STATUS_CLASSES[Math.floor(status / 100) - 1] ?? 'other';
}

/** 0..4 for 1xx..5xx, 5 for anything else (0: the client went away). */
function classSlot(status: number): number {
  const c = Math.floor(status / 100) - 1;
  return c >= 0 && c < STATUS_CLASSES.length ? c : STATUS_CLASSES.length;
}

/** The labels of one authorization decision (a frozen object the policy engine makes once). */
export interface AuthzDecisionLabels {
  readonly policy: string;
  readonly action: string;
  readonly result: string;
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
  /** Why the request, or a retry of it, was shed (shedReasonOf), or null. */
  shed: ShedReason | null;
}

/** Series of one route and service, for every method and status class. */
interface RouteServiceSeries {
  upstream: HistogramSeries;
  bytesIn: CounterSeries;
  bytesOut: CounterSeries;
  /** Made on first use: most routes never retry or fail. */
  retries: CounterSeries | null;
  errors: Map<string, CounterSeries>;
  shed: Map<string, CounterSeries>;
}

/** Series of one route. */
interface RouteSeries {
  overhead: HistogramSeries;
  rateLimited: CounterSeries | null;
  authRejected: Map<string, CounterSeries>;
}

/** The series one request touches, for one (route, service, method, status class). */
interface Children {
  requests: CounterSeries;
  duration: HistogramSeries;
  routeService: RouteServiceSeries;
  route: RouteSeries;
}

export class ProxyMetrics {
  readonly registry: Registry;
  readonly role: MetricsRole;
  private readonly requests: SeriesCounter;
  private readonly duration: SeriesHistogram;
  private readonly upstream: SeriesHistogram;
  private readonly overhead: SeriesHistogram;
  private readonly bytesIn: SeriesCounter;
  private readonly bytesOut: SeriesCounter;
  private readonly errors: SeriesCounter;
  private readonly retries: SeriesCounter;
  private readonly rateLimited: SeriesCounter;
  private readonly shed: SeriesCounter;
  private readonly authRejected: SeriesCounter;
  private readonly authzDecisions: SeriesCounter;
  /**
   * Series per authorization decision. A decision is a frozen object made once per policy, result and
   * snapshot, so it keys its series directly; a replaced snapshot's decisions are let go with it.
   */
  private readonly authzSeries = new WeakMap<AuthzDecisionLabels, CounterSeries>();
  /** Series by label values, so a policy kept across a reload keeps counting into the same series. */
  private readonly authzByLabels = new Map<string, CounterSeries>();
  /** route → service → children by method × status class. */
  private readonly children = new Map<string, Map<string, (Children | undefined)[]>>();
  private readonly perRouteService = new Map<string, RouteServiceSeries>();
  private readonly perRoute = new Map<string, RouteSeries>();
  private readonly pluginCounters = new Map<string, Counter<string>>();

  constructor(role: MetricsRole, registry = new Registry()) {
    this.role = role;
    this.registry = registry;
    // The process' own health (memory, CPU, event-loop delay, GC) beside the traffic: a slow proxy is
    // often a blocked event loop or a growing heap.
    collectDefaultMetrics(registry);
    const p = role;
    this.requests = new SeriesCounter(
      `${p}_requests_total`,
      'Requests handled, by route, service, method and status class.',
      registry,
    );
    this.duration = new SeriesHistogram(
      `${p}_request_duration_seconds`,
      'Time from the request arriving to the response ending, seconds.',
      DURATION_BUCKETS,
      registry,
    );
    this.upstream = new SeriesHistogram(
      `${p}_upstream_duration_seconds`,
      'Time the upstream took, from the request sent to the response end (all tries), seconds.',
      DURATION_BUCKETS,
      registry,
    );
    this.overhead = new SeriesHistogram(
      `${p}_proxy_overhead_seconds`,
      'Time the proxy added: total duration minus upstream time, seconds.',
      OVERHEAD_BUCKETS,
      registry,
    );
    this.errors = new SeriesCounter(
      `${p}_errors_total`,
      'Requests that ended in an error: a local reply or failure by its code (MG_*), or an upstream 5xx (upstream_5xx).',
      registry,
    );
    this.retries = new SeriesCounter(`${p}_upstream_retries_total`, 'Upstream tries beyond the first.', registry);
    this.rateLimited = new SeriesCounter(
      `${p}_rate_limited_total`,
      'Requests refused by a rate limit (429).',
      registry,
    );
    this.shed = new SeriesCounter(
      `${p}_shed_total`,
      'Requests refused, or retries not made, to keep a client within its limits (rate_limit, quota: 429) or ' +
        'to protect a service (circuit_open, max_pending, max_requests, max_retries, retry_budget, ' +
        'adaptive_concurrency: 503 or the last try), by reason.',
      registry,
    );
    this.authRejected = new SeriesCounter(
      `${p}_auth_rejected_total`,
      'Requests refused by authentication or authorization (401/403), by code.',
      registry,
    );
    this.authzDecisions = new SeriesCounter(
      `${p}_authz_decisions_total`,
      'What authorization policies decided, by policy, action (ALLOW, DENY, AUDIT) and result (allow, deny, dry-run-allow, dry-run-deny, audit).',
      registry,
    );
    this.bytesIn = new SeriesCounter(`${p}_request_bytes_total`, 'Request body bytes sent upstream.', registry);
    this.bytesOut = new SeriesCounter(
      `${p}_response_bytes_total`,
      'Response body bytes sent to clients from upstreams.',
      registry,
    );
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

  /**
   * A plugin's counter (PluginDeps.counter), `<role>_<name>`, made on first ask and the same one after.
   * Plugins count rare events (a store that is down), so labels are resolved per increment.
   */
  pluginCounter(
    name: string,
    help: string,
    labelNames: readonly string[],
  ): { inc(labels: Record<string, string>, by?: number): void } {
    let counter = this.pluginCounters.get(name);
    if (counter === undefined) {
      counter = new Counter({
        name: `${this.role}_${name}`,
        help,
        labelNames: [...labelNames],
        registers: [this.registry],
      });
      this.pluginCounters.set(name, counter);
    }
    const c = counter;
    return { inc: (labels, by = 1) => c.inc(labels, by) };
  }

  private childrenOf(route: string, service: string, method: string, status: number): Children {
    let byService = this.children.get(route);
    if (byService === undefined) {
      byService = new Map();
      this.children.set(route, byService);
    }
    let slots = byService.get(service);
    if (slots === undefined) {
      slots = new Array((METHODS.length + 1) * CLASS_SLOTS);
      byService.set(service, slots);
    }
    const slot = (METHOD_INDEX.get(method) ?? METHODS.length) * CLASS_SLOTS + classSlot(status);
    return (slots[slot] ??= this.newChildren(route, service, methodLabel(method), statusClass(status)));
  }

  private newChildren(route: string, service: string, method: string, cls: string): Children {
    const labels = { route, service, method, status_class: cls };
    const key = `${route}\u0000${service}`;
    let routeService = this.perRouteService.get(key);
    if (routeService === undefined) {
      routeService = {
        upstream: this.upstream.series({ route, service }),
        bytesIn: this.bytesIn.series({ route, service }),
        bytesOut: this.bytesOut.series({ route, service }),
        retries: null,
        errors: new Map(),
        shed: new Map(),
      };
      this.perRouteService.set(key, routeService);
    }
    let routeSeries = this.perRoute.get(route);
    if (routeSeries === undefined) {
      routeSeries = { overhead: this.overhead.series({ route }), rateLimited: null, authRejected: new Map() };
      this.perRoute.set(route, routeSeries);
    }
    return {
      requests: this.requests.series(labels),
      duration: this.duration.series(labels),
      routeService,
      route: routeSeries,
    };
  }

  observe(o: RequestOutcome): void {
    const c = this.childrenOf(o.route, o.service, o.method, o.status);
    c.requests.value++;
    this.duration.observe(c.duration, o.durationSeconds);
    if (o.upstreamSeconds >= 0) {
      this.upstream.observe(c.routeService.upstream, o.upstreamSeconds);
      this.overhead.observe(c.route.overhead, Math.max(0, o.durationSeconds - o.upstreamSeconds));
    }
    const rs = c.routeService;
    rs.bytesIn.value += o.bytesIn;
    rs.bytesOut.value += o.bytesOut;
    if (o.tries > 1) (rs.retries ??= this.retries.series({ route: o.route, service: o.service })).value += o.tries - 1;
    if (o.shed !== null) {
      let s = rs.shed.get(o.shed);
      if (s === undefined)
        rs.shed.set(o.shed, (s = this.shed.series({ route: o.route, service: o.service, reason: o.shed })));
      s.value++;
    }
    if (o.code !== null && (o.status >= 400 || o.status === 0)) {
      this.countError(rs, o.route, o.service, o.code);
      if (o.status === 429) (c.route.rateLimited ??= this.rateLimited.series({ route: o.route })).value++;
      else if (o.status === 401 || o.status === 403) {
        let s = c.route.authRejected.get(o.code);
        if (s === undefined)
          c.route.authRejected.set(o.code, (s = this.authRejected.series({ route: o.route, code: o.code })));
        s.value++;
      }
    } else if (o.status >= 500) {
      this.countError(rs, o.route, o.service, UPSTREAM_5XX);
    }
  }

  /** One request's authorization decisions (docs/authorization.md). */
  countAuthz(decisions: readonly AuthzDecisionLabels[]): void {
    for (const d of decisions) {
      let s = this.authzSeries.get(d);
      if (s === undefined) {
        const key = `${d.policy}\u0000${d.action}\u0000${d.result}`;
        s = this.authzByLabels.get(key);
        if (s === undefined) {
          s = this.authzDecisions.series({ policy: d.policy, action: d.action, result: d.result });
          this.authzByLabels.set(key, s);
        }
        this.authzSeries.set(d, s);
      }
      s.value++;
    }
  }

  private countError(rs: RouteServiceSeries, route: string, service: string, code: string): void {
    let s = rs.errors.get(code);
    if (s === undefined) rs.errors.set(code, (s = this.errors.series({ route, service, code })));
    s.value++;
  }
}
