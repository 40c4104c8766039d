/**
 * Kong services and upstreams → meshgate services. A service's `url` (or protocol, host, port, path)
 * gives one endpoint, unless its host names an upstream: then the upstream's targets are the
 * endpoints, with its load balancing and health checks. Kong's retries (5 by default, on connection
 * failures and timeouts, as nginx's `proxy_next_upstream error timeout`) and timeouts (60 s each) are
 * written out, since meshgate's defaults differ.
 */
import { child, fieldsOf, isRecord, listOf, type SourceRef } from '../shared/format.ts';
import {
  integerOf,
  isSet,
  type KongFile,
  msDuration,
  notSupported,
  numberOf,
  type ServiceInfo,
  secondsDuration,
  stringOf,
  type UpstreamInfo,
  uniqueName,
} from './common.ts';
import {
  KONG_ACTIVE_HEALTHY_STATUSES,
  KONG_ACTIVE_HTTP_PATH,
  KONG_ACTIVE_TIMEOUT_S,
  KONG_DEFAULT_PORTS,
  KONG_DEFAULT_RETRIES,
  KONG_DEFAULT_TARGET_PORT,
  KONG_DEFAULT_TARGET_WEIGHT,
  KONG_DEFAULT_TIMEOUT_MS,
  MESHGATE_MAX_RETRIES,
  MESHGATE_MAX_WEIGHT,
} from './defaults.ts';

/** Fields of a service entity Kong's schema has (and `routes`, `plugins` nested in declarative config). */
const SERVICE_FIELDS = [
  'id',
  'created_at',
  'updated_at',
  'name',
  'retries',
  'protocol',
  'host',
  'port',
  'path',
  'url',
  'connect_timeout',
  'write_timeout',
  'read_timeout',
  'tags',
  'client_certificate',
  'tls_verify',
  'tls_verify_depth',
  'ca_certificates',
  'enabled',
  'routes',
  'plugins',
];

const HTTP_PROTOCOLS = ['http', 'https', 'grpc', 'grpcs'];

