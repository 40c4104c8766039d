/** ServiceEntry → a service per host, with static endpoints (STATIC, or DNS names resolved on connect). */
import { child, fieldsOf, isRecord, listOf } from '../shared/format.ts';
import { exportTo, type IstioResource, serviceOfHost } from './common.ts';

const HTTP_PROTOCOLS: Record<string, 'http1' | 'http2'> = { HTTP: 'http1', HTTP2: 'http2', GRPC: 'http2' };

export function convertServiceEntry(r: IstioResource, spec: unknown): void {
  const { out, ref } = r;
  const s = fieldsOf(out, spec, ref, [
    'hosts',
    'addresses',
    'ports',
    'location',
    'resolution',
    'endpoints',
    'workloadSelector',
    'exportTo',
    'subjectAltNames',
  ]);
  exportTo(out, s.exportTo, child(ref, 'exportTo'));
  for (const key of ['addresses', 'workloadSelector', 'subjectAltNames'] as const)
    if (s[key] !== undefined) out.reportUnsupported(child(ref, key), `ServiceEntry ${key} is not supported`);
  const resolution = s.resolution ?? 'NONE';
  if (!['STATIC', 'DNS', 'DNS_ROUND_ROBIN'].includes(String(resolution))) {
    out.reportUnsupported(
      child(ref, s.resolution === undefined ? 'hosts' : 'resolution'),
      `resolution ${String(resolution)} is not supported: meshgate needs endpoints (STATIC or DNS)`,
    );
    return;
  }
  const ports = listOf(out, s.ports, child(ref, 'ports'));
  if (ports.length === 0) {
    out.reportInvalid(child(ref, 'ports'), 'a port is required');
    return;
  }
  for (let i = 1; i < ports.length; i++)
    out.reportUnsupported(
      child(ref, 'ports', i),
      'a service with several ports is not supported: meshgate services have one',
    );
  const portRef = child(ref, 'ports', 0);
  const port = fieldsOf(out, ports[0], portRef, ['number', 'protocol', 'name', 'targetPort']);
  const protocol = HTTP_PROTOCOLS[String(port.protocol ?? 'HTTP')];
  if (protocol === undefined) {
    out.reportUnsupported(
      child(portRef, 'protocol'),
      `protocol ${String(port.protocol)} is not supported: meshgate proxies HTTP`,
    );
    return;
  }
  const number = port.targetPort ?? port.number;
  const endpointsRef = child(ref, 'endpoints');
  const listed = listOf(out, s.endpoints, endpointsRef);
  const hosts = listOf(out, s.hosts, child(ref, 'hosts'));
  hosts.forEach((host, h) => {
    const hostRef = child(ref, 'hosts', h);
    if (typeof host !== 'string' || host.includes('*')) {
      out.reportUnsupported(hostRef, 'a wildcard host is not supported: a meshgate service is one name');
      return;
    }
    const endpoints =
      listed.length > 0
        ? listed.flatMap((e, k) => {
            const at = child(endpointsRef, k);
            const v = fieldsOf(out, e, at, [
              'address',
              'ports',
              'labels',
              'weight',
              'network',
              'locality',
              'serviceAccount',
            ]);
            for (const key of ['network', 'locality', 'serviceAccount'] as const)
              if (v[key] !== undefined) out.reportUnsupported(child(at, key), `endpoint ${key} is not supported`);
            if (typeof v.address !== 'string' || v.address.startsWith('unix://')) {
              out.reportUnsupported(child(at, 'address'), 'an endpoint needs an IP address or host name');
              return [];
            }
            const named = isRecord(v.ports) && typeof port.name === 'string' ? v.ports[port.name] : undefined;
            const address = v.address.includes(':') ? `[${v.address}]` : v.address;
            return [
              {
                url: `http://${address}:${String(named ?? number)}`,
                ...(isRecord(v.labels) ? { labels: v.labels } : {}),
                ...(typeof v.weight === 'number' ? { weight: v.weight } : {}),
              },
            ];
          })
        : [{ url: `http://${host}:${String(number)}` }];
    const service: Record<string, unknown> = { name: serviceOfHost(host), endpoints };
    if (protocol === 'http2') service.protocol = 'http2';
    service.origin = r.origin(hosts.length > 1 ? `hosts[${h}]` : undefined);
    const path = out.add('services', service, hostRef);
    if (listed.length > 0)
      for (let k = 0; k < listed.length; k++) out.at([...path, 'endpoints', k], child(endpointsRef, k));
    else out.at([...path, 'endpoints'], portRef);
  });
}
