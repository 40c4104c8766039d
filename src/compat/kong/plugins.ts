/**
 * Kong plugins → meshgate plugin entries, at the same scope (global, service, route, consumer), each
 * field mapped with Kong's defaults written out where meshgate's differ. A field meshgate cannot honour
 * is reported unless it holds Kong's default (deck writes every default into its files).
 */
import { type Conversion, child, fieldsOf, isRecord, type SourceRef } from '../shared/format.ts';
import {
  type ConsumerInfo,
  integerOf,
  isSet,
  type KongFile,
  notSupported,
  onlyDefault,
  type RouteInfo,
  referenceKeys,
  type ServiceInfo,
  sameValue,
  stringsOf,
} from './common.ts';
import {
  KONG_CACHE_CONTENT_TYPES,
  KONG_CACHE_REQUEST_METHODS,
  KONG_CACHE_RESPONSE_CODES,
  KONG_CACHE_TTL_S,
  KONG_CORRELATION_HEADER,
  KONG_CORS_METHODS,
  KONG_JWT_HEADER_NAMES,
  KONG_JWT_KEY_CLAIM,
  KONG_JWT_URI_PARAM_NAMES,
  KONG_KEY_NAMES,
  KONG_RATE_LIMIT_MESSAGE,
  KONG_RATE_LIMIT_STATUS,
  KONG_REDIS_PORT,
  KONG_REDIS_TIMEOUT_MS,
  KONG_SIZE_LIMIT,
  KONG_SIZE_UNITS,
} from './defaults.ts';

export type PluginScope =
  | { kind: 'global' }
  | { kind: 'service'; service: ServiceInfo }
  | { kind: 'route'; route: RouteInfo }
  | { kind: 'consumer'; consumer: ConsumerInfo };

const PLUGIN_FIELDS = [
  'id',
  'created_at',
  'updated_at',
  'name',
  'instance_name',
  'config',
  'enabled',
  'protocols',
  'service',
  'route',
  'consumer',
  'consumer_group',
  'tags',
  'ordering',
];

/** A converted plugin: meshgate's entry, or `null` for a plugin whose job meshgate always does (prometheus). */
type Converted = { name: string; config: Record<string, unknown>; phase?: string; order?: number } | null;

interface PluginContext {
  file: KongFile;
  out: Conversion;
  /** The plugin's `config`. */
  ref: SourceRef;
  scope: PluginScope;
}

type PluginConverter = (p: PluginContext, config: Record<string, unknown>) => Converted | undefined;

const CONVERTERS: Record<string, PluginConverter> = {
  'rate-limiting': rateLimiting,
  jwt,
  'key-auth': keyAuth,
  acl,
  cors,
  'proxy-cache': proxyCache,
  'request-transformer': (p, c) => transformer(p, c, 'request'),
  'response-transformer': (p, c) => transformer(p, c, 'response'),
  'ip-restriction': ipRestriction,
  'request-size-limiting': requestSizeLimiting,
  'correlation-id': correlationId,
  prometheus: () => null,
};

/** Plugins Kong's schemas forbid on a consumer (`typedefs.no_consumer`): they find the consumer. */
const NO_CONSUMER = new Set(['jwt', 'key-auth', 'acl', 'cors']);

/** The Kong plugins meshgate converts. */
export const KONG_PLUGINS = Object.keys(CONVERTERS);

/**
 * Converts one plugin entity. `scope` is where it is nested (a service, route or consumer), or global
 * for the top-level list, whose entries may name their service, route or consumer.
 */
