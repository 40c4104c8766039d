/**
 * DestinationRule → the policy of the service its host names (an overlay: joined with the service's
 * endpoints from a ServiceEntry, a native file or the mesh registry; shared/convert.ts).
 */
import {
  type Conversion,
  child,
  fieldsOf,
  isRecord,
  listOf,
  markImplicit,
  overlays,
  type SourceRef,
} from '../shared/format.ts';
import { duration, exportTo, type IstioResource, serviceOfHost } from './common.ts';
import { ISTIO_CONNECT_TIMEOUT, ISTIO_OUTLIER_DEFAULTS, ISTIO_UNLIMITED } from './defaults.ts';

const SIMPLE_LB: Record<string, string | undefined> = {
  ROUND_ROBIN: 'round-robin',
  LEAST_REQUEST: 'least-request',
  LEAST_CONN: 'least-request',
  RANDOM: 'random',
  UNSPECIFIED: undefined,
};

export function convertDestinationRule(r: IstioResource, spec: unknown): void {
  const { out, ref } = r;
  const s = fieldsOf(out, spec, ref, ['host', 'subsets', 'trafficPolicy', 'exportTo', 'workloadSelector']);
  exportTo(out, s.exportTo, child(ref, 'exportTo'));
  if (s.workloadSelector !== undefined)
    out.reportUnsupported(child(ref, 'workloadSelector'), 'workloadSelector is not supported');
  if (typeof s.host !== 'string' || s.host === '') {
    out.reportInvalid(child(ref, 'host'), 'host is required');
    return;
  }
  if (s.host.includes('*')) {
    out.reportUnsupported(child(ref, 'host'), 'a wildcard host is not supported: meshgate policies name one service');
    return;
  }
  const service: Record<string, unknown> = { name: serviceOfHost(s.host) };
  const subsets: Record<string, unknown> = {};
  const subsetPolicies: SubsetPolicy[] = [];
  listOf(out, s.subsets, child(ref, 'subsets')).forEach((subset, i) => {
    const at = child(ref, 'subsets', i);
    const v = fieldsOf(out, subset, at, ['name', 'labels', 'trafficPolicy']);
    if (typeof v.name !== 'string' || v.name === '') {
      out.reportInvalid(at, 'subset name is required');
      return;
    }
    subsets[v.name] = isRecord(v.labels) ? v.labels : {};
    if (v.trafficPolicy !== undefined) subsetPolicies.push({ name: v.name, value: v.trafficPolicy, at });
  });
  if (Object.keys(subsets).length > 0) service.subsets = subsets;
  trafficPolicy(out, s.trafficPolicy, child(ref, 'trafficPolicy'), service);
  const policies = subsetPolicies.flatMap((p) => {
    const policy = subsetPolicy(out, p.value, child(p.at, 'trafficPolicy'), service);
    return Object.keys(policy).length === 0 ? [] : [{ ...p, policy }];
  });
  if (policies.length > 0) service.subsetPolicies = Object.fromEntries(policies.map((p) => [p.name, p.policy]));
  // Istio leaves connection pools unlimited unless the rule says otherwise (meshgate's default is 1024).
  const breaker = (service.circuitBreaker ??= {}) as Record<string, unknown>;
  for (const key of ['maxConnections', 'maxPendingRequests', 'maxRequests', 'maxRetries'])
    breaker[key] ??= ISTIO_UNLIMITED;
  if (s.trafficPolicy === undefined || !isRecord(s.trafficPolicy) || s.trafficPolicy.connectionPool === undefined)
    markImplicit(service, 'circuitBreaker');
  service.origin = r.origin();
  overlays.add(service);
  const path = out.add('services', service, ref);
  if (service.subsets) out.at([...path, 'subsets'], child(ref, 'subsets'));
  const policy = child(ref, 'trafficPolicy');
  const sources: [field: string, from: (string | number)[]][] = [
    ['loadBalancer', ['loadBalancer']],
    ['circuitBreaker', ['connectionPool']],
    ['outlierDetection', ['outlierDetection']],
    ['timeouts', ['connectionPool', 'tcp', 'connectTimeout']],
    ['mtls', ['tls']],
  ];
  for (const [field, from] of sources)
    if (service[field] !== undefined && s.trafficPolicy !== undefined) out.at([...path, field], child(policy, ...from));
  // Outlier detection's panic threshold lives in loadBalancer.
  if (isRecord(service.loadBalancer) && isRecord(s.trafficPolicy) && s.trafficPolicy.loadBalancer === undefined)
    out.at([...path, 'loadBalancer'], child(policy, 'outlierDetection'));
  for (const p of policies) {
    const here = [...path, 'subsetPolicies', p.name];
    const from = child(p.at, 'trafficPolicy');
    out.at(here, from);
    const value = isRecord(p.value) ? p.value : {};
    for (const [field, source] of sources)
      if (p.policy[field] !== undefined)
        // The block it came from; a subset's panic threshold may come from its outlierDetection alone.
        out.at([...here, field], child(from, value[source[0]!] !== undefined ? source[0]! : 'outlierDetection'));
  }
}

