/**
 * A recorded trail (trail.ts) turned into what a person reads (api/explain.ts), only when someone asks:
 * the routes of the listener are matched again against the request head as the router saw it, on the
 * snapshot the request ran on, to say why each one that was not chosen did not match.
 */
import type { RouteMatchConfig, ValueMatchConfig } from '../../api/config.ts';
import type { ExplainedTrail, PluginVerdict, RouteVerdict, SubRequestVerdict, TryVerdict } from '../../api/explain.ts';
import { cookieValue, queryValue } from '../../core/request-values.ts';
import type { CompiledRoute } from '../compiled.ts';
import { compilePathTest, compileValueTest, effectiveMatch } from '../router/router.ts';
import type { Trail, TryNote } from './trail.ts';

/** Header values a story never shows: they carry credentials. */
const SECRET_HEADER = /authorization|cookie|token|secret|api-?key|password/i;

const round = (ms: number) => Math.round(ms * 1000) / 1000;

export function explainTrail(trail: Trail): ExplainedTrail {
  const routes = routesOf(trail);
  const destinations = trail.route?.action.kind === 'forward' ? trail.route.action.destinations : [];
  const destination = destinations[trail.destinationIndex];
  const policy = destination?.retry ?? null;
  const scopes = scopesOf(trail.claims);
  return {
    requestId: trail.requestId,
    traceId: trail.traceId ?? null,
    start: Math.round(trail.startEpochMs),
    reason: trail.reason,
    config: { version: trail.snapshot.version, hash: trail.snapshot.hash },
    request: {
      listener: trail.listener,
      method: trail.method,
      host: trail.host,
      path: trail.path,
      query: queryNames(trail.query),
    },
    routes,
    route: trail.route?.name ?? null,
    plugins: trail.plugins.map((p, i): PluginVerdict => {
      const before = i === 0 ? null : trail.plugins[i - 1]!.consumer;
      return {
        name: p.filter.name,
        phase: p.filter.phase,
        scope: p.filter.scope,
        outcome: p.outcome,
        ...(p.outcome === 'reply' || p.outcome === 'error'
          ? { status: p.status, code: p.code ?? 'MG_INTERNAL', ...(p.detail === null ? {} : { detail: p.detail }) }
          : {}),
        ...(p.consumer !== null && p.consumer !== before ? { consumer: p.consumer } : {}),
        ...(p.facts === undefined ? {} : { facts: p.facts }),
      };
    }),
    consumer:
      trail.consumer === null
        ? null
        : { name: trail.consumer.name, groups: [...trail.consumer.groups], credential: trail.credential, scopes },
    peer: trail.peer,
    authz: trail.authz === null ? null : [...trail.authz],
    draw:
      trail.drawn && destinations.length > 0
        ? {
            destinations: destinations.map((d, i) => ({
              service: d.service.name,
              subset: d.subset ?? null,
              // The compiled bounds are cumulative in 0..100: each destination's share is its step.
              weight: round(d.upTo - (i === 0 ? 0 : destinations[i - 1]!.upTo)),
            })),
            chosen: trail.destinationIndex,
            roll: trail.roll < 0 ? null : round(trail.roll),
            sticky: trail.route?.action.kind === 'forward' && trail.route.action.sticky !== null,
          }
        : null,
    tries: triesOf(trail),
    subRequests: subRequestsOf(trail),
    retries: policy === null ? null : { attempts: policy.attempts, on: [...policy.conditions] },
    refusal: trail.refusal,
    outcome: {
      status: trail.status,
      code: trail.code,
      durationMs: round(trail.durationMs),
      upstreamMs: trail.upstreamMs < 0 ? null : round(trail.upstreamMs),
    },
  };
}

function triesOf(trail: Trail): TryVerdict[] {
  const log = trail.tryLog ?? [];
  const last = trail.tries.length - 1;
  const lastOutcome = trail.code ?? (trail.status > 0 ? `status ${trail.status}` : 'no answer');
  return verdictsOf(
    trail.tries,
    trail.startMs,
    (i) => log[i]?.outcome ?? (i === last ? lastOutcome : ''),
    trail.upstreamHeadersMs > 0 ? trail.upstreamHeadersMs : -1,
    trail.retryStop,
  );
}

function subRequestsOf(trail: Trail): SubRequestVerdict[] {
  return (trail.subRequests ?? []).map((s) => ({
    call: s.call,
    service: s.service,
    tries: verdictsOf(s.tries, trail.startMs, (i) => s.outcomes[i] ?? 'no answer', -1, s.stop),
    stop: s.stop,
  }));
}

/**
 * Tries in words: `outcomeOf(i)` is each one's outcome, `lastEndMs` when the last one's answer came
 * if it did not note it (-1: unknown), `stop` why no retry followed the last one.
 */