export function convertPlugin(file: KongFile, value: unknown, ref: SourceRef, nested: PluginScope): void {
  const { out } = file;
  const p = fieldsOf(out, value, ref, PLUGIN_FIELDS);
  if (!isRecord(value)) return;
  if (typeof p.name !== 'string') {
    out.reportInvalid(ref, 'a plugin needs a name');
    return;
  }
  const convert = Object.hasOwn(CONVERTERS, p.name) ? CONVERTERS[p.name] : undefined;
  if (!convert) {
    out.reportUnsupported(
      child(ref, 'name'),
      `plugin ${p.name} is not supported`,
      `meshgate converts ${KONG_PLUGINS.join(', ')}`,
    );
    return;
  }
  if (p.enabled === false) return; // Kong runs a disabled plugin nowhere.
  const scope = pluginScope(file, p, ref, nested);
  if (!scope) return;
  if (scope.kind === 'consumer' && NO_CONSUMER.has(p.name)) {
    out.reportInvalid(ref, `Kong does not run ${p.name} for one consumer`, 'set it on a route, a service or globally');
    return;
  }
  notSupported(out, p, ref, 'consumer_group', 'meshgate has no consumer groups');
  notSupported(out, p, ref, 'ordering', 'meshgate runs plugins in a fixed order of phases');
  if (isSet(p.protocols)) {
    const protocols = stringsOf(out, p.protocols, child(ref, 'protocols'));
    if (!protocols.includes('http') || !protocols.includes('https'))
      out.reportUnsupported(
        child(ref, 'protocols'),
        `a plugin for ${protocols.join(', ')} only is not supported: meshgate runs a route's plugins for every request`,
      );
  }
  const configRef = child(ref, 'config');
  const config = isSet(p.config) ? fieldsOf(out, p.config, configRef, anyKey(p.config)) : {};
  const converted = convert({ file, out, ref: configRef, scope }, config);
  if (converted === undefined || converted === null) return;
  const entry: Record<string, unknown> = { name: converted.name, config: converted.config };
  if (converted.phase !== undefined) entry.phase = converted.phase;
  if (converted.order !== undefined) entry.order = converted.order;
  attach(file, scope, entry, ref);
}

function anyKey(value: unknown): string[] {
  return isRecord(value) ? Object.keys(value) : [];
}

/** Where a plugin applies: the scope it is nested in, or the one its references name. */
function pluginScope(
  file: KongFile,
  p: Record<string, unknown>,
  ref: SourceRef,
  nested: PluginScope,
): PluginScope | undefined {
  const { out } = file;
  const named: { service?: ServiceInfo; route?: RouteInfo; consumer?: ConsumerInfo } = {};
  for (const key of ['service', 'route', 'consumer'] as const) {
    if (!isSet(p[key])) continue;
    const keys = referenceKeys(p[key]);
    const found =
      key === 'service'
        ? keys.map((k) => file.services.get(k)).find(Boolean)
        : key === 'route'
          ? keys.map((k) => file.routes.get(k)).find(Boolean)
          : keys.map((k) => file.consumers.get(k)).find(Boolean);
    if (!found) {
      // A route of a disabled service is not converted: neither are its plugins.
      if (key === 'route' || key === 'service') {
        out.reportInvalid(child(ref, key), `no ${key} ${JSON.stringify(p[key])} in this file`);
      } else out.reportInvalid(child(ref, key), `no consumer ${JSON.stringify(p[key])} in this file`);
      return undefined;
    }
    (named as Record<string, unknown>)[key] = found;
  }
  const service = nested.kind === 'service' ? nested.service : named.service;
  const route = nested.kind === 'route' ? nested.route : named.route;
  const consumer = nested.kind === 'consumer' ? nested.consumer : named.consumer;
  if (consumer && (service || route)) {
    out.reportUnsupported(
      child(ref, nested.kind === 'consumer' ? (named.route ? 'route' : 'service') : 'consumer'),
      'a plugin for one consumer on one service or route is not supported: meshgate’s consumer plugins apply on every route',
    );
    return undefined;
  }
  if (route) return { kind: 'route', route };
  if (service) return { kind: 'service', service };
  if (consumer) return { kind: 'consumer', consumer };
  return { kind: 'global' };
}

function attach(file: KongFile, scope: PluginScope, entry: Record<string, unknown>, ref: SourceRef): void {
  const { out } = file;
  switch (scope.kind) {
    case 'global':
      out.add('plugins', entry, ref);
      return;
    case 'service': {
      const list = scope.service.config.plugins as Record<string, unknown>[];
      list.push(entry);
      out.at([...scope.service.path, 'plugins', list.length - 1], ref);
      return;
    }
    case 'consumer': {
      const list = scope.consumer.config.plugins as Record<string, unknown>[];
      list.push(entry);
      out.at([...scope.consumer.path, 'plugins', list.length - 1], ref);
      return;
    }
    case 'route':
      for (const pending of scope.route.routes) {
        const list = pending.route.plugins as Record<string, unknown>[];
        list.push(structuredClone(entry));
        pending.fieldRefs.push([['plugins', list.length - 1], ref]);
      }
  }
}

