/**
 * VirtualService → routes. Istio tries a VirtualService's `http[]` in order and the first match wins;
 * meshgate's router orders by specificity, so every converted route carries `priority` (the router
 * then tries them first, in declaration order: docs/routing.md). Each `match[]` entry (OR) becomes
 * its own route, next to its siblings.
 */
import { HTTP_METHODS, RETRY_CONDITIONS } from '../../api/config.ts';
import { type Conversion, child, fieldsOf, isRecord, listOf, type SourceRef } from '../shared/format.ts';
import {
  duration,
  exportTo,
  type IstioResource,
  isServiceHost,
  localName,
  objectName,
  percentOf,
  serviceOfHost,
} from './common.ts';
import {
  ISTIO_DEFAULT_RETRIABLE_STATUS_CODES,
  ISTIO_DEFAULT_RETRY_ATTEMPTS,
  ISTIO_DEFAULT_RETRY_ON,
} from './defaults.ts';

/** The priority every converted route gets: equal, so declaration order (Istio's) decides. */
export const ISTIO_ROUTE_PRIORITY = 1;

/** Istio `retryOn` words meshgate has too (Envoy's names, which both use). */
const MESHGATE_RETRY_ON: ReadonlySet<string> = new Set(RETRY_CONDITIONS);

export function convertVirtualService(r: IstioResource, spec: unknown): void {
  const { out, ref } = r;
  const s = fieldsOf(out, spec, ref, ['hosts', 'gateways', 'http', 'tcp', 'tls', 'exportTo']);
  for (const key of ['tcp', 'tls'] as const)
    if (s[key] !== undefined)
      out.reportUnsupported(child(ref, key), `${key} routes are not supported: meshgate routes HTTP traffic`);
  exportTo(out, s.exportTo, child(ref, 'exportTo'));
  const hosts = routeHosts(out, s.hosts, child(ref, 'hosts'), r.namespace);
  const listeners = gatewayListeners(r, s.gateways, child(ref, 'gateways'));
  listOf(out, s.http, child(ref, 'http')).forEach((http, i) => {
    const at = child(ref, 'http', i);
    convertHttpRoute(r, http, at, i, hosts, listeners);
  });
}

/** VirtualService hosts → `match.hosts`: undefined for `*` (any host). */
function routeHosts(out: Conversion, value: unknown, ref: SourceRef, namespace: string): string[] | undefined {
  const hosts = new Set<string>();
  for (const [i, h] of listOf(out, value, ref).entries()) {
    if (typeof h !== 'string' || h === '') {
      out.reportInvalid(child(ref, i), 'expected a host name');
      continue;
    }
    if (h === '*') return undefined;
    if (isServiceHost(h)) {
      // Every name a client in the mesh may use for the service (Istio matches them all).
      const name = serviceOfHost(h);
      const ns = /^[^.]+\.([^.]+)\.svc/.exec(h.toLowerCase())?.[1] ?? namespace;
      for (const form of [name, `${name}.${ns}`, `${name}.${ns}.svc`, `${name}.${ns}.svc.cluster.local`])
        hosts.add(form);
    } else hosts.add(h.toLowerCase());
  }
  return hosts.size > 0 ? [...hosts] : undefined;
}

/** `gateways` → the listeners of the named Gateways; undefined when the routes serve every listener (`mesh`, or none named). */
function gatewayListeners(r: IstioResource, value: unknown, ref: SourceRef): string[] | undefined {
  const names = listOf(r.out, value, ref);
  if (names.length === 0 || names.includes('mesh')) return undefined;
  const listeners: string[] = [];
  names.forEach((g, i) => {
    const found = typeof g === 'string' ? r.gateways.get(localName(g)) : undefined;
    if (found) listeners.push(...found);
    else
      r.out.reportUnsupported(
        child(ref, i),
        `Gateway "${String(g)}" is not in this file`,
        'put the Gateway resource in the same file, or leave gateways out to serve every listener',
      );
  });
  return listeners.length > 0 ? listeners : undefined;
}

const HTTP_ROUTE_FIELDS = [
  'name',
  'match',
  'route',
  'redirect',
  'directResponse',
  'delegate',
  'rewrite',
  'timeout',
  'retries',
  'fault',
  'mirror',
  'mirrors',
  'mirrorPercentage',
  'mirrorPercent',
  'mirror_percent',
  'corsPolicy',
  'headers',
];