/** Converts one service (its routes and plugins are the caller's). */
export function convertService(file: KongFile, value: unknown, ref: SourceRef, index: number): ServiceInfo | undefined {
  const { out } = file;
  const s = fieldsOf(out, value, ref, SERVICE_FIELDS);
  if (!isRecord(value)) return undefined;
  const kongName = typeof s.name === 'string' && s.name !== '' ? s.name : undefined;
  const name = uniqueName(file, 'service', kongName ?? (typeof s.id === 'string' ? s.id : `service-${index}`));
  const origin = `kong:service/${kongName ?? name} (${describe(ref)})`;

  const target = serviceTarget(file, s, ref);
  if (!target) return undefined;
  const { protocol, host, port, path } = target;
  const service: Record<string, unknown> = { name };
  const fieldRefs: [string, SourceRef][] = [];
  const upstream = file.upstreams.get(host.toLowerCase());
  const scheme = protocol === 'https' || protocol === 'grpcs' ? 'https' : 'http';
  let hostHeader: ServiceInfo['host'] = { kind: 'auto' };
  if (upstream) {
    // The upstream's targets are the endpoints; the service's port is not used (Kong's balancer).
    service.endpoints = upstream.targets.map((t) => ({
      url: `${scheme}://${t.authority}`,
      ...(t.weight === 1 ? {} : { weight: t.weight }),
    }));
    Object.assign(service, structuredClone(upstream.service));
    if (upstream.hostHeader !== undefined) hostHeader = { kind: 'fixed', value: upstream.hostHeader };
  } else {
    service.endpoints = [{ url: `${scheme}://${authority(host, port)}` }];
  }
  if (protocol === 'grpc' || protocol === 'grpcs') service.protocol = 'http2';

  // Kong: a total request time has no bound; each try waits read_timeout for the response (and between reads).
  const connect = timeout(file, s, ref, 'connect_timeout');
  const read = timeout(file, s, ref, 'read_timeout');
  timeout(file, s, ref, 'write_timeout'); // meshgate bounds a stalled upload by the per-try timeout (README)
  let retries = KONG_DEFAULT_RETRIES;
  if (isSet(s.retries)) {
    const n = integerOf(out, s.retries, child(ref, 'retries'), 0, 32767);
    if (n !== undefined && n > MESHGATE_MAX_RETRIES)
      out.reportUnsupported(
        child(ref, 'retries'),
        `retries: ${n} is more than meshgate's ${MESHGATE_MAX_RETRIES} retries per request`,
        `use at most ${MESHGATE_MAX_RETRIES}`,
      );
    else if (n !== undefined) retries = n;
  }
  service.timeouts = {
    connect: msDuration(connect),
    // With retries, read_timeout bounds each try (perTryTimeout); without, the one try.
    request: retries === 0 ? msDuration(read) : '0s',
    idle: msDuration(read),
  };
  service.retries =
    retries === 0
      ? { attempts: 0 }
      : {
          attempts: retries,
          on: ['connect-failure', 'reset'],
          perTryTimeout: msDuration(read),
          // nginx tries the next peer at once.
          backoff: { base: '0s', max: '0s' },
        };
  fieldRefs.push(['retries', isSet(s.retries) ? child(ref, 'retries') : ref]);
  fieldRefs.push(['timeouts', isSet(s.read_timeout) ? child(ref, 'read_timeout') : ref]);

  if (isSet(s.tls_verify) && s.tls_verify !== true)
    out.reportUnsupported(
      child(ref, 'tls_verify'),
      'tls_verify: false is not supported: meshgate always verifies an https upstream’s certificate',
    );
  notSupported(out, s, ref, 'tls_verify_depth', 'meshgate verifies the whole chain');
  notSupported(out, s, ref, 'ca_certificates', 'meshgate verifies upstreams against the system’s CAs');
  notSupported(out, s, ref, 'client_certificate', 'meshgate presents no client certificate to a plain upstream');

  service.origin = upstream ? `${origin} + kong:upstream/${upstream.name}` : origin;
  service.plugins = [];
  const outPath = file.out.add('services', service, ref);
  for (const [field, at] of fieldRefs) out.at([...outPath, field], at);
  if (upstream) for (const [field, at] of upstream.fieldRefs) out.at([...outPath, field], at);
  const info: ServiceInfo = {
    name,
    config: service,
    path: outPath,
    basePath: path ?? '/',
    host: hostHeader,
    enabled: s.enabled !== false,
  };
  for (const key of [name, kongName, typeof s.id === 'string' ? s.id : undefined])
    if (key !== undefined) file.services.set(key, info);
  return info;
}

export function describe(ref: SourceRef): string {
  return ref.path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('');
}

