/**
 * Kong's declarative config (`_format_version` 1.1, 2.x, 3.0, or none: the shape deck and `kong
 * config db_import` read) as meshgate config. See README.md for what maps to what; everything else is
 * reported unsupported at its position.
 *
 * meshgate's own config also has `services`, `routes`, `consumers` and `plugins`, so a file is Kong's
 * only when its shape says so (`detect`): `_format_version`, a top-level list only Kong has
 * (`upstreams`, `jwt_secrets`…), or Kong's fields on its entities (a service's `url` or `host`, routes
 * nested in a service, a route's `paths`/`hosts`/`methods`/`strip_path`…, a consumer's `username`, a
 * plugin with Kong's name or references, snake_case plugin settings). Anything else stays native;
 * `--from kong` forces the reading.
 */
import {
  type Conversion,
  child,
  type ForeignFile,
  type ForeignFormat,
  isRecord,
  listOf,
  type SourceRef,
} from '../shared/format.ts';
import type { KongFile } from './common.ts';
import {
  CREDENTIAL_LISTS,
  convertConsumer,
  convertTopCredential,
  tidyConsumer,
  UNSUPPORTED_CREDENTIALS,
} from './consumers.ts';
import { KONG_PROXY_ADDRESS, KONG_PROXY_PORT } from './defaults.ts';
import { convertPlugin, KONG_PLUGINS, type PluginScope } from './plugins.ts';
import { convertRoute, emitRoutes } from './routes.ts';
import { convertService, convertUpstream } from './services.ts';

/** Top-level lists of Kong's declarative config that meshgate's config does not have. */
const KONG_ONLY_SECTIONS = [
  'upstreams',
  'targets',
  'certificates',
  'ca_certificates',
  'snis',
  'vaults',
  'key_sets',
  'keys',
  'consumer_groups',
  'parameters',
  'filter_chains',
  'partials',
  ...CREDENTIAL_LISTS,
  ...UNSUPPORTED_CREDENTIALS,
];
/** Top-level keys both formats have. */
const SHARED_SECTIONS = ['services', 'routes', 'consumers', 'plugins'];
const META = ['_format_version', '_transform', '_comment', '_info', '_workspace'];