function convertHttpRoute(
  r: IstioResource,
  value: unknown,
  ref: SourceRef,
  index: number,
  hosts: string[] | undefined,
  listeners: string[] | undefined,
): void {
  const { out } = r;
  const h = fieldsOf(out, value, ref, HTTP_ROUTE_FIELDS);
  if (h.delegate !== undefined)
    out.reportUnsupported(child(ref, 'delegate'), 'delegate is not supported', 'write the delegate’s routes here');
  if (h.corsPolicy !== undefined)
    out.reportUnsupported(
      child(ref, 'corsPolicy'),
      'corsPolicy is not supported here',
      'use the cors plugin on the route',
    );
  const headerPlugins = headerOperations(out, h.headers, child(ref, 'headers'));

  // What every match block of this rule shares: the action and its policies, with where each came from.
  const action: Record<string, unknown> = {};
  const fieldRefs: [field: string, ref: SourceRef][] = [];
  const destinations = routeDestinations(r, h.route, child(ref, 'route'), fieldRefs);
  if (destinations) action.destinations = destinations;
  if (h.redirect !== undefined) {
    action.redirect = redirect(out, h.redirect, child(ref, 'redirect'));
    fieldRefs.push(['redirect', child(ref, 'redirect')]);
  }
  if (h.directResponse !== undefined) {
    action.directResponse = directResponse(out, h.directResponse, child(ref, 'directResponse'));
    fieldRefs.push(['directResponse', child(ref, 'directResponse')]);
  }
  const forwards = action.destinations !== undefined;
  if (forwards) {
    // Istio: no timeout unless one is set; meshgate's default request timeout would otherwise apply.
    const timeout = h.timeout === undefined ? '0s' : duration(out, h.timeout, child(ref, 'timeout'));
    if (timeout !== undefined) action.timeouts = { request: timeout };
    fieldRefs.push(['timeouts', h.timeout === undefined ? ref : child(ref, 'timeout')]);
    action.retries = retries(out, h.retries, child(ref, 'retries'));
    fieldRefs.push(['retries', h.retries === undefined ? ref : child(ref, 'retries')]);
    const mirror = mirrorOf(r, h, ref);
    if (mirror) {
      action.mirror = mirror;
      fieldRefs.push(['mirror', h.mirror === undefined ? child(ref, 'mirrors') : child(ref, 'mirror')]);
    }
  } else
    for (const key of ['timeout', 'retries', 'mirror', 'mirrors', 'rewrite'] as const)
      if (h[key] !== undefined && action.redirect === undefined && action.directResponse === undefined)
        out.reportInvalid(child(ref, key), `${key} needs a route (destinations)`);
  if (headerPlugins.length > 0) {
    action.plugins = headerPlugins;
    fieldRefs.push(['plugins', child(ref, 'headers')]);
  }
  if (h.fault !== undefined) {
    const fault = faultOf(out, h.fault, child(ref, 'fault'));
    if (fault) {
      action.fault = fault;
      fieldRefs.push(['fault', child(ref, 'fault')]);
    }
  }

  const matches = listOf(out, h.match, child(ref, 'match'));
  const blocks: { match: unknown; ref: SourceRef }[] =
    matches.length === 0
      ? [{ match: undefined, ref }]
      : matches.map((m, j) => ({ match: m, ref: child(ref, 'match', j) }));
  const ruleName = typeof h.name === 'string' && h.name !== '' ? h.name : String(index);
  blocks.forEach((block, j) => {
    const m = matchOf(out, block.match, block.ref);
    const route: Record<string, unknown> = {
      name: routeName(r, ruleName, blocks.length > 1 ? blockName(block.match, j) : undefined),
      ...(listeners ? { listeners } : {}),
    };
    const match = { ...(hosts ? { hosts: [...hosts] } : {}), ...m.match };
    if (Object.keys(match).length > 0) route.match = match;
    Object.assign(route, structuredClone(action));
    if (h.rewrite !== undefined && forwards) {
      const rewrite = rewriteOf(out, h.rewrite, child(ref, 'rewrite'), m.uri);
      if (rewrite) route.rewrite = rewrite;
    }
    route.priority = ISTIO_ROUTE_PRIORITY;
    route.origin = r.origin(`http[${index}]${blocks.length > 1 ? ` match[${j}]` : ''}`);
    const path = out.add('routes', route, block.ref);
    for (const [field, at] of fieldRefs) out.at([...path, field], at);
    if (h.rewrite !== undefined) out.at([...path, 'rewrite'], child(ref, 'rewrite'));
    if (destinations)
      for (let k = 0; k < destinations.length; k++) out.at([...path, 'destinations', k], child(ref, 'route', k));
  });
}

