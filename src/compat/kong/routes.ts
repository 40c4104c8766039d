/**
 * Kong routes → meshgate routes, in Kong's order and with Kong's upstream path.
 *
 * Order. Kong's router (kong/router/transform.lua `get_priority`, the traditional router's sort before
 * it) ranks a route by: how many kinds of condition it has (methods, hosts, headers, paths, snis,
 * sources, destinations), then hosts without wildcards, then the number of headers, then regex paths
 * before plain ones, then `regex_priority` among regex paths, then the length of plain paths. A route
 * whose paths mix regexes and plain paths of different lengths is split, one route per group, as Kong
 * splits it. Each converted route carries a `priority` that is its rank among the file's routes
 * (equal ranks: file order), and meshgate's router tries prioritised routes first, in that order
 * (docs/routing.md). Hosts are matched as a condition on the Host header rather than `match.hosts`,
 * so every route of the file sits in one ordered list, as in Kong.
 *
 * Paths. A plain path is a string prefix (`/api` also matches `/apis`); `~` starts a regex (Kong 3;
 * before 3.0, any path with a character outside `[A-Za-z0-9.-_~/%]`), anchored at the start only.
 * With `strip_path` (default true) the matched prefix is removed and the rest joined to the service's
 * path by Kong's `path_handling` v0 (the only one Kong 3's default router has); v1 is honoured for
 * files of `_format_version` 1.1 and 2.x. Both are written as one `rewrite.regex` (see `pathRewrite`).
 */
import { HTTP_METHODS } from '../../api/config.ts';
import { child, fieldsOf, isRecord, type SourceRef } from '../shared/format.ts';
import {
  integerOf,
  isSet,
  type KongFile,
  type PendingRoute,
  type RouteInfo,
  referenceKeys,
  type ServiceInfo,
  stringsOf,
  uniqueName,
} from './common.ts';
import { describe } from './services.ts';

const ROUTE_FIELDS = [
  'id',
  'created_at',
  'updated_at',
  'name',
  'protocols',
  'https_redirect_status_code',
  'strip_path',
  'preserve_host',
  'request_buffering',
  'response_buffering',
  'tags',
  'service',
  'snis',
  'sources',
  'destinations',
  'methods',
  'hosts',
  'paths',
  'headers',
  'regex_priority',
  'path_handling',
  'expression',
  'priority',
  'plugins',
];

const HTTP_ROUTE_PROTOCOLS = ['http', 'https', 'grpc', 'grpcs'];

