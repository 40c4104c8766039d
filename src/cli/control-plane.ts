/**
 * `meshgate control-plane`: holds the mesh model (files, or the admin API), the instance registry,
 * and a push stream to every proxy.
 */
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { formatIssue } from '../config/issues.ts';
import { checkConfig } from '../config/pipeline.ts';
import { DirectorySource } from '../config/sources/directory/directory.ts';
import type { EtcdConnection } from '../control-plane/etcd/etcd.ts';
import { checkMeshRules, emptyModel, type MeshModel } from '../control-plane/model/model.ts';
import { MemoryModelStore, type ModelStore } from '../control-plane/model/store.ts';
import { MemoryRegistry } from '../control-plane/registry/memory.ts';
import type { Registry } from '../control-plane/registry/registry.ts';
import { ChangeLog } from '../control-plane/server/changes.ts';
import { ControlPlane } from '../control-plane/server/control-plane.ts';
import { controlPlaneApi } from '../control-plane/server/http.ts';
import { modelOf, modelPipeline } from '../control-plane/server/model-pipeline.ts';
import {
  DEFAULT_CONTROL_PLANE_ADDRESS,
  DEFAULT_CONTROL_PLANE_PORT,
  DEFAULT_CONTROL_PLANE_WARMUP_MS,
  DEFAULT_ETCD_PREFIX,
  DEFAULT_INSTANCE_TTL_MS,
} from '../core/defaults.ts';
import { parseDuration } from '../core/duration.ts';
import { createLogger } from '../observability/logger.ts';
import { createPluginCatalog } from '../plugins/index.ts';
import { listenError, parsePort } from './options.ts';

export const usage = `Usage: meshgate control-plane [--config DIR|FILE] [options]

Runs the mesh control plane: the model (services, routes, policies; the gateway's schema), the
instance registry, and a push stream to every sidecar and gateway. The model is reloaded when its
files change or on SIGHUP, and can be replaced with PUT /config; an invalid model is rejected with
the same errors as \`meshgate validate\`, and the one in force is kept.

Options:
  -c, --config PATH     a config file, or a directory whose *.yaml, *.yml and *.json files are merged
                        (default: an empty model, to be applied with PUT /config)
  -p, --port N          API and push stream port (default ${DEFAULT_CONTROL_PLANE_PORT}; 0 picks a free one)
      --address ADDR    address to bind (default ${DEFAULT_CONTROL_PLANE_ADDRESS}; the API has no authentication yet)
      --ttl DURATION    TTL of registrations that do not set one (default ${DEFAULT_INSTANCE_TTL_MS / 1000}s)
      --warmup DURATION how long after start to push nothing, so running instances re-register first
                        (default ${DEFAULT_CONTROL_PLANE_WARMUP_MS / 1000}s, 0 with --etcd; 0 pushes at once)
      --no-watch        reload the files only on SIGHUP
      --etcd URLS       keep the model, the registry and the change records in etcd (comma-separated
                        client URLs), shared by every control plane on the same etcd and prefix and
                        kept across restarts; with --config, the files are written there at start and
                        on each change (default: this process's memory)
      --etcd-prefix P   the key prefix in etcd (default ${DEFAULT_ETCD_PREFIX})`;

function duration(name: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const ms = parseDuration(text);
  if (ms === undefined) throw new UsageError(`--${name} "${text}" is not a duration (e.g. 3s)`);
  return ms;
}

class UsageError extends Error {}

