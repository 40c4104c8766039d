/**
 * What a proxy reports about each request: Prometheus metrics (always), the JSON access log and
 * OpenTelemetry spans (when the config asks), Server-Timing (when asked). One per proxy; the access log
 * and tracing follow the config in force and are rebuilt only when their settings change.
 */
import { performance } from 'node:perf_hooks';
import type { ObservabilityConfig } from '../api/config.ts';
import {
  DEFAULT_EXPLAIN_SAMPLE_RATE,
  DEFAULT_EXPLAIN_TRAILS,
  DEFAULT_RECENT_REQUESTS,
  DEFAULT_TRACE_SAMPLING_RATIO,
  TRACE_EXPORT_DELAY_MS,
} from '../core/defaults.ts';
import { AccessLog } from '../observability/access-log.ts';
import { type MetricsRole, ProxyMetrics, shedReasonOf } from '../observability/metrics.ts';
import { RecentRequests } from '../observability/recent-requests.ts';
import { Tracing } from '../observability/tracing.ts';
import type { Snapshot } from './compiled.ts';
import type { StreamContext } from './context.ts';
import { type ExplainSettings, finishTrail } from './explain/trail.ts';
import type { MeshTls } from './identity/mesh-tls.ts';
import { BREAKER_THRESHOLDS } from './upstream/circuit-breaker.ts';
import { upstreamDecisions } from './upstream/decisions.ts';

/** Settings built for a config not yet in force; `undefined`: unchanged, `null`: turned off. */
export interface PreparedTelemetry {
  readonly accessLog: AccessLog | null | undefined;
  readonly accessLogKey: string;
  readonly tracing: Tracing | null | undefined;
  readonly tracingKey: string;
  readonly serverTiming: boolean;
  readonly explain: ExplainSettings | null;
}

export class Telemetry {
  readonly metrics: ProxyMetrics;
  accessLog: AccessLog | null = null;
  tracing: Tracing | null = null;
  serverTiming = false;
  /** Decision trails (`observability.explain`); null: off, and no request pays for them. */
  explain: ExplainSettings | null = null;
  /** The last requests, for the dashboard's request lookup; null when none are kept. */
  readonly recent: RecentRequests | null;
  private accessLogKey = '';
  private tracingKey = '';
  private readonly defaultServiceName: string;
  private readonly timingName: string;

  constructor(role: MetricsRole, serviceName = 'meshgate', recentRequests = DEFAULT_RECENT_REQUESTS) {
    this.metrics = new ProxyMetrics(role);
    this.recent = recentRequests > 0 ? new RecentRequests(recentRequests) : null;
    this.defaultServiceName = serviceName;
    // A quoted-string of Server-Timing: service names are config names, [A-Za-z0-9._-].
    this.timingName = role === 'gateway' ? 'gateway' : `sidecar ${serviceName}`;
  }

  /** Follows a new config at once: `prepare` then `commit` (the first config, at start). */
  async configure(observability: ObservabilityConfig | undefined): Promise<void> {
    this.commit(await this.prepare(observability));
  }

  /**
   * Builds what a new config's settings need (an access log file opened, a trace exporter) without
   * touching the settings in force: a config rejected later (by this process or another worker) must
   * leave the access log and tracing as they were. Unchanged settings keep their objects.
   */
  async prepare(observability: ObservabilityConfig | undefined): Promise<PreparedTelemetry> {
    const al = observability?.accessLog;
    const alKey = al === undefined ? '' : JSON.stringify(al);
    const accessLog =
      alKey === this.accessLogKey
        ? undefined
        : al === undefined
          ? null
          : new AccessLog({ output: al.output, sampleRatio: al.sampleRatio ?? 1, fields: al.fields });
    const tr = observability?.tracing;
    const trKey = tr === undefined ? '' : JSON.stringify(tr);
    let tracing: Tracing | null | undefined;
    try {
      tracing =
        trKey === this.tracingKey
          ? undefined
          : tr === undefined
            ? null
            : await Tracing.create({
                endpoint: tr.endpoint,
                samplingRatio: tr.samplingRatio ?? DEFAULT_TRACE_SAMPLING_RATIO,
                serviceName: tr.serviceName ?? this.defaultServiceName,
                exportDelayMs: TRACE_EXPORT_DELAY_MS,
              });
    } catch (e) {
      void accessLog?.close();
      throw e;
    }
    return {
      accessLog,
      accessLogKey: alKey,
      tracing,
      tracingKey: trKey,
      serverTiming: observability?.serverTiming === true,
      explain: explainSettings(observability?.explain),
    };
  }