/**
 * `headers.request` / `headers.response` (`set`, `add`, `remove`) → the request-transformer and
 * response-transformer plugins on the route. Envoy removes before it adds, and `set` replaces every
 * copy: `remove` (with the names `set` writes), then `add` (written where absent, which after the
 * removal is always), then `append` for Istio's `add`. Values are literal, so `$` is escaped from
 * meshgate's templates; Envoy's `%VARIABLE%` values have no equivalent (`%%` is a plain `%`).
 */
function headerOperations(out: Conversion, value: unknown, ref: SourceRef): Record<string, unknown>[] {
  if (value === undefined) return [];
  const sides = fieldsOf(out, value, ref, ['request', 'response']);
  const plugins: Record<string, unknown>[] = [];
  for (const [side, plugin] of [
    ['request', 'request-transformer'],
    ['response', 'response-transformer'],
  ] as const) {
    if (sides[side] === undefined) continue;
    const at = child(ref, side);
    const ops = fieldsOf(out, sides[side], at, ['set', 'add', 'remove']);
    const remove: string[] = [];
    const add: string[] = [];
    const append: string[] = [];
    listOf(out, ops.remove, child(at, 'remove')).forEach((name, i) => {
      if (typeof name === 'string' && name !== '') remove.push(name.toLowerCase());
      else out.reportInvalid(child(at, 'remove', i), 'expected a header name');
    });
    for (const [op, into] of [
      ['set', add],
      ['add', append],
    ] as const)
      for (const [name, v] of Object.entries(fieldsOf(out, ops[op], child(at, op), anyKey(ops[op])))) {
        const lower = name.toLowerCase();
        const valueAt = child(at, op, name);
        if (typeof v !== 'string') {
          out.reportInvalid(valueAt, 'expected a string value');
          continue;
        }
        if (lower.startsWith(':')) {
          out.reportUnsupported(valueAt, `setting the pseudo-header "${name}" is not supported`);
          continue;
        }
        if (v.replaceAll('%%', '').includes('%')) {
          out.reportUnsupported(valueAt, 'Envoy’s %VARIABLE% header values are not supported', 'write a literal value');
          continue;
        }
        if (op === 'set' && !remove.includes(lower)) remove.push(lower);
        into.push(`${lower}:${v.replaceAll('%%', '%').replaceAll('$', '$$$$')}`);
      }
    const config: Record<string, unknown> = {};
    if (remove.length > 0) config.remove = { headers: remove };
    if (add.length > 0) config.add = { headers: add };
    if (append.length > 0) config.append = { headers: append };
    if (Object.keys(config).length > 0) plugins.push({ name: plugin, config });
  }
  return plugins;
}

function blockName(match: unknown, j: number): string {
  return isRecord(match) && typeof match.name === 'string' && match.name !== '' ? match.name : String(j);
}

function routeName(r: IstioResource, rule: string, block: string | undefined): string {
  const raw = objectName(r, block === undefined ? rule : `${rule}-${block}`);
  return raw.replace(/[^A-Za-z0-9._-]/g, '-');
}

/** How the URI was matched: a rewrite of `uri` replaces what the match covered (Envoy's prefix_rewrite). */
type UriMatch = { kind: 'exact' | 'prefix' | 'regex'; value: string } | undefined;

const escapeRegex = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&').replace(/\\\//g, '/');

