/**
 * Spans for sampled requests, exported over OTLP/HTTP with the OpenTelemetry SDK. One SERVER span per
 * proxy hop, named `{method} {route path}`, with HTTP semantic-convention attributes. The SDK is imported only
 * when tracing is configured, so a proxy without a collector does not carry it.
 *
 * Sampling: a trace that arrives with a decision keeps it (the parent decides, so every hop of one
 * trace records or none does); a new trace is sampled at `samplingRatio`.
 */
import type { Tracer as OtelTracer, Span } from '@opentelemetry/api';
import { formatTraceparent, randomHex, type TraceContext } from './trace-context.ts';

export interface TracingSettings {
  /** OTLP/HTTP traces endpoint, e.g. http://127.0.0.1:4318/v1/traces. */
  endpoint: string;
  /** Share of new traces recorded, 0..1. */
  samplingRatio: number;
  /** `service.name` of the spans. */
  serviceName: string;
  /** How long spans wait to be batched before export. */
  exportDelayMs: number;
}

/** The trace a request belongs to, decided when its head is read. */
export interface RequestTrace {
  traceId: string;
  /** This hop's span id (the parent id sent upstream). */
  spanId: string;
  sampled: boolean;
  traceState: string;
  /** The recording span, when sampled. */
  span: Span | null;
}

export interface FinishedRequest {
  method: string;
  path: string;
  host: string;
  /** The route's name, empty when none matched. */
  route: string;
  /** The route's path pattern (`/items/:id`), the low-cardinality `http.route` of the conventions. */
  routePattern: string | undefined;
  status: number;
  clientAddress: string;
  userAgent: string | undefined;
  service: string | undefined;
  upstream: string | undefined;
  tries: number;
  code: string | null;
}

export class Tracing {
  private readonly tracer: OtelTracer;
  private readonly api: typeof import('@opentelemetry/api');
  private readonly settings: TracingSettings;
  private readonly shutdownProvider: () => Promise<void>;

  private constructor(
    api: typeof import('@opentelemetry/api'),
    tracer: OtelTracer,
    settings: TracingSettings,
    shutdown: () => Promise<void>,
  ) {
    this.api = api;
    this.tracer = tracer;
    this.settings = settings;
    this.shutdownProvider = shutdown;
  }

  static async create(settings: TracingSettings): Promise<Tracing> {
    const [api, base, exporter, resources] = await Promise.all([
      import('@opentelemetry/api'),
      import('@opentelemetry/sdk-trace-base'),
      import('@opentelemetry/exporter-trace-otlp-http'),
      import('@opentelemetry/resources'),
    ]);
    const provider = new base.BasicTracerProvider({
      resource: resources.resourceFromAttributes({ 'service.name': settings.serviceName }),
      // The sampling decision is made here (see `start`), so the SDK records what it is given.
      sampler: new base.AlwaysOnSampler(),
      spanProcessors: [
        new base.BatchSpanProcessor(new exporter.OTLPTraceExporter({ url: settings.endpoint }), {
          scheduledDelayMillis: settings.exportDelayMs,
          maxQueueSize: 8192,
        }),
      ],
    });
    return new Tracing(api, provider.getTracer('meshgate'), settings, () => provider.shutdown());
  }

  /** Decides this request's trace and, when sampled, opens its span. */
  start(incoming: TraceContext | null, name: string, startTimeMs: number): RequestTrace {
    const sampled = incoming !== null ? incoming.sampled : Math.random() < this.settings.samplingRatio;
    const traceId = incoming?.traceId ?? randomHex(16);
    if (!sampled) return { traceId, spanId: randomHex(8), sampled, traceState: incoming?.traceState ?? '', span: null };
    const { api } = this;
    // A new trace starts from the root: the SDK then picks the trace id, read back below.
    const parent =
      incoming !== null && incoming.parentSpanId !== ''
        ? api.trace.setSpanContext(api.ROOT_CONTEXT, {
            traceId,
            spanId: incoming.parentSpanId,
            traceFlags: api.TraceFlags.SAMPLED,
            isRemote: true,
          })
        : api.ROOT_CONTEXT;
    const span = this.tracer.startSpan(name, { kind: api.SpanKind.SERVER, startTime: startTimeMs }, parent);
    return {
      traceId: span.spanContext().traceId,
      spanId: span.spanContext().spanId,
      sampled,
      traceState: incoming?.traceState ?? '',
      span,
    };
  }

  /** Closes a request's span with its outcome. */
  finish(trace: RequestTrace, r: FinishedRequest, endTimeMs: number): void {
    const span = trace.span;
    if (span === null) return;
    // Named as the HTTP conventions ask, `{method} {http.route}`, now that the route is known.
    if (r.routePattern !== undefined) span.updateName(`${r.method} ${r.routePattern}`);
    span.setAttributes({
      'http.request.method': r.method,
      'url.path': r.path,
      'server.address': r.host,
      ...(r.routePattern !== undefined ? { 'http.route': r.routePattern } : {}),
      ...(r.route !== '' ? { 'meshgate.route': r.route } : {}),
      'http.response.status_code': r.status,
      'client.address': r.clientAddress,
      ...(r.userAgent !== undefined ? { 'user_agent.original': r.userAgent } : {}),
      ...(r.service !== undefined ? { 'meshgate.service': r.service } : {}),
      ...(r.upstream !== undefined ? { 'meshgate.upstream.address': r.upstream } : {}),
      'meshgate.tries': r.tries,
      ...(r.code !== null ? { 'meshgate.code': r.code } : {}),
    });
    if (r.status >= 500 || r.status === 0)
      span.setStatus({ code: this.api.SpanStatusCode.ERROR, message: r.code ?? undefined });
    span.end(endTimeMs);
  }

  /** Flushes what is batched and stops exporting. */
  shutdown(): Promise<void> {
    return this.shutdownProvider();
  }
}

export function traceparentOf(trace: RequestTrace): string {
  return formatTraceparent(trace.traceId, trace.spanId, trace.sampled);
}
