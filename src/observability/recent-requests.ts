/**
 * The proxy's memory of its last requests, for the dashboard's request lookup (docs/dashboard.md): a
 * fixed ring of records allocated once and overwritten in place, so remembering a request costs a
 * dozen field writes and no allocation. Read only when someone looks a request up.
 *
 * Beside the records, the decision trails of the requests that had one recorded (`meshgate explain`,
 * docs/explain.md): sampled apart from the records, so kept in a ring of their own size
 * (`observability.explain.size`), found by the same ids and read the same way.
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
  /** The request's decision trail when one was recorded (and kept: see explain/trail.ts `finishTrail`). */
  trail?: KeptTrail | null;
}

/** What the ring needs of a trail: the ids it is found by. */
export interface KeptTrail {
  readonly requestId: string;
  readonly traceId: string | undefined;
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
  private trails: (KeptTrail | null)[] = [];
  private nextTrail = 0;
  private filledTrails = 0;

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
    if (ctx.trail != null) this.addTrail(ctx.trail);
  }

  /** Trails kept at most; 0: none. A new size keeps the newest trails that fit. */
  get trailCapacity(): number {
    return this.trails.length;
  }

  resizeTrails(size: number): void {
    if (size === this.trails.length) return;
    const kept = this.orderedTrails().slice(-size || this.trails.length);
    this.trails = Array.from({ length: size }, (_, i) => kept[i] ?? null);
    this.filledTrails = Math.min(kept.length, size);
    this.nextTrail = this.filledTrails === size ? 0 : this.filledTrails;
  }

  private addTrail(trail: KeptTrail): void {
    const trails = this.trails;
    if (trails.length === 0) return;
    trails[this.nextTrail] = trail;
    this.nextTrail = this.nextTrail + 1 === trails.length ? 0 : this.nextTrail + 1;
    if (this.filledTrails < trails.length) this.filledTrails++;
  }

  /** Kept trails, oldest first. */
  private orderedTrails(): KeptTrail[] {
    const size = this.trails.length;
    const out: KeptTrail[] = [];
    for (let i = 0; i < this.filledTrails; i++) {
      const t = this.trails[(this.nextTrail - this.filledTrails + i + size) % size];
      if (t != null) out.push(t);
    }
    return out;
  }

  /** Trails whose request id or trace id is in `match`, oldest first, at most `limit`. */
  findTrails<T extends KeptTrail>(match: readonly string[], limit: number): T[] {
    const wanted = new Set(match);
    return this.orderedTrails()
      .filter((t) => wanted.has(t.requestId) || (t.traceId !== undefined && wanted.has(t.traceId)))
      .slice(0, limit) as T[];
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