/** The counter Kong keys a rate-limiting plugin's counts by: its own scope (route, service, or none). */
function counterGroup(scope: PluginScope): string {
  switch (scope.kind) {
    case 'global':
      return 'kong:global';
    case 'service':
      return `kong:service:${scope.service.name}`;
    case 'route':
      return `kong:route:${scope.route.name}`;
    case 'consumer':
      return `kong:consumer:${scope.consumer.name}`;
  }
}

const RATE_PERIODS = ['second', 'minute', 'hour', 'day', 'month', 'year'] as const;

function rateLimiting(p: PluginContext, c: Record<string, unknown>): Converted | undefined {
  const { out, ref } = p;
  const config: Record<string, unknown> = {};
  for (const period of RATE_PERIODS) {
    if (!isSet(c[period])) continue;
    const n = c[period];
    if (typeof n === 'number' && Number.isInteger(n) && n >= 1) config[period] = n;
    else
      out.reportUnsupported(
        child(ref, period),
        `${period}: ${JSON.stringify(n)} is not supported: meshgate counts whole requests (1 or more)`,
      );
  }
  if (Object.keys(config).length === 0) out.reportInvalid(ref, 'rate-limiting needs a limit (second … year)');
  const limitBy = isSet(c.limit_by) ? String(c.limit_by) : 'consumer';
  if (['consumer', 'credential', 'ip', 'service'].includes(limitBy)) config.by = limitBy;
  else if (limitBy === 'header') {
    config.by = 'header';
    if (typeof c.header_name === 'string') config.header = c.header_name;
    else out.reportInvalid(child(ref, 'header_name'), 'limit_by: header needs header_name');
  } else
    out.reportUnsupported(
      child(ref, 'limit_by'),
      `limit_by: ${limitBy} is not supported`,
      'count by consumer, credential, ip, service or header',
    );
  // Kong's counts are fixed windows (calendar seconds … years, UTC), kept per plugin scope.
  config.algorithm = 'fixed';
  config.group = counterGroup(p.scope);
  const policy = isSet(c.policy) ? String(c.policy) : 'local';
  if (policy === 'redis') {
    config.store = 'redis';
    redisOf(p, c);
  } else if (policy !== 'local')
    out.reportUnsupported(
      child(ref, 'policy'),
      `policy: ${policy} is not supported`,
      'use local (this gateway) or redis (shared by every gateway on it)',
    );
  if (c.fault_tolerant === false) config.failOpen = false;
  if (c.hide_client_headers === true) config.headers = false;
  else config.periodHeaders = true;
  onlyDefault(out, c, ref, 'error_code', KONG_RATE_LIMIT_STATUS, 'meshgate refuses with 429');
  onlyDefault(out, c, ref, 'error_message', KONG_RATE_LIMIT_MESSAGE, 'meshgate answers a problem+json body');
  onlyDefault(out, c, ref, 'sync_rate', -1, 'meshgate counts every request as it passes');
  for (const field of Object.keys(c))
    if (
      ![
        ...RATE_PERIODS,
        'limit_by',
        'header_name',
        'path',
        'policy',
        'fault_tolerant',
        'redis',
        'hide_client_headers',
        'error_code',
        'error_message',
        'sync_rate',
        ...REDIS_SHORTHANDS,
      ].includes(field)
    )
      out.reportUnsupported(child(ref, field), `field "${field}" is not supported`);
  return { name: 'rate-limit', config };
}

/** Kong's older flat Redis fields (`redis_host`…), still read by Kong 3. */
const REDIS_SHORTHANDS = [
  'redis_host',
  'redis_port',
  'redis_password',
  'redis_username',
  'redis_ssl',
  'redis_ssl_verify',
  'redis_server_name',
  'redis_timeout',
  'redis_database',
];

