/**
 * A shadow config: a candidate compiled by the same compiler into a second snapshot that never serves.
 * Each sampled request is matched and evaluated by it beside the live snapshot, in a dry run: its
 * route, its own weighted draw of a destination, its authentication, authorization and rate-limit
 * checks on a copy of the request head, its route's version. Only the live result acts: the shadow
 * sends nothing upstream, answers nothing and changes nothing the live request or config holds. The
 * two outcomes are compared when both are known (the live one at the request's log phase) and the
 * differences counted by kind, with a few examples each.
 *
 * Loaded only when a shadow is set (proxy.ts `setShadow`); with none the request path pays one null
 * check (stream.ts `routeRequest`).
 */
import {
  emptyShadowReport,
  SHADOW_DIFFERENCE_KINDS,
  type ShadowDifferenceKind,
  type ShadowExample,
  type ShadowOutcome,
  type ShadowReport,
} from '../../api/shadow.ts';
import type { LoadedConfig } from '../../config/load.ts';
import type {
  Consumer,
  CredentialRef,
  Filter,
  FilterResult,
  LocalReply,
  PluginCatalog,
  RequestContext,
} from '../../core/plugin.ts';
import { PLUGIN_PHASES } from '../../core/plugin.ts';
import { pickDestination, stickyRoll } from '../actions/forward/destination.ts';
import { AUTHZ_FILTER_NAME } from '../authz/filter.ts';
import type { CompiledDestination, CompiledFilter, CompiledRoute, Snapshot } from '../compiled.ts';
import type { ShadowObserver, StreamContext } from '../context.ts';
import { headerValue, removeHeader, setHeader } from '../headers.ts';
import type { MeshTls } from '../identity/mesh-tls.ts';
import { type MatchInput, pathParams } from '../router/router.ts';
import { compileSnapshot, releaseSnapshot, routerFor } from '../snapshot.ts';
import type { CompiledVersion } from '../versioning.ts';

/**
 * The filters a shadow runs: checks of the request head whose only state is their own (kept apart
 * from the live config's, see `isolated` in PluginDeps). Others (transforms, caches, user plugins,
 * plans' quotas) are not run: they could act on the world, and they decide nothing the report compares.
 */
const DRY_RUN_FILTERS: ReadonlySet<string> = new Set([
  'jwt',
  'key-auth',
  'acl',
  'ip-restriction',
  AUTHZ_FILTER_NAME,
  'rate-limit',
]);
const AUTH_CODES: ReadonlySet<string> = new Set([
  'MG_UNAUTHORIZED',
  'MG_FORBIDDEN',
  'MG_INSUFFICIENT_SCOPE',
  'MG_IP_FORBIDDEN',
  'MG_RBAC_DENIED',
]);
const LIMIT_CODES: ReadonlySet<string> = new Set(['MG_RATE_LIMITED', 'MG_QUOTA_EXCEEDED']);
const AUTHENTICATE = PLUGIN_PHASES.indexOf('authenticate');
const LIMIT = PLUGIN_PHASES.indexOf('limit');

export interface ShadowDeps {
  catalog?: PluginCatalog;
  mesh?: MeshTls;
  now(): number;
  warn(message: string, fields?: Record<string, unknown>): void;
}

export interface ShadowOptions {
  /** Names this shadow, the same in every process: its counters in shared stores are kept under it. */
  id: string;
  /** Percent of requests evaluated, 0 to 100. */
  samplePercent: number;
  /** Examples kept per kind of difference. */
  maxExamples: number;
}

/**
 * Compiles `loaded` into a shadow. Its services are its own (nothing is taken over from the live
 * snapshot, no health check starts, no connection opens) and so is its plugin state (rate-limit
 * counters in memory, key caches), dropped with it.
 */
export async function startShadow(loaded: LoadedConfig, deps: ShadowDeps, options: ShadowOptions): Promise<Shadow> {
  const state = new IsolatedState();
  try {
    const snapshot = await compileSnapshot(loaded, 0, {
      ...(deps.catalog === undefined ? {} : { catalog: deps.catalog }),
      ...(deps.mesh === undefined ? {} : { mesh: deps.mesh }),
      plugins: {
        now: deps.now,
        warn: (message, fields) => deps.warn(`shadow config: ${message}`, fields),
        shared: (key, create) => state.get(key, create),
        isolated: `shadow:${options.id}`,
      },
    });
    return new Shadow(snapshot, state, options);
  } catch (e) {
    state.closeAll();
    throw e;
  }
}

