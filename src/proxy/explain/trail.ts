/**
 * A request's decision trail while it runs (docs/explain.md): compact facts noted by the request path
 * only when `ctx.trail` is set (a sampled request, or one that asked), so every other request pays a
 * null check per step. What the facts mean (why earlier routes did not match, the story) is worked out
 * only when someone asks (read.ts), against the snapshot the request ran on.
 */
import { performance } from 'node:perf_hooks';
import type { AuthzDecision } from '../../api/authorization.ts';
import type { TrailReason } from '../../api/explain.ts';
import { EXPLAIN_ID_HEADER, EXPLAIN_REQUEST_HEADER } from '../../core/defaults.ts';
import type { Filter, FilterResult, ResponseHead } from '../../core/plugin.ts';
import type { CompiledFilter, CompiledRoute, Snapshot } from '../compiled.ts';
import type { StreamContext, TryRecord } from '../context.ts';
import type { CircuitBreaker } from '../upstream/circuit-breaker.ts';
import type { Endpoint } from '../upstream/endpoint.ts';

/** `observability.explain` compiled: read per request only when it is configured. */
export interface ExplainSettings {
  /** Trails kept (the ring's size). */
  readonly size: number;
  /** In [0, 1]; 0: only requests that ask. */
  readonly sampleRate: number;
  /** Consumer names and `group:NAME`s whose ask is honoured; null: every identified consumer. */
  readonly consumers: ReadonlySet<string> | null;
}

/** `ctx.explainAsked`: what the request head said. */
export const ASKED_NONE = 0;
export const ASKED = 1;

export interface PluginNote {
  readonly filter: CompiledFilter;
  outcome: 'continue' | 'reply' | 'error' | 'pending';
  status: number;
  code: string | null;
  detail: string | null;
  /** The consumer once this plugin was done (null: none yet). */
  consumer: string | null;
  facts: Record<string, unknown> | undefined;
}

export interface TryNote {
  readonly endpoint: string;
  /** performance.now() when sent. */
  readonly atMs: number;
  /** performance.now() when its failure was known (a retried try); -1: the last try, or unknown. */
  endMs: number;
  /** The backoff before the retry that followed, ms; -1: none followed. */
  retryDelayMs: number;
  readonly breaker: readonly [number, number, number, number, number, number];
  readonly consecutiveErrors: number;
  readonly ejections: number;
  readonly active: number;
  readonly panic: boolean;
}

/** A call of the request's action to another service (one of aggregate's): its tries. */
export interface SubRequestNote {
  /** The call's name in the config. */
  readonly call: string;
  readonly service: string;
  readonly tries: TryNote[];
  /** Each try's outcome (`status 503`, a failure's code), in order, once known. */
  readonly outcomes: string[];
  /** Why no (further) try was made: the retry stop, or the refusal before any try. */
  stop: string | null;
}

/** A try as it starts: where it goes and what it finds there. */
export function tryNote(endpoint: Endpoint, breaker: CircuitBreaker, panic: boolean): TryNote {
  return {
    endpoint: endpoint.authority,
    atMs: performance.now(),
    endMs: -1,
    retryDelayMs: -1,
    breaker: [
      breaker.requests,
      breaker.maxRequests,
      breaker.pending,
      breaker.maxPendingRequests,
      breaker.retries,
      breaker.maxRetries,
    ],
    consecutiveErrors: endpoint.consecutiveErrors,
    ejections: endpoint.ejections,
    active: endpoint.active,
    panic,
  };
}