/** policy: redis → the top-level `redis` block (meshgate has one; every plugin of the file must name the same). */
function redisOf(p: PluginContext, c: Record<string, unknown>): void {
  const { out, ref, file } = p;
  const redisRef = child(ref, 'redis');
  const r = isSet(c.redis)
    ? {
        ...fieldsOf(out, c.redis, redisRef, [
          'host',
          'port',
          'timeout',
          'username',
          'password',
          'database',
          'ssl',
          'ssl_verify',
          'server_name',
        ]),
      }
    : {};
  for (const flat of REDIS_SHORTHANDS) if (isSet(c[flat]) && !isSet(r[flat.slice(6)])) r[flat.slice(6)] = c[flat];
  if (typeof r.host !== 'string' || r.host === '') {
    out.reportInvalid(redisRef, 'policy: redis needs redis.host');
    return;
  }
  const port = isSet(r.port)
    ? (integerOf(out, r.port, child(redisRef, 'port'), 0, 65535) ?? KONG_REDIS_PORT)
    : KONG_REDIS_PORT;
  const database = isSet(r.database) ? (integerOf(out, r.database, child(redisRef, 'database'), 0, 1 << 30) ?? 0) : 0;
  const timeout = isSet(r.timeout)
    ? (integerOf(out, r.timeout, child(redisRef, 'timeout'), 0, 2 ** 31 - 2) ?? KONG_REDIS_TIMEOUT_MS)
    : KONG_REDIS_TIMEOUT_MS;
  if (r.ssl === true && r.ssl_verify !== true)
    out.reportUnsupported(
      child(redisRef, 'ssl_verify'),
      'TLS to Redis without verifying its certificate is not supported: meshgate verifies it',
      'set ssl_verify: true',
    );
  notSupported(out, r, redisRef, 'server_name', 'meshgate sends the host as SNI');
  const auth =
    typeof r.password === 'string' && r.password !== ''
      ? `${encodeURIComponent(typeof r.username === 'string' ? r.username : '')}:${encodeURIComponent(r.password)}@`
      : '';
  const host = r.host.includes(':') ? `[${r.host}]` : r.host;
  const redis: Record<string, unknown> = {
    url: `${r.ssl === true ? 'rediss' : 'redis'}://${auth}${host}:${port}${database === 0 ? '' : `/${database}`}`,
    timeout: `${timeout}ms`,
  };
  if (!file.redis) {
    file.redis = { config: redis, ref: isSet(c.redis) ? redisRef : ref };
    return;
  }
  if (!sameValue(file.redis.config, redis))
    out.reportUnsupported(
      redisRef,
      'a second Redis is not supported: meshgate’s plugins share one top-level redis',
      'point every redis policy of the file at the same Redis',
    );
}

function jwt(p: PluginContext, c: Record<string, unknown>): Converted | undefined {
  const { out, ref } = p;
  const known = [
    'uri_param_names',
    'cookie_names',
    'header_names',
    'key_claim_name',
    'secret_is_base64',
    'claims_to_verify',
    'anonymous',
    'run_on_preflight',
    'maximum_expiration',
    'realm',
  ];
  unknownFields(out, c, ref, known);
  const query = isSet(c.uri_param_names)
    ? stringsOf(out, c.uri_param_names, child(ref, 'uri_param_names'))
    : [...KONG_JWT_URI_PARAM_NAMES];
  const cookies = stringsOf(out, c.cookie_names, child(ref, 'cookie_names'));
  const headers = isSet(c.header_names)
    ? stringsOf(out, c.header_names, child(ref, 'header_names'))
    : [...KONG_JWT_HEADER_NAMES];
  // Kong's order: query parameters, then cookies, then headers.
  const tokenFrom = [
    ...query.map((q) => ({ query: q })),
    ...cookies.map((k) => ({ cookie: k })),
    ...headers.map((h) => ({ header: h.toLowerCase() })),
  ];
  onlyDefault(out, c, ref, 'key_claim_name', KONG_JWT_KEY_CLAIM, 'meshgate finds a token’s consumer by its iss claim');
  onlyDefault(
    out,
    c,
    ref,
    'secret_is_base64',
    false,
    'meshgate uses a secret as written',
    'write the decoded secret in jwt_secrets',
  );
  notSupported(out, c, ref, 'anonymous', 'meshgate refuses a request without a valid token');
  onlyDefault(out, c, ref, 'run_on_preflight', true, 'meshgate authenticates every request the route gets');
  onlyDefault(out, c, ref, 'maximum_expiration', 0, 'meshgate does not bound a token’s lifetime');
  notSupported(out, c, ref, 'realm', 'meshgate’s WWW-Authenticate names its own realm');
  const verify = stringsOf(out, c.claims_to_verify, child(ref, 'claims_to_verify'));
  const config: Record<string, unknown> = {
    tokenFrom: tokenFrom.length > 0 ? tokenFrom : [{ header: 'authorization' }],
    // Kong checks exp only when asked to, and with no leeway.
    requireExpiration: verify.includes('exp'),
    clockSkew: '0s',
  };
  if (tokenFrom.length === 0) out.reportInvalid(ref, 'jwt needs somewhere to find a token');
  return { name: 'jwt', config };
}

