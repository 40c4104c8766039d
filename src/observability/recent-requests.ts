/**
 * The proxy's memory of its last requests, for the dashboard's request lookup (docs/dashboard.md): a
 * fixed ring of records allocated once and overwritten in place, so remembering a request costs a
 * dozen field writes and no allocation. Read only when someone looks a request up.
 */
import type { RequestRecord } from '../api/mesh.ts';

/** What the ring reads of a finished request (a StreamContext has these fields). */
export interface FinishedStream {
  requestId: string;
  traceId: string | undefined;
  trace: { spanId: string } | null;
  startEpochMs: number;
  method: string;
  host: string;
  path: string;
  route: { name: string } | null;
  serviceName: string | undefined;
  destination: { subset: string | null | undefined } | null;
  endpoint: { authority: string } | null;
  status: number;
  code: string | null;
  tries: number;
}

interface Slot {
  requestId: string;
  traceId: string | undefined;
  spanId: string | undefined;
  start: number;
  method: string;
  host: string;
  path: string;
  route: string;
  service: string;
  subset: string | null;
  endpoint: string | null;
  status: number;
  code: string | null;
  durationMs: number;
  upstreamMs: number;
  tries: number;
}

export class RecentRequests {
  private readonly slots: Slot[];
  private next = 0;
  private filled = 0;

  constructor(size: number) {
    this.slots = Array.from({ length: size }, () => ({
      requestId: '',
      traceId: undefined,
      spanId: undefined,
      start: 0,
      method: '',
      host: '',
      path: '',
      route: '',
      service: '',
      subset: null,
      endpoint: null,
      status: 0,
      code: null,
      durationMs: 0,
      upstreamMs: -1,
      tries: 0,
    }));
  }

  /** `upstreamMs` -1: the request never went upstream. */
  add(ctx: FinishedStream, durationMs: number, upstreamMs: number): void {
    const slots = this.slots;
    if (slots.length === 0) return;
    const s = slots[this.next]!;
    this.next = this.next + 1 === slots.length ? 0 : this.next + 1;
    if (this.filled < slots.length) this.filled++;
    s.requestId = ctx.requestId;
    s.traceId = ctx.traceId;
    s.spanId = ctx.trace?.spanId;
    s.start = ctx.startEpochMs;
    s.method = ctx.method;
    s.host = ctx.host;
    s.path = ctx.path;
    s.route = ctx.route?.name ?? '';
    s.service = ctx.serviceName ?? '';
    s.subset = ctx.destination?.subset ?? null;
    s.endpoint = ctx.endpoint?.authority ?? null;
    s.status = ctx.status;
    s.code = ctx.code;
    s.durationMs = durationMs;
    s.upstreamMs = upstreamMs;
    s.tries = ctx.tries;
  }

  /** Records whose request id or trace id is in `match`, oldest first, at most `limit`. */
  find(match: readonly string[], limit: number): RequestRecord[] {
    const wanted = new Set(match);
    const found: RequestRecord[] = [];
    const size = this.slots.length;
    for (let i = 0; i < this.filled && found.length < limit; i++) {
      const s = this.slots[(this.next - this.filled + i + size) % size]!;
      if (!wanted.has(s.requestId) && (s.traceId === undefined || !wanted.has(s.traceId))) continue;
      found.push({
        requestId: s.requestId,
        traceId: s.traceId ?? null,
        spanId: s.spanId ?? null,
        start: s.start,
        method: s.method,
        host: s.host,
        path: s.path,
        route: s.route,
        service: s.service,
        subset: s.subset,
        endpoint: s.endpoint,
        status: s.status,
        code: s.code,
        durationMs: Math.round(s.durationMs * 1000) / 1000,
        upstreamMs: s.upstreamMs < 0 ? null : Math.round(s.upstreamMs * 1000) / 1000,
        tries: s.tries,
      });
    }
    return found;
  }
}
