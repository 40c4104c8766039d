/**
 * A tiny OTLP/HTTP trace receiver and viewer, so the demo needs no collector. It accepts what the
 * proxies send (src/observability/tracing.ts, as OpenTelemetry's OTLP/HTTP exporters do):
 * `POST /v1/traces` with the OTLP JSON encoding (hex ids, nanosecond timestamps as strings), gzip or
 * not. It keeps the latest traces in memory and shows them:
 *
 *   GET /traces               the latest traces as text trees, one line per span (?limit=N, default 10)
 *   GET /traces/ID            one trace
 *   ...?format=json           the same as JSON
 *   GET /api/traces/ID        one trace in OTLP JSON, as Grafana Tempo answers it: the control plane's
 *                             `--trace-query` reads it for the dashboard's request lookup
 *
 * The protobuf encoding is refused with 415 (a real collector takes both; the proxies send JSON).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { gunzipSync } from 'node:zlib';
import { type AttributeValue, flattenExport } from '../../src/observability/otlp-json.ts';

/** A span as the viewer keeps it. */
export interface ViewedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  /** `service.name` of the resource that sent it. */
  service: string;
  name: string;
  startMs: number;
  durationMs: number;
  status: number | null;
  attributes: Record<string, AttributeValue>;
}

interface Trace {
  traceId: string;
  spans: ViewedSpan[];
  receivedAt: number;
}

const MAX_TRACES = 500;
const MAX_SPANS_PER_TRACE = 200;
const MAX_BODY_BYTES = 8 * 1024 * 1024;

export class TraceStore {
  /** Insertion order is arrival order: the oldest trace is evicted first. */
  private readonly traces = new Map<string, Trace>();
  spansReceived = 0;

  /** Keeps the spans of one export request (the OTLP JSON body, parsed); returns how many. */
  add(request: Parameters<typeof flattenExport>[0]): number {
    const spans = flattenExport(request);
    for (const s of spans) {
      const status = s.attributes['http.response.status_code'];
      this.put({
        traceId: s.traceId,
        spanId: s.spanId,
        parentSpanId: s.parentSpanId,
        service: s.serviceName || 'unknown',
        name: s.name,
        startMs: Number(s.startNs / 1000n) / 1000,
        durationMs: Number((s.endNs - s.startNs) / 1000n) / 1000,
        status: typeof status === 'number' ? status : null,
        attributes: s.attributes,
      });
    }
    this.spansReceived += spans.length;
    return spans.length;
  }

  private put(span: ViewedSpan) {
    let trace = this.traces.get(span.traceId);
    if (trace === undefined) {
      trace = { traceId: span.traceId, spans: [], receivedAt: Date.now() };
      this.traces.set(span.traceId, trace);
      if (this.traces.size > MAX_TRACES) this.traces.delete(this.traces.keys().next().value!);
    }
    if (trace.spans.length < MAX_SPANS_PER_TRACE) trace.spans.push(span);
  }

  get(traceId: string): Trace | undefined {
    return this.traces.get(traceId);
  }

  /** Newest first. */
  latest(limit: number): Trace[] {
    return [...this.traces.values()].slice(-limit).reverse();
  }
}