interface SubsetPolicy {
  name: string;
  value: unknown;
  at: SourceRef;
}

/**
 * A subset's trafficPolicy → its `subsetPolicies` entry. Istio replaces each top-level field of the
 * rule's policy that the subset sets (loadBalancer, connectionPool, outlierDetection), as a whole;
 * meshgate merges a subset's fields over the service's one by one, so a replaced block is written out
 * whole here, with Istio's defaults for what it leaves out.
 */
function subsetPolicy(
  out: Conversion,
  value: unknown,
  ref: SourceRef,
  service: Record<string, unknown>,
): Record<string, unknown> {
  const own: Record<string, unknown> = {};
  trafficPolicy(out, value, ref, own, 'subset');
  const policy: Record<string, unknown> = {};
  if (own.loadBalancer !== undefined) policy.loadBalancer = own.loadBalancer;
  if (own.outlierDetection !== undefined) policy.outlierDetection = own.outlierDetection;
  if (isRecord(value) && value.connectionPool !== undefined) {
    const breaker = (own.circuitBreaker ?? {}) as Record<string, unknown>;
    for (const key of ['maxConnections', 'maxPendingRequests', 'maxRequests', 'maxRetries'])
      breaker[key] ??= ISTIO_UNLIMITED;
    policy.circuitBreaker = breaker;
    const connect = (own.timeouts as { connect?: string } | undefined)?.connect;
    // The subset's pool replaces the rule's, connect timeout included: an absent one is Istio's default.
    if (connect !== undefined) policy.timeouts = { connect };
    else if ((service.timeouts as { connect?: string } | undefined)?.connect !== undefined)
      policy.timeouts = { connect: ISTIO_CONNECT_TIMEOUT };
  }
  return policy;
}

/** `scope` `subset`: a subset's policy, where what meshgate keeps per service only is unsupported. */
function trafficPolicy(
  out: Conversion,
  value: unknown,
  ref: SourceRef,
  service: Record<string, unknown>,
  scope: 'rule' | 'subset' = 'rule',
): void {
  if (value === undefined) return;
  const p = fieldsOf(out, value, ref, [
    'loadBalancer',
    'connectionPool',
    'outlierDetection',
    'tls',
    'portLevelSettings',
    'tunnel',
    'proxyProtocol',
    'retryBudget',
  ]);
  for (const key of ['portLevelSettings', 'tunnel', 'proxyProtocol', 'retryBudget'] as const)
    if (p[key] !== undefined) out.reportUnsupported(child(ref, key), `trafficPolicy.${key} is not supported`);
  if (p.loadBalancer !== undefined) loadBalancer(out, p.loadBalancer, child(ref, 'loadBalancer'), service);
  if (p.connectionPool !== undefined) connectionPool(out, p.connectionPool, child(ref, 'connectionPool'), service);
  if (p.outlierDetection !== undefined)
    outlierDetection(out, p.outlierDetection, child(ref, 'outlierDetection'), service);
  if (p.tls === undefined) return;
  if (scope === 'subset')
    out.reportUnsupported(
      child(ref, 'tls'),
      'tls per subset is not supported: meshgate’s mutual TLS is per service',
      'move it to the rule’s trafficPolicy, or make the subset its own service',
    );
  else tls(out, p.tls, child(ref, 'tls'), service);
}

