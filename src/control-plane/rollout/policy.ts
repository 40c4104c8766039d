/**
 * The pure parts of a guarded rollout (docs/rollout.md): which proxies are the canaries, what the
 * proxies' telemetry says about them, and whether that says roll back.
 */
import { createHash } from 'node:crypto';
import { quantileMs } from '../../admin/dashboard/telemetry-store.ts';
import type { RolloutOptions, RolloutSignals, TelemetryReport } from '../../api/mesh.ts';
import {
  DEFAULT_ROLLOUT_MAX_ERROR_RATE,
  DEFAULT_ROLLOUT_MIN_REQUESTS,
  DEFAULT_ROLLOUT_WATCH_MS,
} from '../../core/defaults.ts';
import { parseDuration } from '../../core/duration.ts';

export type CanaryShare = { percent: number } | { count: number };

/** A rollout's options with defaults applied and units resolved. */
export interface RolloutPolicy {
  share: CanaryShare;
  /** As asked: `10%` or `2`. */
  shareText: string;
  watchMs: number;
  errorRate: number;
  /** Null: latency is not judged. */
  p99Ms: number | null;
  minRequests: number;
}

/** Resolves options (already schema-checked) into a policy; a string says what is wrong. */
export function rolloutPolicy(options: RolloutOptions): RolloutPolicy | string {
  const shareText = String(options.canaryProxies);
  let share: CanaryShare;
  if (shareText.endsWith('%')) {
    const percent = Number(shareText.slice(0, -1));
    if (!(percent > 0 && percent <= 100)) return `canaryProxies ${shareText}: a share is above 0% and at most 100%`;
    share = { percent };
  } else {
    const count = Number(shareText);
    if (!Number.isInteger(count) || count < 1) return `canaryProxies ${shareText}: give a share (10%) or a count (2)`;
    share = { count };
  }
  const watchMs = options.watch === undefined ? DEFAULT_ROLLOUT_WATCH_MS : parseDuration(options.watch);
  if (watchMs === undefined) return `watch ${options.watch}: not a duration (60s, 2m)`;
  const t = options.thresholds ?? {};
  let p99Ms: number | null = null;
  if (t.p99 !== undefined) {
    const parsed = parseDuration(t.p99);
    if (parsed === undefined || parsed <= 0) return `thresholds.p99 ${t.p99}: a duration above 0 (500ms)`;
    p99Ms = parsed;
  }
  return {
    share,
    shareText,
    watchMs,
    errorRate: t.errorRate ?? DEFAULT_ROLLOUT_MAX_ERROR_RATE,
    p99Ms,
    minRequests: t.minRequests ?? DEFAULT_ROLLOUT_MIN_REQUESTS,
  };
}

/**
 * The canaries among the proxies a change affects: as many as the share asks (rounded up, at least
 * one, at most all), ranked by a hash of the change's model version and the proxy id. The same
 * change on the same proxies picks the same canaries (deterministic), while different changes spread
 * the risk over different proxies instead of always hitting the first by name. Sorted by id.
 */
export function selectCanaries(affected: readonly string[], share: CanaryShare, seed: string): string[] {
  if (affected.length === 0) return [];
  const wanted = 'count' in share ? share.count : Math.ceil((affected.length * share.percent) / 100 - 1e-9);
  const n = Math.min(affected.length, Math.max(1, wanted));
  const rank = (id: string) => createHash('sha256').update(seed).update('\0').update(id).digest('hex');
  return [...new Set(affected)]
    .map((id) => ({ id, rank: rank(id) }))
    .sort((a, b) => (a.rank < b.rank ? -1 : a.rank > b.rank ? 1 : a.id < b.id ? -1 : 1))
    .slice(0, n)
    .map((r) => r.id)
    .sort();
}

/** One proxy's traffic counters, summed over its series (every route and service it served). */
export interface Totals {
  since: number;
  requests: number;
  errors: number;
  /** Per latency bucket; the last slot is +Inf. */
  latency: number[];
  bounds: readonly number[];
}

export function totalsOf(report: Pick<TelemetryReport, 'since' | 'latencyBounds' | 'series'>): Totals {
  const latency = new Array<number>(report.latencyBounds.length + 1).fill(0);
  let requests = 0;
  let errors = 0;
  for (const s of report.series) {
    requests += s.requests;
    errors += s.errors;
    for (let i = 0; i < latency.length && i < s.latency.length; i++) latency[i]! += s.latency[i]!;
  }
  return { since: report.since, requests, errors, latency, bounds: report.latencyBounds };
}

