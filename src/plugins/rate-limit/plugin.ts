/**
 * rate-limit: several limits at once (100 a minute and 1,000 an hour), counted per consumer, credential,
 * client address, header value, route or service; sliding windows by default. Answers 429 with
 * Retry-After; reports the IETF RateLimit-* headers on every response.
 *
 * Counting is local to this machine by default (the store survives reloads): a gateway's workers all
 * count in its primary process (src/stores/primary.ts), so a limit is exact whatever `--workers` is;
 * several machines each count on their own. `store: redis` counts in one Redis for all of them.
 */
import { parseDuration } from '../../core/duration.ts';
import {
  definePlugin,
  type Filter,
  type FilterResult,
  type LocalReply,
  type RequestContext,
  type ResponseHead,
} from '../../core/plugin.ts';
import type { FailurePolicy } from '../../stores/failure.ts';
import { fullWindows, rateLimitHeaders, retryAfterSeconds, tightest } from './headers.ts';
import { type RateLimitConfig, rateLimitSchema } from './schema.ts';
import { type Decision, MONTH_MS, type RateLimitStore, type Window, YEAR_MS } from './store.ts';
import { selectStore } from './stores.ts';

/** The shorthand fields, with their window and Kong's per-window header suffix. */
const SHORTHANDS: readonly [
  unit: 'second' | 'minute' | 'hour' | 'day' | 'month' | 'year',
  ms: number,
  suffix: string,
][] = [
  ['second', 1_000, 'second'],
  ['minute', 60_000, 'minute'],
  ['hour', 3_600_000, 'hour'],
  ['day', 86_400_000, 'day'],
  ['month', MONTH_MS, 'month'],
  ['year', YEAR_MS, 'year'],
];

/** The windows of a config, `limits` first, then the shorthands in SHORTHANDS order. */
function windowsOf(config: RateLimitConfig): Window[] {
  return windowsWithPeriods(config).map(([w]) => w);
}

/** Each window and, for a shorthand, the suffix of its `X-RateLimit-*-<Period>` headers. */
function windowsWithPeriods(config: RateLimitConfig): [Window, string | null][] {
  const algorithm = config.algorithm ?? 'sliding';
  const windows: [Window, string | null][] = (config.limits ?? []).map((l) => [
    { limit: l.requests, windowMs: parseDuration(l.window)!, algorithm },
    null,
  ]);
  for (const [unit, ms, suffix] of SHORTHANDS) {
    const limit = config[unit];
    if (typeof limit !== 'number') continue;
    // A month or year is a calendar one, as in Kong; a sliding one would have no fixed edges to report.
    const calendar = unit === 'month' ? 'calendar-month' : unit === 'year' ? 'calendar-year' : algorithm;
    windows.push([{ limit, windowMs: ms, algorithm: calendar }, suffix]);
  }
  return windows;
}

/** Kong's `X-RateLimit-Limit-<Period>` / `-Remaining-<Period>` names, by window index (null: none). */
function periodHeaderNames(config: RateLimitConfig): (readonly [string, string] | null)[] {
  return windowsWithPeriods(config).map(([, suffix]) =>
    suffix === null ? null : ([`x-ratelimit-limit-${suffix}`, `x-ratelimit-remaining-${suffix}`] as const),
  );
}

function keyFunction(config: RateLimitConfig): (ctx: RequestContext) => string {
  switch (config.by ?? 'consumer') {
    case 'consumer':
      return (ctx) => (ctx.consumer !== null ? `c:${ctx.consumer.name}` : `ip:${ctx.clientAddress}`);
    case 'credential':
      return (ctx) =>
        ctx.credential !== null ? `k:${ctx.credential.type}:${ctx.credential.id}` : `ip:${ctx.clientAddress}`;
    case 'ip':
      return (ctx) => `ip:${ctx.clientAddress}`;
    case 'header': {
      const name = config.header!.toLowerCase();
      return (ctx) => `h:${ctx.header(name) ?? ''}`;
    }
    case 'route':
      return () => '';
    case 'service':
      return (ctx) => `s:${ctx.serviceName ?? ''}`;
  }
}

function headersOf(decision: Decision, periods: Limiter['periodHeaders']): [string, string][] {
  const headers = rateLimitHeaders(tightest(decision));
  if (periods === null) return headers;
  for (let i = 0; i < periods.length; i++) {
    const names = periods[i];
    const w = decision.windows[i];
    if (names === null || names === undefined || w === undefined) continue;
    headers.push([names[0], String(w.limit)], [names[1], String(w.remaining)]);
  }
  return headers;
}