function loadBalancer(out: Conversion, value: unknown, ref: SourceRef, service: Record<string, unknown>): void {
  const lb = fieldsOf(out, value, ref, [
    'simple',
    'consistentHash',
    'localityLbSetting',
    'warmupDurationSecs',
    'warmup',
  ]);
  for (const key of ['localityLbSetting', 'warmupDurationSecs', 'warmup'] as const)
    if (lb[key] !== undefined) out.reportUnsupported(child(ref, key), `loadBalancer.${key} is not supported`);
  const result = (service.loadBalancer ??= {}) as Record<string, unknown>;
  if (lb.simple !== undefined) {
    const policy = SIMPLE_LB[String(lb.simple)];
    if (policy) result.policy = policy;
    else if (!(String(lb.simple) in SIMPLE_LB))
      out.reportUnsupported(child(ref, 'simple'), `loadBalancer.simple ${String(lb.simple)} is not supported`);
  }
  if (lb.consistentHash !== undefined) {
    const at = child(ref, 'consistentHash');
    const h = fieldsOf(out, lb.consistentHash, at, [
      'httpHeaderName',
      'httpCookie',
      'useSourceIp',
      'httpQueryParameterName',
      'ringHash',
      'maglev',
      'minimumRingSize',
    ]);
    result.policy = h.maglev !== undefined ? 'maglev' : 'ring-hash';
    if (typeof h.httpHeaderName === 'string') result.hashOn = { header: h.httpHeaderName };
    else if (typeof h.httpQueryParameterName === 'string') result.hashOn = { query: h.httpQueryParameterName };
    else if (h.useSourceIp === true) result.hashOn = { clientIp: true };
    else if (h.httpCookie !== undefined) {
      const c = fieldsOf(out, h.httpCookie, child(at, 'httpCookie'), ['name', 'path', 'ttl', 'attributes']);
      result.hashOn = { cookie: c.name };
      for (const key of ['ttl', 'path', 'attributes'] as const)
        if (c[key] !== undefined)
          out.reportUnsupported(
            child(at, 'httpCookie', key),
            `httpCookie.${key} is not supported: meshgate hashes on a cookie the client sends, it does not set one`,
          );
    }
    for (const key of ['ringHash', 'maglev', 'minimumRingSize'] as const) {
      const v = h[key];
      const tuned = key === 'minimumRingSize' ? v !== undefined : isRecord(v) && Object.keys(v).length > 0;
      if (tuned) out.reportUnsupported(child(at, key), `consistentHash.${key} settings are not supported`);
    }
  }
  if (Object.keys(result).length === 0) delete service.loadBalancer;
}

function connectionPool(out: Conversion, value: unknown, ref: SourceRef, service: Record<string, unknown>): void {
  const pool = fieldsOf(out, value, ref, ['tcp', 'http']);
  const breaker = (service.circuitBreaker ??= {}) as Record<string, unknown>;
  if (pool.tcp !== undefined) {
    const at = child(ref, 'tcp');
    const tcp = fieldsOf(out, pool.tcp, at, [
      'maxConnections',
      'connectTimeout',
      'tcpKeepalive',
      'maxConnectionDuration',
      'idleTimeout',
    ]);
    if (tcp.maxConnections !== undefined) breaker.maxConnections = limit(tcp.maxConnections);
    if (tcp.connectTimeout !== undefined) {
      const d = duration(out, tcp.connectTimeout, child(at, 'connectTimeout'));
      if (d !== undefined) service.timeouts = { ...(service.timeouts as object), connect: d };
    }
    for (const key of ['tcpKeepalive', 'maxConnectionDuration', 'idleTimeout'] as const)
      if (tcp[key] !== undefined) out.reportUnsupported(child(at, key), `connectionPool.tcp.${key} is not supported`);
  }
  if (pool.http !== undefined) {
    const at = child(ref, 'http');
    const http = fieldsOf(out, pool.http, at, [
      'http1MaxPendingRequests',
      'http2MaxRequests',
      'maxRequestsPerConnection',
      'maxRetries',
      'idleTimeout',
      'h2UpgradePolicy',
      'useClientProtocol',
      'maxConcurrentStreams',
    ]);
    if (http.http1MaxPendingRequests !== undefined) breaker.maxPendingRequests = limit(http.http1MaxPendingRequests);
    if (http.http2MaxRequests !== undefined) breaker.maxRequests = limit(http.http2MaxRequests);
    if (http.maxRetries !== undefined) breaker.maxRetries = limit(http.maxRetries);
    for (const key of [
      'maxRequestsPerConnection',
      'idleTimeout',
      'h2UpgradePolicy',
      'useClientProtocol',
      'maxConcurrentStreams',
    ] as const)
      if (http[key] !== undefined) out.reportUnsupported(child(at, key), `connectionPool.http.${key} is not supported`);
  }
}