export class Trail {
  readonly snapshot: Snapshot;
  readonly listener: string;
  readonly sampled: boolean;
  readonly method: string;
  readonly host: string;
  readonly path: string;
  readonly query: string;
  /** The headers as the router saw them (`[name, value, …]`), for matching routes again on read. */
  readonly headers: readonly string[];
  readonly startMs: number;
  route: CompiledRoute | null = null;
  readonly plugins: PluginNote[] = [];
  /** The roll of the weighted draw, [0, 100); -1: no draw (one destination) or none made. */
  roll = -1;
  drawn = false;
  readonly tries: TryNote[] = [];
  /** The action's calls to other services (aggregate's), in the order they were made; null: none. */
  subRequests: SubRequestNote[] | null = null;
  // Set when the request ends (`finishTrail`).
  reason: TrailReason = 'sampled';
  requestId = '';
  traceId: string | undefined = undefined;
  startEpochMs = 0;
  status = 0;
  code: string | null = null;
  durationMs = 0;
  upstreamMs = -1;
  upstreamHeadersMs = 0;
  consumer: { name: string; groups: readonly string[] } | null = null;
  credential: string | null = null;
  claims: Readonly<Record<string, unknown>> | null = null;
  peer: string | null = null;
  authz: readonly AuthzDecision[] | null = null;
  destinationIndex = -1;
  refusal: string | null = null;
  retryStop: string | null = null;
  tryLog: readonly TryRecord[] | null = null;

  constructor(ctx: StreamContext, sampled: boolean) {
    this.snapshot = ctx.snapshot;
    this.listener = ctx.listener.config.name;
    this.sampled = sampled;
    this.method = ctx.method;
    this.host = ctx.host;
    this.path = ctx.path;
    this.query = ctx.query;
    this.headers = ctx.headers.slice();
    this.startMs = ctx.startMs;
  }

  /** One plugin's request hook has run (`result` as it returned); a promise is followed to its end. */
  plugin(ctx: StreamContext, filter: CompiledFilter, instance: Filter, result: FilterResult): void {
    const note: PluginNote = {
      filter,
      outcome: 'continue',
      status: 0,
      code: null,
      detail: null,
      consumer: null,
      facts: undefined,
    };
    this.plugins.push(note);
    if (result instanceof Promise) {
      note.outcome = 'pending';
      result.then(
        (settled) => settle(note, ctx, instance, settled),
        () => {
          note.outcome = 'error';
        },
      );
    } else settle(note, ctx, instance, result);
  }

  /** A plugin threw. */
  pluginFailed(filter: CompiledFilter): void {
    const last = this.plugins.at(-1);
    if (last !== undefined && last.filter === filter) last.outcome = 'error';
    else
      this.plugins.push({
        filter,
        outcome: 'error',
        status: 500,
        code: 'MG_INTERNAL',
        detail: null,
        consumer: null,
        facts: undefined,
      });
  }

  tryStarted(endpoint: Endpoint, breaker: CircuitBreaker, panic: boolean): void {
    this.tries.push(tryNote(endpoint, breaker, panic));
  }

  /** A call the action makes besides the request's own upstream (aggregate's); its tries go in it. */
  subRequest(call: string, service: string): SubRequestNote {
    const note: SubRequestNote = { call, service, tries: [], outcomes: [], stop: null };
    (this.subRequests ??= []).push(note);
    return note;
  }

  /** The last try failed; `retryDelayMs` -1: no retry follows. */
  tryFailed(retryDelayMs: number): void {
    const last = this.tries.at(-1);
    if (last === undefined) return;
    last.endMs = performance.now();
    last.retryDelayMs = retryDelayMs;
  }
}

function settle(note: PluginNote, ctx: StreamContext, instance: Filter, result: FilterResult | undefined): void {
  const reply = result instanceof Promise ? undefined : result;
  if (reply === undefined || reply === null) note.outcome = 'continue';
  else {
    note.outcome = 'reply';
    note.status = reply.status;
    note.code = reply.code;
    note.detail = reply.detail;
  }
  note.consumer = ctx.consumer?.name ?? null;
  if (instance.explain !== undefined) {
    try {
      note.facts = instance.explain();
    } catch {
      // What a plugin tells of itself never fails the request.
    }
  }
}

/**
 * After the request head is read: starts the trail when the request is sampled or asked for one. The
 * asking is checked at the end (the consumer is known only after authentication).
 */