  /** Puts prepared settings in force (synchronous: one tick with the snapshot swap); what they replace closes. */
  commit(next: PreparedTelemetry): void {
    if (next.accessLog !== undefined) {
      const previous = this.accessLog;
      this.accessLog = next.accessLog;
      this.accessLogKey = next.accessLogKey;
      void previous?.close();
    }
    if (next.tracing !== undefined) {
      const previous = this.tracing;
      this.tracing = next.tracing;
      this.tracingKey = next.tracingKey;
      void previous?.shutdown();
    }
    this.serverTiming = next.serverTiming;
    // Trails live in the ring of recent requests: without it (a proxy told to keep none) there is nowhere to keep them.
    this.explain = this.recent === null ? null : next.explain;
    this.recent?.resizeTrails(next.explain?.size ?? 0);
  }

  /** Closes what `prepare` built for a config that will not be committed. */
  discard(next: PreparedTelemetry): void {
    void next.accessLog?.close();
    void next.tracing?.shutdown();
  }

  /** Gauges read from the snapshot in force at scrape time. */
  watch(current: () => Snapshot): void {
    this.metrics.gauge(
      'connection_pool_active',
      'Upstream connections busy with a request, per service.',
      ['service'],
      (g) => {
        for (const service of current().services.values())
          g.set(
            { service: service.name },
            service.all.endpoints.reduce((n, e) => n + e.pool.busy, 0),
          );
      },
    );
    this.metrics.gauge('requests_in_flight', 'Requests started and not yet ended.', [], (g) => {
      g.set(current().inflight.count);
    });
    this.metrics.gauge(
      'circuit_breaker_open',
      'Whether a circuit breaker limit is reached right now (1: the next request over it is refused), per service and threshold.',
      ['service', 'threshold'],
      (g) => {
        for (const service of current().services.values()) {
          const open = service.breaker.open();
          for (const threshold of BREAKER_THRESHOLDS)
            g.set({ service: service.name, threshold }, open[threshold] ? 1 : 0);
        }
      },
      'max',
    );
    this.metrics.gauge(
      'adaptive_concurrency_limit',
      'The adaptive concurrency limit on tries in flight to the service right now (services with adaptiveConcurrency only; summed over workers).',
      ['service'],
      (g) => {
        for (const service of current().services.values()) {
          const adaptive = service.breaker.adaptive;
          if (adaptive !== null) g.set({ service: service.name }, adaptive.limit);
        }
      },
    );
    this.metrics.counterOf(
      'circuit_breaker_overflows_total',
      'Connections not opened and requests or retries refused by a circuit breaker limit, per service and threshold.',
      ['service', 'threshold'],
      (set) => {
        for (const service of current().services.values())
          for (const threshold of BREAKER_THRESHOLDS)
            set({ service: service.name, threshold }, service.stats.breakerOverflows[threshold]);
      },
    );
    this.metrics.counterOf(
      'outlier_ejections_total',
      'Endpoints ejected by outlier detection, per service.',
      ['service'],
      (set) => {
        for (const service of current().services.values()) set({ service: service.name }, service.stats.ejections);
      },
    );
    this.metrics.gauge(
      'endpoints',
      'Endpoints per service and state: healthy (may get traffic), ejected (by outlier detection), unhealthy (failing health checks, or not yet checked).',
      ['service', 'state'],
      (g) => {
        for (const service of current().services.values()) {
          let healthy = 0;
          let ejected = 0;
          let unhealthy = 0;
          for (const e of service.all.endpoints) {
            if (e.ejected) ejected++;
            else if (e.available) healthy++;
            else unhealthy++;
          }
          g.set({ service: service.name, state: 'healthy' }, healthy);
          g.set({ service: service.name, state: 'ejected' }, ejected);
          g.set({ service: service.name, state: 'unhealthy' }, unhealthy);
        }
      },
    );
    this.metrics.counterOf(
      'mirror_requests_total',
      'Copies of requests mirrored to a service, by result: sent, dropped (limits, body too large), failed.',
      ['service', 'result'],
      (set) => {
        for (const service of current().services.values()) {
          const s = service.stats;
          if (s.mirrorSent + s.mirrorDropped + s.mirrorFailed === 0) continue;
          set({ service: service.name, result: 'sent' }, s.mirrorSent);
          set({ service: service.name, result: 'dropped' }, s.mirrorDropped);
          set({ service: service.name, result: 'failed' }, s.mirrorFailed);
        }
      },
    );
    this.metrics.counterOf(
      'aggregate_calls_total',
      'Calls of aggregate routes to a service, by result: ok (a 2xx JSON answer), failed (no answer, a status outside 2xx, not JSON, too large), skipped (not sent: a call it depends on failed, or a value its path needs was missing).',
      ['service', 'result'],
      (set) => {
        for (const service of current().services.values()) {
          const s = service.stats;
          if (s.aggregateOk + s.aggregateFailed + s.aggregateSkipped === 0) continue;
          set({ service: service.name, result: 'ok' }, s.aggregateOk);
          set({ service: service.name, result: 'failed' }, s.aggregateFailed);
          set({ service: service.name, result: 'skipped' }, s.aggregateSkipped);
        }
      },
    );
  }