/** What a proxy served between two of its reports (counters that restarted count from zero). */
export function difference(start: Totals, end: Totals): Totals {
  const reset = start.since !== end.since || end.requests < start.requests;
  const d = (a: number, b: number) => (reset ? b : Math.max(0, b - a));
  return {
    since: end.since,
    requests: d(start.requests, end.requests),
    errors: d(start.errors, end.errors),
    latency: end.latency.map((c, i) => d(start.latency[i] ?? 0, c)),
    bounds: end.bounds,
  };
}

/** Golden signals of a group: the proxies' differences summed. */
export function signalsOf(differences: readonly Totals[]): RolloutSignals {
  let requests = 0;
  let errors = 0;
  const bounds = differences[0]?.bounds ?? [];
  const latency = new Array<number>(bounds.length + 1).fill(0);
  for (const t of differences) {
    requests += t.requests;
    errors += t.errors;
    // Proxies of one build share their buckets; another's cannot be summed into these.
    if (t.latency.length === latency.length) for (let i = 0; i < latency.length; i++) latency[i]! += t.latency[i]!;
  }
  const p99 = quantileMs(bounds, latency, 0.99);
  return {
    proxies: differences.length,
    requests,
    errors,
    errorRate: requests > 0 ? errors / requests : null,
    p99Ms: p99 === null ? null : Math.round(p99 * 10) / 10,
  };
}

export type Verdict =
  | { action: 'rollback'; metric: 'errorRate' | 'p99Ms'; value: number; threshold: number; reason: string }
  | { action: 'promote'; reason: string }
  | { action: 'wait' };

const percent = (v: number) => `${(v * 100).toFixed(1)}%`;

/**
 * The rule: the canaries' own traffic, summed over every canary proxy from its first report after it
 * applied the change, is judged against absolute thresholds once it holds `minRequests` requests. An
 * error rate above `errorRate`, or a p99 above `p99Ms`, rolls back at once, in the window or at its
 * end. At the end of the window (`final`) a change with no threshold crossed is promoted, also when
 * the canaries served too few requests to judge (the reason says so). The baseline (the affected
 * proxies kept on the previous version) is measured and shown beside the canaries for context, but
 * does not decide: a change is judged by what its canaries did, not by how the rest of the mesh fares.
 */
export function judge(
  canary: RolloutSignals,
  baseline: RolloutSignals | null,
  policy: Pick<RolloutPolicy, 'errorRate' | 'p99Ms' | 'minRequests'>,
  final: boolean,
): Verdict {
  const versus = (pick: (s: RolloutSignals) => number | null, format: (v: number) => string) => {
    const b = baseline === null ? null : pick(baseline);
    return b === null ? '' : ` (baseline ${format(b)})`;
  };
  if (canary.requests >= policy.minRequests && canary.requests > 0) {
    if (canary.errorRate !== null && canary.errorRate > policy.errorRate)
      return {
        action: 'rollback',
        metric: 'errorRate',
        value: canary.errorRate,
        threshold: policy.errorRate,
        reason: `canary error rate ${percent(canary.errorRate)} (${canary.errors} of ${canary.requests} requests) is above the threshold ${percent(policy.errorRate)}${versus((s) => s.errorRate, percent)}`,
      };
    if (policy.p99Ms !== null && canary.p99Ms !== null && canary.p99Ms > policy.p99Ms)
      return {
        action: 'rollback',
        metric: 'p99Ms',
        value: canary.p99Ms,
        threshold: policy.p99Ms,
        reason: `canary p99 latency ${canary.p99Ms}ms (over ${canary.requests} requests) is above the threshold ${policy.p99Ms}ms${versus(
          (s) => s.p99Ms,
          (v) => `${v}ms`,
        )}`,
      };
  }
  if (!final) return { action: 'wait' };
  if (canary.requests < policy.minRequests || canary.requests === 0)
    return {
      action: 'promote',
      reason: `the watch window passed; the canaries served ${canary.requests} requests, fewer than the ${policy.minRequests} needed to judge, so no threshold could be crossed`,
    };
  const p99 = canary.p99Ms === null ? '' : `, p99 ${canary.p99Ms}ms`;
  return {
    action: 'promote',
    reason: `the watch window passed with no threshold crossed: canary error rate ${percent(canary.errorRate ?? 0)} over ${canary.requests} requests${p99}`,
  };
}
