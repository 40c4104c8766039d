/**
 * A request lookup's spans from a tracing backend (docs/dashboard.md): the control plane asks a trace
 * query API for each trace id the proxies' records carry, when `--trace-query URL` names one. OTLP
 * receivers share no query API, but the common backends answer one trace in OTLP's JSON encoding at
 * a URL with the id in it: Grafana Tempo (`/api/traces/{traceId}`, `{ batches }` in older versions)
 * and Jaeger v2 (`/api/v3/traces/{traceId}`, `{ result: { resourceSpans } }`). So the URL is a
 * template and every one of these shapes is read.
 */
import type { LookupSpan } from '../../admin/dashboard/api.ts';
import { DEFAULT_TRACE_QUERY_TIMEOUT_MS, MAX_TRACE_QUERY_BYTES, MAX_TRACE_QUERY_SPANS } from '../../core/defaults.ts';
import { flattenExport, type OtlpExport, type OtlpResourceSpans } from '../../observability/otlp-json.ts';

export const TRACE_ID_PLACEHOLDER = '{traceId}';

/** The trace id must be hex: it is put in a URL. */
const TRACE_ID = /^[0-9a-f]{16,32}$/i;

export class TraceQuery {
  readonly template: string;
  private readonly timeoutMs: number;

  /** Throws when `template` is not an http(s) URL with `{traceId}` in it. */
  constructor(template: string, timeoutMs = DEFAULT_TRACE_QUERY_TIMEOUT_MS) {
    let url: URL;
    try {
      url = new URL(template.replace(TRACE_ID_PLACEHOLDER, '0'));
    } catch {
      throw new Error(`--trace-query "${template}" is not a URL`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      throw new Error(`--trace-query "${template}" is not an http or https URL`);
    if (!template.includes(TRACE_ID_PLACEHOLDER))
      throw new Error(`--trace-query "${template}" has no ${TRACE_ID_PLACEHOLDER} to put the trace id in`);
    this.template = template;
    this.timeoutMs = timeoutMs;
  }

  /** The spans of these traces, oldest first; a trace the backend does not have adds none. */
  async spans(traceIds: readonly string[]): Promise<{ spans: LookupSpan[]; error: string | null }> {
    const spans: LookupSpan[] = [];
    let error: string | null = null;
    await Promise.all(
      traceIds
        .filter((id) => TRACE_ID.test(id))
        .map(async (id) => {
          try {
            spans.push(...(await this.trace(id)));
          } catch (e) {
            error = `${this.template.replace(TRACE_ID_PLACEHOLDER, id)}: ${(e as Error).message}`;
          }
        }),
    );
    spans.sort((a, b) => a.start - b.start);
    return { spans: spans.slice(0, MAX_TRACE_QUERY_SPANS), error };
  }

  private async trace(id: string): Promise<LookupSpan[]> {
    const res = await fetch(this.template.replace(TRACE_ID_PLACEHOLDER, id), {
      headers: { accept: 'application/json' },
      signal: AbortSignal.timeout(this.timeoutMs),
    });
    if (res.status === 404) {
      await res.body?.cancel();
      return [];
    }
    if (!res.ok) {
      await res.body?.cancel();
      throw new Error(`status ${res.status}`);
    }
    const length = Number(res.headers.get('content-length') ?? 0);
    if (length > MAX_TRACE_QUERY_BYTES) {
      await res.body?.cancel();
      throw new Error(`answer of ${length} bytes, more than ${MAX_TRACE_QUERY_BYTES}`);
    }
    const text = await res.text();
    if (text.length > MAX_TRACE_QUERY_BYTES) throw new Error(`answer larger than ${MAX_TRACE_QUERY_BYTES} bytes`);
    const body = JSON.parse(text) as OtlpExport & { batches?: OtlpResourceSpans[]; result?: OtlpExport };
    const resourceSpans = body.resourceSpans ?? body.batches ?? body.result?.resourceSpans ?? [];
    return flattenExport({ resourceSpans }).map((s) => {
      const status = s.attributes['http.response.status_code'];
      const route = s.attributes['meshgate.route'];
      return {
        traceId: s.traceId,
        spanId: s.spanId,
        parentSpanId: s.parentSpanId,
        service: s.serviceName || 'unknown',
        name: typeof route === 'string' ? route : s.name,
        start: Number(s.startNs / 1_000_000n),
        durationMs: Number(s.endNs - s.startNs) / 1e6,
        status: typeof status === 'number' ? status : null,
        error: s.statusCode === 2,
      };
    });
  }
}
