/**
 * An in-process control plane and in-process mesh proxies, on real sockets (127.0.0.1, port 0):
 * the same classes the CLI wires, for tests that need to look inside.
 */
import type { ProxyIdentity } from '../../src/api/mesh.ts';
import { formatIssue } from '../../src/config/issues.ts';
import { ConfigPipeline } from '../../src/config/pipeline.ts';
import { emptyModel, type MeshModel, parseModel } from '../../src/control-plane/model/model.ts';
import { MemoryRegistry } from '../../src/control-plane/registry/memory.ts';
import { ControlPlane } from '../../src/control-plane/server/control-plane.ts';
import { controlPlaneApi } from '../../src/control-plane/server/http.ts';
import { silentLogger } from '../../src/observability/logger.ts';
import { DeferredDataPlane, InProcessDataPlane } from '../../src/proxy/data-plane.ts';
import { ControlPlaneSubscription, type SubscriptionOptions } from '../../src/proxy/mesh/subscription.ts';
import { dataPlaneTarget, MESH_MESSAGES } from '../../src/proxy/plane-pipeline.ts';
import { lookupRequests, sampleTelemetry } from '../../src/proxy/telemetry-sample.ts';

export function model(yaml: string, file = 'mesh.yaml'): MeshModel {
  const result = parseModel([{ file, text: yaml }], file, null);
  if (!result.ok) throw new Error(result.issues.map(formatIssue).join('\n'));
  return result.model;
}

export interface TestControlPlane {
  cp: ControlPlane;
  registry: MemoryRegistry;
  url: string;
  close(): Promise<void>;
}

export async function startControlPlane(
  options: {
    model?: MeshModel;
    warmupMs?: number;
    debounceMs?: number;
    port?: number;
    telemetryIntervalMs?: number;
  } = {},
): Promise<TestControlPlane> {
  const registry = new MemoryRegistry();
  const log = silentLogger();
  const cp = new ControlPlane({
    registry,
    model: options.model ?? emptyModel(),
    log,
    warmupMs: options.warmupMs ?? 0,
    debounceMs: options.debounceMs,
    telemetryIntervalMs: options.telemetryIntervalMs,
  });
  await cp.start();
  const api = controlPlaneApi(cp, log);
  await api.listen(options.port ?? 0, '127.0.0.1');
  return {
    cp,
    registry,
    url: `http://127.0.0.1:${api.port}`,
    async close() {
      cp.close();
      await registry.close();
      await api.close();
    },
  };
}

export interface TestMeshProxy {
  plane: DeferredDataPlane;
  subscription: ControlPlaneSubscription;
  /** Versions applied, in order. */
  applied: string[];
  close(): Promise<void>;
}

/** A real ProxyServer fed by the control plane at `url` (listeners bind as the config says). */
export function startMeshProxy(
  url: string,
  identity: ProxyIdentity,
  extra: Partial<SubscriptionOptions> = {},
): TestMeshProxy {
  const plane = new DeferredDataPlane((loaded) => InProcessDataPlane.start(loaded));
  const since = Date.now();
  const applied: string[] = [];
  const target = dataPlaneTarget(plane);
  const pipeline = new ConfigPipeline({
    target: {
      ...target,
      async commit(prepared, config) {
        const report = await target.commit(prepared, config);
        applied.push(config.loaded.hash);
        return report;
      },
    },
    log: silentLogger(),
    messages: MESH_MESSAGES,
  });
  const subscription = new ControlPlaneSubscription({
    url,
    identity,
    log: silentLogger(),
    pipeline,
    reconnectBaseMs: 20,
    reconnectMaxMs: 200,
    // As the CLI wires them: the telemetry report and request lookups (docs/dashboard.md).
    telemetry: () => sampleTelemetry(plane, since),
    lookup: (match) => lookupRequests(plane, match),
    ...extra,
  });
  subscription.start();
  return {
    plane,
    subscription,
    applied,
    async close() {
      subscription.close();
      await plane.close(0);
    },
  };
}

/** Polls `check` until it returns a value other than undefined/false, or fails after `timeoutMs`. */
export async function eventually<T>(
  check: () => T | Promise<T>,
  timeoutMs = 5_000,
  what = 'condition',
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false && value !== null) return value as NonNullable<T>;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline)
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`,
      );
    await new Promise((r) => setTimeout(r, 20));
  }
}