/** A trace as an indented tree: each span under the span it was called from. */
export function formatTrace(trace: Trace): string {
  const spans = [...trace.spans].sort((a, b) => a.startMs - b.startMs);
  const ids = new Set(spans.map((s) => s.spanId));
  const children = new Map<string, ViewedSpan[]>();
  const roots: ViewedSpan[] = [];
  for (const s of spans) {
    if (s.parentSpanId === '' || !ids.has(s.parentSpanId)) roots.push(s);
    else {
      const list = children.get(s.parentSpanId) ?? [];
      list.push(s);
      children.set(s.parentSpanId, list);
    }
  }
  const root = roots[0];
  const method = root?.attributes['http.request.method'] ?? '';
  const path = root?.attributes['url.path'] ?? '';
  const lines = [
    `trace ${trace.traceId}  ${method} ${path}  ${spans.length} span${spans.length === 1 ? '' : 's'}  ` +
      `${new Date(trace.receivedAt).toISOString()}`,
  ];
  const walk = (s: ViewedSpan, depth: number) => {
    const label = `${'  '.repeat(depth + 1)}${s.service}`;
    // Which of the proxy's routes served the hop: `property-api`, `inbound`, `outbound.photo-service`, …
    const route = String(s.attributes['meshgate.route'] ?? s.name);
    const upstream = s.attributes['meshgate.upstream.address'];
    const code = s.attributes['meshgate.code'];
    lines.push(
      `${label.padEnd(34)} ${route.padEnd(30)} ${String(s.status ?? '-').padStart(3)} ` +
        `${s.durationMs.toFixed(1).padStart(8)} ms${upstream ? `  → ${upstream}` : ''}${code ? `  ${code}` : ''}`,
    );
    for (const c of children.get(s.spanId) ?? []) walk(c, depth + 1);
  };
  for (const r of roots) walk(r, 0);
  return lines.join('\n');
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) {
        reject(new Error('too large'));
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function reply(res: ServerResponse, status: number, type: string, body: string) {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

async function receive(store: TraceStore, req: IncomingMessage, res: ServerResponse) {
  const type = String(req.headers['content-type'] ?? '');
  if (!type.startsWith('application/json'))
    return reply(
      res,
      415,
      'application/json',
      JSON.stringify({ error: `${type || 'no content type'}: this receiver takes the OTLP JSON encoding` }),
    );
  let body: Buffer;
  try {
    body = await readBody(req);
    if (req.headers['content-encoding'] === 'gzip') body = gunzipSync(body);
    store.add(JSON.parse(body.toString('utf8')));
  } catch (e) {
    return reply(res, 400, 'application/json', JSON.stringify({ error: (e as Error).message }));
  }
  reply(res, 200, 'application/json', '{}');
}

function view(store: TraceStore, url: URL, res: ServerResponse) {
  const json = url.searchParams.get('format') === 'json';
  const id = url.pathname.startsWith('/traces/') ? url.pathname.slice('/traces/'.length) : null;
  let traces: Trace[];
  if (id !== null) {
    const trace = store.get(id.toLowerCase());
    if (trace === undefined)
      return json
        ? reply(res, 404, 'application/json', JSON.stringify({ error: `no trace ${id} (yet)` }))
        : reply(res, 404, 'text/plain; charset=utf-8', `no trace ${id} (yet): spans arrive within a second\n`);
    traces = [trace];
  } else {
    const limit = Math.min(Math.max(Number(url.searchParams.get('limit') ?? 10) || 10, 1), MAX_TRACES);
    traces = store.latest(limit);
  }
  if (json) return reply(res, 200, 'application/json', JSON.stringify(id !== null ? traces[0] : { traces }, null, 2));
  const text =
    traces.length === 0
      ? 'no traces yet: send a request through the gateway (spans arrive within a second)\n'
      : `${traces.map(formatTrace).join('\n\n')}\n`;
  reply(res, 200, 'text/plain; charset=utf-8', text);
}

/** One trace in OTLP's JSON encoding, its spans grouped by service as the proxies exported them. */
function otlpJson(trace: Trace) {
  const byService = new Map<string, ViewedSpan[]>();
  for (const s of trace.spans) byService.set(s.service, [...(byService.get(s.service) ?? []), s]);
  const value = (v: AttributeValue) =>
    typeof v === 'string'
      ? { stringValue: v }
      : typeof v === 'boolean'
        ? { boolValue: v }
        : typeof v === 'number'
          ? Number.isInteger(v)
            ? { intValue: String(v) }
            : { doubleValue: v }
          : {};
  const nanos = (ms: number) => (BigInt(Math.round(ms * 1000)) * 1000n).toString();
  return {
    resourceSpans: [...byService].map(([service, spans]) => ({
      resource: { attributes: [{ key: 'service.name', value: { stringValue: service } }] },
      scopeSpans: [
        {
          spans: spans.map((s) => ({
            traceId: s.traceId,
            spanId: s.spanId,
            parentSpanId: s.parentSpanId,
            name: s.name,
            kind: 2,
            startTimeUnixNano: nanos(s.startMs),
            endTimeUnixNano: nanos(s.startMs + s.durationMs),
            attributes: Object.entries(s.attributes).map(([key, v]) => ({ key, value: value(v) })),
          })),
        },
      ],
    })),
  };
}

export async function startTraceReceiver(port: number, store = new TraceStore()): Promise<Server> {
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://receiver');
    if (req.method === 'POST' && url.pathname === '/v1/traces') return void receive(store, req, res);
    if (req.method === 'GET' && (url.pathname === '/traces' || url.pathname.startsWith('/traces/')))
      return view(store, url, res);
    if (req.method === 'GET' && url.pathname.startsWith('/api/traces/')) {
      const trace = store.get(url.pathname.slice('/api/traces/'.length).toLowerCase());
      return trace === undefined
        ? reply(res, 404, 'application/json', '{"error":"no such trace (yet)"}')
        : reply(res, 200, 'application/json', JSON.stringify(otlpJson(trace)));
    }
    if (req.method === 'GET' && url.pathname === '/') {
      res.writeHead(302, { location: '/traces' });
      return res.end();
    }
    reply(res, 404, 'text/plain; charset=utf-8', 'POST /v1/traces (OTLP JSON); GET /traces, /traces/ID\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  return server;
}
