/**
 * Every port the demo listens on: the documented ones (docs/demo.md) by default, all shifted by
 * `--port-offset N` so a second copy (or a test) can run beside a first without a clash.
 */
export const HOST = '127.0.0.1';

export interface InstancePorts {
  /** The app's own port. */
  app: number;
  /** The sidecar's ports: admin = base, outbound = base + 1, inbound = base + 6 (as in docs/mesh.md). */
  sidecarBase: number;
}

export interface DemoPorts {
  gateway: number;
  gatewayAdmin: number;
  controlPlane: number;
  /** OTLP/HTTP: 4318 is the standard port, so any exporter's default finds the receiver. */
  traces: number;
  /** The valuation service's gRPC server (reached by the gateway directly: it has no sidecar yet). */
  valuationGrpc: number;
  /** By instance name (property-v1, property-v2, photo, valuation, search, enrichment). */
  instances: Record<string, InstancePorts>;
}

const INSTANCE_ORDER = ['property-v1', 'property-v2', 'photo', 'valuation', 'search', 'enrichment'];
/** The highest port the default layout uses (enrichment's sidecar inbound): offsets keep it valid. */
const HIGHEST_PORT = 15_606;
export const MAX_PORT_OFFSET = 65_535 - HIGHEST_PORT;

export function demoPorts(offset = 0): DemoPorts {
  return {
    gateway: 8080 + offset,
    gatewayAdmin: 9901 + offset,
    controlPlane: 15010 + offset,
    traces: 4318 + offset,
    valuationGrpc: 8107 + offset,
    instances: Object.fromEntries(
      INSTANCE_ORDER.map((name, i) => [name, { app: 8101 + i + offset, sidecarBase: 15_100 + 100 * i + offset }]),
    ),
  };
}

/** Each port with what listens on it, for a check that they are free. */
export function listOfPorts(ports: DemoPorts): [number, string][] {
  return [
    [ports.gateway, 'gateway'],
    [ports.gatewayAdmin, 'gateway admin'],
    [ports.controlPlane, 'control plane'],
    [ports.traces, 'trace receiver'],
    [ports.valuationGrpc, 'valuation gRPC server'],
    ...Object.entries(ports.instances).flatMap(([name, p]): [number, string][] => [
      [p.app, `${name} app`],
      [p.sidecarBase, `${name} sidecar admin`],
      [p.sidecarBase + 1, `${name} sidecar outbound`],
      [p.sidecarBase + 6, `${name} sidecar inbound`],
    ]),
  ];
}