/** Converts one route; `parent` is the service it is nested in. Returns undefined when nothing can be routed. */
export function convertRoute(
  file: KongFile,
  value: unknown,
  ref: SourceRef,
  index: number,
  parent: ServiceInfo | undefined,
): RouteInfo | undefined {
  const { out } = file;
  const r = fieldsOf(out, value, ref, ROUTE_FIELDS);
  if (!isRecord(value)) return undefined;
  const kongName = typeof r.name === 'string' && r.name !== '' ? r.name : undefined;

  // The service: the one it is nested in, or the one it names.
  let service = parent;
  if (isSet(r.service)) {
    const named = referenceKeys(r.service)
      .map((k) => file.services.get(k))
      .find(Boolean);
    if (parent && named !== parent)
      out.reportInvalid(child(ref, 'service'), 'a route nested in a service names another service');
    else if (!parent && !named)
      out.reportInvalid(child(ref, 'service'), `no service ${JSON.stringify(r.service)} in this file`);
    service ??= named;
  }
  if (!service) {
    if (!isSet(r.service))
      out.reportUnsupported(
        ref,
        'a route without a service is not supported',
        'give it a service (Kong answers it only through plugins such as request-termination)',
      );
    return undefined;
  }
  if (!service.enabled) return undefined; // Kong routes nothing to a disabled service.

  if (isSet(r.expression) || (isSet(r.priority) && r.priority !== 0)) {
    out.reportUnsupported(
      child(ref, isSet(r.expression) ? 'expression' : 'priority'),
      'expression routes are not supported',
      'write the route with paths, methods, hosts and headers',
    );
    return undefined;
  }
  if (!protocolsSupported(file, r, ref)) return undefined;
  const conditionRefs: [string, SourceRef][] = [];
  for (const key of ['snis', 'sources', 'destinations'] as const)
    if (isSet(r[key]) && !(Array.isArray(r[key]) && (r[key] as unknown[]).length === 0))
      out.reportUnsupported(
        child(ref, key),
        `routing by ${key} is not supported: meshgate routes HTTP by method, host, path and headers`,
      );

  const methods = methodsOf(file, r.methods, child(ref, 'methods'));
  const hosts = stringsOf(out, r.hosts, child(ref, 'hosts'));
  const headers = headerConditions(file, r.headers, child(ref, 'headers'));
  const paths = stringsOf(out, r.paths, child(ref, 'paths'));
  const groups = pathGroups(file, paths, child(ref, 'paths'));
  if (groups === undefined) return undefined;
  const regexPriority = isSet(r.regex_priority)
    ? (integerOf(out, r.regex_priority, child(ref, 'regex_priority'), -(2 ** 31), 2 ** 31 - 1) ?? 0)
    : 0;
  const stripPath = r.strip_path !== false;
  const preserveHost = r.preserve_host === true;
  let handling = isSet(r.path_handling) ? String(r.path_handling) : 'v0';
  if (handling !== 'v0' && handling !== 'v1') {
    out.reportInvalid(child(ref, 'path_handling'), 'path_handling is v0 or v1');
    handling = 'v0';
  }
  // Kong 3's default router has v0 only (its v1 is deprecated and ignored there).
  if (file.major >= 3) handling = 'v0';

  const match: Record<string, unknown> = {};
  if (methods) {
    match.methods = methods;
    conditionRefs.push(['methods', child(ref, 'methods')]);
  }
  const headerMatch: Record<string, unknown> = {};
  if (hosts.length > 0) {
    headerMatch.host = { regex: hostRegex(hosts) };
    conditionRefs.push(['headers', child(ref, 'hosts')]);
  }
  Object.assign(headerMatch, headers);
  if (Object.keys(headers).length > 0) conditionRefs.push(['headers', child(ref, 'headers')]);
  if (Object.keys(headerMatch).length > 0) match.headers = headerMatch;

  const baseName = kongName ?? (typeof r.id === 'string' ? r.id : `${service.name}-route-${index}`);
  const info: RouteInfo = { name: baseName, routes: [] };
  const kinds =
    Number(methods !== undefined) +
    Number(hosts.length > 0) +
    Number(Object.keys(headers).length > 0) +
    Number(paths.length > 0) +
    ['snis', 'sources', 'destinations'].filter((k) => Array.isArray(r[k]) && (r[k] as unknown[]).length > 0).length;
  const plainHostsOnly = hosts.length > 0 && hosts.every((h) => !h.includes('*'));
  const headerCount = Math.min(Object.keys(headers).length, 255);
  const splitGroups =
    groups.length === 0 ? [{ regex: false, patterns: [] as string[], length: 0, indexes: [] }] : groups;
  splitGroups.forEach((group, g) => {
    const name = uniqueName(file, 'route', g === 0 ? baseName : `${baseName}-${g + 1}`);
    const route: Record<string, unknown> = { name, service: service.name };
    const groupMatch: Record<string, unknown> = { ...match };
    const prefix = group.patterns.length === 0 ? '/' : alternation(group.patterns);
    // A plain `/` matches every path: no path condition.
    if (!(group.patterns.length === 1 && group.patterns[0] === '/')) {
      if (group.patterns.length > 0) groupMatch.pathRegex = `${prefix}.*`;
    }
    if (Object.keys(groupMatch).length > 0) route.match = orderedMatch(groupMatch);
    const rewrite: Record<string, unknown> = {};
    const pathRewrite = upstreamPathRewrite(
      service.basePath,
      group.patterns.length === 0 ? '/' : prefix,
      stripPath,
      handling,
    );
    if (pathRewrite) rewrite.regex = pathRewrite;
    if (!preserveHost) {
      if (service.host.kind === 'fixed') rewrite.host = service.host.value;
      else rewrite.autoHost = true;
    }
    if (Object.keys(rewrite).length > 0) route.rewrite = rewrite;
    if (redirectToHttps(r)) route.redirectToHttps = true;
    route.plugins = [];
    const suffix = splitGroups.length > 1 ? ` paths[${group.indexes.join(',')}]` : '';
    route.origin = `kong:route/${kongName ?? name} (${describe(ref)})${suffix}`;
    const fieldRefs: PendingRoute['fieldRefs'] = conditionRefs.map(([field, at]) => [['match', field], at]);
    if (group.indexes.length > 0) fieldRefs.push([['match', 'pathRegex'], child(ref, 'paths', group.indexes[0]!)]);
    fieldRefs.push([['rewrite'], isSet(r.strip_path) ? child(ref, 'strip_path') : ref]);
    const pending: PendingRoute = {
      route,
      ref,
      fieldRefs,
      rank: [
        kinds,
        Number(plainHostsOnly),
        headerCount,
        Number(group.regex),
        group.regex ? regexPriority : 0,
        group.regex ? 0 : group.length,
      ],
    };
    info.routes.push(pending);
    file.pending.push(pending);
  });
  for (const key of [kongName, typeof r.id === 'string' ? r.id : undefined])
    if (key !== undefined) file.routes.set(key, info);
  return info;
}