function keyAuth(p: PluginContext, c: Record<string, unknown>): Converted | undefined {
  const { out, ref } = p;
  unknownFields(out, c, ref, [
    'key_names',
    'hide_credentials',
    'anonymous',
    'key_in_header',
    'key_in_query',
    'key_in_body',
    'run_on_preflight',
    'realm',
  ]);
  const names = isSet(c.key_names) ? stringsOf(out, c.key_names, child(ref, 'key_names')) : [...KONG_KEY_NAMES];
  const where: string[] = [];
  if (c.key_in_header !== false) where.push('header');
  if (c.key_in_query !== false) where.push('query');
  if (where.length === 0)
    out.reportUnsupported(child(ref, 'key_in_header'), 'keys read from the body only are not supported');
  onlyDefault(out, c, ref, 'key_in_body', false, 'meshgate reads keys from headers and the query string');
  notSupported(out, c, ref, 'anonymous', 'meshgate refuses a request without a valid key');
  onlyDefault(out, c, ref, 'run_on_preflight', true, 'meshgate authenticates every request the route gets');
  notSupported(out, c, ref, 'realm', 'meshgate’s WWW-Authenticate names its own realm');
  return {
    name: 'key-auth',
    // Kong passes the key upstream unless hide_credentials; meshgate hides it unless told.
    config: {
      keyNames: names,
      in: where.length > 0 ? where : ['header'],
      hideCredentials: c.hide_credentials === true,
    },
  };
}

function acl(p: PluginContext, c: Record<string, unknown>): Converted | undefined {
  const { out, ref } = p;
  unknownFields(out, c, ref, [
    'allow',
    'deny',
    'hide_groups_header',
    'always_use_authenticated_groups',
    'whitelist',
    'blacklist',
  ]);
  onlyDefault(out, c, ref, 'hide_groups_header', false, 'meshgate always sends X-Consumer-Groups');
  onlyDefault(out, c, ref, 'always_use_authenticated_groups', false, 'meshgate’s groups are the consumer’s');
  // Kong before 2.1 said whitelist and blacklist.
  const allow = stringsOf(out, c.allow ?? c.whitelist, child(ref, isSet(c.allow) ? 'allow' : 'whitelist'));
  const deny = stringsOf(out, c.deny ?? c.blacklist, child(ref, isSet(c.deny) ? 'deny' : 'blacklist'));
  if (allow.length > 0 && deny.length > 0) {
    out.reportInvalid(ref, 'acl takes allow or deny, not both');
    return undefined;
  }
  if (allow.length === 0 && deny.length === 0) {
    out.reportInvalid(ref, 'acl needs allow or deny');
    return undefined;
  }
  return { name: 'acl', config: allow.length > 0 ? { allow: [...new Set(allow)] } : { deny: [...new Set(deny)] } };
}

