/**
 * The dashboard's numbers (docs/dashboard.md): proxies' telemetry reports (cumulative counters, one
 * every interval) in, a topology with golden signals out.
 *
 * Each proxy's reports are kept for `historyMs` (bounded: proxies × series × reports). A rate is the
 * difference of two reports of one proxy divided by the time between them (a counter reset, seen as
 * a new `since` or a counter going down, counts from zero), then summed over proxies: reports of
 * different proxies never need to line up. Percentiles come from the summed latency buckets, with
 * linear interpolation inside a bucket (Prometheus' `histogram_quantile`).
 *
 * Who called whom comes from the caller's side, as Linkerd does: a gateway's series name the service
 * each route sent to; a sidecar's `outbound.NAME` series are its app's calls to NAME, and its
 * `inbound` series what its own service served (by instance, so by version).
 */
import type { TelemetryReport } from '../../api/mesh.ts';
import type { Clock } from '../../core/clock.ts';
import { systemClock } from '../../core/clock.ts';
import { DEFAULT_DASHBOARD_WINDOW_MS, DEFAULT_TELEMETRY_HISTORY_MS, TELEMETRY_STALE_MS } from '../../core/defaults.ts';

type Sample = Omit<TelemetryReport, 'proxy' | 'stream' | 'series'> & {
  at: number;
  series: Map<string, TelemetryReport['series'][number]>;
};

/** Who sent a report. */
export interface ReportingProxy {
  id: string;
  kind: 'gateway' | 'sidecar';
  /** A sidecar's service; a gateway's name (default `gateway`). */
  service: string | null;
  labels?: Readonly<Record<string, string>>;
}

/** Per-second rates over some span. */
interface Vec {
  requests: number;
  errors: number;
  clientErrors: number;
  retries: number;
  rateLimited: number;
  latency: number[];
}

/** Golden signals over a span. Rates per second; times in ms; null when there was no request. */
export interface Stat {
  rps: number;
  errorRate: number | null;
  clientErrorRate: number | null;
  p50Ms: number | null;
  p95Ms: number | null;
  p99Ms: number | null;
  retriesPerSec: number;
  rateLimitedPerSec: number;
}

/** One value per entry of `Overview.times` (null: no report covered that slot). */
export interface History {
  rps: (number | null)[];
  errorRate: (number | null)[];
  p50Ms: (number | null)[];
  p99Ms: (number | null)[];
}

export interface ServiceState {
  breakerOpen: string[];
  endpoints: { healthy: number; ejected: number; unhealthy: number };
  ejections: number;
}

export interface TopologyNode {
  /** `clients`, `gateway:NAME`, `service:NAME`. */
  id: string;
  kind: 'clients' | 'gateway' | 'service';
  name: string;
  stat: Stat;
  history: History;
  /** Proxies reporting for this node (sidecars of the service, or the gateways). */
  proxies: number;
  /** A service's traffic by instance version (its sidecars' `version` label), over the window. */
  versions: { version: string; rps: number; share: number | null }[];
  /** As its callers see it (the worst of them). */
  state: ServiceState | null;
}

export interface TopologyEdge {
  id: string;
  source: string;
  target: string;
  stat: Stat;
  /** The caller's mutual-TLS mode towards the target: STRICT, PERMISSIVE, DISABLE; null: not a mesh hop. */
  mtls: string | null;
}

export interface RouteSignals {
  name: string;
  /** The gateway that serves it. */
  gateway: string;
  services: string[];
  stat: Stat;
  history: History;
}

export interface Overview {
  at: string;
  windowMs: number;
  intervalMs: number;
  /** Start of each history slot, ms since the epoch, oldest first. */
  times: number[];
  nodes: TopologyNode[];
  edges: TopologyEdge[];
  routes: RouteSignals[];
  proxies: { id: string; lastReportAt: string; rps: number; inflight: number }[];
}

export interface OverviewOptions {
  windowMs?: number;
  /** Services to show even with no traffic (the model's). */
  services?: readonly string[];
  /** The mTLS mode proxy `proxy` uses towards `service`, when known. */
  mtlsOf?: (proxy: string, service: string) => string | null;
  /** False: the window's numbers only, every history left empty (cheaper, for the proxies' table). */
  history?: boolean;
}

const emptyVec = (slots: number): Vec => ({
  requests: 0,
  errors: 0,
  clientErrors: 0,
  retries: 0,
  rateLimited: 0,
  latency: new Array(slots).fill(0),
});

function addInto(target: Vec, v: Vec) {
  target.requests += v.requests;
  target.errors += v.errors;
  target.clientErrors += v.clientErrors;
  target.retries += v.retries;
  target.rateLimited += v.rateLimited;
  for (let i = 0; i < v.latency.length; i++) target.latency[i] = (target.latency[i] ?? 0) + v.latency[i]!;
}

