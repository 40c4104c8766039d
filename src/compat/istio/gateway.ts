/**
 * Gateway → listeners, one per server port. The VirtualServices that name the Gateway in `gateways`
 * are served on its listeners only.
 */
import { child, fieldsOf, listOf } from '../shared/format.ts';
import { type IstioResource, numberOf, objectName } from './common.ts';

export function convertGateway(r: IstioResource, spec: unknown): void {
  const { out, ref } = r;
  const s = fieldsOf(out, spec, ref, ['servers', 'selector']);
  // `selector` picks which Kubernetes pods run the gateway: here, this process is the gateway.
  const names: string[] = [];
  const seen = new Set<number>();
  listOf(out, s.servers, child(ref, 'servers')).forEach((server, i) => {
    const at = child(ref, 'servers', i);
    const v = fieldsOf(out, server, at, ['port', 'hosts', 'tls', 'bind', 'defaultEndpoint', 'name']);
    if (v.defaultEndpoint !== undefined)
      out.reportUnsupported(child(at, 'defaultEndpoint'), 'defaultEndpoint is not supported');
    const port = fieldsOf(out, v.port, child(at, 'port'), ['number', 'protocol', 'name', 'targetPort']);
    const number = numberOf(port.number);
    if (number === undefined) {
      out.reportInvalid(child(at, 'port'), 'port.number is required');
      return;
    }
    const protocol = String(port.protocol ?? 'HTTP').toUpperCase();
    const listener: Record<string, unknown> = {
      name: objectName(r, String(number)),
      port: numberOf(port.targetPort) ?? number,
    };
    if (typeof v.bind === 'string' && !v.bind.startsWith('unix://')) listener.address = v.bind;
    else if (v.bind !== undefined) out.reportUnsupported(child(at, 'bind'), 'binding a unix socket is not supported');
    if (protocol === 'HTTP2' || protocol === 'GRPC') listener.http2 = true;
    else if (protocol !== 'HTTP') {
      out.reportUnsupported(
        child(at, 'port', 'protocol'),
        `protocol ${protocol} is not supported: give meshgate the certificate with a native listener's tls`,
      );
      return;
    }
    if (v.tls !== undefined) {
      const tls = fieldsOf(out, v.tls, child(at, 'tls'), ['httpsRedirect']);
      if (tls.httpsRedirect === true) listener.redirectToHttps = true;
    }
    if (seen.has(number)) return; // several servers on one port share its listener
    seen.add(number);
    listener.origin = r.origin(`servers[${i}]`);
    out.add('listeners', listener, at);
    names.push(listener.name as string);
  });
  r.gateways.set(r.name, names);
}
