/**
 * The control plane's side of the dashboard (docs/dashboard.md): telemetry the proxies report, the
 * proxies and change records it already keeps, request lookups asked of every proxy over their push
 * streams, and route weights changed as any model change (validated as `meshgate validate` does,
 * applied through the model pipeline, recorded and pushed).
 */
import { stringify } from 'yaml';
import type {
  DashboardBackend,
  LookupHop,
  LookupResult,
  WeightedRoute,
  WeightsOutcome,
} from '../../admin/dashboard/api.ts';
import { lineDiff } from '../../admin/dashboard/diff.ts';
import { type Overview, TelemetryStore } from '../../admin/dashboard/telemetry-store.ts';
import type { Config } from '../../api/config.ts';
import type { ExplainedTrail, ExplainResult, TrailHop } from '../../api/explain.ts';
import {
  type LookupEvent,
  type ProxyIdentity,
  type RequestRecord,
  STREAM_EVENTS,
  type TelemetryReport,
} from '../../api/mesh.ts';
import { checkConfig, type RawConfig } from '../../config/pipeline.ts';
import { redact } from '../../config/redact.ts';
import { ADMIN_API_SOURCE } from '../../config/sources/admin-api/admin-api.ts';
import { LOOKUP_CLOCK_SKEW_MS } from '../../core/defaults.ts';
import type { PluginCatalog } from '../../core/plugin.ts';
import { checkMeshRules } from '../model/model.ts';
import { RolloutRefused } from '../rollout/rollout.ts';
import type { ControlPlane } from './control-plane.ts';
import type { ModelPipeline } from './model-pipeline.ts';
import type { ProxyQuestions } from './questions.ts';
import type { TraceQuery } from './trace-query.ts';

/** What the proxies answered to one lookup, item by item. */
interface LookupAnswers {
  records: { proxy: string; record: RequestRecord }[];
  trails: { proxy: string; trail: ExplainedTrail }[];
  asked: number;
  answered: number;
}

/** A whole model as the text `PUT /config` would take (YAML), secrets redacted or not. */
const yamlOf = (config: unknown) => stringify(config, { lineWidth: 0 });

export class ControlPlaneDashboard implements DashboardBackend {
  readonly kind = 'control-plane';
  readonly intervalMs: number;
  readonly store: TelemetryStore;
  private readonly cp: ControlPlane;
  private readonly pipeline: ModelPipeline;
  private readonly catalog: PluginCatalog | undefined;
  private readonly questions: ProxyQuestions;
  private readonly traceQuery: TraceQuery | undefined;

  constructor(
    cp: ControlPlane,
    pipeline: ModelPipeline,
    questions: ProxyQuestions,
    options: { catalog?: PluginCatalog | undefined; traceQuery?: TraceQuery | undefined } = {},
  ) {
    this.cp = cp;
    this.pipeline = pipeline;
    this.catalog = options.catalog;
    this.intervalMs = cp.telemetryIntervalMs;
    this.questions = questions;
    this.traceQuery = options.traceQuery;
    this.store = new TelemetryStore({ intervalMs: Math.max(1, this.intervalMs) });
  }

  /** A proxy's report (its stream checked by the caller). */
  ingest(identity: ProxyIdentity, report: TelemetryReport): void {
    const { proxy: _, stream: __, ...body } = report;
    this.store.ingest(
      {
        id: identity.id,
        kind: identity.kind,
        service: identity.service ?? (identity.kind === 'gateway' ? 'gateway' : null),
        ...(identity.labels ? { labels: identity.labels } : {}),
      },
      body,
    );
  }

  overview(windowMs: number): Overview {
    const config = this.cp.currentModel.config;
    return this.store.overview({
      windowMs,
      services: (config.services ?? []).map((s) => s.name),
      mtlsOf: (proxy, service) => {
        const services = this.cp.proxyStatus(proxy)?.config?.services;
        const found = services?.find((s) => s.name === service);
        if (found === undefined) return null;
        return found.mtls?.mode ?? 'DISABLE';
      },
    });
  }

  proxies() {
    const reports = new Map(
      this.store.overview({ windowMs: this.intervalMs * 2, history: false }).proxies.map((p) => [p.id, p]),
    );
    return this.cp.proxyStatuses().map((p) => ({
      id: p.id,
      kind: p.kind,
      service: p.service,
      labels: p.identity.labels ?? {},
      state: p.state,
      connected: p.connected,
      ackedVersion: p.ackedVersion,
      expectedVersion: p.expectedVersion,
      lastAckAt: p.lastAckAt,
      lastNack: p.lastNack && { at: p.lastNack.at, version: p.lastNack.version, message: p.lastNack.error.message },
      certificate: p.certificate ? { spiffeId: p.certificate.spiffeId, notAfter: p.certificate.notAfter } : null,
      telemetry: reports.get(p.id) ?? null,
    }));
  }

