/**
 * The aggregate action: one client request fans out to several upstream calls (in parallel, or after
 * the calls they depend on) and is answered with one JSON document composed of their answers
 * (docs/aggregation.md). Compiled once per snapshot: templates, dependency order, headers to pass on,
 * each call's target with its service's retry policy; run by aggregate.ts.
 */
import type { AggregateCallConfig, RouteConfig } from '../../../api/config.ts';
import { RESULTS_ROOT } from '../../../config/aggregate.ts';
import { DEFAULT_AGGREGATE_CALL_MAX_BODY_BYTES, DEFAULT_AGGREGATE_CALL_METHOD } from '../../../core/defaults.ts';
import { parseDuration } from '../../../core/duration.ts';
import { type CompiledTemplate, compileTemplate } from '../../../core/template.ts';
import { compileRetryPolicy, isIdempotent } from '../../upstream/retry.ts';
import type { UpstreamService } from '../../upstream/service.ts';
import type { SubRequestTarget } from '../../upstream/sub-request.ts';

/**
 * Request headers every call gets from the client's request as the proxy would forward it: the request
 * id and trace context (so one trace spans the fan-out), and the forwarding headers.
 */
const PROPAGATED_HEADERS = [
  'x-request-id',
  'traceparent',
  'tracestate',
  'b3',
  'x-b3-traceid',
  'x-b3-spanid',
  'x-b3-parentspanid',
  'x-b3-sampled',
  'x-b3-flags',
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  'forwarded',
];

export interface AggregateAction {
  readonly kind: 'aggregate';
  readonly calls: readonly CompiledAggregateCall[];
  readonly merge: 'keyed' | 'top';
  /** Indexes of the calls that wait for nothing: started as the request arrives. */
  readonly roots: readonly number[];
}

export interface CompiledAggregateCall {
  readonly name: string;
  readonly index: number;
  readonly target: SubRequestTarget;
  readonly method: string;
  /** By the method (RFC 9110): whether a try that may have reached the service is retried. */
  readonly idempotent: boolean;
  readonly path: CompiledTemplate;
  /** Lower-case names of the client's headers this call gets (the propagated ones and the allow-list). */
  readonly passHeaders: ReadonlySet<string>;
  readonly required: boolean;
  /** Whole call, ms; 0: none. */
  readonly timeoutMs: number;
  readonly maxBodyBytes: number;
  /** Indexes of the calls it waits for. */
  readonly dependsOn: readonly number[];
  /** Indexes of the calls that wait for it. */
  readonly dependents: readonly number[];
}

export function isAggregate(rc: RouteConfig): boolean {
  return rc.aggregate !== undefined;
}

/** The services the calls go to, each once, in the order of the calls (for plugin scoping and metrics). */
export function aggregateServiceNames(rc: RouteConfig): string[] {
  return [...new Set(rc.aggregate!.calls.map((c) => c.service))];
}

export function aggregateServices(action: AggregateAction): UpstreamService[] {
  return [...new Set(action.calls.map((c) => c.target.service))];
}

/** The config was validated: services exist, names are unique, dependencies acyclic, templates compile. */
export function compileAggregate(rc: RouteConfig, services: ReadonlyMap<string, UpstreamService>): AggregateAction {
  const config = rc.aggregate!;
  const index = new Map(config.calls.map((c, i) => [c.name, i]));
  const dependsOn = config.calls.map((c) => (c.dependsOn ?? []).map((name) => index.get(name)!));
  const calls = config.calls.map((c, i) =>
    compileCall(
      c,
      i,
      services.get(c.service)!,
      dependsOn[i]!,
      dependsOn.flatMap((deps, j) => (deps.includes(i) ? [j] : [])),
    ),
  );
  return Object.freeze({
    kind: 'aggregate',
    calls: Object.freeze(calls),
    merge: config.merge ?? 'keyed',
    roots: Object.freeze(calls.filter((c) => c.dependsOn.length === 0).map((c) => c.index)),
  });
}

function compileCall(
  c: AggregateCallConfig,
  index: number,
  named: UpstreamService,
  dependsOn: readonly number[],
  dependents: readonly number[],
): CompiledAggregateCall {
  const service = named.unitFor(c.subset);
  const target: SubRequestTarget = Object.freeze({
    service,
    subset: c.subset,
    endpoints: service.endpointSet(c.subset),
    retry: service.config.retries ? compileRetryPolicy(service.config.retries, undefined, service.retryBudget()) : null,
    idleTimeoutMs: service.timeouts.idleMs,
  });
  const method = c.method ?? DEFAULT_AGGREGATE_CALL_METHOD;
  return Object.freeze({
    name: c.name,
    index,
    target,
    method,
    idempotent: isIdempotent(method),
    path: compileTemplate(c.path, [RESULTS_ROOT]),
    passHeaders: new Set([...PROPAGATED_HEADERS, ...(c.headers ?? []).map((h) => h.toLowerCase())]),
    required: c.required === true,
    timeoutMs: parseDuration(c.timeout ?? '') ?? service.timeouts.requestMs,
    maxBodyBytes: c.maxBodyBytes ?? DEFAULT_AGGREGATE_CALL_MAX_BODY_BYTES,
    dependsOn: Object.freeze(dependsOn),
    dependents: Object.freeze(dependents),
  });
}

/** For the admin API and `proxy-config routes`: the calls with their effective settings. */
export function describeAggregate(action: AggregateAction): Record<string, unknown> {
  return {
    kind: 'aggregate',
    merge: action.merge,
    calls: action.calls.map((c) => ({
      name: c.name,
      service: c.target.service.name,
      subset: c.target.subset,
      method: c.method,
      path: c.path.source,
      required: c.required,
      timeoutMs: c.timeoutMs,
      maxBodyBytes: c.maxBodyBytes,
      dependsOn: c.dependsOn.map((i) => action.calls[i]!.name),
      headers: [...c.passHeaders].filter((h) => !PROPAGATED_HEADERS.includes(h)),
      retries: c.target.retry === null ? null : { attempts: c.target.retry.attempts, on: c.target.retry.conditions },
    })),
  };
}