export class Shadow implements ShadowObserver {
  readonly snapshot: Snapshot;
  readonly options: ShadowOptions;
  private readonly state: IsolatedState;
  private readonly report_: ShadowReport;
  /**
   * Per kind, a ring of the newest differing requests and how many were ever put in it. The time is
   * kept as a number and written as text only for a report: a split that moves most requests makes
   * every one an example.
   */
  private readonly rings = new Map<ShadowDifferenceKind, { added: number; examples: StoredExample[] }>(
    SHADOW_DIFFERENCE_KINDS.map((k) => [k, { added: 0, examples: [] }]),
  );

  constructor(snapshot: Snapshot, state: IsolatedState, options: ShadowOptions) {
    this.snapshot = snapshot;
    this.state = state;
    this.options = options;
    this.report_ = emptyShadowReport(snapshot.hash, new Date().toISOString(), options.samplePercent);
  }

  observe(ctx: StreamContext): void {
    const totals = this.report_.totals;
    totals.seen++;
    const sample = this.options.samplePercent;
    if (sample < 100 && (sample <= 0 || Math.random() * 100 >= sample)) return;
    totals.pending++;
    const probe = new Probe(this, ctx.method, ctx.path);
    // Its log hook is how the live outcome reaches it: the chain's own end, no check of its own.
    (ctx.activeFilters ??= []).push(probe);
    const request = new ShadowRequest(ctx);
    const route = routerFor(this.snapshot, ctx.listener.config.name).match(request);
    if (route === null) {
      probe.shadowDone(null, null, null, null);
      return;
    }
    request.route = route;
    const destination = drawDestination(route, request);
    request.service = destination?.service.name ?? route.services[0]?.name;
    probe.route = route;
    probe.destination = destination === null ? `(${route.action.kind})` : destinationLabel(destination);
    runChecks(probe, request, route.filters, 0, false);
  }

  /** Both sides are known: count and keep an example if they differ. */
  compare(probe: Probe, live: ShadowOutcome, shadow: ShadowOutcome, shadowRefusal: 'auth' | 'rate-limit' | null) {
    const r = this.report_;
    r.totals.pending--;
    r.totals.compared++;
    const kinds: ShadowDifferenceKind[] = [];
    const d = r.differences;
    d.route.compared++;
    if (live.route !== shadow.route) kinds.push('route');
    if (live.destination !== null)
      r.destinations.live[live.destination] = (r.destinations.live[live.destination] ?? 0) + 1;
    if (shadow.destination !== null)
      r.destinations.shadow[shadow.destination] = (r.destinations.shadow[shadow.destination] ?? 0) + 1;
    if (live.destination !== null && shadow.destination !== null) {
      d.destination.compared++;
      if (live.destination !== shadow.destination) kinds.push('destination');
    }
    // Refusals and versions are compared where both configs had a route for the request.
    if (live.route !== null && shadow.route !== null) {
      const liveAuth = live.refused !== null && AUTH_CODES.has(live.refused);
      const shadowAuth = shadowRefusal === 'auth';
      d.auth.compared++;
      if (liveAuth !== shadowAuth) {
        kinds.push('auth');
        if (shadowAuth) r.refusals.auth.shadowOnly++;
        else r.refusals.auth.liveOnly++;
      }
      // A request refused by authentication on either side never reached the other's rate limit.
      if (!liveAuth && !shadowAuth) {
        const liveLimit = live.refused !== null && LIMIT_CODES.has(live.refused);
        const shadowLimit = shadowRefusal === 'rate-limit';
        d['rate-limit'].compared++;
        if (liveLimit !== shadowLimit) {
          kinds.push('rate-limit');
          if (shadowLimit) r.refusals['rate-limit'].shadowOnly++;
          else r.refusals['rate-limit'].liveOnly++;
        }
      }
      d.version.compared++;
      if (live.version !== shadow.version) kinds.push('version');
    }
    if (kinds.length === 0) return;
    r.totals.differing++;
    for (const kind of kinds) d[kind].differ++;
    const max = this.options.maxExamples;
    if (max <= 0) return;
    const example: StoredExample = {
      atMs: Date.now(),
      requestId: probe.requestId,
      method: probe.method,
      path: probe.path,
      kinds,
      live,
      shadow,
    };
    for (const kind of kinds) {
      const ring = this.rings.get(kind)!;
      ring.examples[ring.added++ % max] = example;
    }
  }