/** Istio's limits are 32-bit; meshgate's stop at 1,000,000, which is no limit in practice either. */
function limit(value: unknown): unknown {
  return typeof value === 'number' && value > ISTIO_UNLIMITED ? ISTIO_UNLIMITED : value;
}

function outlierDetection(out: Conversion, value: unknown, ref: SourceRef, service: Record<string, unknown>): void {
  const o = fieldsOf(out, value, ref, [
    'consecutive5xxErrors',
    'consecutiveGatewayErrors',
    'consecutiveErrors',
    'interval',
    'baseEjectionTime',
    'maxEjectionPercent',
    'minHealthPercent',
    'splitExternalLocalOriginErrors',
    'consecutiveLocalOriginFailures',
  ]);
  for (const key of ['splitExternalLocalOriginErrors', 'consecutiveLocalOriginFailures'] as const)
    if (o[key] !== undefined) out.reportUnsupported(child(ref, key), `outlierDetection.${key} is not supported`);
  const d = ISTIO_OUTLIER_DEFAULTS;
  const result: Record<string, unknown> = {
    consecutiveErrors: o.consecutive5xxErrors ?? d.consecutive5xxErrors,
  };
  // The deprecated `consecutiveErrors` counted 502, 503 and 504: meshgate's gateway errors.
  const gateway = o.consecutiveGatewayErrors ?? o.consecutiveErrors;
  if (gateway !== undefined) result.consecutiveGatewayErrors = gateway;
  result.interval = o.interval === undefined ? d.interval : duration(out, o.interval, child(ref, 'interval'));
  result.baseEjectionTime =
    o.baseEjectionTime === undefined
      ? d.baseEjectionTime
      : duration(out, o.baseEjectionTime, child(ref, 'baseEjectionTime'));
  result.maxEjectionPercent = o.maxEjectionPercent ?? d.maxEjectionPercent;
  service.outlierDetection = result;
  const lb = (service.loadBalancer ??= {}) as Record<string, unknown>;
  lb.panicThreshold = o.minHealthPercent ?? d.minHealthPercent;
}

function tls(out: Conversion, value: unknown, ref: SourceRef, service: Record<string, unknown>): void {
  const t = fieldsOf(out, value, ref, [
    'mode',
    'clientCertificate',
    'privateKey',
    'caCertificates',
    'credentialName',
    'subjectAltNames',
    'sni',
    'insecureSkipVerify',
    'caCrl',
  ]);
  if (t.mode === 'ISTIO_MUTUAL') service.mtls = { mode: 'STRICT' };
  else if (t.mode === 'DISABLE') service.mtls = { mode: 'DISABLE' };
  else
    out.reportUnsupported(
      child(ref, 'mode'),
      `tls mode ${String(t.mode)} is not supported (ISTIO_MUTUAL and DISABLE are)`,
    );
  for (const key of Object.keys(t))
    if (key !== 'mode') out.reportUnsupported(child(ref, key), `tls.${key} is not supported`);
}