/** `match` fields in a stable order (the golden files and `convert`'s output read better). */
function orderedMatch(m: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of ['pathRegex', 'methods', 'headers']) if (m[key] !== undefined) out[key] = m[key];
  return out;
}

function protocolsSupported(file: KongFile, r: Record<string, unknown>, ref: SourceRef): boolean {
  const { out } = file;
  if (!isSet(r.protocols)) return true;
  const protocols = stringsOf(out, r.protocols, child(ref, 'protocols'));
  const other = protocols.filter((p) => !HTTP_ROUTE_PROTOCOLS.includes(p));
  if (other.length > 0) {
    out.reportUnsupported(
      child(ref, 'protocols'),
      `protocols ${other.join(', ')} are not supported: meshgate routes HTTP (http, https, grpc, grpcs)`,
    );
    return false;
  }
  const plain = protocols.includes('http') || protocols.includes('grpc');
  const code = isSet(r.https_redirect_status_code) ? r.https_redirect_status_code : 426;
  if (!plain && code !== 308) {
    out.reportUnsupported(
      child(ref, isSet(r.https_redirect_status_code) ? 'https_redirect_status_code' : 'protocols'),
      `an HTTPS-only route answering plain HTTP with ${String(code)} is not supported: meshgate redirects with 308`,
      'set https_redirect_status_code: 308',
    );
  }
  return true;
}

/** HTTPS only (no `http`, `grpc`): plain requests are redirected (308, the only code meshgate answers with). */
function redirectToHttps(r: Record<string, unknown>): boolean {
  if (!Array.isArray(r.protocols) || r.protocols.length === 0) return false;
  return !r.protocols.includes('http') && !r.protocols.includes('grpc') && r.https_redirect_status_code === 308;
}

function methodsOf(file: KongFile, value: unknown, ref: SourceRef): string[] | undefined {
  const methods = stringsOf(file.out, value, ref);
  if (methods.length === 0) return undefined;
  const known: string[] = [];
  methods.forEach((m, i) => {
    const upper = m.toUpperCase();
    if ((HTTP_METHODS as readonly string[]).includes(upper)) {
      if (!known.includes(upper)) known.push(upper);
    } else
      file.out.reportUnsupported(
        child(ref, i),
        `method ${m} is not supported: meshgate routes ${HTTP_METHODS.join(', ')}`,
      );
  });
  return known.length > 0 ? known : undefined;
}

const escapeRegex = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * Kong's hosts as one condition on the Host header (case-insensitive, port as sent): `*.example.com`
 * any name ending in `.example.com`, `example.*` any name starting with `example.`; a host with a
 * port matches that port only, one without any port.
 */
