/**
 * Shadow config (docs/shadow.md): a candidate config compiled beside the live one and evaluated in a
 * dry run on the same requests. These are the shapes a proxy's admin API (`GET /shadow/report`), the
 * control plane and `meshgate diff` exchange. Types and pure merging only.
 */

/** What a shadow compares, one count each. */
export const SHADOW_DIFFERENCE_KINDS = ['route', 'destination', 'auth', 'rate-limit', 'version'] as const;
export type ShadowDifferenceKind = (typeof SHADOW_DIFFERENCE_KINDS)[number];

/** What one config made (live) or would have made (shadow) of a request. */
export interface ShadowOutcome {
  /** The route matched; null: none (the request got 404). */
  route: string | null;
  /**
   * `service/subset` (or `service`) the request went (live) or was drawn to (shadow); `(direct)`,
   * `(redirect)`… for a route that answers itself; null when the request never got that far.
   */
  destination: string | null;
  /** The code of an authentication, authorization or rate-limit refusal, or null. */
  refused: string | null;
  /** `api name` of the route's version, with its lifecycle headers; null: the route has none. */
  version: string | null;
}

export interface ShadowExample {
  at: string;
  requestId: string;
  method: string;
  path: string;
  /** Every kind this request differed in. */
  kinds: ShadowDifferenceKind[];
  live: ShadowOutcome;
  shadow: ShadowOutcome;
}

export interface ShadowKindCount {
  /** Requests on which both sides had an answer of this kind to compare. */
  compared: number;
  /** Of those, the requests where the shadow's answer differed. */
  differ: number;
}

/** For auth and rate limits: which side refused. */
export interface ShadowRefusalCount {
  /** The candidate would refuse; the live config let the request through. */
  shadowOnly: number;
  /** The live config refused; the candidate would let the request through. */
  liveOnly: number;
}

export interface ShadowReport {
  /** sha256 of the candidate config. */
  hash: string;
  /** When the shadow was set (the earliest, over processes). */
  since: string;
  /** Percent of requests evaluated by the shadow. */
  samplePercent: number;
  /** Processes whose counts are summed here (workers of a gateway, proxies of a control plane). */
  processes: number;
  totals: {
    /** Requests that went by while the shadow was set. */
    seen: number;
    /** Those sampled and compared (both sides settled). */
    compared: number;
    /** Sampled, with the shadow's or the live side still working. */
    pending: number;
    /** Compared requests that differed in at least one kind. */
    differing: number;
  };
  differences: Record<ShadowDifferenceKind, ShadowKindCount>;
  refusals: { auth: ShadowRefusalCount; 'rate-limit': ShadowRefusalCount };
  /** Compared requests by destination, as each side chose it (the split each config really makes). */
  destinations: { live: Record<string, number>; shadow: Record<string, number> };
  /** The newest differing requests, per kind (a bounded ring each). */
  examples: Record<ShadowDifferenceKind, ShadowExample[]>;
  /**
   * From a control plane: each proxy's own counts. A request is evaluated at every proxy it crosses
   * (the gateway, then the sidecar it went to), so the sums above count it once per proxy.
   */
  proxies?: ShadowProxyReport[];
}

/** One proxy's part of a control plane's shadow report. */
export interface ShadowProxyReport {
  proxy: string;
  kind: string;
  service: string | null;
  processes: number;
  totals: ShadowReport['totals'];
  differences: ShadowReport['differences'];
}

export function emptyShadowReport(hash: string, since: string, samplePercent: number): ShadowReport {
  const kinds = <T>(make: () => T) =>
    Object.fromEntries(SHADOW_DIFFERENCE_KINDS.map((k) => [k, make()])) as Record<ShadowDifferenceKind, T>;
  return {
    hash,
    since,
    samplePercent,
    processes: 1,
    totals: { seen: 0, compared: 0, pending: 0, differing: 0 },
    differences: kinds(() => ({ compared: 0, differ: 0 })),
    refusals: { auth: { shadowOnly: 0, liveOnly: 0 }, 'rate-limit': { shadowOnly: 0, liveOnly: 0 } },
    destinations: { live: {}, shadow: {} },
    examples: kinds(() => []),
  };
}

/**
 * Sums the reports of several processes with the same candidate (a gateway's workers, a control
 * plane's proxies): counts add up, `since` is the earliest, each kind keeps its newest `maxExamples`.
 */
export function mergeShadowReports(reports: readonly ShadowReport[], maxExamples: number): ShadowReport | null {
  const [first] = reports;
  if (first === undefined) return null;
  const since = reports.map((r) => r.since).sort()[0]!;
  const merged = emptyShadowReport(first.hash, since, first.samplePercent);
  merged.processes = 0;
  const add = (into: Record<string, number>, from: Record<string, number>) => {
    for (const key in from) into[key] = (into[key] ?? 0) + from[key]!;
  };
  for (const r of reports) {
    merged.processes += r.processes;
    add(merged.totals, r.totals);
    for (const kind of SHADOW_DIFFERENCE_KINDS) {
      add(merged.differences[kind] as unknown as Record<string, number>, r.differences[kind] as never);
      merged.examples[kind].push(...r.examples[kind]);
    }
    add(merged.refusals.auth as never, r.refusals.auth as never);
    add(merged.refusals['rate-limit'] as never, r.refusals['rate-limit'] as never);
    add(merged.destinations.live, r.destinations.live);
    add(merged.destinations.shadow, r.destinations.shadow);
  }
  for (const kind of SHADOW_DIFFERENCE_KINDS)
    merged.examples[kind] = merged.examples[kind]
      .sort((a, b) => (a.at < b.at ? 1 : a.at > b.at ? -1 : 0))
      .slice(0, Math.max(0, maxExamples));
  return merged;
}

/**
 * `?sample=` of `PUT /shadow` (a proxy's admin API or the control plane): a percent from 0 to 100, the
 * default when absent, null when it is not one.
 */
export function samplePercentOf(text: string | null, fallback: number): number | null {
  if (text === null) return fallback;
  const percent = Number(text);
  return text === '' || !Number.isFinite(percent) || percent < 0 || percent > 100 ? null : percent;
}
