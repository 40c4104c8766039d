/**
 * `meshgate sidecar` and `meshgate gateway --control-plane` are one sequence, written here once: a data
 * plane that starts with the first config the control plane pushes, the admin API (answering
 * `waiting for config` until then), the subscription feeding the proxy's config pipeline; then wait for
 * the first config or a signal, run, and on SIGTERM/SIGINT drain and stop. The roles differ only in
 * the hooks (a sidecar registers its instance once it serves, and deregisters before draining).
 */

import { addExplainEndpoint } from '../admin/explain-endpoint.ts';
import { addProxyEndpoints } from '../admin/proxy-endpoints.ts';
import { AdminServer } from '../admin/server.ts';
import { addShadowEndpoints } from '../admin/shadow-endpoints.ts';
import type { ProxyIdentity } from '../api/mesh.ts';
import { MESH_IDENTITY_WAIT_MS } from '../core/defaults.ts';
import type { Logger } from '../observability/logger.ts';
import type { MetricsRole } from '../observability/metrics.ts';
import type { PluginRegistry } from '../plugins/registry.ts';
import { DeferredDataPlane, InProcessDataPlane } from '../proxy/data-plane.ts';
import { MeshIdentity } from '../proxy/mesh/identity.ts';
import { ControlPlaneSubscription } from '../proxy/mesh/subscription.ts';
import { dataPlanePipeline, MESH_MESSAGES, type PlanePipeline } from '../proxy/plane-pipeline.ts';
import { answerShadowEvent } from '../proxy/shadow/commands.ts';
import { explainRequests, lookupRequests, sampleTelemetry } from '../proxy/telemetry-sample.ts';
import { listenError } from './options.ts';

export interface MeshProxy {
  plane: DeferredDataPlane;
  admin: AdminServer;
  subscription: ControlPlaneSubscription;
  pipeline: PlanePipeline;
  /** The proxy's workload identity (`identity.current`, null until the control plane issued one). */
  identity: MeshIdentity;
}

export interface MeshProxyOptions {
  /** `gateway` or `sidecar`: the command, in messages. */
  command: string;
  controlPlane: string;
  identity: ProxyIdentity;
  /** Join token for the control plane (`--token-file`, `MESHGATE_TOKEN`); never logged. */
  token?: string;
  workers: number;
  adminPort: number;
  adminAddress: string;
  /** How long in-flight requests may finish on shutdown (ms). */
  drainMs: number;
  log: Logger;
  catalog: PluginRegistry;
  /** `gateway` or `mesh` (sidecars): the prefix of the proxy's metrics. */
  role: MetricsRole;
  /** Default `service.name` of spans. */
  serviceName?: string;
  onConnected?: () => void;
  /** Extra admin status, shown at GET /control-plane. */
  status?: () => Record<string, unknown>;
  /** The first config is in force: start what serving needs; returns the fields of `<command> started`. */
  onServing: (proxy: MeshProxy) => Promise<Record<string, unknown>>;
  /** Before draining (after a signal): a sidecar deregisters and lets callers learn of it. */
  beforeDrain?: () => Promise<void>;
}

/** Builds the proxy and starts its admin API and subscription; a string says why it could not. */
async function startMeshProxy(options: MeshProxyOptions): Promise<MeshProxy | string> {
  const { log, catalog, role, serviceName } = options;
  const identity = new MeshIdentity({
    url: options.controlPlane,
    proxyId: options.identity.id,
    log,
    ...(options.token === undefined ? {} : { token: options.token }),
  });
  const plane = new DeferredDataPlane(async (loaded) => {
    // One worker beside a primary would only double the memory: one process serves alone (and loads
    // no cluster code).
    if (options.workers > 1) {
      const { WorkerDataPlane } = await import('../proxy/cluster/primary.ts');
      return WorkerDataPlane.start(loaded, options.workers, log, { role, serviceName });
    }
    // Mutual TLS presents the workload identity: the first config waits for the certificate offered.
    const workload = await identity.ready(MESH_IDENTITY_WAIT_MS);
    return InProcessDataPlane.start(loaded, {
      catalog,
      log,
      role,
      serviceName,
      ...(workload === null ? {} : { identity: workload }),
    });
  });
  const pipeline = dataPlanePipeline(plane, log, { catalog, messages: MESH_MESSAGES, describeError: listenError });
  // The proxy's counters start with the process: a restart shows as a new `since`.
  const countersSince = Date.now();
  const subscription = new ControlPlaneSubscription({
    url: options.controlPlane,
    identity: options.identity,
    log,
    pipeline,
    onConnected: options.onConnected,
    onWelcome: (welcome) => identity.onWelcome(welcome),
    onTrustBundle: (bundle) => identity.onTrustBundle(bundle),
    telemetry: () => sampleTelemetry(plane, countersSince),
    lookup: async (match) => lookupRequests(plane, match),
    explain: async (match) => explainRequests(plane, match),
    shadow: (event) => answerShadowEvent(plane, event, catalog),
    ...(options.token === undefined ? {} : { token: options.token }),
  });
  const admin = new AdminServer();
  addProxyEndpoints(admin, plane);
  addExplainEndpoint(admin, plane, {
    id: options.identity.id,
    kind: options.identity.kind,
    service: options.identity.service ?? (options.identity.kind === 'gateway' ? 'gateway' : null),
  });
  addShadowEndpoints(admin, plane, { catalog });
  admin.route('GET /control-plane', () => ({
    status: 200,
    body: { identity: options.identity, subscription: subscription.status(), ...options.status?.() },
  }));
  admin.route('GET /config/pipeline', () => ({ status: 200, body: pipeline.status() }));
  // Certificate metadata and trust bundle fingerprints; the private key is never served.
  admin.route('GET /identity', () => ({ status: 200, body: { proxy: options.identity.id, ...identity.status() } }));
  try {
    await admin.listen(options.adminPort, options.adminAddress);
  } catch (e) {
    identity.close();
    return `admin API: ${listenError(e)}`;
  }
  subscription.start();
  return { plane, admin, subscription, pipeline, identity };
}

/** The whole life of a mesh proxy; resolves with the exit code. */
export async function runMeshProxy(options: MeshProxyOptions): Promise<number> {
  const { log, command, drainMs } = options;
  const started = await startMeshProxy(options);
  if (typeof started === 'string') {
    console.error(`meshgate ${command}: ${started}`);
    return 1;
  }
  const { plane, admin, subscription, identity } = started;
  log.info(
    { id: options.identity.id, controlPlane: options.controlPlane, admin: admin.port },
    `${command} waiting for its config`,
  );
  const stopped = new Promise<string>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  const first = await Promise.race([subscription.firstConfig.then(() => null), stopped]);
  if (first === null) log.info(await options.onServing(started), `${command} started`);
  const signal = first ?? (await stopped);
  // A second Ctrl-C means "now"; a repeated SIGTERM (orchestrators resend it) changes nothing.
  process.on('SIGINT', () => process.exit(130));
  process.on('SIGTERM', () => log.info('already draining'));
  log.info({ signal, drainMs }, 'draining');
  await options.beforeDrain?.();
  subscription.close();
  identity.close();
  await plane.close(drainMs);
  await admin.close();
  log.info('stopped');
  return 0;
}