/** meshgate's own top-level sections that Kong's config never has. */
const NATIVE_ONLY = /^(listeners|admin|plans|observability|redis|metering|authorizationPolicies|mesh|\$schema)\s*:/m;
const TOP_LEVEL = new RegExp(`^["']?(${[...SHARED_SECTIONS, ...KONG_ONLY_SECTIONS].join('|')})["']?\\s*:`, 'm');
/** Field names of Kong's entities (snake_case keys included: meshgate's are camelCase). */
const KONG_FIELD =
  /\b(url|host|hosts|paths|methods|headers|username|custom_id|protocols|instance_name)["']?\s*:|[a-z]_[a-z0-9_]+["']?\s*:|rate-limiting|proxy-cache|correlation-id|request-size-limiting|prometheus/;

/** Kong plugin names meshgate does not use for its own plugins. */
const KONG_ONLY_PLUGIN_NAMES = new Set([
  ...KONG_PLUGINS.filter(
    (n) =>
      !['jwt', 'key-auth', 'acl', 'cors', 'ip-restriction', 'request-transformer', 'response-transformer'].includes(n),
  ),
  'basic-auth',
  'hmac-auth',
  'oauth2',
  'ldap-auth',
  'session',
  'request-termination',
  'response-ratelimiting',
  'bot-detection',
  'file-log',
  'http-log',
  'tcp-log',
  'udp-log',
  'syslog',
  'statsd',
  'datadog',
  'zipkin',
  'opentelemetry',
  'pre-function',
  'post-function',
  'aws-lambda',
  'azure-functions',
  'grpc-gateway',
  'grpc-web',
  'acme',
  'redirect',
]);

export const kongFormat: ForeignFormat = {
  name: 'kong',
  defaultListener: { name: 'kong-proxy', address: KONG_PROXY_ADDRESS, port: KONG_PROXY_PORT },
  sniff: (text) =>
    /_format_version/.test(text) || (!NATIVE_ONLY.test(text) && TOP_LEVEL.test(text) && KONG_FIELD.test(text)),
  detect: (documents) => documents.length === 1 && isKongShaped(documents[0]),
  convert: convertKongFile,
};

/** The detection rule (README "Detection"): false for anything meshgate's own config could be. */
export function isKongShaped(value: unknown): boolean {
  if (!isRecord(value)) return false;
  if ('_format_version' in value) return true;
  const keys = Object.keys(value);
  if (
    keys.length === 0 ||
    keys.some((k) => !SHARED_SECTIONS.includes(k) && !KONG_ONLY_SECTIONS.includes(k) && !META.includes(k))
  )
    return false;
  if (keys.some((k) => KONG_ONLY_SECTIONS.includes(k))) return true;
  const list = (v: unknown) => (Array.isArray(v) ? v.filter(isRecord) : []);
  const services = list(value.services);
  const routes = [...list(value.routes), ...services.flatMap((s) => list(s.routes))];
  const consumers = list(value.consumers);
  const plugins = [
    ...list(value.plugins),
    ...services.flatMap((s) => list(s.plugins)),
    ...routes.flatMap((r) => list(r.plugins)),
    ...consumers.flatMap((c) => list(c.plugins)),
  ];
  return (
    services.some(
      (s) => 'url' in s || 'host' in s || 'routes' in s || /^(https?|grpcs?|tcp|tls|udp)$/.test(String(s.protocol)),
    ) ||
    routes.some((r) =>
      [
        'paths',
        'hosts',
        'methods',
        'headers',
        'strip_path',
        'preserve_host',
        'regex_priority',
        'path_handling',
        'protocols',
        'snis',
        'sources',
        'expression',
      ].some((k) => k in r),
    ) ||
    consumers.some((c) =>
      ['username', 'custom_id', ...CREDENTIAL_LISTS, ...UNSUPPORTED_CREDENTIALS].some((k) => k in c),
    ) ||
    plugins.some(
      (p) =>
        KONG_ONLY_PLUGIN_NAMES.has(String(p.name)) ||
        ['service', 'route', 'consumer', 'protocols', 'instance_name'].some((k) => k in p) ||
        (isRecord(p.config) &&
          Object.keys(p.config).some((k) => /^[a-z][a-z0-9]*_[a-z0-9_]+$/.test(k) && k !== 'json_types')),
    )
  );
}

const FORMAT_VERSION = /^(1\.1|2\.\d+|3\.0)$/;

function convertKongFile(file: ForeignFile, out: Conversion): void {
  const root = file.values[0];
  const rootRef: SourceRef = { doc: 0, path: [] };
  if (!isRecord(root)) {
    out.reportInvalid(rootRef, 'expected Kong declarative config (a map with services, routes, consumers, plugins…)');
    return;
  }
  const kong: KongFile = {
    out,
    major: 3,
    services: new Map(),
    upstreams: new Map(),
    consumers: new Map(),
    routes: new Map(),
    pending: [],
    names: new Map(),
  };
  for (const key of Object.keys(root)) {
    if (META.includes(key) || SHARED_SECTIONS.includes(key) || ['upstreams', ...CREDENTIAL_LISTS].includes(key))
      continue;
    out.reportUnsupported(
      child(rootRef, key),
      `${key} is not supported`,
      key === 'certificates' || key === 'snis' || key === 'ca_certificates'
        ? 'give the certificate to a native listener’s tls'
        : undefined,
    );
  }
  if (root._format_version !== undefined) {
    const version = String(root._format_version);
    if (FORMAT_VERSION.test(version)) kong.major = Number(version.split('.')[0]);
    else
      out.reportUnsupported(
        child(rootRef, '_format_version'),
        `_format_version ${JSON.stringify(root._format_version)} is not supported`,
        'meshgate reads 1.1, 2.x and 3.0',
      );
  }
  if (root._workspace !== undefined && root._workspace !== 'default')
    out.reportUnsupported(child(rootRef, '_workspace'), 'workspaces are not supported: meshgate has one set of routes');

  // Upstreams first: a service whose host names one takes its targets.
  for (const [u, ref] of items(out, root, rootRef, 'upstreams')) convertUpstream(kong, u, ref);
  // Plugins wait until every route, service and consumer they may name is known.
  const plugins: { value: unknown; ref: SourceRef; scope: PluginScope }[] = [];
  const nestedPlugins = (value: unknown, ref: SourceRef, scope: PluginScope) => {
    if (isRecord(value))
      for (const [p, at] of items(out, value, ref, 'plugins')) plugins.push({ value: p, ref: at, scope });
  };
  for (const [c, ref] of items(out, root, rootRef, 'consumers')) {
    const consumer = convertConsumer(kong, c, ref);
    if (consumer) nestedPlugins(c, ref, { kind: 'consumer', consumer });
  }
  for (const list of CREDENTIAL_LISTS)
    for (const [v, ref] of items(out, root, rootRef, list)) convertTopCredential(kong, list, v, ref);
  let routeIndex = 0;
  for (const [[s, ref], i] of items(out, root, rootRef, 'services').map((e, i) => [e, i] as const)) {
    const service = convertService(kong, s, ref, i);
    if (!service || !isRecord(s)) continue;
    nestedPlugins(s, ref, { kind: 'service', service });
    for (const [r, routeRef] of items(out, s, ref, 'routes')) {
      const route = convertRoute(kong, r, routeRef, routeIndex++, service);
      if (route) nestedPlugins(r, routeRef, { kind: 'route', route });
    }
  }
  for (const [r, ref] of items(out, root, rootRef, 'routes')) {
    const route = convertRoute(kong, r, ref, routeIndex++, undefined);
    if (route) nestedPlugins(r, ref, { kind: 'route', route });
  }
  for (const [p, ref] of items(out, root, rootRef, 'plugins'))
    plugins.push({ value: p, ref, scope: { kind: 'global' } });
  for (const { value, ref, scope } of plugins) convertPlugin(kong, value, ref, scope);

  emitRoutes(kong);
  for (const service of out.config.services) {
    const { plugins: list, origin } = service;
    delete service.plugins;
    delete service.origin;
    if (Array.isArray(list) && list.length > 0) service.plugins = list;
    service.origin = origin;
  }
  for (const info of new Set(kong.consumers.values())) tidyConsumer(info);
  if (kong.redis) {
    out.config.redis = kong.redis.config;
    out.at(['redis'], kong.redis.ref);
  }
}

/** The entries of the list `key` of `parent`, each with its source reference. */
function items(out: Conversion, parent: Record<string, unknown>, ref: SourceRef, key: string): [unknown, SourceRef][] {
  return listOf(out, parent[key], child(ref, key)).map((v, i) => [v, child(ref, key, i)]);
}
