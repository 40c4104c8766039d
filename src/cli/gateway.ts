/**
 * `meshgate gateway`: with `--config`, the gateway on config files (gateway-file.ts, imported then);
 * with `--control-plane`, a member of the mesh taking its config from the control plane, which, like a
 * sidecar, loads only the code its config uses: no file source, converter or dashboard, and the
 * built-in plugins its config names when it first names them.
 */
import { availableParallelism, hostname } from 'node:os';
import { parseArgs } from 'node:util';
import { formatIssue } from '../config/issues.ts';
import {
  DEFAULT_ADMIN_ADDRESS,
  DEFAULT_ADMIN_PORT,
  DEFAULT_DRAIN_TIMEOUT_MS,
  DEFAULT_GATEWAY_NAME,
} from '../core/defaults.ts';
import { parseDuration } from '../core/duration.ts';
import { createLogger, type Logger } from '../observability/logger.ts';
import { createLazyPluginCatalog } from '../plugins/lazy.ts';
import type { PluginRegistry } from '../plugins/registry.ts';
import { readToken } from './mesh-client.ts';
import { runMeshProxy } from './mesh-proxy.ts';
import {
  FOREIGN_FORMAT_OPTIONS,
  FOREIGN_FORMAT_USAGE,
  foreignFormatOptions,
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
      catalog: createLazyPluginCatalog(),
    });
  }
  const { fileGateway } = await import('./gateway-file.ts');
  return fileGateway({
    config: values.config!,
    operatorTokenFile: values['operator-token-file'],
    watch: !values['no-watch'],
    workers,
    drainMs,
    log,
    compat,
  });
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
