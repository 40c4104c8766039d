/**
 * Spans for sampled requests, exported over OTLP/HTTP in the JSON encoding. One SERVER span per proxy
 * hop, named `{method} {route path}`, with HTTP semantic-convention attributes. The span, its batch
 * and the export are written here, small: the OpenTelemetry SDK and its OTLP exporter (about 250
 * modules with the metrics SDK and protobuf code the exporter's index brings, ~3.5 MB resident) cost
 * every traced proxy more than the few fields a proxy's span has (docs/benchmarks.md, "The demo's
 * proxies"). What a collector receives is what the SDK's JSON exporter sent.
 *
 * Sampling: a trace that arrives with a decision keeps it (the parent decides, so every hop of one
 * trace records or none does); a new trace is sampled at `samplingRatio`.
 */
import type { Agent } from 'node:http';
import {
  TRACE_EXPORT_BATCH_MAX_SPANS,
  TRACE_EXPORT_QUEUE_MAX_SPANS,
  TRACE_EXPORT_TIMEOUT_MS,
} from '../core/defaults.ts';
import { http } from '../core/node-http.ts';
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

/** One hop's span while its request runs; exported once finished. */
export interface OpenSpan {
  name: string;
  readonly parentSpanId: string;
  readonly startTimeMs: number;
}

/** The trace a request belongs to, decided when its head is read. */
export interface RequestTrace {
  traceId: string;
  /** This hop's span id (the parent id sent upstream). */
  spanId: string;
  sampled: boolean;
  traceState: string;
  /** The recording span, when sampled. */
  span: OpenSpan | null;
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

/** OTLP's JSON encoding: attribute values, spans (ids in hex, times as decimal nanoseconds). */
type OtlpValue = { stringValue: string } | { intValue: number } | { boolValue: boolean };
interface OtlpAttribute {
  key: string;
  value: OtlpValue;
}
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  traceState?: string;
  name: string;
  /** 2: SERVER. */
  kind: 2;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  attributes: OtlpAttribute[];
  droppedAttributesCount: 0;
  events: [];
  droppedEventsCount: 0;
  /** 0 unset, 2 error. */
  status: { code: 0 | 2; message?: string };
  links: [];
  droppedLinksCount: 0;
}

/** Milliseconds since the epoch (with a fraction) as OTLP's decimal nanoseconds, exact past 2^53. */
function unixNano(ms: number): string {
  const whole = Math.floor(ms);
  return (BigInt(whole) * 1_000_000n + BigInt(Math.round((ms - whole) * 1e6))).toString();
}

function attribute(key: string, value: string | number): OtlpAttribute {
  return { key, value: typeof value === 'number' ? { intValue: value } : { stringValue: value } };
}

/** Batches finished spans and posts them, one request at a time; never blocks or fails a request. */
class OtlpExporter {
  private readonly url: URL;
  private readonly agent: Agent;
  private readonly resource: { attributes: OtlpAttribute[] };
  private readonly delayMs: number;
  private queue: OtlpSpan[] = [];
  private timer: NodeJS.Timeout | null = null;
  private sending: Promise<void> | null = null;
  private closed = false;

  constructor(settings: TracingSettings) {
    this.url = new URL(settings.endpoint);
    this.delayMs = settings.exportDelayMs;
    const transport = this.url.protocol === 'https:' ? process.getBuiltinModule('node:https') : http;
    this.agent = new transport.Agent({ keepAlive: true, maxSockets: 1 });
    this.resource = {
      attributes: [
        attribute('service.name', settings.serviceName),
        attribute('telemetry.sdk.language', 'nodejs'),
        attribute('telemetry.sdk.name', 'meshgate'),
      ],
    };
  }

  add(span: OtlpSpan): void {
    if (this.closed || this.queue.length >= TRACE_EXPORT_QUEUE_MAX_SPANS) return;
    this.queue.push(span);
    if (this.queue.length >= TRACE_EXPORT_BATCH_MAX_SPANS) this.flushSoon(0);
    else this.flushSoon(this.delayMs);
  }

  private flushSoon(delayMs: number): void {
    if (this.sending !== null) return;
    if (this.timer !== null) {
      if (delayMs > 0) return;
      clearTimeout(this.timer);
    }
    this.timer = setTimeout(() => {
      this.timer = null;
      this.sending = this.drain().finally(() => {
        this.sending = null;
        if (this.queue.length > 0 && !this.closed) this.flushSoon(this.delayMs);
      });
    }, delayMs);
    this.timer.unref();
  }