/** Rates of every series between two reports of one proxy. */
function ratesBetween(a: Sample, b: Sample): Map<string, Vec> {
  const out = new Map<string, Vec>();
  const seconds = (b.at - a.at) / 1000;
  if (seconds <= 0) return out;
  const reset = a.since !== b.since;
  for (const [key, sb] of b.series) {
    const sa = reset ? undefined : a.series.get(key);
    // A counter that went down restarted: all it holds is new.
    const d = (before: number | undefined, now: number) => {
      const delta = now - (before ?? 0);
      return (delta < 0 ? now : delta) / seconds;
    };
    out.set(key, {
      requests: d(sa?.requests, sb.requests),
      errors: d(sa?.errors, sb.errors),
      clientErrors: d(sa?.clientErrors, sb.clientErrors),
      retries: d(sa?.retries, sb.retries),
      rateLimited: d(sa?.rateLimited, sb.rateLimited),
      latency: sb.latency.map((c, i) => d(sa?.latency[i], c)),
    });
  }
  return out;
}

/** The q-quantile (0..1) of bucketed observations, in ms; null when there are none. */
export function quantileMs(bounds: readonly number[], counts: readonly number[], q: number): number | null {
  const total = counts.reduce((a, b) => a + b, 0);
  if (total <= 0) return null;
  const rank = q * total;
  let seen = 0;
  for (let i = 0; i < counts.length; i++) {
    const c = counts[i]!;
    if (seen + c >= rank && c > 0) {
      // Past the last bound nothing is known but the bound itself.
      if (i >= bounds.length) return (bounds[bounds.length - 1] ?? 0) * 1000;
      const lower = i === 0 ? 0 : bounds[i - 1]!;
      const upper = bounds[i]!;
      return (lower + (upper - lower) * ((rank - seen) / c)) * 1000;
    }
    seen += c;
  }
  return (bounds[bounds.length - 1] ?? 0) * 1000;
}

export class TelemetryStore {
  private readonly proxies = new Map<string, { proxy: ReportingProxy; samples: Sample[] }>();
  private readonly clock: Clock;
  private readonly historyMs: number;
  readonly intervalMs: number;
  private bounds: number[] = [];
  /** Grows with every report: a reader can tell whether anything changed. */
  generation = 0;

  constructor(options: { intervalMs: number; historyMs?: number; clock?: Clock }) {
    this.intervalMs = options.intervalMs;
    this.historyMs = options.historyMs ?? DEFAULT_TELEMETRY_HISTORY_MS;
    this.clock = options.clock ?? systemClock;
  }

  ingest(proxy: ReportingProxy, report: Omit<TelemetryReport, 'proxy' | 'stream'>): void {
    const at = this.clock.now();
    let entry = this.proxies.get(proxy.id);
    if (entry === undefined) {
      entry = { proxy, samples: [] };
      this.proxies.set(proxy.id, entry);
    }
    entry.proxy = proxy;
    if (report.latencyBounds.length > 0) this.bounds = report.latencyBounds;
    entry.samples.push({
      at,
      since: report.since,
      latencyBounds: report.latencyBounds,
      series: new Map(report.series.map((s) => [`${s.route}\u0000${s.service}`, s])),
      services: report.services,
      inflight: report.inflight,
    });
    // One sample older than the history stays: the first slot still has a start to measure from.
    while (entry.samples.length > 2 && entry.samples[1]!.at < at - this.historyMs) entry.samples.shift();
    this.generation++;
  }

  /** Drops proxies that stopped reporting (gone, or the stream moved to another control plane). */
  private prune(now: number) {
    for (const [id, entry] of this.proxies) {
      const last = entry.samples[entry.samples.length - 1];
      if (last === undefined || last.at < now - TELEMETRY_STALE_MS) this.proxies.delete(id);
    }
  }