function matchOf(out: Conversion, value: unknown, ref: SourceRef): { match: Record<string, unknown>; uri: UriMatch } {
  if (value === undefined) return { match: {}, uri: undefined };
  const m = fieldsOf(out, value, ref, [
    'name',
    'uri',
    'method',
    'authority',
    'headers',
    'queryParams',
    'withoutHeaders',
    'ignoreUriCase',
    'scheme',
    'port',
    'sourceLabels',
    'gateways',
    'sourceNamespace',
    'statPrefix',
  ]);
  for (const key of ['scheme', 'port', 'sourceLabels', 'gateways', 'sourceNamespace', 'statPrefix'] as const)
    if (m[key] !== undefined) out.reportUnsupported(child(ref, key), `match field "${key}" is not supported`);
  const match: Record<string, unknown> = {};
  let uri: UriMatch;
  if (m.uri !== undefined) {
    const u = stringMatch(out, m.uri, child(ref, 'uri'));
    const ignoreCase = m.ignoreUriCase === true;
    if (u && 'exact' in u) {
      uri = { kind: 'exact', value: u.exact };
      if (!ignoreCase && u.exact.startsWith('/') && !u.exact.includes('/:') && !u.exact.endsWith('/*'))
        match.path = u.exact;
      else match.pathRegex = caseless(escapeRegex(u.exact), ignoreCase);
    } else if (u && 'prefix' in u) {
      uri = { kind: 'prefix', value: u.prefix };
      // Istio's prefix is a plain string prefix (`/api` also matches `/apis`): a regex keeps exactly that.
      if (u.prefix !== '/' || ignoreCase) match.pathRegex = caseless(`${escapeRegex(u.prefix)}.*`, ignoreCase);
    } else if (u && 'regex' in u) {
      uri = { kind: 'regex', value: u.regex };
      match.pathRegex = caseless(u.regex, ignoreCase);
    }
  } else if (m.ignoreUriCase !== undefined && m.ignoreUriCase !== false) {
    // No uri to compare: nothing changes.
  }
  if (m.method !== undefined) {
    const v = stringMatch(out, m.method, child(ref, 'method'));
    if (v && 'exact' in v && (HTTP_METHODS as readonly string[]).includes(v.exact)) match.methods = [v.exact];
    else if (v)
      out.reportUnsupported(child(ref, 'method'), 'only an exact match on a standard HTTP method is supported');
  }
  const headers: Record<string, unknown> = {};
  if (m.authority !== undefined) {
    // Envoy matches :authority as sent (port included); meshgate's `host` header condition is the same value.
    const v = stringMatch(out, m.authority, child(ref, 'authority'));
    if (v) headers.host = v;
  }
  for (const [name, cond] of Object.entries(fieldsOf(out, m.headers, child(ref, 'headers'), anyKey(m.headers)))) {
    const v = stringMatch(out, cond, child(ref, 'headers', name));
    if (v) headers[name.toLowerCase()] = v;
  }
  for (const [name, cond] of Object.entries(
    fieldsOf(out, m.withoutHeaders, child(ref, 'withoutHeaders'), anyKey(m.withoutHeaders)),
  )) {
    const v = stringMatch(out, cond, child(ref, 'withoutHeaders', name));
    if (v && 'present' in v) headers[name.toLowerCase()] = { present: false };
    else if (v)
      out.reportUnsupported(
        child(ref, 'withoutHeaders', name),
        'withoutHeaders with a value is not supported (meshgate can require a header to be absent, not to differ)',
      );
  }
  if (Object.keys(headers).length > 0) match.headers = headers;
  const query: Record<string, unknown> = {};
  for (const [name, cond] of Object.entries(
    fieldsOf(out, m.queryParams, child(ref, 'queryParams'), anyKey(m.queryParams)),
  )) {
    const v = stringMatch(out, cond, child(ref, 'queryParams', name));
    if (v) query[name] = v;
  }
  if (Object.keys(query).length > 0) match.query = query;
  return { match, uri };
}

function anyKey(value: unknown): string[] {
  return isRecord(value) ? Object.keys(value) : [];
}

/** `(?i:…)` (regular expression modifiers, Node 24) for `ignoreUriCase`. */
function caseless(regex: string, ignoreCase: boolean): string {
  return ignoreCase ? `(?i:${regex})` : regex;
}

type StringMatch = { exact: string } | { prefix: string } | { regex: string } | { present: true };