export async function controlPlaneCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      config: { type: 'string', short: 'c' },
      port: { type: 'string', short: 'p' },
      address: { type: 'string' },
      ttl: { type: 'string' },
      warmup: { type: 'string' },
      'no-watch': { type: 'boolean' },
      etcd: { type: 'string' },
      'etcd-prefix': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(usage);
    return 0;
  }
  let ttlMs: number;
  let warmupMs: number;
  try {
    ttlMs = duration('ttl', values.ttl, DEFAULT_INSTANCE_TTL_MS);
    // With etcd the registry outlives a restart: nothing to wait for.
    warmupMs = duration('warmup', values.warmup, values.etcd ? 0 : DEFAULT_CONTROL_PLANE_WARMUP_MS);
  } catch (e) {
    console.error(`meshgate control-plane: ${(e as Error).message}`);
    return 2;
  }
  const port = parsePort(values.port, DEFAULT_CONTROL_PLANE_PORT);
  if (port === undefined) {
    console.error(`meshgate control-plane: --port "${values.port}" is not a port number`);
    return 2;
  }
  const address = values.address ?? DEFAULT_CONTROL_PLANE_ADDRESS;
  const log = createLogger();

  // Validated with the plugins the proxies have, so a model naming an unknown one is rejected here.
  const catalog = createPluginCatalog();
  const source = values.config ? new DirectorySource(values.config, process.env) : null;
  let model: MeshModel = emptyModel();
  if (source) {
    const first = await checkConfig(await source.read(), 'start', { load: { catalog, extraChecks: checkMeshRules } });
    if (!first.ok) {
      for (const issue of first.issues) console.error(formatIssue(issue));
      console.error(`meshgate control-plane: ${values.config} is not valid; nothing started`);
      return 1;
    }
    model = modelOf(first.value);
  }

  const id = randomBytes(6).toString('hex');
  let etcd: EtcdConnection | null = null;
  let registry: Registry;
  let store: ModelStore;
  let changes: ChangeLog;
  if (values.etcd !== undefined) {
    // Loaded only here: a control plane without etcd loads neither these modules nor the etcd client.
    const [{ connectEtcd, normalizePrefix, parseEtcdUrls }, { EtcdRegistry }, { EtcdModelStore }, { EtcdChangeLog }] =
      await Promise.all([
        import('../control-plane/etcd/etcd.ts'),
        import('../control-plane/registry/etcd.ts'),
        import('../control-plane/model/etcd-store.ts'),
        import('../control-plane/server/etcd-changes.ts'),
      ]);
    let urls: string[];
    try {
      urls = parseEtcdUrls(values.etcd);
    } catch (e) {
      console.error(`meshgate control-plane: ${(e as Error).message}`);
      return 2;
    }
    const prefix = normalizePrefix(values['etcd-prefix'] ?? DEFAULT_ETCD_PREFIX);
    try {
      etcd = await connectEtcd(urls, prefix);
      registry = await EtcdRegistry.open(etcd, { defaultTtlMs: ttlMs });
      store = await EtcdModelStore.open(etcd, { load: { catalog, extraChecks: checkMeshRules }, log });
      changes = await EtcdChangeLog.open(etcd, id, { log });
    } catch (e) {
      console.error(`meshgate control-plane: ${(e as Error).message}`);
      etcd?.close();
      return 1;
    }
    // The model in etcd is the one in force; the files (if any) are written over it just below.
    if (store.initial) model = store.initial;
    log.info({ etcd: urls, prefix, model: store.initial?.version ?? null }, 'state in etcd');
  } else {
    registry = new MemoryRegistry({ defaultTtlMs: ttlMs });
    store = new MemoryModelStore();
    changes = new ChangeLog();
  }
  const cp = new ControlPlane({ id, registry, model, log, warmupMs, changes });
  await cp.start();
  // One loop for the files and PUT /config: their changes apply one at a time, in order.
  const pipeline = modelPipeline(cp, log, catalog, store);
  // With etcd, the files are a source like the admin API: written to the store (a no-op when it holds them).
  if (etcd && source) await pipeline.reload(source, 'start', true);
  const shutdown = async () => {
    cp.close();
    await changes.close();
    await store.close();
    await registry.close();
    etcd?.close();
  };
  const api = controlPlaneApi(cp, log, { catalog, pipeline });
  try {
    await api.listen(port, address);
  } catch (e) {
    console.error(`meshgate control-plane: ${listenError(e)}`);
    await shutdown();
    return 1;
  }
  if (!['127.0.0.1', '::1', 'localhost'].includes(address))
    log.warn({ address }, 'the control plane API is reachable from other hosts and has no authentication yet');
  log.info(
    { id, port: api.port, address, model: cp.currentModel.version, source: cp.currentModel.source, warmupMs, ttlMs },
    'control plane started',
  );

  if (source) {
    if (!values['no-watch']) await pipeline.follow(source, 'file');
    process.on('SIGHUP', () => void pipeline.reload(source, 'SIGHUP'));
  }

  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log.info({ signal }, 'stopping');
      source?.close();
      void shutdown()
        .then(() => api.close())
        .then(resolve);
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  log.info('stopped');
  return 0;
}