  /** Mutual-TLS handshakes, completed and refused (only a proxy with a workload identity has them). */
  watchMtls(mesh: MeshTls): void {
    this.metrics.counterOf(
      'mtls_handshakes_total',
      'Mutual-TLS handshakes completed with the peer verified, by direction (inbound: callers of this proxy; outbound: endpoints it connected to).',
      ['direction'],
      (set) => {
        set({ direction: 'inbound' }, mesh.handshakes.inbound);
        set({ direction: 'outbound' }, mesh.handshakes.outbound);
      },
    );
    this.metrics.counterOf(
      'mtls_handshake_failures_total',
      'Mutual-TLS handshakes refused, by direction (inbound: a caller refused by this proxy; outbound: an endpoint this proxy refused or that refused it) and reason (no-client-certificate, identity-mismatch, or the TLS error code).',
      ['direction', 'reason'],
      (set) => {
        for (const [key, count] of mesh.failures) {
          const cut = key.indexOf('\u0000');
          set({ direction: key.slice(0, cut), reason: key.slice(cut + 1) }, count);
        }
      },
    );
  }

  /** The log phase of one request. */
  record(ctx: StreamContext): void {
    const endMs = ctx.lastWriteMs > 0 ? ctx.lastWriteMs : performance.now();
    const durationMs = endMs - ctx.startMs;
    // The upstream's end is noted after the last chunk was written on: it counts to the request's end at most.
    const upstreamMs = ctx.upstreamStartMs > 0 ? Math.min(ctx.upstreamEndMs || endMs, endMs) - ctx.upstreamStartMs : -1;
    const route = ctx.route?.name ?? '';
    // Refused before a destination was picked: the route's (first) service still gets the count.
    const service = ctx.serviceName ?? '';
    this.metrics.observe({
      route,
      service,
      method: ctx.method,
      status: ctx.status,
      code: ctx.code,
      durationSeconds: durationMs / 1000,
      upstreamSeconds: upstreamMs < 0 ? -1 : upstreamMs / 1000,
      tries: ctx.tries,
      bytesIn: ctx.bytesIn,
      bytesOut: ctx.bytesOut,
      shed: ctx.code === null && ctx.retryStop === null ? null : shedReasonOf(ctx.code, ctx.refusal, ctx.retryStop),
    });
    if (ctx.authz !== null) this.metrics.countAuthz(ctx.authz);
    if (ctx.trail !== null) finishTrail(ctx, durationMs, upstreamMs);
    this.recent?.add(ctx, durationMs, upstreamMs);
    const log = this.accessLog;
    const logged = log?.sampled === true;
    // A request outside the sample has a trace context to propagate but no span to close.
    const traced = ctx.trace !== null && ctx.trace.span !== null && this.tracing !== null;
    const userAgent = logged || traced ? ctx.header('user-agent') : undefined;
    if (logged) {
      log!.write({
        time: new Date(ctx.startEpochMs).toISOString(),
        requestId: ctx.requestId,
        traceId: ctx.traceId,
        clientAddress: ctx.clientAddress,
        method: ctx.method,
        host: ctx.host,
        path: ctx.path,
        route: ctx.route?.name,
        service: ctx.destination?.service.name,
        endpoint: ctx.endpoint?.authority,
        consumer: ctx.consumer?.name,
        status: ctx.status,
        code: ctx.code,
        bytesIn: ctx.bytesIn,
        bytesOut: ctx.bytesOut,
        durationMs: round(durationMs),
        upstreamMs: upstreamMs < 0 ? undefined : round(upstreamMs),
        proxyMs: round(upstreamMs < 0 ? durationMs : durationMs - upstreamMs),
        tries: ctx.tries,
        // The upstream phase's decisions (docs/resilience.md), only when there is one to tell.
        tryLog: ctx.tryLog === null ? undefined : upstreamDecisions(ctx).tryLog,
        subset: ctx.destination?.subset,
        refusal: ctx.refusal ?? undefined,
        retryStop: ctx.retryStop ?? undefined,
        faultDelayMs: ctx.faultDelayMs > 0 ? ctx.faultDelayMs : undefined,
        mirrored: ctx.mirrored ? true : undefined,
        userAgent,
        principal: ctx.peerPrincipal ?? undefined,
        authz: ctx.authz ?? undefined,
        api: ctx.route?.version?.api,
        apiVersion: ctx.route?.version?.name,
      });
    }
    if (traced) {
      this.tracing!.finish(
        ctx.trace!,
        {
          method: ctx.method,
          path: ctx.path,
          host: ctx.host,
          route,
          routePattern: ctx.route?.pathPattern,
          status: ctx.status,
          clientAddress: ctx.clientAddress,
          userAgent,
          service: ctx.destination?.service.name,
          upstream: ctx.endpoint?.authority,
          tries: ctx.tries,
          code: ctx.code,
        },
        // As StreamContext.startEpochMs: the wall clock, not timeOrigin, which drifts from it.
        Date.now() - (performance.now() - endMs),
      );
    }
  }