/** Istio's StringMatch: one of exact, prefix, regex; `{}` (or null) means "present". */
function stringMatch(out: Conversion, value: unknown, ref: SourceRef): StringMatch | undefined {
  if (value === null || (isRecord(value) && Object.keys(value).length === 0)) return { present: true };
  const v = fieldsOf(out, value, ref, ['exact', 'prefix', 'regex']);
  const kinds = Object.keys(v);
  if (kinds.length !== 1 || typeof v[kinds[0]!] !== 'string') {
    if (kinds.length > 0) out.reportInvalid(ref, 'expected one of exact, prefix, regex with a string');
    return undefined;
  }
  const kind = kinds[0] as 'exact' | 'prefix' | 'regex';
  return { [kind]: v[kind] as string } as StringMatch;
}

function routeDestinations(
  r: IstioResource,
  value: unknown,
  ref: SourceRef,
  fieldRefs: [string, SourceRef][],
): Record<string, unknown>[] | undefined {
  const { out } = r;
  const list = listOf(out, value, ref);
  if (list.length === 0) return undefined;
  const destinations = list.map((d, k) => {
    const at = child(ref, k);
    const entry = fieldsOf(out, d, at, ['destination', 'weight', 'headers']);
    if (entry.headers !== undefined)
      out.reportUnsupported(child(at, 'headers'), 'header operations per destination are not supported');
    const dest = destinationOf(r, entry.destination, child(at, 'destination'));
    const weight = typeof entry.weight === 'number' ? entry.weight : list.length === 1 ? 100 : 0;
    return { ...dest, weight };
  });
  fieldRefs.push(['destinations', ref]);
  return normalizeWeights(destinations);
}

/** Istio accepts weights that do not add up to 100 and uses them as proportions; meshgate wants 100. */
function normalizeWeights(destinations: { weight: number }[]): { weight: number }[] {
  const total = destinations.reduce((sum, d) => sum + d.weight, 0);
  if (total === 100 || total === 0) return destinations;
  const exact = destinations.map((d) => (d.weight * 100) / total);
  const floors = exact.map(Math.floor);
  let left = 100 - floors.reduce((a, b) => a + b, 0);
  const byRemainder = exact.map((e, i) => [e - floors[i]!, i] as const).sort((a, b) => b[0] - a[0]);
  for (const [, i] of byRemainder) if (left-- > 0) floors[i]!++;
  return destinations.map((d, i) => ({ ...d, weight: floors[i]! }));
}

/** Istio's Destination → `{ service, subset }`. */
function destinationOf(r: IstioResource, value: unknown, ref: SourceRef): Record<string, unknown> {
  const { out } = r;
  const d = fieldsOf(out, value, ref, ['host', 'subset', 'port']);
  if (typeof d.host !== 'string' || d.host === '') {
    out.reportInvalid(ref, 'destination.host is required');
    return { service: '' };
  }
  if (d.port !== undefined)
    out.reportUnsupported(
      child(ref, 'port'),
      'destination.port is not supported: a meshgate service has one port, the one of its endpoints’ URLs',
      'leave it out when the service has one port',
    );
  return { service: serviceOfHost(d.host), ...(typeof d.subset === 'string' ? { subset: d.subset } : {}) };
}

