/**
 * `meshgate sidecar`: the proxy beside one instance of a service. Inbound it forwards to the app under
 * the service's policy; outbound it lets the app reach other services by name. It registers the
 * instance once the app is ready, and on SIGTERM deregisters first, then drains, then exits.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import type { ProxyIdentity } from '../api/mesh.ts';
import { SERVICE_NAME } from '../api/values.ts';
import {
  DEFAULT_APP_READY_PATH,
  DEFAULT_CONTROL_PLANE_URL,
  DEFAULT_DEREGISTER_GRACE_MS,
  DEFAULT_DRAIN_TIMEOUT_MS,
  DEFAULT_INSTANCE_TTL_MS,
  DEFAULT_SIDECAR_ADDRESS,
  DEFAULT_SIDECAR_ADMIN_PORT,
  DEFAULT_SIDECAR_INBOUND_PORT,
  DEFAULT_SIDECAR_OUTBOUND_PORT,
  MAX_INSTANCE_TTL_MS,
  MIN_INSTANCE_TTL_MS,
} from '../core/defaults.ts';
import { parseDuration } from '../core/duration.ts';
import { createLogger } from '../observability/logger.ts';
import { createLazyPluginCatalog } from '../plugins/lazy.ts';
import { InstanceAgent } from '../proxy/mesh/registration.ts';
import { controlPlaneUrl, readToken } from './mesh-client.ts';
import { runMeshProxy } from './mesh-proxy.ts';
import { parseLabels, parsePort, parseWorkers } from './options.ts';

export const usage = `Usage: meshgate sidecar --service NAME --app URL [options]

Runs the proxy beside one instance of a service:
  inbound   (--address:--inbound-port) forwards to the app, under the service's policy;
  outbound  (127.0.0.1:--outbound-port) lets the app call other services by name, as an HTTP proxy
            (HTTP_PROXY=http://127.0.0.1:15001, then http://photo-service/...) or by Host header.
The instance is registered once GET {app}{ready-path} answers 200-399, and kept alive with
heartbeats. SIGTERM deregisters first, keeps serving briefly so callers learn of it, drains, exits 0.

Options:
  -s, --service NAME        the service this instance belongs to (required)
  -a, --app URL             the app, e.g. http://127.0.0.1:8080 (required)
      --control-plane URL   control plane (default $MESHGATE_CONTROL_PLANE or ${DEFAULT_CONTROL_PLANE_URL})
      --token-file FILE     join token for the control plane (default $MESHGATE_TOKEN); its first line
  -l, --labels K=V,...      instance labels, e.g. version=v2,zone=eu-1 (subsets select by them)
      --address ADDR        address to register and bind the inbound listener to (default ${DEFAULT_SIDECAR_ADDRESS})
      --inbound-port N      default ${DEFAULT_SIDECAR_INBOUND_PORT}
      --outbound-port N     default ${DEFAULT_SIDECAR_OUTBOUND_PORT}
      --admin-port N        default ${DEFAULT_SIDECAR_ADMIN_PORT} (on 127.0.0.1)
      --egress A,B          the services the app calls, added to its service's dependsOn in the model
                            (default: that list; with neither, every service in the mesh); the sidecar
                            then hears only of changes to those. --upstreams is the same flag
      --id ID               proxy and instance id (default SERVICE-ADDRESS-INBOUNDPORT)
      --ready-path PATH     the app's readiness check (default ${DEFAULT_APP_READY_PATH})
      --ttl DURATION        registration TTL (default ${DEFAULT_INSTANCE_TTL_MS / 1000}s; heartbeats every third of it)
      --drain DURATION      how long in-flight requests may finish on shutdown (default ${DEFAULT_DRAIN_TIMEOUT_MS / 1000}s)
  -w, --workers N           worker processes (default 0; 0 and 1: the proxy runs in this process)`;

export async function sidecarCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      service: { type: 'string', short: 's' },
      app: { type: 'string', short: 'a' },
      'control-plane': { type: 'string' },
      'token-file': { type: 'string' },
      labels: { type: 'string', short: 'l' },
      address: { type: 'string' },
      'inbound-port': { type: 'string' },
      'outbound-port': { type: 'string' },
      'admin-port': { type: 'string' },
      egress: { type: 'string' },
      // The flag's first name, kept working: the same list.
      upstreams: { type: 'string' },
      id: { type: 'string' },
      'ready-path': { type: 'string' },
      ttl: { type: 'string' },
      drain: { type: 'string' },
      workers: { type: 'string', short: 'w' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(usage);
    return 0;
  }
  const usageError = (message: string) => {
    console.error(`meshgate sidecar: ${message}\n\n${usage}`);
    return 2;
  };
  if (!values.service) return usageError('--service is required');
  if (!SERVICE_NAME.test(values.service))
    return usageError(`--service "${values.service}" is not a host name (letters, digits, "-" and ".")`);
  if (!values.app) return usageError('--app is required');
  if (!/^http:\/\/[^/?#]+\/?$/.test(values.app))
    return usageError(`--app "${values.app}" is not an origin like http://127.0.0.1:8080`);
  const app = values.app.replace(/\/$/, '');
  const inboundPort = parsePort(values['inbound-port'], DEFAULT_SIDECAR_INBOUND_PORT);
  const outboundPort = parsePort(values['outbound-port'], DEFAULT_SIDECAR_OUTBOUND_PORT);
  const adminPort = parsePort(values['admin-port'], DEFAULT_SIDECAR_ADMIN_PORT);
  if (inboundPort === undefined || outboundPort === undefined || adminPort === undefined)
    return usageError('--inbound-port, --outbound-port and --admin-port take a port number');
  const workers = parseWorkers(values.workers, 0);
  if (workers === undefined) return usageError(`--workers "${values.workers}" is not a number from 0 to 256`);
  const ttlMs = values.ttl === undefined ? DEFAULT_INSTANCE_TTL_MS : parseDuration(values.ttl);
  if (ttlMs === undefined || ttlMs < MIN_INSTANCE_TTL_MS || ttlMs > MAX_INSTANCE_TTL_MS)
    return usageError(`--ttl "${values.ttl}" is not a duration from 1s to 5m`);
  const drainMs = values.drain === undefined ? DEFAULT_DRAIN_TIMEOUT_MS : parseDuration(values.drain);
  if (drainMs === undefined) return usageError(`--drain "${values.drain}" is not a duration (e.g. 10s)`);
  let labels: Record<string, string>;
  try {
    labels = parseLabels(values.labels);
  } catch (e) {
    return usageError(`--labels: ${(e as Error).message}`);
  }
  const address = values.address ?? DEFAULT_SIDECAR_ADDRESS;
  const readyPath = values['ready-path'] ?? DEFAULT_APP_READY_PATH;
  if (!readyPath.startsWith('/')) return usageError(`--ready-path "${readyPath}" must start with /`);
  const controlPlane = controlPlaneUrl(values['control-plane']);
  if (!URL.canParse(controlPlane)) return usageError(`--control-plane "${controlPlane}" is not a URL`);
  // A fixed port makes a stable id (a restarted instance replaces its old registration); port 0 cannot.
  const id = values.id ?? `${values.service}-${address}-${inboundPort === 0 ? `pid${process.pid}` : inboundPort}`;
  const egressFlags = [values.egress, values.upstreams].filter((v) => v !== undefined);
  const upstreams =
    egressFlags.length === 0
      ? undefined
      : [
          ...new Set(
            egressFlags
              .join(',')
              .split(',')
              .map((s) => s.trim())
              .filter(Boolean),
          ),
        ];
  const badEgress = upstreams?.find((name) => !SERVICE_NAME.test(name));
  if (badEgress !== undefined)
    return usageError(`--egress "${badEgress}" is not a service name (letters, digits, "-" and ".")`);

  let token: string | undefined;
  try {
    token = readToken(values['token-file'], 'MESHGATE_TOKEN');
  } catch (e) {
    return usageError(`--token-file: ${(e as Error).message}`);
  }

  const log = createLogger();
  const identity: ProxyIdentity = {
    id,
    kind: 'sidecar',
    service: values.service,
    instance: id,
    address,
    inboundPort,
    outboundPort,
    app,
    ...(upstreams ? { upstreams } : {}),
    ...(Object.keys(labels).length ? { labels } : {}),
  };
  let agent: InstanceAgent | null = null;
  return runMeshProxy({
    command: 'sidecar',
    controlPlane,
    identity,
    ...(token === undefined ? {} : { token }),
    workers,
    adminPort,
    adminAddress: '127.0.0.1',
    drainMs,
    log,
    catalog: createLazyPluginCatalog(),
    role: 'mesh',
    serviceName: values.service,
    onConnected: () => agent?.reregister(),
    status: () => ({ instance: agent?.status() ?? null }),
    async onServing({ plane, admin }) {
      // The registered port is the one bound (it differs from the flag when that is 0).
      const port = plane.ports().inbound ?? inboundPort;
      agent = new InstanceAgent({
        url: controlPlane,
        registration: { id, service: values.service!, address, port, labels, ttlMs },
        app,
        readyPath,
        log,
        ...(token === undefined ? {} : { token }),
      });
      agent.start();
      return { id, service: values.service, listeners: plane.ports(), admin: admin.port, app };
    },
    async beforeDrain() {
      const registered = agent?.status().registered ?? false;
      await agent?.deregister();
      // Callers' proxies drop this instance within milliseconds of the deregistration; serve until then.
      if (registered) await sleep(Math.min(DEFAULT_DEREGISTER_GRACE_MS, drainMs));
      agent?.close();
    },
  });
}