  changes(limit: number) {
    return this.cp.changes.readRecent(limit);
  }

  async changeDiff(id: number) {
    const record = await this.cp.changes.read(id);
    if (record === undefined) return undefined;
    if (record.kind !== 'config') return { id, diff: null, note: 'not a config change: the cause says what changed' };
    const found = this.cp.modelOf(record.modelVersion);
    if (found === undefined || found.previous === null)
      return { id, diff: null, note: 'the model before this change is no longer kept' };
    return { id, diff: lineDiff(yamlOf(redact(found.previous.config)), yamlOf(redact(found.model.config))) };
  }

  routes(): WeightedRoute[] {
    return (this.cp.currentModel.config.routes ?? []).flatMap((r) =>
      r.destinations && r.destinations.length > 1
        ? [
            {
              name: r.name,
              destinations: r.destinations.map((d) => ({
                service: d.service,
                subset: d.subset ?? null,
                weight: d.weight ?? 1,
              })),
            },
          ]
        : [],
    );
  }

  async setWeights(name: string, weights: number[], dryRun: boolean): Promise<WeightsOutcome> {
    const model = this.cp.currentModel;
    const config = structuredClone(model.config) as Config;
    const route = config.routes?.find((r) => r.name === name);
    if (route === undefined) return { status: 404, error: `no route ${name}` };
    if (!route.destinations || route.destinations.length < 2)
      return { status: 409, error: `route ${name} does not split traffic between destinations` };
    if (weights.length !== route.destinations.length)
      return {
        status: 400,
        error: `route ${name} has ${route.destinations.length} destinations; give as many weights`,
      };
    if (weights.every((w) => w === 0)) return { status: 400, error: 'at least one weight must be above 0' };
    route.destinations = route.destinations.map((d, i) => ({ ...d, weight: weights[i]! }));
    const text = yamlOf(config);
    const raw: RawConfig = {
      kind: 'texts',
      texts: [{ file: ADMIN_API_SOURCE, text }],
      source: ADMIN_API_SOURCE,
      env: null,
    };
    const diff = lineDiff(yamlOf(redact(model.config)), yamlOf(redact(config)));
    const view = this.routes().find((r) => r.name === name)!;
    const after: WeightedRoute = {
      ...view,
      destinations: view.destinations.map((d, i) => ({ ...d, weight: weights[i]! })),
    };
    if (dryRun) {
      // What `meshgate validate` runs: the schema, the plugins' checks, the references and the mesh's rules.
      const checked = await checkConfig(raw, 'preview', {
        load: { catalog: this.catalog, extraChecks: checkMeshRules },
      });
      return checked.ok
        ? { status: 200, route: after, diff, version: checked.value.loaded.hash }
        : { status: 400, route: after, diff, issues: checked.issues, error: 'the change is not valid' };
    }
    const outcome = await this.pipeline.submit({
      trigger: `weights of route ${name} set to ${weights.join('/')}`,
      read: async () => raw,
    });
    switch (outcome.status) {
      case 'applied':
        return { status: 200, route: after, diff, change: outcome.report.change, version: outcome.hash };
      case 'unchanged':
        return { status: 200, route: after, diff: [], change: null, version: outcome.hash };
      case 'rejected':
        return { status: 400, issues: outcome.issues, error: 'the change is not valid' };
      case 'failed':
        // While a rollout is watched no other model change is taken: a conflict, not a failure.
        return {
          status: outcome.error instanceof RolloutRefused ? outcome.error.status : 500,
          error: outcome.error.message,
        };
      default:
        return { status: 409, error: 'another change replaced this one' };
    }
  }

  /** Asks every connected proxy once; resolves when all answered or the timeout passed. */
  private async ask(match: string[], explain = false): Promise<LookupAnswers> {
    const { answers, asked, answered } = await this.questions.ask(STREAM_EVENTS.lookup, (id) =>
      explain ? ({ id, match, explain } satisfies LookupEvent) : ({ id, match } satisfies LookupEvent),
    );
    return {
      records: answers.flatMap((a) => a.records.map((record) => ({ proxy: a.proxy, record }))),
      trails: answers.flatMap((a) => (a.trails ?? []).map((trail) => ({ proxy: a.proxy, trail }))),
      asked,
      answered,
    };
  }

