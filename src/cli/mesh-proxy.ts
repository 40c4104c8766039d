/**
 * Wiring shared by `meshgate sidecar` and `meshgate gateway --control-plane`: a data plane that starts
 * with the first config the control plane pushes, the admin API (answering `waiting for config`
 * until then), and the subscription that keeps configs coming.
 */

import { addProxyEndpoints } from '../admin/proxy-endpoints.ts';
import { AdminServer } from '../admin/server.ts';
import type { ProxyIdentity } from '../api/mesh.ts';
import type { Logger } from '../observability/logger.ts';
import type { MetricsRole } from '../observability/metrics.ts';
import type { PluginRegistry } from '../plugins/registry.ts';
import { WorkerDataPlane } from '../proxy/cluster/primary.ts';
import { DeferredDataPlane, InProcessDataPlane } from '../proxy/data-plane.ts';
import { ControlPlaneSubscription } from '../proxy/mesh/subscription.ts';
import { listenError } from './options.ts';

export interface MeshProxy {
  plane: DeferredDataPlane;
  admin: AdminServer;
  subscription: ControlPlaneSubscription;
}

export async function startMeshProxy(options: {
  controlPlane: string;
  identity: ProxyIdentity;
  workers: number;
  adminPort: number;
  adminAddress: string;
  log: Logger;
  catalog: PluginRegistry;
  /** `gateway` or `mesh` (sidecars): the prefix of the proxy's metrics. */
  role: MetricsRole;
  /** Default `service.name` of spans. */
  serviceName?: string;
  onConnected?: () => void;
  /** Extra admin status, shown at GET /control-plane. */
  status?: () => Record<string, unknown>;
}): Promise<MeshProxy | string> {
  const { log } = options;
  const { catalog, role, serviceName } = options;
  const plane = new DeferredDataPlane((loaded) =>
    options.workers === 0
      ? InProcessDataPlane.start(loaded, { catalog, log, role, serviceName })
      : WorkerDataPlane.start(loaded, options.workers, log, { role, serviceName }),
  );
  const subscription = new ControlPlaneSubscription({
    url: options.controlPlane,
    identity: options.identity,
    log,
    catalog,
    apply: async (loaded) => {
      try {
        await plane.apply(loaded);
      } catch (e) {
        throw new Error(listenError(e));
      }
    },
    onConnected: options.onConnected,
  });
  const admin = new AdminServer();
  addProxyEndpoints(admin, plane);
  admin.route('GET /control-plane', () => ({
    status: 200,
    body: { identity: options.identity, subscription: subscription.status(), ...options.status?.() },
  }));
  try {
    await admin.listen(options.adminPort, options.adminAddress);
  } catch (e) {
    return `admin API: ${listenError(e)}`;
  }
  subscription.start();
  return { plane, admin, subscription };
}
