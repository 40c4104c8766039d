/**
 * `meshgate control-plane`: holds the mesh model (files, or the admin API), the instance registry,
 * and a push stream to every proxy.
 */
import { randomBytes } from 'node:crypto';
import { isAbsolute, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { compatConverters } from '../compat/index.ts';
import { formatIssue } from '../config/issues.ts';
import { checkConfig } from '../config/pipeline.ts';
import { DirectorySource } from '../config/sources/directory/directory.ts';
import { Authenticator, parseJoinTokens, parseOperatorTokens, readTokenFile } from '../control-plane/auth/tokens.ts';
import { CertificateAuthority } from '../control-plane/ca/ca.ts';
import type { EtcdConnection } from '../control-plane/etcd/etcd.ts';
import { checkMeshRules, emptyModel, type MeshModel } from '../control-plane/model/model.ts';
import { MemoryModelStore, type ModelStore } from '../control-plane/model/store.ts';
import { MemoryRegistry } from '../control-plane/registry/memory.ts';
import type { Registry } from '../control-plane/registry/registry.ts';
import { ChangeLog } from '../control-plane/server/changes.ts';
import { ControlPlane } from '../control-plane/server/control-plane.ts';
import { controlPlaneApi } from '../control-plane/server/http.ts';
import { modelOf, modelPipeline } from '../control-plane/server/model-pipeline.ts';
import { TraceQuery } from '../control-plane/server/trace-query.ts';
import {
  DEFAULT_CONTROL_PLANE_ADDRESS,
  DEFAULT_CONTROL_PLANE_PORT,
  DEFAULT_CONTROL_PLANE_STATE_DIR,
  DEFAULT_CONTROL_PLANE_WARMUP_MS,
  DEFAULT_ETCD_PREFIX,
  DEFAULT_INSTANCE_TTL_MS,
  DEFAULT_SVID_LIFETIME_MS,
  DEFAULT_TELEMETRY_INTERVAL_MS,
  DEFAULT_TRUST_DOMAIN,
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
      --address ADDR    address to bind (default ${DEFAULT_CONTROL_PLANE_ADDRESS}); without tokens, only a loopback address
      --ttl DURATION    TTL of registrations that do not set one (default ${DEFAULT_INSTANCE_TTL_MS / 1000}s)
      --warmup DURATION how long after start to push nothing, so running instances re-register first
                        (default ${DEFAULT_CONTROL_PLANE_WARMUP_MS / 1000}s, 0 with --etcd; 0 pushes at once)
      --no-watch        reload the files only on SIGHUP
      --etcd URLS       keep the model, the registry and the change records in etcd (comma-separated
                        client URLs), shared by every control plane on the same etcd and prefix and
                        kept across restarts; with --config, the files are written there at start and
                        on each change (default: this process's memory)
      --etcd-prefix P   the key prefix in etcd (default ${DEFAULT_ETCD_PREFIX})
      --telemetry-interval DURATION  how often proxies report their traffic for the dashboard at
                        /dashboard/ (default ${DEFAULT_TELEMETRY_INTERVAL_MS / 1000}s; 0: proxies send none)
      --trace-query URL a tracing backend's API for one trace in OTLP JSON, {traceId} in the URL (Tempo:
                        http://tempo:3200/api/traces/{traceId}; Jaeger v2: http://jaeger:16686/api/v3/traces/{traceId}):
                        a request lookup then shows its trace's spans beside the proxies' records

Authentication (docs/security.md):
      --join-token-file FILE      tokens proxies present (Authorization: Bearer), one a line:
                                  "mesh TOKEN", "service NAME TOKEN" or "gateway NAME TOKEN",
                                  each optionally followed by namespace=NS
      --operator-token-file FILE  tokens for tools and people (PUT /config, views), one a line
                                  With neither, the control plane runs open, on loopback only.
Identities (workload certificates, issued at POST /certificates):
      --state-dir DIR       where the CA keeps its root (default ./${DEFAULT_CONTROL_PLANE_STATE_DIR})
      --trust-domain NAME   SPIFFE trust domain (default: the model's mesh.trustDomain, else ${DEFAULT_TRUST_DOMAIN})
      --svid-lifetime DURATION  certificate lifetime (default ${DEFAULT_SVID_LIFETIME_MS / 3_600_000}h; at least 1s)
      --no-identities       issue no certificates (and push no trust bundle)
Foreign formats (Istio resources and Kong files in the config directory, detected by shape; docs/adoption.md):
      --allow-unsupported   load them even if some fields cannot be converted (each logged as a warning)`;

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
      'join-token-file': { type: 'string' },
      'operator-token-file': { type: 'string' },
      'state-dir': { type: 'string' },
      'trust-domain': { type: 'string' },
      'svid-lifetime': { type: 'string' },
      'no-identities': { type: 'boolean' },
      etcd: { type: 'string' },
      'etcd-prefix': { type: 'string' },
      'allow-unsupported': { type: 'boolean' },
      'telemetry-interval': { type: 'string' },
      'trace-query': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(usage);
    return 0;
  }
  let ttlMs: number;
  let warmupMs: number;
  let svidLifetimeMs: number;
  let telemetryIntervalMs: number;
  let auth: Authenticator;
  let traceQuery: TraceQuery | undefined;
  try {
    if (values['trace-query'] !== undefined) traceQuery = new TraceQuery(values['trace-query']);
    ttlMs = duration('ttl', values.ttl, DEFAULT_INSTANCE_TTL_MS);
    // With etcd the registry outlives a restart: nothing to wait for.
    warmupMs = duration('warmup', values.warmup, values.etcd ? 0 : DEFAULT_CONTROL_PLANE_WARMUP_MS);
    svidLifetimeMs = duration('svid-lifetime', values['svid-lifetime'], DEFAULT_SVID_LIFETIME_MS);
    telemetryIntervalMs = duration('telemetry-interval', values['telemetry-interval'], DEFAULT_TELEMETRY_INTERVAL_MS);
    const joinFile = values['join-token-file'];
    const operatorFile = values['operator-token-file'];
    const join = joinFile === undefined ? undefined : parseJoinTokens(readTokenFile(joinFile), joinFile);
    const operator =
      operatorFile === undefined ? undefined : parseOperatorTokens(readTokenFile(operatorFile), operatorFile);
    auth = new Authenticator({
      ...(join ? { join: { scopes: join, tokens: join.tokens } } : {}),
      ...(operator ? { operator } : {}),
    });
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
  // Open mode (no tokens) is for a laptop: anything that can reach the port could take over the mesh.
  if (auth.open && !isLoopback(address)) {
    console.error(
      `meshgate control-plane: --address ${address} is reachable from other hosts, and no token is configured: ` +
        'give --join-token-file and --operator-token-file, or bind a loopback address',
    );
    return 2;
  }
  const log = createLogger();
  // Istio files in the config directory are converted; the model's listeners stay the files' own.
  const converters = compatConverters({
    allowUnsupported: values['allow-unsupported'] === true,
    warn: (issue) => log.warn({ issue: formatIssue(issue) }, 'unsupported part of a converted file left out'),
    defaultListener: false,
  });

  // Validated with the plugins the proxies have, so a model naming an unknown one is rejected here.
  const catalog = createPluginCatalog();
  const source = values.config ? new DirectorySource(values.config, process.env) : null;
  let model: MeshModel = emptyModel();
  if (source) {
    const first = await checkConfig(await source.read(), 'start', {
      load: { catalog, extraChecks: checkMeshRules },
      converters,
    });
    if (!first.ok) {
      for (const issue of first.issues) console.error(formatIssue(issue));
      console.error(`meshgate control-plane: ${values.config} is not valid; nothing started`);
      return 1;
    }
    model = modelOf(first.value);
  }

  let ca: CertificateAuthority | undefined;
  // The model's `mesh.trustDomain` names the identities its mTLS expects: the CA issues in that one.
  const modelTrustDomain = model.config.mesh?.trustDomain;
  if (
    values['trust-domain'] !== undefined &&
    modelTrustDomain !== undefined &&
    values['trust-domain'] !== modelTrustDomain
  ) {
    console.error(
      `meshgate control-plane: --trust-domain ${values['trust-domain']} differs from the model's mesh.trustDomain ` +
        `${modelTrustDomain}; give one of them`,
    );
    return 2;
  }
  if (!values['no-identities']) {
    const dir = values['state-dir'] ?? DEFAULT_CONTROL_PLANE_STATE_DIR;
    const stateDir = isAbsolute(dir) ? dir : resolve(process.cwd(), dir);
    try {
      ca = await CertificateAuthority.open({
        trustDomain: values['trust-domain'] ?? modelTrustDomain ?? DEFAULT_TRUST_DOMAIN,
        stateDir: `${stateDir}/ca`,
        svidLifetimeMs,
      });
    } catch (e) {
      console.error(`meshgate control-plane: certificate authority: ${(e as Error).message}`);
      return 1;
    }
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
  const cp = new ControlPlane({ id, registry, model, log, warmupMs, changes, telemetryIntervalMs });
  if (ca) {
    cp.setTrustBundle(ca.bundle());
    ca.on('bundle', (bundle) => cp.setTrustBundle(bundle, 'trust bundle changed (root rotation)'));
  }
  await cp.start();
  // One loop for the files and PUT /config: their changes apply one at a time, in order.
  const pipeline = modelPipeline(cp, log, catalog, store, converters);
  // With etcd, the files are a source like the admin API: written to the store (a no-op when it holds them).
  if (etcd && source) await pipeline.reload(source, 'start', true);
  const shutdown = async () => {
    cp.close();
    ca?.close();
    await changes.close();
    await store.close();
    await registry.close();
    etcd?.close();
  };
  const api = controlPlaneApi(cp, log, {
    catalog,
    pipeline,
    auth,
    ...(ca ? { ca } : {}),
    ...(traceQuery ? { traceQuery } : {}),
  });
  try {
    await api.listen(port, address);
  } catch (e) {
    console.error(`meshgate control-plane: ${listenError(e)}`);
    await shutdown();
    return 1;
  }
  if (auth.open) log.warn({ address }, 'running open: no tokens configured; loopback only');
  // Following the file before saying "started": a save made right after that line is seen.
  if (source) {
    if (!values['no-watch']) await pipeline.follow(source, 'file');
    process.on('SIGHUP', () => void pipeline.reload(source, 'SIGHUP'));
  }
  log.info(
    {
      port: api.port,
      address,
      id,
      model: cp.currentModel.version,
      source: cp.currentModel.source,
      warmupMs,
      ttlMs,
      ...auth.summary(),
      identities: ca ? { trustDomain: ca.trustDomain, svidLifetimeMs, bundle: ca.bundle().digest } : null,
      dashboard: `http://${address.includes(':') ? `[${address}]` : address}:${api.port}/dashboard/`,
    },
    'control plane started',
  );

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

/** 127.0.0.0/8, ::1 and localhost: the addresses only this host can reach. */
function isLoopback(address: string): boolean {
  return address === 'localhost' || address === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(address);
}