  /** Sends what is queued, a batch at a time. */
  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, TRACE_EXPORT_BATCH_MAX_SPANS);
      await this.post(batch);
    }
  }

  private post(spans: OtlpSpan[]): Promise<void> {
    const body = JSON.stringify({
      resourceSpans: [{ resource: this.resource, scopeSpans: [{ scope: { name: 'meshgate' }, spans }] }],
    });
    const transport = this.url.protocol === 'https:' ? process.getBuiltinModule('node:https') : http;
    return new Promise<void>((resolve) => {
      const req = transport.request(
        this.url,
        {
          method: 'POST',
          agent: this.agent,
          timeout: TRACE_EXPORT_TIMEOUT_MS,
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
        },
        (res) => {
          // The answer's body says how many spans were rejected; a batch is not retried either way.
          res.resume();
          res.once('end', resolve);
          res.once('error', () => resolve());
        },
      );
      req.once('timeout', () => req.destroy());
      req.once('error', () => resolve());
      req.end(body);
    });
  }

  /** Sends what is queued, then closes its connections. */
  async shutdown(): Promise<void> {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    await this.sending;
    await this.drain();
    this.closed = true;
    this.agent.destroy();
  }
}

export class Tracing {
  private readonly settings: TracingSettings;
  private readonly exporter: OtlpExporter;

  private constructor(settings: TracingSettings) {
    this.settings = settings;
    this.exporter = new OtlpExporter(settings);
  }

  static async create(settings: TracingSettings): Promise<Tracing> {
    return new Tracing(settings);
  }

  /** Decides this request's trace and, when sampled, opens its span. */
  start(incoming: TraceContext | null, name: string, startTimeMs: number): RequestTrace {
    const sampled = incoming !== null ? incoming.sampled : Math.random() < this.settings.samplingRatio;
    const traceId = incoming?.traceId ?? randomHex(16);
    const spanId = randomHex(8);
    const traceState = incoming?.traceState ?? '';
    if (!sampled) return { traceId, spanId, sampled, traceState, span: null };
    const span: OpenSpan = { name, parentSpanId: incoming?.parentSpanId ?? '', startTimeMs };
    return { traceId, spanId, sampled, traceState, span };
  }

  /** Closes a request's span with its outcome. */
  finish(trace: RequestTrace, r: FinishedRequest, endTimeMs: number): void {
    const span = trace.span;
    if (span === null) return;
    const attributes = [
      attribute('http.request.method', r.method),
      attribute('url.path', r.path),
      attribute('server.address', r.host),
    ];
    if (r.routePattern !== undefined) attributes.push(attribute('http.route', r.routePattern));
    if (r.route !== '') attributes.push(attribute('meshgate.route', r.route));
    attributes.push(attribute('http.response.status_code', r.status), attribute('client.address', r.clientAddress));
    if (r.userAgent !== undefined) attributes.push(attribute('user_agent.original', r.userAgent));
    if (r.service !== undefined) attributes.push(attribute('meshgate.service', r.service));
    if (r.upstream !== undefined) attributes.push(attribute('meshgate.upstream.address', r.upstream));
    attributes.push(attribute('meshgate.tries', r.tries));
    if (r.code !== null) attributes.push(attribute('meshgate.code', r.code));
    const error = r.status >= 500 || r.status === 0;
    this.exporter.add({
      traceId: trace.traceId,
      spanId: trace.spanId,
      ...(span.parentSpanId !== '' ? { parentSpanId: span.parentSpanId } : {}),
      ...(trace.traceState !== '' ? { traceState: trace.traceState } : {}),
      // Named as the HTTP conventions ask, `{method} {http.route}`, now that the route is known.
      name: r.routePattern !== undefined ? `${r.method} ${r.routePattern}` : span.name,
      kind: 2,
      startTimeUnixNano: unixNano(span.startTimeMs),
      endTimeUnixNano: unixNano(endTimeMs),
      attributes,
      droppedAttributesCount: 0,
      events: [],
      droppedEventsCount: 0,
      status: error ? { code: 2, ...(r.code !== null ? { message: r.code } : {}) } : { code: 0 },
      links: [],
      droppedLinksCount: 0,
    });
  }

  /** Flushes what is batched and stops exporting. */
  shutdown(): Promise<void> {
    return this.exporter.shutdown();
  }
}

export function traceparentOf(trace: RequestTrace): string {
  return formatTraceparent(trace.traceId, trace.spanId, trace.sampled);
}