  /** A copy of the counts so far; each kind's examples newest first. */
  report(): ShadowReport {
    const copy = structuredClone(this.report_);
    const max = this.options.maxExamples;
    for (const [kind, ring] of this.rings) {
      const out: ShadowExample[] = [];
      // Newest first: from the slot written last, backwards round the ring.
      for (let i = 1; i <= ring.examples.length; i++) {
        const { atMs, ...rest } = ring.examples[(((ring.added - i) % max) + max) % max]!;
        out.push(structuredClone({ at: new Date(atMs).toISOString(), ...rest }));
      }
      copy.examples[kind] = out;
    }
    return copy;
  }

  /** Drops the shadow's services and plugin state. Requests it is still evaluating finish uncounted. */
  close(): void {
    releaseSnapshot(this.snapshot);
    this.state.closeAll();
  }
}

/** An example as kept: its time as a number until a report asks. */
interface StoredExample extends Omit<ShadowExample, 'at'> {
  atMs: number;
}

/** One sampled request: the shadow's outcome and the live one, whichever comes second compares them. */
class Probe implements Filter {
  readonly owner: Shadow;
  readonly method: string;
  readonly path: string;
  requestId = '';
  route: CompiledRoute | null = null;
  destination: string | null = null;
  private shadow: ShadowOutcome | null = null;
  private shadowRefusal: 'auth' | 'rate-limit' | null = null;
  private live: ShadowOutcome | null = null;

  constructor(owner: Shadow, method: string, path: string) {
    this.owner = owner;
    this.method = method;
    this.path = path;
  }

  shadowDone(
    route: CompiledRoute | null,
    destination: string | null,
    refused: string | null,
    by: CompiledFilter | null,
  ) {
    this.shadow = {
      route: route?.name ?? null,
      destination,
      refused,
      version: versionLabel(route?.version ?? null),
    };
    this.shadowRefusal = by === null ? null : by.phaseRank >= LIMIT ? 'rate-limit' : 'auth';
    if (this.live !== null) this.owner.compare(this, this.live, this.shadow, this.shadowRefusal);
  }

  onLog(request: RequestContext): void {
    const ctx = request as StreamContext;
    this.requestId = ctx.requestId;
    const route = ctx.route;
    const code = ctx.code;
    this.live = {
      route: route?.name ?? null,
      destination:
        ctx.destination !== null
          ? destinationLabel(ctx.destination)
          : route !== null && route.action.kind !== 'forward'
            ? `(${route.action.kind})`
            : null,
      refused: code !== null && (AUTH_CODES.has(code) || LIMIT_CODES.has(code)) ? code : null,
      version: versionLabel(route?.version ?? null),
    };
    if (this.shadow !== null) this.owner.compare(this, this.live, this.shadow, this.shadowRefusal);
  }
}

/**
 * The shadow route's checks, in its compiled order, on the copy of the request: the same walk as the
 * live chain (chain/filters.ts), consumer chains included, but only DRY_RUN_FILTERS run, and a refusal
 * is recorded, not sent.
 */
function runChecks(
  probe: Probe,
  request: ShadowRequest,
  filters: readonly CompiledFilter[],
  start: number,
  onConsumerChain: boolean,
): void {
  const route = probe.route!;
  for (let i = start; i < filters.length; i++) {
    const f = filters[i]!;
    if (!onConsumerChain && request.consumer !== null && route.consumerChains !== null && f.phaseRank > AUTHENTICATE) {
      const chain = route.consumerChains.get(request.consumer.name);
      if (chain !== undefined) {
        runChecks(probe, request, chain, 0, true);
        return;
      }
    }
    if (!DRY_RUN_FILTERS.has(f.name)) continue;
    let result: FilterResult;
    try {
      result = f.factory(request).onRequestHeaders?.(request);
    } catch {
      probe.shadowDone(route, probe.destination, 'MG_INTERNAL', f);
      return;
    }
    if (result === undefined) continue;
    if (result instanceof Promise) {
      result.then(
        (settled) =>
          settled === undefined
            ? runChecks(probe, request, filters, i + 1, onConsumerChain)
            : probe.shadowDone(route, probe.destination, (settled as LocalReply).code, f),
        () => probe.shadowDone(route, probe.destination, 'MG_INTERNAL', f),
      );
      return;
    }
    probe.shadowDone(route, probe.destination, result.code, f);
    return;
  }
  probe.shadowDone(route, probe.destination, null, null);
}