export function hostRegex(hosts: readonly string[]): string {
  const forms = hosts.map((h) => {
    const m = /^(.*?)(?::(\d+))?$/.exec(h)!;
    const host = m[1]!;
    let pattern: string;
    if (host.startsWith('*')) pattern = `[^:]+${escapeRegex(host.slice(1))}`;
    else if (host.endsWith('*')) pattern = `${escapeRegex(host.slice(0, -1))}[^:]+`;
    else pattern = escapeRegex(host);
    return m[2] === undefined ? `${pattern}(?::\\d+)?` : `${pattern}:${m[2]}`;
  });
  return `(?i:${forms.length === 1 ? forms[0] : forms.map((f) => `(?:${f})`).join('|')})`;
}

/**
 * Kong's `headers: { name: [values] }`: one of the values (case-insensitive), for every name. `~*`
 * starts a regex found anywhere in the value.
 */
function headerConditions(file: KongFile, value: unknown, ref: SourceRef): Record<string, unknown> {
  const { out } = file;
  const conditions: Record<string, unknown> = {};
  if (!isSet(value)) return conditions;
  if (!isRecord(value)) {
    out.reportInvalid(ref, 'expected a map of header names to lists of values');
    return conditions;
  }
  for (const [name, raw] of Object.entries(value)) {
    const values = Array.isArray(raw) ? raw : [raw];
    const forms: string[] = [];
    values.forEach((v, i) => {
      if (typeof v !== 'string') {
        out.reportInvalid(child(ref, name, i), 'expected a string');
        return;
      }
      if (v.startsWith('~*')) {
        const body = v.slice(2);
        if (validRegex(file, body, child(ref, name, i))) forms.push(`.*(?:${body}).*`);
      } else forms.push(escapeRegex(v));
    });
    if (forms.length === 0) continue;
    conditions[name.toLowerCase()] = {
      regex: `(?i:${forms.length === 1 ? forms[0] : forms.map((f) => `(?:${f})`).join('|')})`,
    };
  }
  return conditions;
}

function validRegex(file: KongFile, source: string, ref: SourceRef): boolean {
  try {
    new RegExp(source);
    return true;
  } catch (e) {
    file.out.reportUnsupported(
      ref,
      `${JSON.stringify(source)} is not a regular expression meshgate reads (JavaScript syntax): ${(e as Error).message}`,
    );
    return false;
  }
}

/** One group of a route's paths: all its regexes, or its plain paths of one length (Kong splits by these). */
interface PathGroup {
  regex: boolean;
  /** Regular expression sources (plain paths escaped), each matching a prefix of the path. */
  patterns: string[];
  /** Length of the plain paths (0 for regexes). */
  length: number;
  /** Indexes in `paths`. */
  indexes: number[];
}

/** Kong's paths, grouped as Kong's router splits them: all regexes together, plain paths by length. */
function pathGroups(file: KongFile, paths: readonly string[], ref: SourceRef): PathGroup[] | undefined {
  const groups: PathGroup[] = [];
  for (const [i, p] of paths.entries()) {
    const regex = file.major >= 3 ? p.startsWith('~') : !/^[a-zA-Z0-9.\-_~/%]*$/.test(p);
    let pattern: string;
    if (regex) {
      const body = file.major >= 3 ? p.slice(1) : p;
      if (!validRegex(file, body, child(ref, i))) continue;
      // Kong anchors a path regex at the start (`^`) and not at the end.
      pattern = body.startsWith('^') ? body.slice(1) : body;
    } else {
      if (!p.startsWith('/')) {
        file.out.reportInvalid(child(ref, i), 'a path starts with / (or ~ for a regular expression)');
        continue;
      }
      pattern = escapeRegex(p);
    }
    const key = regex ? -1 : p.length;
    let group = groups.find((g) => (g.regex ? -1 : g.length) === key);
    if (!group) groups.push((group = { regex, patterns: [], length: regex ? 0 : p.length, indexes: [] }));
    if (!group.patterns.includes(pattern)) group.patterns.push(pattern);
    group.indexes.push(i);
  }
  if (paths.length > 0 && groups.length === 0) return undefined;
  return groups;
}

function alternation(patterns: readonly string[]): string {
  return patterns.length === 1 ? `(?:${patterns[0]})` : `(?:${patterns.map((p) => `(?:${p})`).join('|')})`;
}