function cors(p: PluginContext, c: Record<string, unknown>): Converted | undefined {
  const { out, ref } = p;
  unknownFields(out, c, ref, [
    'origins',
    'headers',
    'exposed_headers',
    'methods',
    'max_age',
    'credentials',
    'private_network',
    'preflight_continue',
    'allow_origin_absent',
  ]);
  const origins = stringsOf(out, c.origins, child(ref, 'origins'));
  const config: Record<string, unknown> = {};
  if (origins.length === 0 || origins.includes('*')) config.origins = ['*'];
  else {
    const kept: string[] = [];
    origins.forEach((o, i) => {
      // Kong reads an origin with other characters than these as a regex, one without a scheme by host.
      if (/^[A-Za-z0-9.:/-]+$/.test(o) && o.includes('://')) kept.push(o.replace(/\/$/, ''));
      else
        out.reportUnsupported(
          child(ref, 'origins', i),
          `origin ${JSON.stringify(o)} is not supported: meshgate matches origins exactly (scheme://host[:port]), or https://*.example.com`,
        );
    });
    if (kept.length === 0) return undefined;
    config.origins = kept;
  }
  config.methods = isSet(c.methods) ? stringsOf(out, c.methods, child(ref, 'methods')) : [...KONG_CORS_METHODS];
  if (isSet(c.headers)) config.headers = stringsOf(out, c.headers, child(ref, 'headers'));
  if (isSet(c.exposed_headers))
    config.exposedHeaders = stringsOf(out, c.exposed_headers, child(ref, 'exposed_headers'));
  if (isSet(c.max_age)) {
    const n = integerOf(out, c.max_age, child(ref, 'max_age'), 0, 86400);
    if (n !== undefined) config.maxAge = n;
  }
  if (c.credentials === true) config.credentials = true;
  onlyDefault(out, c, ref, 'private_network', false, 'meshgate does not answer Private Network Access preflights');
  onlyDefault(out, c, ref, 'preflight_continue', false, 'meshgate answers preflights itself');
  onlyDefault(out, c, ref, 'allow_origin_absent', true, 'meshgate adds CORS headers only to requests with an Origin');
  return { name: 'cors', config };
}

function proxyCache(p: PluginContext, c: Record<string, unknown>): Converted | undefined {
  const { out, ref } = p;
  unknownFields(out, c, ref, [
    'response_code',
    'request_method',
    'content_type',
    'cache_ttl',
    'strategy',
    'cache_control',
    'ignore_uri_case',
    'storage_ttl',
    'memory',
    'vary_query_params',
    'vary_headers',
    'response_headers',
  ]);
  const codes = isSet(c.response_code) ? c.response_code : [...KONG_CACHE_RESPONSE_CODES];
  const statuses: number[] = [];
  if (Array.isArray(codes))
    codes.forEach((n, i) => {
      if (typeof n === 'number' && n >= 200 && n <= 599 && n !== 206 && n !== 304) statuses.push(n);
      else
        out.reportUnsupported(child(ref, 'response_code', i), `caching status ${JSON.stringify(n)} is not supported`);
    });
  const config: Record<string, unknown> = {
    statuses: statuses.length > 0 ? [...new Set(statuses)] : [200],
    // Kong stores a response for cache_ttl whatever it says of its own lifetime (cache_control off).
    ttl: `${isSet(c.cache_ttl) ? (integerOf(out, c.cache_ttl, child(ref, 'cache_ttl'), 1, 2 ** 31 - 1) ?? KONG_CACHE_TTL_S) : KONG_CACHE_TTL_S}s`,
    // Kong's cache key holds the consumer; a request with credentials is cached for its consumer.
    perConsumer: true,
    cacheAuthorized: true,
  };
  onlyDefault(out, c, ref, 'request_method', [...KONG_CACHE_REQUEST_METHODS], 'meshgate caches GET and HEAD');
  onlyDefault(
    out,
    c,
    ref,
    'content_type',
    [...KONG_CACHE_CONTENT_TYPES],
    'meshgate stores responses of any content type',
  );
  if (isSet(c.strategy) && c.strategy !== 'memory')
    out.reportUnsupported(child(ref, 'strategy'), `strategy ${String(c.strategy)} is not supported`, 'use memory');
  onlyDefault(out, c, ref, 'ignore_uri_case', false, 'meshgate’s cache key keeps the path’s case');
  notSupported(
    out,
    c,
    ref,
    'storage_ttl',
    'meshgate keeps an entry for its lifetime (one more when it has a validator)',
  );
  notSupported(out, c, ref, 'vary_query_params', 'meshgate’s cache key holds the whole query string');
  if (isSet(c.vary_headers)) {
    const headers = stringsOf(out, c.vary_headers, child(ref, 'vary_headers'));
    if (headers.length > 0) config.keyHeaders = headers.map((h) => h.toLowerCase());
  }
  if (isRecord(c.response_headers)) {
    const h = fieldsOf(out, c.response_headers, child(ref, 'response_headers'), [
      'age',
      'X-Cache-Status',
      'X-Cache-Key',
    ]);
    for (const key of ['age', 'X-Cache-Status'])
      if (h[key] === false)
        out.reportUnsupported(
          child(ref, 'response_headers', key),
          `meshgate always sends ${key === 'age' ? 'Age' : key}`,
        );
  }
  return { name: 'cache', config };
}

