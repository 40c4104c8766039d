/**
 * `meshgate gateway --config FILE`: the gateway on a config file, reloaded on change or SIGHUP,
 * drained on SIGTERM/SIGINT.
 */
import { parseArgs } from 'node:util';
import { addProxyEndpoints } from '../admin/proxy-endpoints.ts';
import { AdminServer } from '../admin/server.ts';
import { ConfigFileSource } from '../config/file-source.ts';
import { formatIssue } from '../config/issues.ts';
import type { LoadResult } from '../config/load.ts';
import { DEFAULT_ADMIN_ADDRESS, DEFAULT_ADMIN_PORT, DEFAULT_DRAIN_TIMEOUT_MS } from '../core/defaults.ts';
import { parseDuration } from '../core/duration.ts';
import { createLogger } from '../observability/logger.ts';
import { ProxyServer } from '../proxy/proxy.ts';

export const usage = `Usage: meshgate gateway --config FILE [options]

Runs the gateway. The config is reloaded when the file changes or on SIGHUP; an invalid
config is rejected (its problems logged) and the running one kept. SIGTERM drains and exits 0.

Options:
  -c, --config FILE     config file (YAML or JSON)
      --drain DURATION  how long in-flight requests may finish on shutdown (default ${DEFAULT_DRAIN_TIMEOUT_MS / 1000}s)
      --no-watch        reload only on SIGHUP`;

export async function gatewayCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      config: { type: 'string', short: 'c' },
      drain: { type: 'string' },
      'no-watch': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(usage);
    return 0;
  }
  if (!values.config) {
    console.error(`meshgate gateway: --config is required\n\n${usage}`);
    return 2;
  }
  const drainMs = values.drain === undefined ? DEFAULT_DRAIN_TIMEOUT_MS : parseDuration(values.drain);
  if (drainMs === undefined) {
    console.error(`meshgate gateway: --drain "${values.drain}" is not a duration (e.g. 10s)`);
    return 2;
  }
  const log = createLogger();
  const source = new ConfigFileSource(values.config);
  const first = await source.load();
  if (!first.ok) {
    for (const issue of first.issues) console.error(formatIssue(issue));
    console.error(`meshgate gateway: ${values.config} is not valid; nothing started`);
    return 1;
  }
  const proxy = await ProxyServer.start(first.value);
  const admin = new AdminServer();
  addProxyEndpoints(admin, proxy);
  const adminConfig = first.value.config.admin;
  await admin.listen(adminConfig?.port ?? DEFAULT_ADMIN_PORT, adminConfig?.address ?? DEFAULT_ADMIN_ADDRESS);
  log.info(
    { listeners: proxy.ports(), admin: admin.port, version: proxy.snapshot.version, hash: proxy.snapshot.hash },
    'gateway started',
  );

  let reloading = Promise.resolve();
  const reload = (result: LoadResult, trigger: string) => {
    reloading = reloading.then(async () => {
      if (!result.ok) {
        log.error({ trigger, issues: result.issues.map(formatIssue) }, 'config rejected; the running config is kept');
        return;
      }
      if (result.value.hash === proxy.snapshot.hash) return;
      try {
        const snapshot = await proxy.apply(result.value);
        log.info(
          { trigger, version: snapshot.version, hash: snapshot.hash, listeners: proxy.ports() },
          'config applied',
        );
      } catch (e) {
        log.error({ trigger, err: (e as Error).message }, 'config could not be applied; the running config is kept');
      }
    });
  };
  if (!values['no-watch']) source.watch((r) => reload(r, 'file'));
  process.on('SIGHUP', () => void source.load().then((r) => reload(r, 'SIGHUP')));

  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log.info({ signal, drainMs }, 'draining');
      source.close();
      void proxy
        .close(drainMs)
        .then(() => admin.close())
        .then(resolve);
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  log.info('stopped');
  return 0;
}