/** A literal in a replacement string (`$` is special there). */
const literal = (s: string) => s.replace(/\$/g, '$$$$');

/**
 * Kong's leftover after the prefix, as its router cleans it (`sanitize_uri_postfix`): a leading `./`
 * or `../` goes, a leftover of `.` or `..` is empty.
 */
const SANITIZE = '(?:\\.{1,2}/|\\.{1,2}$)?';

/**
 * The upstream path Kong builds from the service path S, the matched prefix P and the request path
 * R, as one regex replacement over the (normalised) request path; undefined when it is R itself.
 *
 * path_handling v0 (`get_upstream_uri_v0`), with B = S without its trailing `/`:
 * - strip_path: S `/` gives `/` + the rest without one leading `/`. Otherwise B + `/` + that rest
 *   when the rest is not empty; when it is, B, plus `/` when R ends with `/` (and, for an S without
 *   a trailing `/`, R is longer than `/`). The `/` a replacement cannot write when the rest is not
 *   empty is captured from the path's first character by a lookbehind; the one for an empty rest is
 *   R's last character.
 * - no strip: S `/` leaves R; an S ending in `/` gives B + R; any other gives S for R `/`, else S + R.
 * path_handling v1: strip_path gives S + the rest (one `/` dropped where S ends and the rest starts
 * with one); no strip gives S + R without its leading `/`.
 */
export function upstreamPathRewrite(
  servicePath: string,
  prefix: string,
  strip: boolean,
  handling: string,
): { pattern: string; substitution: string } | undefined {
  const s = servicePath;
  const endsWithSlash = s.endsWith('/');
  const b = endsWithSlash ? s.slice(0, -1) : s;
  if (handling === 'v1') {
    if (!strip) return s === '/' ? undefined : { pattern: '^/', substitution: literal(s) };
    return {
      pattern: `^${prefix}${SANITIZE}${endsWithSlash ? '/?' : ''}(?<mgRest>.*)$`,
      substitution: `${literal(s)}$<mgRest>`,
    };
  }
  if (!strip) {
    if (s === '/') return undefined;
    return endsWithSlash
      ? { pattern: '^', substitution: literal(b) }
      : { pattern: '^(?:/$)?', substitution: literal(s) };
  }
  if (s === '/') return { pattern: `^${prefix}${SANITIZE}/?(?<mgRest>.*)$`, substitution: '/$<mgRest>' };
  const longerThanRoot = endsWithSlash ? '' : '(?<=..)';
  return {
    pattern: `^${prefix}${SANITIZE}(?:(?=.)(?<=^(?<mgSlash>/).*)|(?<=(?<mgEnd>/))$${longerThanRoot}|)/?(?<mgRest>.*)$`,
    substitution: `${literal(b)}$<mgSlash>$<mgEnd>$<mgRest>`,
  };
}

/**
 * Kong's order as meshgate priorities: each distinct rank (compared field by field, larger first)
 * gets a priority, the highest rank the highest number; routes of equal rank keep the file's order.
 * Then every route is added to the output.
 */
export function emitRoutes(file: KongFile): void {
  const ranks = [...new Set(file.pending.map((p) => p.rank.join(',')))]
    .map((k) => k.split(',').map(Number))
    .sort(compareRanks);
  const priorityOf = new Map(ranks.map((r, i) => [r.join(','), i + 1]));
  for (const p of file.pending) {
    const route = p.route;
    if (Array.isArray(route.plugins) && route.plugins.length === 0) delete route.plugins;
    // `priority` before `origin`, as the Istio converter writes them.
    const { origin, plugins, ...rest } = route;
    const ordered: Record<string, unknown> = {
      ...rest,
      ...(plugins === undefined ? {} : { plugins }),
      priority: priorityOf.get(p.rank.join(','))!,
      origin,
    };
    for (const key of Object.keys(route)) delete route[key];
    Object.assign(route, ordered);
    const path = file.out.add('routes', route, p.ref);
    for (const [field, at] of p.fieldRefs) file.out.at([...path, ...field], at);
  }
}

function compareRanks(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return 0;
}
