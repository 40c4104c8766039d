/**
 * `meshgate gateway --config FILE`: the gateway on a config file, reloaded on change or SIGHUP,
 * drained on SIGTERM/SIGINT.
 */
import { stat } from 'node:fs/promises';
import { availableParallelism, hostname } from 'node:os';
import { parseArgs } from 'node:util';
import { addDashboard } from '../admin/dashboard/api.ts';
import { GatewayDashboard, gatewayDashboardGuard } from '../admin/dashboard/gateway.ts';
import { addExplainEndpoint } from '../admin/explain-endpoint.ts';
import { addProxyEndpoints } from '../admin/proxy-endpoints.ts';
import { AdminServer } from '../admin/server.ts';
import { addShadowEndpoints } from '../admin/shadow-endpoints.ts';
import { compatConverters } from '../compat/index.ts';
import { formatIssue } from '../config/issues.ts';
import { checkConfig } from '../config/pipeline.ts';
import { DirectorySource } from '../config/sources/directory/directory.ts';
import { FileSource } from '../config/sources/file/file.ts';
import { Authenticator, parseOperatorTokens, readTokenFile } from '../control-plane/auth/tokens.ts';
import {
  DEFAULT_ADMIN_ADDRESS,
  DEFAULT_ADMIN_PORT,
  DEFAULT_DRAIN_TIMEOUT_MS,
  DEFAULT_GATEWAY_NAME,
} from '../core/defaults.ts';
import { parseDuration } from '../core/duration.ts';
import { createLogger, type Logger } from '../observability/logger.ts';
import { createPluginCatalog } from '../plugins/index.ts';
import type { PluginRegistry } from '../plugins/registry.ts';
import { WorkerDataPlane } from '../proxy/cluster/primary.ts';
import { type DataPlane, InProcessDataPlane } from '../proxy/data-plane.ts';
import { dataPlanePipeline, GATEWAY_MESSAGES } from '../proxy/plane-pipeline.ts';
import { readToken } from './mesh-client.ts';
import { runMeshProxy } from './mesh-proxy.ts';
import {
  FOREIGN_FORMAT_OPTIONS,
  FOREIGN_FORMAT_USAGE,
  foreignFormatOptions,
  listenError,
  parsePort,
  parseWorkers,
} from './options.ts';

export const usage = `Usage: meshgate gateway --config FILE|DIR [options]
       meshgate gateway --control-plane URL [options]

Runs the gateway. With --config the config is reloaded when the file changes or on SIGHUP (which
also re-reads certificate files); an invalid config is rejected (its problems logged) and the running
one kept. With --control-plane the listeners, routes and services (with their discovered instances)
come from the mesh control plane, and the gateway keeps serving its last good config while the
control plane is away.
SIGTERM drains and exits 0.

The config file may also be Istio resources or a Kong declarative file (or mix them with meshgate's
own files): they are detected by shape and converted (docs/adoption.md).

Options:
  -c, --config PATH     config file (YAML or JSON; meshgate's, Istio resources or Kong's), or a directory
                        whose *.yaml, *.yml and *.json files are merged
      --control-plane URL  take the config from a mesh control plane instead of a file
      --id ID           the gateway's proxy id in the mesh (default gateway-HOSTNAME-PID)
      --name NAME       with --control-plane: the gateway's name, the service account of its identity
                        (default ${DEFAULT_GATEWAY_NAME})
      --token-file FILE with --control-plane: join token (default $MESHGATE_TOKEN); its first line
      --admin-port N    admin API port with --control-plane (default ${DEFAULT_ADMIN_PORT}; with --config the file says)
  -w, --workers N       worker processes sharing the ports (default: one per CPU, here ${availableParallelism()});
                        0 or 1 runs the proxy inside this one process (no supervising primary)
      --drain DURATION  how long in-flight requests may finish on shutdown (default ${DEFAULT_DRAIN_TIMEOUT_MS / 1000}s)
      --no-watch        reload only on SIGHUP
      --operator-token-file FILE  with --config: tokens (one a line) the dashboard at the admin listener's
                        /dashboard/ asks for when the admin address is not loopback (without them it is
                        served on loopback only)
${FOREIGN_FORMAT_USAGE}`;