/** The shadow's own draw among its route's weighted destinations (independent of the live draw). */
function drawDestination(route: CompiledRoute, request: ShadowRequest): CompiledDestination | null {
  const action = route.action;
  if (action.kind !== 'forward') return null;
  const only = action.destinations.length === 1;
  const roll = only ? 0 : action.sticky === null ? Math.random() * 100 : stickyRoll(request, action.sticky);
  return pickDestination(action, roll);
}

function destinationLabel(d: CompiledDestination): string {
  return d.subset === undefined ? d.service.name : `${d.service.name}/${d.subset}`;
}

function versionLabel(v: CompiledVersion | null): string | null {
  if (v === null) return null;
  if (v.headers.length === 0) return `${v.api} ${v.name}`;
  const pairs: string[] = [];
  for (let i = 0; i < v.headers.length; i += 2) pairs.push(`${v.headers[i]}: ${v.headers[i + 1]}`);
  return `${v.api} ${v.name} (${pairs.join('; ')})`;
}

/**
 * What the shadow's filters see of a request: the live request's head, copied, so that whatever they
 * set (a consumer, claims, a removed credential header) stays here.
 */
class ShadowRequest implements RequestContext, MatchInput {
  requestId: string;
  readonly method: string;
  readonly host: string;
  readonly path: string;
  query: string;
  readonly clientAddress: string;
  readonly contentLength: number;
  readonly hasBody: boolean;
  /** The live request's message: read-only here (the authorization engine reads its socket's ports). */
  readonly req: StreamContext['req'];
  readonly headers: string[];
  consumer: Consumer | null = null;
  credential: CredentialRef | null = null;
  claims: Readonly<Record<string, unknown>> | null = null;
  /** Set by the authorization policies' filter; unused. */
  authz: unknown = null;
  route: CompiledRoute | null = null;
  service: string | undefined = undefined;
  private readonly live: StreamContext;
  private params: Record<string, string> | null = null;

  constructor(ctx: StreamContext) {
    this.live = ctx;
    this.requestId = ctx.requestId;
    this.method = ctx.method;
    this.host = ctx.host;
    this.path = ctx.path;
    this.query = ctx.query;
    this.clientAddress = ctx.clientAddress;
    this.contentLength = ctx.contentLength;
    this.hasBody = ctx.hasBody;
    this.req = ctx.req;
    this.headers = ctx.headers.slice();
  }

  get peerPrincipal(): string | null {
    return this.live.peerPrincipal;
  }

  get routeName(): string {
    return this.route?.name ?? '';
  }

  get serviceName(): string | undefined {
    return this.service;
  }

  pathParam(name: string): string | undefined {
    if (this.params === null) {
      const pattern = this.route?.pathPattern;
      this.params = pattern === undefined ? {} : pathParams(pattern, this.path);
    }
    return Object.hasOwn(this.params, name) ? this.params[name] : undefined;
  }

  setUpstreamPath(): void {}

  header(name: string): string | undefined {
    return headerValue(this.headers, name);
  }

  setHeader(name: string, value: string): void {
    setHeader(this.headers, name, value);
  }

  removeHeader(name: string): void {
    removeHeader(this.headers, name);
  }

  limitRequestBody(): void {}
}

/** PluginDeps.shared for a shadow: its own, so a candidate's counters and caches never touch the live ones. */
class IsolatedState {
  private readonly values = new Map<string, unknown>();

  get<T>(key: string, create: () => T): T {
    if (!this.values.has(key)) this.values.set(key, create());
    return this.values.get(key) as T;
  }

  closeAll(): void {
    for (const value of this.values.values()) (value as { close?: () => void } | undefined)?.close?.();
    this.values.clear();
  }
}
