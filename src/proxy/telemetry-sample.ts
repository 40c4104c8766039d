/**
 * A proxy's telemetry report (docs/dashboard.md), read from the metrics it already keeps for
 * `GET /metrics`: nothing is counted twice and the request path pays nothing for it. Reading costs
 * what one Prometheus scrape costs, once per report interval (5 s by default), whatever the traffic.
 */

import type { ExplainedTrail } from '../api/explain.ts';
import type { RequestRecord, TelemetryReport, TelemetrySeries } from '../api/mesh.ts';
import { MAX_LOOKUP_RECORDS, MAX_LOOKUP_TRAILS, MAX_TELEMETRY_SERIES } from '../api/values.ts';
import { aggregatorRegistry } from '../observability/prom.ts';
import type { DataPlane } from './data-plane.ts';

/** A metric as `Registry.getMetricsAsJSON()` gives it. */
interface Metric {
  name: string;
  values: { labels: Partial<Record<string, string | number>>; value: number; metricName?: string }[];
}
export type TelemetrySample = Omit<TelemetryReport, 'proxy' | 'stream'>;

const RATE_LIMITED_CODE = 'MG_RATE_LIMITED';

/** The report's body from every process of this proxy (their metrics summed, as `GET /metrics` does). */
export async function sampleTelemetry(plane: Pick<DataPlane, 'query'>, since: number): Promise<TelemetrySample> {
  const views = await plane.query('metrics');
  const metrics =
    views.length === 1
      ? (views[0]!.metrics as Metric[])
      : await aggregatorRegistry()
          .aggregate(views.map((v) => v.metrics as never))
          .getMetricsAsJSON();
  return summarize(metrics as Metric[], since);
}

/** Sums the per-request metrics by (route, service) and reads each service's state. */
export function summarize(metrics: readonly Metric[], since: number): TelemetrySample {
  const byName = new Map(metrics.map((m) => [m.name, m]));
  const prefix = byName.has('mesh_requests_total') ? 'mesh' : 'gateway';
  const get = (name: string) => byName.get(`${prefix}_${name}`)?.values ?? [];
  const series = new Map<string, TelemetrySeries & { cumulative: Map<number, number> }>();
  const seriesOf = (labels: Metric['values'][number]['labels']) => {
    const route = String(labels.route ?? '');
    const service = String(labels.service ?? '');
    const key = `${route}\u0000${service}`;
    let s = series.get(key);
    if (s === undefined) {
      s = {
        route,
        service,
        requests: 0,
        errors: 0,
        clientErrors: 0,
        retries: 0,
        rateLimited: 0,
        latency: [],
        cumulative: new Map(),
      };
      series.set(key, s);
    }
    return s;
  };
  for (const v of get('requests_total')) {
    const s = seriesOf(v.labels);
    s.requests += v.value;
    if (v.labels.status_class === '5xx') s.errors += v.value;
    else if (v.labels.status_class === '4xx') s.clientErrors += v.value;
  }
  for (const v of get('upstream_retries_total')) seriesOf(v.labels).retries += v.value;
  for (const v of get('errors_total'))
    if (v.labels.code === RATE_LIMITED_CODE) seriesOf(v.labels).rateLimited += v.value;
  // Buckets arrive cumulative per (route, service, method, status class): summed per le, then split.
  const bounds = new Set<number>();
  for (const v of get('request_duration_seconds')) {
    if (v.metricName !== `${prefix}_request_duration_seconds_bucket`) continue;
    const le = v.labels.le === '+Inf' ? Number.POSITIVE_INFINITY : Number(v.labels.le);
    if (Number.isFinite(le)) bounds.add(le);
    const c = seriesOf(v.labels).cumulative;
    c.set(le, (c.get(le) ?? 0) + v.value);
  }
  const latencyBounds = [...bounds].sort((a, b) => a - b);
  const edges = [...latencyBounds, Number.POSITIVE_INFINITY];
  for (const s of series.values()) {
    let previous = 0;
    s.latency = edges.map((le) => {
      const total = s.cumulative.get(le) ?? previous;
      const inBucket = Math.max(0, total - previous);
      previous = total;
      return inBucket;
    });
  }

  const services = new Map<string, TelemetryReport['services'][number]>();
  const serviceOf = (name: string) => {
    let s = services.get(name);
    if (s === undefined) {
      s = { name, endpoints: { healthy: 0, ejected: 0, unhealthy: 0 }, breakerOpen: [], ejections: 0 };
      services.set(name, s);
    }
    return s;
  };
  for (const v of get('endpoints')) {
    const state = v.labels.state as 'healthy' | 'ejected' | 'unhealthy';
    if (state in serviceOf(String(v.labels.service)).endpoints)
      serviceOf(String(v.labels.service)).endpoints[state] += v.value;
  }
  for (const v of get('circuit_breaker_open'))
    if (v.value > 0) serviceOf(String(v.labels.service)).breakerOpen.push(String(v.labels.threshold));
  for (const v of get('outlier_ejections_total')) serviceOf(String(v.labels.service)).ejections += v.value;

  const inflight = get('requests_in_flight').reduce((n, v) => n + v.value, 0);
  return {
    since,
    latencyBounds,
    // The busiest, when a config has more than a report carries.
    series: [...series.values()]
      .sort((a, b) => b.requests - a.requests)
      .slice(0, MAX_TELEMETRY_SERIES)
      .map(({ cumulative: _, ...s }) => s),
    services: [...services.values()].slice(0, MAX_TELEMETRY_SERIES),
    inflight,
  };
}

/** Every process's remembered requests whose request or trace id is in `match`, oldest first. */
export async function lookupRequests(plane: Pick<DataPlane, 'query'>, match: string[]): Promise<RequestRecord[]> {
  const views = await plane.query(`requests:${JSON.stringify(match)}`);
  return views
    .flatMap((v) => (v.records as RequestRecord[] | undefined) ?? [])
    .sort((a, b) => a.start - b.start)
    .slice(-MAX_LOOKUP_RECORDS);
}

/** Every process's decision trails of the requests whose request or trace id is in `match`, oldest first. */
export async function explainRequests(plane: Pick<DataPlane, 'query'>, match: string[]): Promise<ExplainedTrail[]> {
  const views = await plane.query(`explain:${JSON.stringify(match)}`);
  return views
    .flatMap((v) => (v.trails as ExplainedTrail[] | undefined) ?? [])
    .sort((a, b) => a.start - b.start)
    .slice(-MAX_LOOKUP_TRAILS);
}
