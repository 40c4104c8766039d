/**
 * What a proxy reports about each request: Prometheus metrics (always), the JSON access log and
 * OpenTelemetry spans (when the config asks), Server-Timing (when asked). One per proxy; the access log
 * and tracing follow the config in force and are rebuilt only when their settings change.
 */
import type { ObservabilityConfig } from '../api/config.ts';
import { AccessLog } from '../observability/access-log.ts';
import { type MetricsRole, ProxyMetrics } from '../observability/metrics.ts';
import { Tracing } from '../observability/tracing.ts';
import type { StreamContext } from './context.ts';
import type { Snapshot } from './snapshot.ts';

/** Spans wait this long in the batch before export. */
const TRACE_EXPORT_DELAY_MS = 500;
const DEFAULT_SAMPLING_RATIO = 0.1;

export class Telemetry {
  readonly metrics: ProxyMetrics;
  accessLog: AccessLog | null = null;
  tracing: Tracing | null = null;
  serverTiming = false;
  private accessLogKey = '';
  private tracingKey = '';
  private readonly defaultServiceName: string;

  constructor(role: MetricsRole, serviceName = 'meshgate') {
    this.metrics = new ProxyMetrics(role);
    this.defaultServiceName = serviceName;
  }

  /** Follows a new config; what it replaces is closed once requests have moved on. */
  async configure(observability: ObservabilityConfig | undefined): Promise<void> {
    const al = observability?.accessLog;
    const alKey = al === undefined ? '' : JSON.stringify(al);
    if (alKey !== this.accessLogKey) {
      const previous = this.accessLog;
      this.accessLog =
        al === undefined
          ? null
          : new AccessLog({ output: al.output, sampleRatio: al.sampleRatio ?? 1, fields: al.fields });
      this.accessLogKey = alKey;
      void previous?.close();
    }
    const tr = observability?.tracing;
    const trKey = tr === undefined ? '' : JSON.stringify(tr);
    if (trKey !== this.tracingKey) {
      const previous = this.tracing;
      this.tracing =
        tr === undefined
          ? null
          : await Tracing.create({
              endpoint: tr.endpoint,
              samplingRatio: tr.samplingRatio ?? DEFAULT_SAMPLING_RATIO,
              serviceName: tr.serviceName ?? this.defaultServiceName,
              exportDelayMs: TRACE_EXPORT_DELAY_MS,
            });
      this.tracingKey = trKey;
      void previous?.shutdown();
    }
    this.serverTiming = observability?.serverTiming === true;
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
  }

  /** The log phase of one request. */
  record(ctx: StreamContext): void {
    const endMs = performance.now();
    const durationMs = endMs - ctx.startMs;
    const upstreamMs = ctx.upstreamStartMs > 0 ? (ctx.upstreamEndMs || endMs) - ctx.upstreamStartMs : -1;
    const route = ctx.route?.name ?? '';
    const service = ctx.destination?.service.name ?? '';
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
    });
    const log = this.accessLog;
    if (log?.sampled) {
      log.write({
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
        userAgent: ctx.header('user-agent'),
      });
    }
    if (ctx.trace !== null && this.tracing !== null) {
      this.tracing.finish(
        ctx.trace,
        {
          method: ctx.method,
          path: ctx.path,
          host: ctx.host,
          route,
          status: ctx.status,
          clientAddress: ctx.clientAddress,
          userAgent: ctx.header('user-agent'),
          service: ctx.destination?.service.name,
          upstream: ctx.endpoint?.authority,
          tries: ctx.tries,
          code: ctx.code,
        },
        performance.timeOrigin + endMs,
      );
    }
  }

  /** `Server-Timing` for a response head: what the proxy added so far, and the upstream's time to its head. */
  serverTimingOf(ctx: StreamContext): string {
    const before = ctx.upstreamStartMs - ctx.startMs;
    const upstream = ctx.upstreamHeadersMs - ctx.upstreamStartMs;
    const proxy = before + (performance.now() - ctx.upstreamHeadersMs);
    return `proxy;dur=${round(proxy)}, upstream;dur=${round(upstream)}`;
  }

  async close(): Promise<void> {
    await Promise.all([this.accessLog?.close(), this.tracing?.shutdown()]);
  }
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