export async function gatewayCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      config: { type: 'string', short: 'c' },
      'control-plane': { type: 'string' },
      id: { type: 'string' },
      name: { type: 'string' },
      'token-file': { type: 'string' },
      'admin-port': { type: 'string' },
      workers: { type: 'string', short: 'w' },
      drain: { type: 'string' },
      'no-watch': { type: 'boolean' },
      ...FOREIGN_FORMAT_OPTIONS,
      'operator-token-file': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(usage);
    return 0;
  }
  if (values.config && values['control-plane']) {
    console.error(`meshgate gateway: use --config or --control-plane, not both\n\n${usage}`);
    return 2;
  }
  if (!values.config && !values['control-plane']) {
    console.error(`meshgate gateway: --config or --control-plane is required\n\n${usage}`);
    return 2;
  }
  const drainMs = values.drain === undefined ? DEFAULT_DRAIN_TIMEOUT_MS : parseDuration(values.drain);
  if (drainMs === undefined) {
    console.error(`meshgate gateway: --drain "${values.drain}" is not a duration (e.g. 10s)`);
    return 2;
  }
  const workers = parseWorkers(values.workers, availableParallelism());
  if (workers === undefined) {
    console.error(`meshgate gateway: --workers "${values.workers}" is not a number from 0 to 256`);
    return 2;
  }
  const log = createLogger();
  const compat = foreignFormatOptions(values, (issue) =>
    log.warn({ issue: formatIssue(issue) }, 'unsupported part of a converted file left out'),
  );
  if (typeof compat === 'string') {
    console.error(`meshgate gateway: ${compat}`);
    return 2;
  }
  const converters = compatConverters(compat);
  const catalog = createPluginCatalog();
  if (values['control-plane'] !== undefined) {
    const adminPort = parsePort(values['admin-port'], DEFAULT_ADMIN_PORT);
    if (adminPort === undefined) {
      console.error(`meshgate gateway: --admin-port "${values['admin-port']}" is not a port number`);
      return 2;
    }
    if (!URL.canParse(values['control-plane'])) {
      console.error(`meshgate gateway: --control-plane "${values['control-plane']}" is not a URL`);
      return 2;
    }
    const name = values.name;
    if (name !== undefined && !/^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$/.test(name)) {
      console.error(`meshgate gateway: --name "${name}" is not a name (letters, digits, ".", "_", "-")`);
      return 2;
    }
    let token: string | undefined;
    try {
      token = readToken(values['token-file'], 'MESHGATE_TOKEN');
    } catch (e) {
      console.error(`meshgate gateway: --token-file: ${(e as Error).message}`);
      return 2;
    }
    return meshGateway({
      controlPlane: values['control-plane'],
      name,
      ...(token === undefined ? {} : { token }),
      id: values.id ?? `gateway-${hostname()}-${process.pid}`,
      workers,
      drainMs,
      adminPort,
      log,
      catalog,
    });
  }
  // A directory's files are merged (native files beside converted ones), as the control plane does.
  const isDirectory = await stat(values.config!).then(
    (s) => s.isDirectory(),
    () => false,
  );
  const source = isDirectory
    ? new DirectorySource(values.config!, process.env)
    : new FileSource(values.config!, process.env);
  const first = await checkConfig(await source.read(), 'start', { load: { catalog }, converters });
  if (!first.ok) {
    for (const issue of first.issues) console.error(formatIssue(issue));
    console.error(`meshgate gateway: ${values.config} is not valid; nothing started`);
    return 1;
  }
  const loaded = first.value.loaded;
  let operatorAuth: Authenticator | null = null;
  const tokenFile = values['operator-token-file'];
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
  if (!values['no-watch']) await pipeline.follow(source, 'file');
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

/** The gateway as a member of the mesh: its config comes from the control plane. */
function meshGateway(options: {
  controlPlane: string;
  /** Absent: the default name (DEFAULT_GATEWAY_NAME), and the gateway's view shows no service. */
  name: string | undefined;
  token?: string;
  id: string;
  workers: number;
  drainMs: number;
  adminPort: number;
  log: Logger;
  catalog: PluginRegistry;
}): Promise<number> {
  const { id, controlPlane } = options;
  return runMeshProxy({
    command: 'gateway',
    controlPlane,
    identity: { id, kind: 'gateway', ...(options.name === undefined ? {} : { service: options.name }) },
    ...(options.token === undefined ? {} : { token: options.token }),
    workers: options.workers,
    adminPort: options.adminPort,
    adminAddress: DEFAULT_ADMIN_ADDRESS,
    drainMs: options.drainMs,
    log: options.log,
    catalog: options.catalog,
    role: 'gateway',
    async onServing({ plane, admin, subscription }) {
      return {
        id,
        listeners: plane.ports(),
        admin: admin.port,
        version: subscription.status().version,
        workers: (await plane.query('status')).map((s) => s.pid),
      };
    },
  });
}