  /**
   * A request's hops: the records of proxies that saw its id, then (when tracing gives them a trace id)
   * of every proxy that saw its trace, as an app passes `traceparent` on but not always `x-request-id`.
   */
  async lookup(id: string): Promise<LookupResult> {
    const found = await this.gather(
      id,
      false,
      (p) => p.records.map(({ proxy, record }) => ({ proxy, item: record })),
      (r) => r.traceId,
      (r) => `${r.requestId}\u0000${r.start}\u0000${r.spanId}`,
    );
    const hops: LookupHop[] = found.hops.map(({ item, ...hop }) => ({ ...hop, ...item }));
    orderHops(
      hops,
      (h) => h.start,
      (h) => h.durationMs,
      (h) => h.proxy,
    );
    const result: LookupResult = { id, hops, asked: found.asked, answered: found.answered };
    if (this.traceQuery !== undefined) {
      const traces = [...new Set(hops.map((h) => h.traceId).filter((t): t is string => t !== null))].slice(0, 4);
      const { spans, error } = await this.traceQuery.spans(traces);
      result.spans = spans;
      if (error !== null) result.spansError = error;
    }
    return result;
  }

  /**
   * A request's decision trails from every proxy it crossed (`meshgate explain`), found as `lookup`
   * finds its records, in the order the hops started.
   */
  async explain(id: string): Promise<ExplainResult> {
    const found = await this.gather(
      id,
      true,
      (p) => p.trails.map(({ proxy, trail }) => ({ proxy, item: trail })),
      (t) => t.traceId,
      (t) => `${t.requestId}\u0000${t.start}`,
    );
    const hops: TrailHop[] = found.hops.map(({ item, ...hop }) => ({ ...hop, trail: item }));
    orderHops(
      hops,
      (h) => h.trail.start,
      (h) => h.trail.outcome.durationMs,
      (h) => h.proxy,
    );
    return { id, hops, asked: found.asked, answered: found.answered };
  }

  /**
   * What every proxy remembers of a request: asked by its id, then by the trace ids the first answers
   * carry (an app passes `traceparent` on but not always `x-request-id`); each proxy's item once.
   */
  private async gather<T>(
    id: string,
    explain: boolean,
    items: (answers: LookupAnswers) => { proxy: string; item: T }[],
    traceOf: (item: T) => string | null,
    keyOf: (item: T) => string,
  ) {
    const first = await this.ask([id], explain);
    const firstItems = items(first);
    const traces = [
      ...new Set(firstItems.map((i) => traceOf(i.item)).filter((t): t is string => t !== null && t !== id)),
    ].slice(0, 16);
    const second = traces.length > 0 ? await this.ask(traces, explain) : null;
    const seen = new Set<string>();
    const hops: { proxy: string; kind: string; proxyService: string | null; item: T }[] = [];
    for (const { proxy, item } of [...firstItems, ...(second === null ? [] : items(second))]) {
      const key = `${proxy}\u0000${keyOf(item)}`;
      if (seen.has(key)) continue;
      seen.add(key);
      const identity = this.cp.knownIdentity(proxy);
      hops.push({
        proxy,
        kind: identity?.kind ?? 'unknown',
        proxyService: identity?.service ?? (identity?.kind === 'gateway' ? 'gateway' : null),
        item,
      });
    }
    return {
      hops,
      asked: Math.max(first.asked, second?.asked ?? 0),
      answered: Math.max(first.answered, second?.answered ?? 0),
    };
  }
}

/**
 * Orders one request's hops as they happened, in place: by start, a hop that calls another first. The
 * starts come from different processes' clocks (`clockOf`: the proxy), which may disagree by up to
 * LOOKUP_CLOCK_SKEW_MS, so a hop that lies within a longer one of another clock (to that tolerance at
 * both ends; exactly, on one clock) is taken to start no earlier than the longer one. Hops moved to
 * one start (two tries within one call) keep their own order; of two that start together, the longer
 * (the caller) comes first.
 */
export function orderHops<T>(
  hops: T[],
  startOf: (hop: T) => number,
  durationOf: (hop: T) => number,
  clockOf: (hop: T) => string,
): void {
  const start = hops.map(startOf);
  const duration = hops.map(durationOf);
  const clock = hops.map(clockOf);
  const key = start.slice();
  const contains = (a: number, b: number) => {
    const skew = clock[a] === clock[b] ? 0 : LOOKUP_CLOCK_SKEW_MS;
    return (
      duration[a]! > duration[b]! &&
      start[a]! - skew <= start[b]! &&
      start[b]! + duration[b]! <= start[a]! + duration[a]! + skew
    );
  };
  for (let i = 0; i < hops.length; i++)
    for (let j = 0; j < hops.length; j++) if (contains(j, i)) key[i] = Math.max(key[i]!, start[j]!);
  const order = hops
    .map((_, i) => i)
    .sort(
      (a, b) =>
        key[a]! - key[b]! ||
        (contains(a, b) ? -1 : contains(b, a) ? 1 : 0) ||
        start[a]! - start[b]! ||
        duration[b]! - duration[a]!,
    );
  const sorted = order.map((i) => hops[i]!);
  for (let i = 0; i < sorted.length; i++) hops[i] = sorted[i]!;
}