export function startTrail(ctx: StreamContext, settings: ExplainSettings): void {
  const sampled = settings.sampleRate > 0 && Math.random() < settings.sampleRate;
  if (!sampled && ctx.explainAsked === ASKED_NONE) return;
  ctx.trail = new Trail(ctx, sampled);
  // The response says which trail was recorded, when the request asked and its consumer may.
  if (ctx.explainAsked !== ASKED_NONE) (ctx.activeFilters ??= []).push(EXPLAIN_ID_FILTER);
}

/** A client may ask for its trail when an authentication plugin identified it (and the allow-list has it). */
function consumerMayAsk(ctx: StreamContext, settings: ExplainSettings | null): boolean {
  const consumer = ctx.consumer;
  if (consumer === null || settings === null) return false;
  const allowed = settings.consumers;
  if (allowed === null || allowed.has(consumer.name)) return true;
  for (const g of consumer.groups) if (allowed.has(`group:${g}`)) return true;
  return false;
}

/** Adds `X-Meshgate-Explain-Id` to the response of a request that asked, when its consumer may ask. */
const EXPLAIN_ID_FILTER: Filter = {
  onResponseHeaders(ctx, head: ResponseHead) {
    const stream = ctx as StreamContext;
    if (consumerMayAsk(stream, stream.owner.telemetry?.explain ?? null))
      head.setHeader(EXPLAIN_ID_HEADER, ctx.requestId);
  },
};

/**
 * The destination was drawn: the roll is noted, and a sidecar next in the mesh (mutual TLS towards
 * it) is told to record its own trail of this request, so `meshgate explain` finds every hop.
 */
export function noteDraw(ctx: StreamContext, roll: number): void {
  const trail = ctx.trail!;
  trail.roll = roll;
  trail.drawn = true;
  // Only for a trail that will be kept: an anonymous client's ask stops here, at every hop.
  if (ctx.destination?.service.tls != null && reasonOf(ctx, trail) !== null)
    ctx.headers.push(EXPLAIN_REQUEST_HEADER, '1');
}

/** Why the trail is kept (the filters have run: the consumer is known), or null when it is not. */
function reasonOf(ctx: StreamContext, trail: Trail): TrailReason | null {
  if (trail.sampled) return 'sampled';
  if (consumerMayAsk(ctx, ctx.owner.telemetry?.explain ?? null)) return 'asked';
  if (ctx.listener.mesh !== null && ctx.peerPrincipal !== null) return 'propagated';
  return null;
}

/**
 * The log phase of a request with a trail: the outcome is copied in, and a trail kept only because it
 * was asked for is dropped when nobody entitled asked (an anonymous client's header is ignored). A
 * mesh peer's ask (mutual TLS, verified) is honoured: the hop before recorded this request too.
 * Returns false when the trail is not kept.
 */
export function finishTrail(ctx: StreamContext, durationMs: number, upstreamMs: number): boolean {
  const trail = ctx.trail!;
  const reason = reasonOf(ctx, trail);
  if (reason === null) {
    ctx.trail = null;
    return false;
  }
  trail.reason = reason;
  trail.requestId = ctx.requestId;
  trail.traceId = ctx.traceId;
  trail.startEpochMs = ctx.startEpochMs;
  trail.status = ctx.status;
  trail.code = ctx.code;
  trail.durationMs = durationMs;
  trail.upstreamMs = upstreamMs;
  trail.upstreamHeadersMs = ctx.upstreamHeadersMs;
  const consumer = ctx.consumer;
  trail.consumer = consumer === null ? null : { name: consumer.name, groups: consumer.groups };
  trail.credential = ctx.credential?.type ?? null;
  trail.claims = ctx.claims;
  trail.peer = ctx.peerPrincipal;
  trail.authz = ctx.authz;
  const destination = ctx.destination;
  if (destination !== null && ctx.route !== null && ctx.route.action.kind === 'forward')
    trail.destinationIndex = ctx.route.action.destinations.indexOf(destination);
  trail.refusal = ctx.refusal;
  trail.retryStop = ctx.retryStop;
  trail.tryLog = ctx.tryLog;
  return true;
}