function verdictsOf(
  tries: readonly TryNote[],
  startMs: number,
  outcomeOf: (i: number) => string,
  lastEndMs: number,
  stop: string | null,
): TryVerdict[] {
  const last = tries.length - 1;
  return tries.map((t, i): TryVerdict => {
    const end = t.endMs >= 0 ? t.endMs : i === last ? lastEndMs : -1;
    const [requests, maxRequests, pending, maxPendingRequests, retries, maxRetries] = t.breaker;
    return {
      n: i + 1,
      endpoint: t.endpoint,
      atMs: round(t.atMs - startMs),
      durationMs: end < 0 ? null : round(end - t.atMs),
      outcome: outcomeOf(i),
      retried: t.retryDelayMs >= 0 && i < last,
      retryDelayMs: t.retryDelayMs >= 0 ? round(t.retryDelayMs) : null,
      noRetry: i === last ? stop : null,
      breaker: { requests, maxRequests, pending, maxPendingRequests, retries, maxRetries },
      endpointState: { consecutiveErrors: t.consecutiveErrors, ejections: t.ejections, active: t.active },
      panic: t.panic,
    };
  });
}

/** The listener's routes in declaration order, each with its verdict for this request. */
function routesOf(trail: Trail): RouteVerdict[] {
  const out: RouteVerdict[] = [];
  for (const route of trail.snapshot.routes) {
    const only = route.config.listeners;
    if (only !== undefined && !only.includes(trail.listener)) continue;
    if (route === trail.route) {
      out.push({ name: route.name, verdict: 'chosen', reasons: [] });
      continue;
    }
    const reasons = whyNot(route, trail);
    out.push({ name: route.name, verdict: reasons.length === 0 ? 'outranked' : 'no-match', reasons });
  }
  return out;
}

function headerOf(headers: readonly string[], name: string): string | undefined {
  let value: string | undefined;
  for (let i = 0; i < headers.length; i += 2)
    if (headers[i] === name) value = value === undefined ? headers[i + 1] : `${value}, ${headers[i + 1]}`;
  return value;
}

/** Each condition of the route's match that this request fails, in words; empty: it matches. */
export function whyNot(route: CompiledRoute, trail: Pick<Trail, 'method' | 'host' | 'path' | 'query' | 'headers'>) {
  const m: RouteMatchConfig | undefined = effectiveMatch(route.config);
  const reasons: string[] = [];
  if (m === undefined) return reasons;
  if (m.hosts !== undefined && !m.hosts.some((h) => hostMatches(h.toLowerCase(), trail.host)))
    reasons.push(`host ${trail.host} is not ${oneOf(m.hosts)}`);
  if ((m.path !== undefined || m.pathRegex !== undefined) && !compilePathTest(m)(trail.path))
    reasons.push(
      m.pathRegex !== undefined
        ? `path ${trail.path} does not match the regex ${m.pathRegex}`
        : `path ${trail.path} does not match ${m.path}`,
    );
  if (m.methods !== undefined && !(m.methods as readonly string[]).includes(trail.method))
    reasons.push(`method ${trail.method} is not ${oneOf(m.methods)}`);
  for (const [name, condition] of Object.entries(m.headers ?? {})) {
    const lower = name.toLowerCase();
    const value = headerOf(trail.headers, lower);
    if (!compileValueTest(condition)(value))
      reasons.push(`header ${lower} ${shown(value, SECRET_HEADER.test(lower))} (wants ${wanted(condition)})`);
  }
  for (const [name, condition] of Object.entries(m.query ?? {})) {
    const value = queryValue(trail.query, name);
    if (!compileValueTest(condition)(value))
      reasons.push(`query parameter ${name} ${shown(value, false)} (wants ${wanted(condition)})`);
  }
  for (const [name, condition] of Object.entries(m.cookies ?? {})) {
    const value = cookieValue(headerOf(trail.headers, 'cookie'), name);
    if (!compileValueTest(condition)(value))
      reasons.push(`cookie ${name} ${shown(value, true)} (wants ${wanted(condition)})`);
  }
  return reasons;
}

function hostMatches(pattern: string, host: string): boolean {
  if (!pattern.startsWith('*.')) return pattern === host;
  const suffix = pattern.slice(1);
  return host.length > suffix.length && host.endsWith(suffix);
}

function oneOf(values: readonly string[]): string {
  return values.length === 1 ? values[0]! : `one of ${values.join(', ')}`;
}

function shown(value: string | undefined, secret: boolean): string {
  if (value === undefined) return 'is absent';
  return secret ? 'has another value' : `is ${JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value)}`;
}

function wanted(c: ValueMatchConfig): string {
  if (typeof c === 'string') return JSON.stringify(c);
  if (c.exact !== undefined) return JSON.stringify(c.exact);
  if (c.prefix !== undefined) return `a value starting with ${JSON.stringify(c.prefix)}`;
  if (c.regex !== undefined) return `a value matching ${c.regex}`;
  return c.present === true ? 'it present' : 'it absent';
}

function queryNames(query: string): string[] {
  if (query === '') return [];
  return query.split('&').map((pair) => {
    const eq = pair.indexOf('=');
    const name = eq === -1 ? pair : pair.slice(0, eq);
    try {
      return decodeURIComponent(name.replace(/\+/g, ' '));
    } catch {
      return name;
    }
  });
}

function scopesOf(claims: Readonly<Record<string, unknown>> | null): string[] | null {
  const scope = claims?.scope ?? claims?.scp;
  if (typeof scope === 'string') return scope.split(' ').filter(Boolean);
  if (Array.isArray(scope)) return scope.filter((s): s is string => typeof s === 'string');
  return null;
}
