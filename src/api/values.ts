/**
 * Values of the contract that code running in a proxy needs: here, not beside the TypeBox schemas
 * (src/api/config.ts and mesh.ts re-export them), so a proxy never loads TypeBox (~4 MB resident, a
 * few hundred ms at start). Types and schemas stay where they are.
 */

/** Load-balancing policies (`services[].loadBalancer.policy`). */
export const LB_POLICIES = ['round-robin', 'least-request', 'random', 'ring-hash', 'maglev'] as const;

/** Fields of an access log line, in the order written (docs/observability.md). */
export const ACCESS_LOG_FIELD_NAMES = [
  'time',
  'requestId',
  'traceId',
  'clientAddress',
  'method',
  'host',
  'path',
  'route',
  'service',
  'endpoint',
  'consumer',
  'status',
  'code',
  'bytesIn',
  'bytesOut',
  'durationMs',
  'upstreamMs',
  'proxyMs',
  'tries',
  'tryLog',
  'subset',
  'refusal',
  'retryStop',
  'faultDelayMs',
  'mirrored',
  'userAgent',
  'principal',
  'authz',
  'api',
  'apiVersion',
] as const;

/** Mesh service names are host names: apps call `http://photo-service/…`. */
export const SERVICE_PATTERN = '^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$';
/** A mesh service name: what apps write as a host name. */
export const SERVICE_NAME = new RegExp(SERVICE_PATTERN);

/** Most series (route × service) one telemetry report carries; a proxy with more sends the busiest. */
export const MAX_TELEMETRY_SERIES = 500;

/** Most records one lookup answer carries (the dashboard's request lookup). */
export const MAX_LOOKUP_RECORDS = 100;
/** Most decision trails one lookup answer carries (`meshgate explain`): one request's, at one proxy. */
export const MAX_LOOKUP_TRAILS = 16;

/** Event names of the control plane's push stream. */
export const STREAM_EVENTS = {
  welcome: 'welcome',
  push: 'push',
  delta: 'delta',
  lookup: 'lookup',
  shadow: 'shadow',
} as const;

/** What a renewal proof signs: binds the proxy id, the time and the new request together. */
export function renewalProofPayload(proxy: string, signedAt: string, csr: string): Buffer {
  return Buffer.from(`meshgate-renewal-v1\n${proxy}\n${signedAt}\n${csr}`, 'utf8');
}