function transformer(
  p: PluginContext,
  c: Record<string, unknown>,
  kind: 'request' | 'response',
): Converted | undefined {
  const { out, ref } = p;
  const operations = ['remove', 'rename', 'replace', 'add', 'append'] as const;
  unknownFields(out, c, ref, kind === 'request' ? [...operations, 'http_method'] : [...operations, 'allow']);
  if (kind === 'request') notSupported(out, c, ref, 'http_method', 'meshgate forwards the client’s method');
  else if (isRecord(c.allow) && stringsOf(out, c.allow.json, child(ref, 'allow', 'json')).length > 0)
    out.reportUnsupported(child(ref, 'allow'), 'allow.json is not supported', 'remove the fields you do not want');
  const config: Record<string, unknown> = {};
  for (const op of operations) {
    if (!isSet(c[op])) continue;
    const at = child(ref, op);
    const lists = kind === 'request' ? ['body', 'headers', 'querystring'] : ['json', 'headers'];
    const extra = op === 'replace' && kind === 'request' ? ['uri'] : [];
    const typed = kind === 'response' && ['replace', 'add', 'append'].includes(op) ? ['json_types'] : [];
    const f = fieldsOf(out, c[op], at, [...lists, ...extra, ...typed]);
    const converted: Record<string, unknown> = {};
    for (const list of lists) {
      const entries = stringsOf(out, f[list], child(at, list));
      if (entries.length === 0) continue;
      const values =
        op === 'remove' || op === 'rename' ? entries : entries.map((e, i) => templateOf(out, e, child(at, list, i)));
      // Kong's `body` is a JSON, form or multipart body; meshgate rewrites JSON ones (README).
      converted[list === 'body' ? 'json' : list] = values.filter((v): v is string => v !== undefined);
    }
    if (typeof f.uri === 'string') {
      const uri = templateOf(out, f.uri, child(at, 'uri'));
      if (uri !== undefined) converted.uri = uri;
    }
    if (isSet(f.json_types)) {
      const types = stringsOf(out, f.json_types, child(at, 'json_types'));
      if (types.length > 0) converted.json_types = types;
    }
    if (Object.keys(converted).length > 0) config[op] = converted;
  }
  return { name: `${kind}-transformer`, config };
}

/**
 * A Kong template value (`$(headers.x_user)`, `$(query_params["page"])`) in meshgate's template
 * syntax (`$(headers.x-user)`, `$(query.page)`); other Lua expressions are unsupported. A `$` that
 * starts no template is written `$$`.
 */
