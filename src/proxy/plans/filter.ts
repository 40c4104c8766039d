/**
 * Consumers' plans (top-level `plans`, `consumers[].plan`): quotas per UTC calendar day and month,
 * and rate limits, per consumer across every route. Compiled by the snapshot (not a plugin a route
 * lists) into one filter it adds to every route's chains, in the `limit` phase after the route's own
 * rate limits, when some consumer has a plan; a config without plans adds nothing. The snapshot loads
 * this module only then.
 *
 * Counting is the rate-limit stores' (src/plugins/rate-limit/store.ts): a day is a fixed window of
 * 24 h (epoch-aligned, so a UTC day), a month a `calendar-month` window; the plan's rate limits are
 * sliding windows in the same decision, so a request refused by any of them counts in none. With
 * `store: memory` a gateway's workers all count in its primary process; with `store: redis`, every
 * gateway on the Redis counts together. Counts are kept per consumer (`plan:<consumer>`) and per
 * window length, not per plan: they survive reloads, a changed number keeps the count so far, and a
 * consumer moved to another plan keeps the period's usage.
 */
import type { Config, RouteConfig } from '../../api/config.ts';
import { parseDuration } from '../../core/duration.ts';
import {
  type Filter,
  type FilterResult,
  type LocalReply,
  PHASE_BASE,
  PLUGIN_PHASES,
  type PluginCounter,
  type RequestContext,
  type ResponseHead,
} from '../../core/plugin.ts';
import { fullWindows, rateLimitHeaders, retryAfterSeconds, tightest } from '../../plugins/rate-limit/headers.ts';
import { type Decision, MONTH_MS, type RateLimitStore, type Window } from '../../plugins/rate-limit/store.ts';
import { selectStore } from '../../plugins/rate-limit/stores.ts';
import type { FailurePolicy } from '../../stores/failure.ts';
import { type ChainDepsBase, type RouteChains, withFilter } from '../chain/compile.ts';
import type { CompiledFilter } from '../compiled.ts';

/** The filter's name in the chain (admin `/routes`, config dumps) and in store metrics and logs. */
export const PLANS_FILTER_NAME = 'plans';

/**
 * After the rate-limit plugin (order 100) and any limit at the default order: a request the route's
 * own limits refuse does not use up the consumer's quota.
 */
export const PLANS_ORDER = PHASE_BASE.limit + 500;

const DAY_MS = 86_400_000;

type Period = 'day' | 'month';

interface CompiledPlan {
  readonly name: string;
  /** The quota windows first (`periods[i]` names window i), then the rate limits. */
  readonly windows: readonly Window[];
  readonly periods: readonly Period[];
  readonly rateLimits: readonly { readonly requests: number; readonly window: string }[];
  readonly store: RateLimitStore;
  readonly storeKind: 'memory' | 'redis';
  /** What to do when the count cannot be reached (`failOpen`); null for an in-process store. */
  readonly failure: FailurePolicy | null;
  readonly showHeaders: boolean;
}

/** One consumer on one plan, with its counter key made once. */
interface Subscriber {
  readonly plan: CompiledPlan;
  readonly key: string;
}

/** The Kong-style per-period headers (X-RateLimit-Limit-Day…), by period. */
const PERIOD_HEADERS: Readonly<Record<Period, readonly [string, string]>> = {
  day: ['x-ratelimit-limit-day', 'x-ratelimit-remaining-day'],
  month: ['x-ratelimit-limit-month', 'x-ratelimit-remaining-month'],
};

/** The plans of a snapshot: which consumer counts against what, and the filter that does it. */
export class PlanTable {
  private readonly subscribers: ReadonlyMap<string, Subscriber>;
  private readonly now: () => number;
  readonly filter: CompiledFilter;

  constructor(subscribers: ReadonlyMap<string, Subscriber>, now: () => number) {
    this.subscribers = subscribers;
    this.now = now;
    const none: Filter = Object.freeze({});
    this.filter = Object.freeze({
      name: PLANS_FILTER_NAME,
      phase: 'limit',
      phaseRank: PLUGIN_PHASES.indexOf('limit'),
      order: PLANS_ORDER,
      scope: 'plan',
      // Requests without a consumer, or of a consumer without a plan, get a shared empty filter.
      factory: (ctx: RequestContext) => {
        const consumer = ctx.consumer;
        if (consumer === null) return none;
        const subscriber = subscribers.get(consumer.name);
        return subscriber === undefined ? none : new PlanCount(subscriber, now);
      },
    });
  }

  /** A route's chains with the plans' filter in place (consumer chains too); unchanged with `applyPlans: false`. */
  apply<C extends RouteChains>(chain: C, route: RouteConfig): C {
    return route.applyPlans === false ? chain : withFilter(chain, this.filter);
  }

  /**
   * A consumer's plan and where its counts stand now, counting nothing (admin `GET /consumers/:name/quota`);
   * undefined when the consumer has no plan with limits.
   */
  async describe(consumer: string): Promise<Record<string, unknown> | undefined> {
    const subscriber = this.subscribers.get(consumer);
    if (subscriber === undefined) return undefined;
    const plan = subscriber.plan;
    const now = this.now();
    const decision = await plan.store.peek(subscriber.key, plan.windows, now);
    const state = (i: number) => {
      const w = decision.windows[i]!;
      return {
        limit: w.limit,
        remaining: w.remaining,
        used: w.limit - w.remaining,
        resetSeconds: Math.ceil(w.resetMs / 1000),
        resetsAt: new Date(now + w.resetMs).toISOString(),
      };
    };
    const quotas: Record<string, unknown> = {};
    plan.periods.forEach((period, i) => {
      quotas[period] = state(i);
    });
    return {
      consumer,
      plan: plan.name,
      store: plan.storeKind,
      allowed: decision.allowed,
      quotas,
      rateLimits: plan.rateLimits.map((l, j) => ({ ...l, ...state(plan.periods.length + j) })),
    };
  }
}