  /**
   * `Server-Timing` for a response head: what the proxy added so far, and the upstream's time to its
   * head. `desc` names the proxy, so the entries of every hop (each appends its own after its
   * upstream's) can be told apart: innermost first, the gateway last.
   */
  serverTimingOf(ctx: StreamContext): string {
    const before = ctx.upstreamStartMs - ctx.startMs;
    const upstream = ctx.upstreamHeadersMs - ctx.upstreamStartMs;
    const proxy = before + (performance.now() - ctx.upstreamHeadersMs);
    return `proxy;dur=${round(proxy)};desc="${this.timingName}", upstream;dur=${round(upstream)};desc="${this.timingName}"`;
  }

  async close(): Promise<void> {
    await Promise.all([this.accessLog?.close(), this.tracing?.shutdown()]);
  }
}

/** `observability.explain` compiled; null when absent or keeping nothing. */
function explainSettings(config: ObservabilityConfig['explain']): ExplainSettings | null {
  if (config === undefined) return null;
  const size = config.size ?? DEFAULT_EXPLAIN_TRAILS;
  if (size === 0) return null;
  return Object.freeze({
    size,
    sampleRate: config.sampleRate ?? DEFAULT_EXPLAIN_SAMPLE_RATE,
    consumers: config.consumers === undefined ? null : new Set(config.consumers),
  });
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