/** Compiled once per route: what to count and how to answer. */
interface Limiter {
  store: RateLimitStore;
  /** What to do when a shared store cannot answer (`failOpen`); null for the memory store. */
  failure: FailurePolicy | null;
  windows: Window[];
  keyOf: (ctx: RequestContext) => string;
  /** Counted per route (every `by` but `service`, which counts across the routes of its service). */
  perRoute: boolean;
  scope: string;
  dryRun: boolean;
  showHeaders: boolean;
  /** Kong's per-window header names by window index (`periodHeaders`), or null. */
  periodHeaders: readonly (readonly [string, string] | null)[] | null;
  now: () => number;
  warn: (message: string, fields?: Record<string, unknown>) => void;
}

/** Per request (the only per-request object): holds the decision so the response can carry the headers. */
class Counted implements Filter {
  private readonly limiter: Limiter;
  private decision: Decision | null = null;

  constructor(limiter: Limiter) {
    this.limiter = limiter;
  }

  onRequestHeaders(ctx: RequestContext): FilterResult {
    const l = this.limiter;
    const key = l.perRoute ? `${ctx.routeName}|${l.scope}|${l.keyOf(ctx)}` : `${l.scope}|${l.keyOf(ctx)}`;
    const result = l.store.consume(key, l.windows, l.now());
    if (!(result instanceof Promise)) return this.decide(ctx, result);
    return result.then(
      (d) => {
        l.failure?.ok(ctx.routeName);
        return this.decide(ctx, d);
      },
      (error: unknown) => l.failure!.failed(ctx.routeName, error),
    );
  }

  onResponseHeaders(_ctx: RequestContext, response: ResponseHead): void {
    if (this.decision === null || !this.limiter.showHeaders || response.header('ratelimit-limit') !== undefined) return;
    for (const [name, value] of headersOf(this.decision, this.limiter.periodHeaders)) response.setHeader(name, value);
  }

  explain(): Record<string, unknown> | undefined {
    const d = this.decision;
    if (d === null) return undefined;
    return {
      allowed: d.allowed,
      dryRun: this.limiter.dryRun,
      by: this.limiter.scope.slice(this.limiter.scope.lastIndexOf('|') + 1),
      windows: this.limiter.windows.map((w, i) => ({
        limit: w.limit,
        windowMs: w.windowMs,
        remaining: d.windows[i]?.remaining ?? null,
        resetMs: d.windows[i]?.resetMs ?? null,
      })),
    };
  }

  private decide(ctx: RequestContext, decision: Decision): LocalReply | undefined {
    this.decision = decision;
    const l = this.limiter;
    if (decision.allowed) return undefined;
    if (l.dryRun) {
      l.warn('rate limit exceeded (dry run: not refused)', { route: ctx.routeName, requestId: ctx.requestId });
      return undefined;
    }
    const retryAfter = retryAfterSeconds(fullWindows(decision));
    const headers: [string, string][] = l.showHeaders ? headersOf(decision, l.periodHeaders) : [];
    headers.push(['retry-after', String(retryAfter)]);
    return { status: 429, code: 'MG_RATE_LIMITED', detail: `rate limit reached; retry in ${retryAfter} s`, headers };
  }
}

export default definePlugin<RateLimitConfig>({
  name: 'rate-limit',
  phase: 'limit',
  order: 100,
  description: 'Limit requests per consumer, credential, address, header, route or service; sliding windows.',
  configSchema: rateLimitSchema,
  check(config) {
    const problems: { path: (string | number)[]; message: string; hint?: string }[] = [];
    if (windowsOf(config).length === 0)
      problems.push({
        path: [],
        message: 'no limit given',
        hint: 'add limits: [{ requests: 100, window: 1m }] or minute: 100',
      });
    (config.limits ?? []).forEach((l, i) => {
      if (parseDuration(l.window) === 0)
        problems.push({ path: ['limits', i, 'window'], message: 'a window cannot be 0' });
    });
    if (config.by === 'header' && config.header === undefined)
      problems.push({ path: ['header'], message: 'by: header needs the header name', hint: 'header: x-client-id' });
    return problems;
  },
  async compile(config, deps) {
    const windows = windowsOf(config);
    const { store, failure } = await selectStore(config, deps);
    const limiter: Limiter = {
      store,
      failure,
      windows,
      keyOf: keyFunction(config),
      perRoute: config.by !== 'service' && config.group === undefined,
      // Counters are per route and settings, so routes with limits of their own never share a counter;
      // `by: service` counters are per service and settings, shared by the service's routes; a `group`'s
      // are shared by every route that names it.
      scope: `${config.group === undefined ? '' : `g:${config.group}|`}${windows.map((w) => `${w.limit}/${w.windowMs}${w.algorithm[0]}`).join(',')}|${config.by ?? 'consumer'}`,
      dryRun: config.dryRun === true,
      showHeaders: config.headers !== false,
      periodHeaders: config.periodHeaders === true ? periodHeaderNames(config) : null,
      now: deps.now,
      warn: deps.warn,
    };
    return () => new Counted(limiter);
  },
});