function authority(host: string, port: number): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/** `url`, or protocol/host/port/path, with Kong's defaults (port 80 whatever the protocol, unless the URL's scheme says). */
function serviceTarget(
  file: KongFile,
  s: Record<string, unknown>,
  ref: SourceRef,
): { protocol: string; host: string; port: number; path: string | undefined } | undefined {
  const { out } = file;
  let protocol: string;
  let host: string;
  let port: number;
  let path: string | undefined;
  if (isSet(s.url)) {
    for (const key of ['protocol', 'host', 'port', 'path'])
      if (isSet(s[key])) out.reportInvalid(child(ref, key), `${key} and url are both set`, 'give one of them');
    const raw = stringOf(out, s.url, child(ref, 'url'));
    if (raw === undefined) return undefined;
    const m = /^([a-z]+):\/\/(\[[^\]]+\]|[^:/?#]+)(?::(\d+))?(\/[^?#]*)?$/i.exec(raw);
    if (!m) {
      out.reportInvalid(child(ref, 'url'), `expected a URL such as http://host:8080/path, got ${JSON.stringify(raw)}`);
      return undefined;
    }
    protocol = m[1]!.toLowerCase();
    host = m[2]!.replace(/^\[|\]$/g, '');
    port = m[3] === undefined ? (KONG_DEFAULT_PORTS[protocol] ?? 80) : Number(m[3]);
    path = m[4];
  } else {
    protocol = isSet(s.protocol) ? String(s.protocol) : 'http';
    if (typeof s.host !== 'string' || s.host === '') {
      out.reportInvalid(ref, 'a service needs url, or host (with protocol, port, path)');
      return undefined;
    }
    host = s.host;
    // Kong's schema: port 80 unless given, for every protocol.
    port = isSet(s.port) ? (integerOf(out, s.port, child(ref, 'port'), 0, 65535) ?? 80) : 80;
    path = isSet(s.path) ? stringOf(out, s.path, child(ref, 'path')) : undefined;
  }
  if (!HTTP_PROTOCOLS.includes(protocol)) {
    out.reportUnsupported(
      child(ref, isSet(s.url) ? 'url' : 'protocol'),
      `protocol ${protocol} is not supported: meshgate proxies HTTP (http, https, grpc, grpcs)`,
    );
    return undefined;
  }
  if (path !== undefined && !path.startsWith('/')) {
    out.reportInvalid(child(ref, 'path'), 'a service path starts with /');
    path = undefined;
  }
  return { protocol, host, port, path };
}

function timeout(file: KongFile, s: Record<string, unknown>, ref: SourceRef, field: string): number {
  if (!isSet(s[field])) return KONG_DEFAULT_TIMEOUT_MS;
  return integerOf(file.out, s[field], child(ref, field), 1, 2 ** 31 - 2) ?? KONG_DEFAULT_TIMEOUT_MS;
}

const UPSTREAM_FIELDS = [
  'id',
  'created_at',
  'updated_at',
  'name',
  'algorithm',
  'hash_on',
  'hash_fallback',
  'hash_on_header',
  'hash_fallback_header',
  'hash_on_cookie',
  'hash_on_cookie_path',
  'hash_on_query_arg',
  'hash_fallback_query_arg',
  'hash_on_uri_capture',
  'hash_fallback_uri_capture',
  'slots',
  'healthchecks',
  'tags',
  'host_header',
  'client_certificate',
  'use_srv_name',
  'targets',
];

/** Converts an upstream into what the services naming it get; nothing is emitted until one does. */
export function convertUpstream(file: KongFile, value: unknown, ref: SourceRef): void {
  const { out } = file;
  const u = fieldsOf(out, value, ref, UPSTREAM_FIELDS);
  if (typeof u.name !== 'string' || u.name === '') {
    if (isRecord(value)) out.reportInvalid(ref, 'an upstream needs a name (the host its services name)');
    return;
  }
  const info: UpstreamInfo = { name: u.name, service: {}, fieldRefs: [], targets: [] };
  const algorithm = isSet(u.algorithm) ? String(u.algorithm) : undefined;
  const hashOn = isSet(u.hash_on) ? String(u.hash_on) : 'none';
  // Before Kong 2.2 there was no `algorithm`: hashing on anything meant consistent hashing.
  const hashing = algorithm === 'consistent-hashing' || (algorithm === undefined && hashOn !== 'none');
  if (algorithm === 'least-connections') {
    info.service.loadBalancer = { policy: 'least-request' };
    info.fieldRefs.push(['loadBalancer', child(ref, 'algorithm')]);
  } else if (algorithm !== undefined && !['round-robin', 'consistent-hashing'].includes(algorithm)) {
    out.reportUnsupported(
      child(ref, 'algorithm'),
      `algorithm ${algorithm} is not supported`,
      'meshgate balances round-robin, least-connections (least-request) or consistent-hashing (ring-hash)',
    );
  }
  if (hashing) {
    const key = hashKey(file, u, ref, 'hash_on', hashOn);
    if (key) {
      info.service.loadBalancer = { policy: 'ring-hash', hashOn: key };
      info.fieldRefs.push(['loadBalancer', child(ref, 'hash_on')]);
    }
    if (isSet(u.hash_fallback) && u.hash_fallback !== 'none')
      out.reportUnsupported(
        child(ref, 'hash_fallback'),
        `hash_fallback ${String(u.hash_fallback)} is not supported: a request without the hash value is placed at random`,
      );
  }
  if (u.use_srv_name === true)
    out.reportUnsupported(
      child(ref, 'use_srv_name'),
      'use_srv_name is not supported: meshgate resolves no SRV records',
    );
  notSupported(out, u, ref, 'client_certificate', 'meshgate presents no client certificate to a plain upstream');
  if (isSet(u.host_header)) info.hostHeader = stringOf(out, u.host_header, child(ref, 'host_header'));
  healthChecks(file, info, u.healthchecks, child(ref, 'healthchecks'));
  targets(file, info, u.targets, child(ref, 'targets'));
  file.upstreams.set(u.name.toLowerCase(), info);
}

function hashKey(
  file: KongFile,
  u: Record<string, unknown>,
  ref: SourceRef,
  field: string,
  on: string,
): Record<string, unknown> | undefined {
  const { out } = file;
  switch (on) {
    case 'none':
      return undefined;
    case 'ip':
      return { clientIp: true };
    case 'header':
      return typeof u.hash_on_header === 'string' ? { header: u.hash_on_header.toLowerCase() } : undefined;
    case 'query_arg':
      return typeof u.hash_on_query_arg === 'string' ? { query: u.hash_on_query_arg } : undefined;
    case 'cookie':
      out.reportUnsupported(
        child(ref, field),
        'hash_on: cookie is not supported: Kong sets the cookie when the client has none; meshgate only hashes on what the client sends',
        'hash on a header, a query argument or the client address',
      );
      return undefined;
    default:
      out.reportUnsupported(child(ref, field), `hash_on: ${on} is not supported`, 'hash on header, query_arg or ip');
      return undefined;
  }
}

function targets(file: KongFile, info: UpstreamInfo, value: unknown, ref: SourceRef): void {
  const { out } = file;
  const parsed: { authority: string; weight: number; ref: SourceRef }[] = [];
  listOf(out, value, ref).forEach((t, i) => {
    const at = child(ref, i);
    const f = fieldsOf(out, t, at, ['id', 'created_at', 'updated_at', 'target', 'weight', 'tags', 'upstream']);
    if (typeof f.target !== 'string' || f.target === '') {
      out.reportInvalid(at, 'a target needs target: host[:port]');
      return;
    }
    const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(f.target);
    if (!m) {
      out.reportInvalid(child(at, 'target'), `expected host or host:port, got ${JSON.stringify(f.target)}`);
      return;
    }
    const weight = isSet(f.weight)
      ? (integerOf(out, f.weight, child(at, 'weight'), 0, 65535) ?? KONG_DEFAULT_TARGET_WEIGHT)
      : KONG_DEFAULT_TARGET_WEIGHT;
    // Weight 0: the target takes no traffic (Kong keeps it only to be re-enabled).
    if (weight === 0) return;
    parsed.push({ authority: `${m[1]}:${m[2] ?? KONG_DEFAULT_TARGET_PORT}`, weight, ref: at });
  });
  info.targets = scaleWeights(parsed);
}

/** Kong's weights (1 to 65535, default 100) as meshgate's (1 to 1000), same proportions as far as whole numbers allow. */
function scaleWeights<T extends { weight: number }>(list: T[]): T[] {
  if (list.length === 0) return list;
  const divisor = list.map((t) => t.weight).reduce(gcd);
  let scaled = list.map((t) => ({ ...t, weight: t.weight / divisor }));
  const max = Math.max(...scaled.map((t) => t.weight));
  if (max > MESHGATE_MAX_WEIGHT)
    scaled = scaled.map((t) => ({ ...t, weight: Math.max(1, Math.round((t.weight * MESHGATE_MAX_WEIGHT) / max)) }));
  return scaled;
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

const ACTIVE_FIELDS = [
  'type',
  'timeout',
  'concurrency',
  'http_path',
  'https_sni',
  'https_verify_certificate',
  'headers',
  'healthy',
  'unhealthy',
];

/** `healthchecks.active` → healthCheck, `healthchecks.passive` → outlierDetection. */
function healthChecks(file: KongFile, info: UpstreamInfo, value: unknown, ref: SourceRef): void {
  const { out } = file;
  if (!isSet(value)) return;
  const h = fieldsOf(out, value, ref, ['active', 'passive', 'threshold']);
  if (isSet(h.threshold) && h.threshold !== 0)
    out.reportUnsupported(
      child(ref, 'threshold'),
      'threshold is not supported: meshgate keeps routing to the healthy endpoints (and its panic mode) whatever their share',
    );
  if (isSet(h.active)) activeCheck(file, info, h.active, child(ref, 'active'));
  if (isSet(h.passive)) passiveCheck(file, info, h.passive, child(ref, 'passive'));
}

function activeCheck(file: KongFile, info: UpstreamInfo, value: unknown, ref: SourceRef): void {
  const { out } = file;
  const a = fieldsOf(out, value, ref, ACTIVE_FIELDS);
  const healthyRef = child(ref, 'healthy');
  const unhealthyRef = child(ref, 'unhealthy');
  const healthy = fieldsOf(out, a.healthy, healthyRef, ['interval', 'http_statuses', 'successes']);
  const unhealthy = fieldsOf(out, a.unhealthy, unhealthyRef, [
    'interval',
    'http_statuses',
    'tcp_failures',
    'timeouts',
    'http_failures',
  ]);
  const healthyInterval = isSet(healthy.interval)
    ? (numberOf(out, healthy.interval, child(healthyRef, 'interval'), 0, 65535) ?? 0)
    : 0;
  const unhealthyInterval = isSet(unhealthy.interval)
    ? (numberOf(out, unhealthy.interval, child(unhealthyRef, 'interval'), 0, 65535) ?? 0)
    : 0;
  // Both 0 (Kong's default): no active probing.
  if (healthyInterval === 0 && unhealthyInterval === 0) return;
  if (healthyInterval !== unhealthyInterval) {
    out.reportUnsupported(
      child(healthyInterval === 0 ? healthyRef : unhealthyRef, 'interval'),
      `active checks with healthy.interval ${healthyInterval} and unhealthy.interval ${unhealthyInterval} are not supported: meshgate probes every endpoint on one interval`,
      'give both intervals the same value',
    );
    return;
  }
  const type = isSet(a.type) ? String(a.type) : 'http';
  if (type !== 'http' && type !== 'https') {
    out.reportUnsupported(
      child(ref, 'type'),
      `active checks of type ${type} are not supported: meshgate probes with an HTTP GET`,
    );
    return;
  }
  if (a.https_verify_certificate === false)
    out.reportUnsupported(
      child(ref, 'https_verify_certificate'),
      'meshgate always verifies the certificate of an https endpoint',
    );
  notSupported(out, a, ref, 'https_sni', 'meshgate sends the endpoint’s host as SNI');
  const check: Record<string, unknown> = {
    path: isSet(a.http_path) ? String(a.http_path) : KONG_ACTIVE_HTTP_PATH,
    interval: secondsDuration(healthyInterval),
    timeout: secondsDuration(
      isSet(a.timeout)
        ? (numberOf(out, a.timeout, child(ref, 'timeout'), 0, 65535) ?? KONG_ACTIVE_TIMEOUT_S)
        : KONG_ACTIVE_TIMEOUT_S,
    ),
  };
  if (isSet(a.headers)) {
    const headers = isRecord(a.headers) ? a.headers : {};
    for (const [name, v] of Object.entries(headers)) {
      const values = Array.isArray(v) ? v : [v];
      if (name.toLowerCase() === 'host' && values.length === 1 && typeof values[0] === 'string') check.host = values[0];
      else
        out.reportUnsupported(
          child(ref, 'headers', name),
          `active check header ${name} is not supported: meshgate's checks can set only Host`,
        );
    }
  }
  const statuses = isSet(healthy.http_statuses) ? healthy.http_statuses : [...KONG_ACTIVE_HEALTHY_STATUSES];
  if (
    Array.isArray(statuses) &&
    statuses.every((n) => typeof n === 'number' && n >= 100 && n <= 599) &&
    statuses.length > 0
  )
    check.expectedStatuses = statuses;
  else out.reportUnsupported(child(healthyRef, 'http_statuses'), 'meshgate expects statuses from 100 to 599');
  const successes = isSet(healthy.successes) ? healthy.successes : 0;
  if (typeof successes === 'number' && successes >= 1 && successes <= 100) check.healthyThreshold = successes;
  else
    out.reportUnsupported(
      child(healthyRef, 'successes'),
      `healthy.successes ${JSON.stringify(successes)} is not supported with active probing: meshgate needs 1 to 100 passed checks to bring an endpoint back`,
    );
  const failures = counters(unhealthy);
  if (failures === null)
    out.reportUnsupported(
      unhealthyRef,
      'different unhealthy counters (http_failures, tcp_failures, timeouts) are not supported: meshgate counts every failed check',
      'give the counters you use the same value',
    );
  else if (failures === 0)
    out.reportUnsupported(
      unhealthyRef,
      'active probing that never marks a target unhealthy (every unhealthy counter 0) is not supported',
    );
  else if (failures > 100) out.reportUnsupported(unhealthyRef, 'meshgate counts at most 100 failed checks');
  else check.unhealthyThreshold = failures;
  info.service.healthCheck = check;
  info.fieldRefs.push(['healthCheck', ref]);
}

/** The value the non-zero counters share (0: none set), or null when they differ. */
function counters(f: Record<string, unknown>): number | null {
  const values = ['http_failures', 'tcp_failures', 'timeouts']
    .map((k) => (typeof f[k] === 'number' ? (f[k] as number) : 0))
    .filter((n) => n > 0);
  if (values.length === 0) return 0;
  return values.every((v) => v === values[0]) ? values[0]! : null;
}

function passiveCheck(file: KongFile, info: UpstreamInfo, value: unknown, ref: SourceRef): void {
  const { out } = file;
  const p = fieldsOf(out, value, ref, ['type', 'healthy', 'unhealthy']);
  const unhealthyRef = child(ref, 'unhealthy');
  fieldsOf(out, p.healthy, child(ref, 'healthy'), ['http_statuses', 'successes']);
  const unhealthy = fieldsOf(out, p.unhealthy, unhealthyRef, [
    'http_statuses',
    'tcp_failures',
    'timeouts',
    'http_failures',
  ]);
  const failures = counters(unhealthy);
  if (failures === 0) return; // Kong's default: passive checks off
  if (isSet(p.type) && p.type !== 'http' && p.type !== 'https') {
    out.reportUnsupported(child(ref, 'type'), `passive checks of type ${String(p.type)} are not supported`);
    return;
  }
  if (failures === null) {
    out.reportUnsupported(
      unhealthyRef,
      'different unhealthy counters (http_failures, tcp_failures, timeouts) are not supported: meshgate counts 5xx responses and gateway failures together',
      'give the counters you use the same value',
    );
    return;
  }
  info.service.outlierDetection = { consecutiveErrors: Math.min(failures, 1000) };
  info.fieldRefs.push(['outlierDetection', unhealthyRef]);
}