function retries(out: Conversion, value: unknown, ref: SourceRef): Record<string, unknown> {
  // Envoy retries every method; meshgate by default only idempotent ones.
  const implicit = {
    attempts: ISTIO_DEFAULT_RETRY_ATTEMPTS,
    on: [...ISTIO_DEFAULT_RETRY_ON, 'retriable-status-codes'],
    statusCodes: [...ISTIO_DEFAULT_RETRIABLE_STATUS_CODES],
    nonIdempotent: true,
  };
  if (value === undefined) return implicit;
  const v = fieldsOf(out, value, ref, [
    'attempts',
    'perTryTimeout',
    'retryOn',
    'retryRemoteLocalities',
    'retryIgnorePreviousHosts',
    'backoff',
  ]);
  const result: Record<string, unknown> = { ...implicit };
  if (v.attempts !== undefined) {
    if (typeof v.attempts !== 'number' || !Number.isInteger(v.attempts) || v.attempts < 0)
      out.reportInvalid(child(ref, 'attempts'), 'expected a whole number of retries');
    else if (v.attempts > 10) out.reportUnsupported(child(ref, 'attempts'), 'more than 10 retries is not supported');
    else result.attempts = v.attempts;
  }
  if (v.perTryTimeout !== undefined) {
    const d = duration(out, v.perTryTimeout, child(ref, 'perTryTimeout'));
    if (d !== undefined) result.perTryTimeout = d;
  }
  if (v.retryOn !== undefined) {
    const on = new Set<string>();
    const codes = new Set<number>();
    const at = child(ref, 'retryOn');
    for (const raw of String(v.retryOn).split(',')) {
      const cond = raw.trim();
      if (cond === '') continue;
      if (/^\d{3}$/.test(cond)) codes.add(Number(cond));
      else if (cond === 'retriable-4xx') codes.add(409);
      else if (cond === 'retriable-status-codes') continue;
      else if (MESHGATE_RETRY_ON.has(cond)) on.add(cond);
      else out.reportUnsupported(at, `retryOn "${cond}" is not supported`);
    }
    if (codes.size > 0) on.add('retriable-status-codes');
    if (on.size > 0) result.on = [...on];
    else delete result.on;
    if (codes.size > 0) result.statusCodes = [...codes];
    else delete result.statusCodes;
    if (on.size === 0) result.attempts = 0;
  }
  if (v.retryRemoteLocalities === true)
    out.reportUnsupported(child(ref, 'retryRemoteLocalities'), 'meshgate has no localities to retry in');
  if (v.retryIgnorePreviousHosts === false)
    out.reportUnsupported(child(ref, 'retryIgnorePreviousHosts'), 'retrying on the same endpoint is not supported');
  if (v.backoff !== undefined) {
    const base = duration(out, v.backoff, child(ref, 'backoff'));
    // Envoy's cap is ten times the base.
    if (base !== undefined) result.backoff = { base, max: scaleDuration(base, 10) };
  }
  return result;
}

function scaleDuration(d: string, factor: number): string {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(d);
  if (!m) return d;
  return `${Number(m[1]) * factor}${m[2]}`;
}

function faultOf(out: Conversion, value: unknown, ref: SourceRef): Record<string, unknown> | undefined {
  const f = fieldsOf(out, value, ref, ['delay', 'abort']);
  const fault: Record<string, unknown> = {};
  if (f.delay !== undefined) {
    const at = child(ref, 'delay');
    const d = fieldsOf(out, f.delay, at, ['fixedDelay', 'exponentialDelay', 'percentage', 'percent']);
    if (d.exponentialDelay !== undefined)
      out.reportUnsupported(child(at, 'exponentialDelay'), 'exponentialDelay is not supported');
    const fixed = d.fixedDelay === undefined ? undefined : duration(out, d.fixedDelay, child(at, 'fixedDelay'));
    if (fixed !== undefined) fault.delay = { duration: fixed, percent: faultPercent(out, d, at) };
  }
  if (f.abort !== undefined) {
    const at = child(ref, 'abort');
    const a = fieldsOf(out, f.abort, at, ['httpStatus', 'grpcStatus', 'http2Error', 'percentage', 'percent']);
    for (const key of ['grpcStatus', 'http2Error'] as const)
      if (a[key] !== undefined) out.reportUnsupported(child(at, key), `abort with ${key} is not supported`);
    if (a.httpStatus !== undefined) {
      if (typeof a.httpStatus === 'number' && a.httpStatus >= 200 && a.httpStatus <= 599)
        fault.abort = { status: a.httpStatus, percent: faultPercent(out, a, at) };
      else out.reportUnsupported(child(at, 'httpStatus'), 'meshgate aborts with a status from 200 to 599');
    }
  }
  return Object.keys(fault).length > 0 ? fault : undefined;
}

/** `percentage.value`, else the older integer `percent`; neither: Istio faults no request. */
function faultPercent(out: Conversion, v: Record<string, unknown>, ref: SourceRef): number {
  if (v.percentage !== undefined) return percentOf(out, v.percentage, child(ref, 'percentage')) ?? 0;
  if (v.percent !== undefined) return percentOf(out, v.percent, child(ref, 'percent')) ?? 0;
  return 0;
}