function templateOf(out: Conversion, value: string, ref: SourceRef): string | undefined {
  let result = '';
  let last = 0;
  let ok = true;
  for (const m of value.matchAll(/\$\(([^()]*)\)/g)) {
    result += value.slice(last, m.index).replace(/\$/g, '$$$$');
    last = m.index + m[0].length;
    const expr = m[1]!.trim();
    const ref2 = /^(headers|query_params)(?:\.([A-Za-z0-9_-]+)|\[\s*(["'])([^"']+)\3\s*\])$/.exec(expr);
    if (!ref2) {
      out.reportUnsupported(
        ref,
        `template $(${expr}) is not supported: meshgate reads $(headers.NAME) and $(query_params.NAME)`,
      );
      ok = false;
      continue;
    }
    const root = ref2[1] === 'headers' ? 'headers' : 'query';
    const name = ref2[2] ?? ref2[4]!;
    // Kong's header lookups read `_` as `-` in the dotted form.
    result += `$(${root}.${root === 'headers' ? (ref2[2] ? name.replace(/_/g, '-') : name).toLowerCase() : name})`;
  }
  result += value.slice(last).replace(/\$/g, '$$$$');
  return ok ? result : undefined;
}

function ipRestriction(p: PluginContext, c: Record<string, unknown>): Converted | undefined {
  const { out, ref } = p;
  unknownFields(out, c, ref, ['allow', 'deny', 'status', 'message', 'whitelist', 'blacklist']);
  notSupported(out, c, ref, 'status', 'meshgate refuses with 403');
  notSupported(out, c, ref, 'message', 'meshgate answers a problem+json body');
  const allow = stringsOf(out, c.allow ?? c.whitelist, child(ref, isSet(c.allow) ? 'allow' : 'whitelist'));
  const deny = stringsOf(out, c.deny ?? c.blacklist, child(ref, isSet(c.deny) ? 'deny' : 'blacklist'));
  const config: Record<string, unknown> = {};
  if (allow.length > 0) config.allow = allow;
  if (deny.length > 0) config.deny = deny;
  if (Object.keys(config).length === 0) {
    out.reportInvalid(ref, 'ip-restriction needs allow or deny');
    return undefined;
  }
  // Kong runs it after authentication (priority 990, below jwt and key-auth): so does this entry.
  return { name: 'ip-restriction', config, phase: 'authorize', order: 10 };
}

function requestSizeLimiting(p: PluginContext, c: Record<string, unknown>): Converted | undefined {
  const { out, ref } = p;
  unknownFields(out, c, ref, ['allowed_payload_size', 'size_unit', 'require_content_length']);
  const size = isSet(c.allowed_payload_size)
    ? (integerOf(out, c.allowed_payload_size, child(ref, 'allowed_payload_size'), 0, 2 ** 31) ?? KONG_SIZE_LIMIT)
    : KONG_SIZE_LIMIT;
  const unit = isSet(c.size_unit) ? String(c.size_unit) : 'megabytes';
  const factor = KONG_SIZE_UNITS[unit];
  if (factor === undefined) {
    out.reportInvalid(child(ref, 'size_unit'), 'size_unit is bytes, kilobytes or megabytes');
    return undefined;
  }
  onlyDefault(out, c, ref, 'require_content_length', false, 'meshgate counts a chunked body as it streams');
  // Kong runs it after authentication (priority 951): so does this entry.
  return { name: 'request-size-limit', config: { maxBytes: size * factor }, phase: 'authorize', order: 20 };
}

function correlationId(p: PluginContext, c: Record<string, unknown>): Converted | undefined {
  const { out, ref } = p;
  unknownFields(out, c, ref, ['header_name', 'generator', 'echo_downstream']);
  if (isSet(c.generator) && c.generator !== 'uuid' && c.generator !== 'uuid#counter')
    out.reportUnsupported(
      child(ref, 'generator'),
      `generator ${String(c.generator)} is not supported: meshgate makes its own unique ids`,
    );
  const header = typeof c.header_name === 'string' ? c.header_name : KONG_CORRELATION_HEADER;
  return {
    name: 'request-id',
    config: { header: header.toLowerCase(), echo: c.echo_downstream === true, trustIncoming: true },
  };
}

function unknownFields(out: Conversion, c: Record<string, unknown>, ref: SourceRef, known: readonly string[]): void {
  for (const field of Object.keys(c))
    if (!known.includes(field)) out.reportUnsupported(child(ref, field), `field "${field}" is not supported`);
}