  overview(options: OverviewOptions = {}): Overview {
    const now = this.clock.now();
    this.prune(now);
    const windowMs = options.windowMs ?? DEFAULT_DASHBOARD_WINDOW_MS;
    const interval = Math.max(1, this.intervalMs);
    const slots = Math.max(1, Math.floor(this.historyMs / interval));
    const lastSlot = Math.floor(now / interval) * interval - interval;
    const times = Array.from({ length: slots }, (_, i) => lastSlot - (slots - 1 - i) * interval);
    const nLatency = this.bounds.length + 1;

    /** Per group: the window's rates and one Vec per history slot. */
    const groups = new Map<string, { window: Vec; slots: (Vec | null)[] }>();
    const groupOf = (id: string) => {
      let g = groups.get(id);
      if (g === undefined) {
        g = { window: emptyVec(nLatency), slots: new Array(slots).fill(null) };
        groups.set(id, g);
      }
      return g;
    };
    const versions = new Map<string, Map<string, number>>();
    const reporting = new Map<string, number>();
    const edgeCallers = new Map<string, string>();
    const states = new Map<string, ServiceState>();
    const gatewayRoutes = new Map<string, { gateway: string; services: Set<string> }>();
    const proxyRows: Overview['proxies'] = [];

    for (const { proxy, samples } of this.proxies.values()) {
      const last = samples[samples.length - 1]!;
      const own = proxy.kind === 'gateway' ? `gateway:${proxy.service ?? 'gateway'}` : `service:${proxy.service}`;
      reporting.set(own, (reporting.get(own) ?? 0) + 1);
      /** The groups a series of this proxy counts in. */
      const targets = (route: string, service: string): string[] => {
        if (proxy.kind === 'gateway') {
          const ids = [own, `clients>${own}`];
          if (route !== '') {
            ids.push(`route:${route}`);
            const r = gatewayRoutes.get(route) ?? { gateway: own, services: new Set<string>() };
            if (service !== '') r.services.add(service);
            gatewayRoutes.set(route, r);
          }
          if (service !== '') {
            ids.push(`${own}>service:${service}`);
            edgeCallers.set(`${own}>service:${service}`, proxy.id);
          }
          return ids;
        }
        if (route === 'inbound') return [own, `${own}#${proxy.labels?.version ?? proxy.id}`];
        if (route.startsWith('outbound.') && service !== '') {
          edgeCallers.set(`${own}>service:${service}`, proxy.id);
          return [`${own}>service:${service}`];
        }
        return [];
      };

      // The window: from the newest report at least `windowMs` older than the last (or the oldest).
      let first = samples[0]!;
      for (const s of samples) if (s.at <= last.at - windowMs) first = s;
      let proxyRps = 0;
      if (first !== last)
        for (const [key, v] of ratesBetween(first, last)) {
          const cut = key.indexOf('\u0000');
          const route = key.slice(0, cut);
          const service = key.slice(cut + 1);
          proxyRps += proxy.kind === 'gateway' || route === 'inbound' ? v.requests : 0;
          for (const id of targets(route, service)) {
            addInto(groupOf(id).window, v);
            if (id.includes('#')) {
              const [service, version] = id.split('#') as [string, string];
              const byVersion = versions.get(service) ?? new Map<string, number>();
              byVersion.set(version, (byVersion.get(version) ?? 0) + v.requests);
              versions.set(service, byVersion);
            }
          }
        }
      proxyRows.push({
        id: proxy.id,
        lastReportAt: new Date(last.at).toISOString(),
        rps: proxyRps,
        inflight: last.inflight,
      });

      // History: each slot takes the pair of reports around its middle.
      let j = 1;
      for (let i = 0; i < (options.history === false ? 0 : slots); i++) {
        const mid = times[i]! + interval / 2;
        while (j < samples.length && samples[j]!.at <= mid) j++;
        if (j >= samples.length) break;
        const a = samples[j - 1]!;
        const b = samples[j]!;
        if (a.at > mid) continue;
        for (const [key, v] of ratesBetween(a, b)) {
          const cut = key.indexOf('\u0000');
          for (const id of targets(key.slice(0, cut), key.slice(cut + 1))) {
            const g = groupOf(id);
            addInto((g.slots[i] ??= emptyVec(nLatency)), v);
          }
        }
      }

      for (const s of last.services) {
        const st = states.get(s.name) ?? {
          breakerOpen: [],
          endpoints: { healthy: 0, ejected: 0, unhealthy: 0 },
          ejections: 0,
        };
        for (const t of s.breakerOpen) if (!st.breakerOpen.includes(t)) st.breakerOpen.push(t);
        // Every caller sees the same endpoints: the worst view is shown, ejections summed.
        st.endpoints.ejected = Math.max(st.endpoints.ejected, s.endpoints.ejected);
        st.endpoints.unhealthy = Math.max(st.endpoints.unhealthy, s.endpoints.unhealthy);
        st.endpoints.healthy = Math.max(st.endpoints.healthy, s.endpoints.healthy);
        st.ejections += s.ejections;
        states.set(s.name, st);
      }
    }

    const bounds = this.bounds;
    const statOf = (v: Vec): Stat => ({
      rps: v.requests,
      errorRate: v.requests > 0 ? v.errors / v.requests : null,
      clientErrorRate: v.requests > 0 ? v.clientErrors / v.requests : null,
      p50Ms: quantileMs(bounds, v.latency, 0.5),
      p95Ms: quantileMs(bounds, v.latency, 0.95),
      p99Ms: quantileMs(bounds, v.latency, 0.99),
      retriesPerSec: v.retries,
      rateLimitedPerSec: v.rateLimited,
    });
    const historyOf = (g: { slots: (Vec | null)[] } | undefined): History => {
      const list = g?.slots ?? new Array<Vec | null>(slots).fill(null);
      const stats = list.map((v) => (v === null ? null : statOf(v)));
      return {
        rps: stats.map((s) => s?.rps ?? null),
        errorRate: stats.map((s) => s?.errorRate ?? null),
        p50Ms: stats.map((s) => s?.p50Ms ?? null),
        p99Ms: stats.map((s) => s?.p99Ms ?? null),
      };
    };
    /** The sum of several groups (a service with no sidecar reporting: its callers' edges). */
    const sumOf = (ids: string[]) => {
      const sum = { window: emptyVec(nLatency), slots: new Array<Vec | null>(slots).fill(null) };
      for (const id of ids) {
        const g = groups.get(id);
        if (!g) continue;
        addInto(sum.window, g.window);
        g.slots.forEach((v, i) => {
          if (v !== null) addInto((sum.slots[i] ??= emptyVec(nLatency)), v);
        });
      }
      return sum;
    };

    const edgeIds = [...groups.keys()].filter((id) => id.includes('>'));
    const serviceNames = new Set(options.services ?? []);
    for (const id of edgeIds) {
      const target = id.slice(id.indexOf('>') + 1);
      if (target.startsWith('service:')) serviceNames.add(target.slice('service:'.length));
    }
    for (const id of reporting.keys()) if (id.startsWith('service:')) serviceNames.add(id.slice('service:'.length));

    const nodes: TopologyNode[] = [];
    const gateways = [...reporting.keys()].filter((id) => id.startsWith('gateway:')).sort();
    if (gateways.length > 0) {
      const clients = sumOf(gateways);
      nodes.push({
        id: 'clients',
        kind: 'clients',
        name: 'clients',
        stat: statOf(clients.window),
        history: historyOf(clients),
        proxies: 0,
        versions: [],
        state: null,
      });
    }
    for (const id of gateways)
      nodes.push({
        id,
        kind: 'gateway',
        name: id.slice('gateway:'.length),
        stat: statOf(groups.get(id)?.window ?? emptyVec(nLatency)),
        history: historyOf(groups.get(id)),
        proxies: reporting.get(id) ?? 0,
        versions: [],
        state: null,
      });
    for (const name of [...serviceNames].sort()) {
      const id = `service:${name}`;
      // Served as its sidecars count it; without sidecars, as its callers count it.
      const g = groups.get(id) ?? sumOf(edgeIds.filter((e) => e.endsWith(`>${id}`)));
      const byVersion = versions.get(id);
      const total = byVersion ? [...byVersion.values()].reduce((a, b) => a + b, 0) : 0;
      nodes.push({
        id,
        kind: 'service',
        name,
        stat: statOf(g.window),
        history: historyOf(g),
        proxies: reporting.get(id) ?? 0,
        versions: byVersion
          ? [...byVersion]
              .sort(([a], [b]) => (a < b ? -1 : 1))
              .map(([version, rps]) => ({ version, rps, share: total > 0 ? rps / total : null }))
          : [],
        state: states.get(name) ?? null,
      });
    }
    const edges: TopologyEdge[] = edgeIds.sort().map((id) => {
      const cut = id.indexOf('>');
      const target = id.slice(cut + 1);
      const caller = edgeCallers.get(id);
      return {
        id,
        source: id.slice(0, cut),
        target,
        stat: statOf(groups.get(id)!.window),
        mtls:
          caller !== undefined && target.startsWith('service:')
            ? (options.mtlsOf?.(caller, target.slice('service:'.length)) ?? null)
            : null,
      };
    });
    const routes: RouteSignals[] = [...gatewayRoutes]
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([name, r]) => ({
        name,
        gateway: r.gateway.slice('gateway:'.length),
        services: [...r.services].sort(),
        stat: statOf(groups.get(`route:${name}`)?.window ?? emptyVec(nLatency)),
        history: historyOf(groups.get(`route:${name}`)),
      }));
    return {
      at: new Date(now).toISOString(),
      windowMs,
      intervalMs: this.intervalMs,
      times,
      nodes,
      edges,
      routes,
      proxies: proxyRows.sort((a, b) => (a.id < b.id ? -1 : 1)),
    };
  }
}