function mirrorOf(r: IstioResource, h: Record<string, unknown>, ref: SourceRef): Record<string, unknown> | undefined {
  const { out } = r;
  let dest: Record<string, unknown> | undefined;
  let percent: number | undefined;
  if (h.mirror !== undefined) {
    dest = destinationOf(r, h.mirror, child(ref, 'mirror'));
    if (h.mirrorPercentage !== undefined) percent = percentOf(out, h.mirrorPercentage, child(ref, 'mirrorPercentage'));
    else if (h.mirrorPercent !== undefined) percent = percentOf(out, h.mirrorPercent, child(ref, 'mirrorPercent'));
    else if (h.mirror_percent !== undefined) percent = percentOf(out, h.mirror_percent, child(ref, 'mirror_percent'));
  }
  const mirrors = listOf(out, h.mirrors, child(ref, 'mirrors'));
  mirrors.forEach((m, k) => {
    const at = child(ref, 'mirrors', k);
    if (dest !== undefined) {
      out.reportUnsupported(at, 'meshgate mirrors to one destination per route');
      return;
    }
    const policy = fieldsOf(out, m, at, ['destination', 'percentage']);
    dest = destinationOf(r, policy.destination, child(at, 'destination'));
    if (policy.percentage !== undefined) percent = percentOf(out, policy.percentage, child(at, 'percentage'));
  });
  if (dest === undefined) return undefined;
  return { ...dest, ...(percent === undefined ? {} : { percent }) };
}

function rewriteOf(
  out: Conversion,
  value: unknown,
  ref: SourceRef,
  uri: UriMatch,
): Record<string, unknown> | undefined {
  const w = fieldsOf(out, value, ref, ['uri', 'authority', 'uriRegexRewrite']);
  const rewrite: Record<string, unknown> = {};
  if (typeof w.authority === 'string') rewrite.host = w.authority;
  if (typeof w.uri === 'string') {
    const substitution = w.uri.replace(/\$/g, '$$$$');
    // Envoy's prefix_rewrite: the matched prefix is replaced; an exact or regex match covers the
    // whole path; with no uri match, the matched prefix is `/`.
    const pattern = uri?.kind === 'prefix' ? `^${escapeRegex(uri.value)}` : uri === undefined ? '^/' : '^.*$';
    rewrite.regex = { pattern, substitution };
  } else if (w.uriRegexRewrite !== undefined) {
    const at = child(ref, 'uriRegexRewrite');
    const rr = fieldsOf(out, w.uriRegexRewrite, at, ['match', 'rewrite']);
    if (typeof rr.match === 'string' && typeof rr.rewrite === 'string') {
      if (!rr.match.startsWith('^'))
        out.reportUnsupported(
          child(at, 'match'),
          'an unanchored uriRegexRewrite is not supported: Envoy replaces every match, meshgate the first',
          'anchor the pattern with ^',
        );
      else rewrite.regex = { pattern: rr.match, substitution: rr.rewrite.replace(/\\(\d)/g, '$$$1') };
    } else out.reportInvalid(at, 'uriRegexRewrite needs match and rewrite');
  }
  return Object.keys(rewrite).length > 0 ? rewrite : undefined;
}

const REDIRECT_CODES = [301, 302, 303, 307, 308];

function redirect(out: Conversion, value: unknown, ref: SourceRef): Record<string, unknown> {
  const v = fieldsOf(out, value, ref, ['uri', 'authority', 'port', 'scheme', 'redirectCode', 'derivePort']);
  if (v.derivePort !== undefined) out.reportUnsupported(child(ref, 'derivePort'), 'derivePort is not supported');
  const result: Record<string, unknown> = { status: 301 };
  if (v.redirectCode !== undefined) {
    if (REDIRECT_CODES.includes(v.redirectCode as number)) result.status = v.redirectCode;
    else out.reportUnsupported(child(ref, 'redirectCode'), `meshgate redirects with ${REDIRECT_CODES.join(', ')}`);
  }
  if (v.scheme !== undefined) result.scheme = v.scheme;
  if (v.authority !== undefined) result.host = v.authority;
  if (v.port !== undefined) result.port = v.port;
  if (v.uri !== undefined) result.path = v.uri;
  return result;
}

function directResponse(out: Conversion, value: unknown, ref: SourceRef): Record<string, unknown> {
  const v = fieldsOf(out, value, ref, ['status', 'body']);
  const result: Record<string, unknown> = { status: v.status };
  if (v.body !== undefined) {
    const b = fieldsOf(out, v.body, child(ref, 'body'), ['string', 'bytes']);
    if (typeof b.string === 'string') result.body = b.string;
    else if (typeof b.bytes === 'string') result.body = Buffer.from(b.bytes, 'base64').toString('utf8');
  }
  return result;
}
