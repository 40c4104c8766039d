/**
 * `meshgate gateway --config FILE|DIR`: the gateway on config files, reloaded on change or SIGHUP,
 * drained on SIGTERM/SIGINT. Its own module, imported only for `--config`: a gateway under a control
 * plane loads none of the file sources, converters or dashboard (gateway.ts).
 */
import { stat } from 'node:fs/promises';
import { addDashboard } from '../admin/dashboard/api.ts';
import { GatewayDashboard, gatewayDashboardGuard } from '../admin/dashboard/gateway.ts';
import { addExplainEndpoint } from '../admin/explain-endpoint.ts';
import { addProxyEndpoints } from '../admin/proxy-endpoints.ts';
import { AdminServer } from '../admin/server.ts';
import { addShadowEndpoints } from '../admin/shadow-endpoints.ts';
import { type CompatOptions, compatConverters } from '../compat/index.ts';
import { formatIssue } from '../config/issues.ts';
import { checkConfig } from '../config/pipeline.ts';
import { DirectorySource } from '../config/sources/directory/directory.ts';
import { FileSource } from '../config/sources/file/file.ts';
import { Authenticator, parseOperatorTokens, readTokenFile } from '../control-plane/auth/tokens.ts';
import { DEFAULT_ADMIN_ADDRESS, DEFAULT_ADMIN_PORT } from '../core/defaults.ts';
import type { Logger } from '../observability/logger.ts';
import { createLazyPluginCatalog } from '../plugins/lazy.ts';
import { WorkerDataPlane } from '../proxy/cluster/primary.ts';
import { type DataPlane, InProcessDataPlane } from '../proxy/data-plane.ts';
import { dataPlanePipeline, GATEWAY_MESSAGES } from '../proxy/plane-pipeline.ts';
import { listenError } from './options.ts';

export interface FileGatewayOptions {
  /** The config file, or a directory whose files are merged. */
  config: string;
  /** `--operator-token-file`: tokens the dashboard asks for off loopback. */
  operatorTokenFile: string | undefined;
  /** Follow the file (reload on change); false: on SIGHUP only. */
  watch: boolean;
  workers: number;
  drainMs: number;
  log: Logger;
  /** How Istio and Kong files are converted. */
  compat: CompatOptions;
}

/** Runs until drained after a signal; resolves with the exit code. */
export async function fileGateway(options: FileGatewayOptions): Promise<number> {
  const { config, workers, drainMs, log } = options;
  const converters = compatConverters(options.compat);
  // Built-in plugins are imported when a config first names them (the pipeline loads them before checking).
  const catalog = createLazyPluginCatalog();
  // A directory's files are merged (native files beside converted ones), as the control plane does.
  const isDirectory = await stat(config).then(
    (s) => s.isDirectory(),
    () => false,
  );
  const source = isDirectory ? new DirectorySource(config, process.env) : new FileSource(config, process.env);
  const first = await checkConfig(await source.read(), 'start', { load: { catalog }, converters });
  if (!first.ok) {
    for (const issue of first.issues) console.error(formatIssue(issue));
    console.error(`meshgate gateway: ${config} is not valid; nothing started`);
    return 1;
  }
  const loaded = first.value.loaded;
  let operatorAuth: Authenticator | null = null;
  const tokenFile = options.operatorTokenFile;
  if (tokenFile !== undefined)
    try {
      operatorAuth = new Authenticator({ operator: parseOperatorTokens(readTokenFile(tokenFile), tokenFile) });
    } catch (e) {
      console.error(`meshgate gateway: --operator-token-file: ${(e as Error).message}`);
      return 2;
    }
  let plane: DataPlane;
  try {
    plane =
      // One worker beside a primary would only double the memory: one process serves alone.
      workers <= 1
        ? await InProcessDataPlane.start(loaded, { catalog, log })
        : await WorkerDataPlane.start(loaded, workers, log);
  } catch (e) {
    console.error(`meshgate gateway: ${listenError(e)}`);
    return 1;
  }
  const pipeline = dataPlanePipeline(plane, log, { catalog, messages: GATEWAY_MESSAGES, converters });
  pipeline.started(first.value);
  const admin = new AdminServer();
  addProxyEndpoints(admin, plane);
  admin.route('GET /config/pipeline', () => ({ status: 200, body: pipeline.status() }));
  const adminConfig = loaded.config.admin;
  const adminAddress = adminConfig?.address ?? DEFAULT_ADMIN_ADDRESS;
  const guard = gatewayDashboardGuard(adminAddress, operatorAuth);
  addShadowEndpoints(admin, plane, { catalog, converters, guard });
  const dashboard = guard === null ? null : new GatewayDashboard(plane, log);
  if (dashboard !== null) addDashboard(admin, dashboard, guard!);
  // Trails tell of consumers and request heads: guarded as the dashboard is, and never open to the network.
  if (guard !== null) addExplainEndpoint(admin, plane, { id: 'gateway', kind: 'gateway', service: 'gateway' }, guard);
  else
    log.warn(
      { address: adminAddress },
      'dashboard not served: the admin address is not loopback and no --operator-token-file was given',
    );
  try {
    await admin.listen(adminConfig?.port ?? DEFAULT_ADMIN_PORT, adminConfig?.address ?? DEFAULT_ADMIN_ADDRESS);
  } catch (e) {
    console.error(`meshgate gateway: admin API: ${listenError(e)}`);
    dashboard?.close();
    await plane.close(0);
    return 1;
  }
  // Following the file before saying "started": a save made right after that line is seen.
  if (options.watch) await pipeline.follow(source, 'file');
  // SIGHUP is also how rotated certificate files are picked up: they are re-read even if the config is unchanged.
  process.on('SIGHUP', () => void pipeline.reload(source, 'SIGHUP', true));
  log.info(
    {
      listeners: plane.ports(),
      admin: admin.port,
      hash: loaded.hash,
      workers: plane instanceof WorkerDataPlane ? plane.pids() : [process.pid],
    },
    'gateway started',
  );

  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) {
        // A second Ctrl-C means "now"; a repeated SIGTERM (orchestrators resend it) changes nothing.
        if (signal === 'SIGINT') process.exit(130);
        log.info({ signal }, 'already draining');
        return;
      }
      stopping = true;
      log.info({ signal, drainMs }, 'draining');
      source.close();
      dashboard?.close();
      void plane
        .close(drainMs)
        .then(() => admin.close())
        .then(resolve);
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  });
  log.info('stopped');
  return 0;
}