/** Per request of a consumer with a plan: holds the decision so the response can carry the headers. */
class PlanCount implements Filter {
  private readonly subscriber: Subscriber;
  private readonly now: () => number;
  private decision: Decision | null = null;

  constructor(subscriber: Subscriber, now: () => number) {
    this.subscriber = subscriber;
    this.now = now;
  }

  onRequestHeaders(ctx: RequestContext): FilterResult {
    const plan = this.subscriber.plan;
    const result = plan.store.consume(this.subscriber.key, plan.windows, this.now());
    if (!(result instanceof Promise)) return this.decide(result);
    return result.then(
      (d) => {
        plan.failure?.ok(ctx.routeName);
        return this.decide(d);
      },
      (error: unknown) => plan.failure!.failed(ctx.routeName, error),
    );
  }

  onResponseHeaders(_ctx: RequestContext, response: ResponseHead): void {
    const d = this.decision;
    if (d === null || !d.allowed || !this.subscriber.plan.showHeaders) return;
    // A route's own rate-limit plugin runs earlier in the chain: its RateLimit-* stay when it set them.
    if (response.header('ratelimit-limit') === undefined)
      for (const [name, value] of rateLimitHeaders(tightest(d))) response.setHeader(name, value);
    const periods = this.subscriber.plan.periods;
    for (let i = 0; i < periods.length; i++) {
      const [limit, remaining] = PERIOD_HEADERS[periods[i]!];
      response.setHeader(limit, String(d.windows[i]!.limit));
      response.setHeader(remaining, String(d.windows[i]!.remaining));
    }
  }

  private decide(decision: Decision): LocalReply | undefined {
    this.decision = decision;
    if (decision.allowed) return undefined;
    const plan = this.subscriber.plan;
    // The quota that refused with the furthest reset (a full month outlasts a full day).
    let quota = -1;
    for (let i = 0; i < plan.periods.length; i++)
      if (
        decision.windows[i]!.remaining === 0 &&
        (quota === -1 || decision.windows[i]!.resetMs >= decision.windows[quota]!.resetMs)
      )
        quota = i;
    const retryAfter = retryAfterSeconds(fullWindows(decision));
    const headers: [string, string][] = [];
    if (plan.showHeaders) {
      headers.push(...rateLimitHeaders(quota === -1 ? tightest(decision) : decision.windows[quota]!));
      for (let i = 0; i < plan.periods.length; i++) {
        const [limit, remaining] = PERIOD_HEADERS[plan.periods[i]!];
        headers.push([limit, String(decision.windows[i]!.limit)], [remaining, String(decision.windows[i]!.remaining)]);
      }
    }
    headers.push(['retry-after', String(retryAfter)]);
    if (quota === -1)
      return {
        status: 429,
        code: 'MG_RATE_LIMITED',
        detail: `the plan's rate limit is reached; retry in ${retryAfter} s`,
        headers,
      };
    const period = plan.periods[quota] === 'day' ? 'daily' : 'monthly';
    return {
      status: 429,
      code: 'MG_QUOTA_EXCEEDED',
      detail: `the plan's ${period} quota of ${decision.windows[quota]!.limit} requests is used up; retry in ${retryAfter} s`,
      headers,
    };
  }
}

const uncounted: PluginCounter = { inc() {} };

/**
 * The plans of a validated config, compiled once per snapshot; null when no consumer is on a plan
 * that limits anything (routes then get no filter at all).
 */
export async function compilePlans(config: Config, base: ChainDepsBase): Promise<PlanTable | null> {
  const deps = {
    shared: base.shared,
    warn: base.warn,
    redis: config.redis,
    counter: base.counter ?? (() => uncounted),
  };
  const plans = new Map<string, CompiledPlan>();
  for (const p of config.plans ?? []) {
    const windows: Window[] = [];
    const periods: Period[] = [];
    if (p.quotas?.day !== undefined) {
      windows.push({ limit: p.quotas.day, windowMs: DAY_MS, algorithm: 'fixed' });
      periods.push('day');
    }
    if (p.quotas?.month !== undefined) {
      windows.push({ limit: p.quotas.month, windowMs: MONTH_MS, algorithm: 'calendar-month' });
      periods.push('month');
    }
    const rateLimits = p.rateLimits ?? [];
    for (const l of rateLimits)
      windows.push({ limit: l.requests, windowMs: parseDuration(l.window)!, algorithm: 'sliding' });
    if (windows.length === 0) continue;
    const { store, failure } = await selectStore(p, deps, PLANS_FILTER_NAME);
    plans.set(
      p.name,
      Object.freeze({
        name: p.name,
        windows: Object.freeze(windows.map((w) => Object.freeze(w))),
        periods: Object.freeze(periods),
        rateLimits: Object.freeze(rateLimits.map((l) => Object.freeze({ requests: l.requests, window: l.window }))),
        store,
        storeKind: p.store ?? 'memory',
        failure,
        showHeaders: p.headers !== false,
      }),
    );
  }
  const subscribers = new Map<string, Subscriber>();
  for (const c of config.consumers ?? []) {
    const plan = c.plan === undefined ? undefined : plans.get(c.plan);
    if (plan !== undefined) subscribers.set(c.name, Object.freeze({ plan, key: `plan:${c.name}` }));
  }
  return subscribers.size === 0 ? null : new PlanTable(subscribers, base.now);
}
