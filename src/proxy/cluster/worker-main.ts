/**
 * A gateway worker: a data plane and nothing else. It receives configs already validated by the
 * primary (so it loads neither the YAML parser nor the schema validator: a lean process), serves
 * them, answers admin queries, and drains when told.
 */
import { createLogger } from '../../observability/logger.ts';
import { createPluginCatalog } from '../../plugins/index.ts';
import { describeProxy } from '../describe.ts';
import { ProxyServer } from '../proxy.ts';
import type { FromWorker, ToWorker } from './protocol.ts';

let proxy: ProxyServer | null = null;
const options = {
  catalog: createPluginCatalog(),
  log: createLogger({ name: 'worker' }),
  role: process.env.MESHGATE_ROLE === 'mesh' ? ('mesh' as const) : ('gateway' as const),
  serviceName: process.env.MESHGATE_SERVICE,
};
let draining = false;

function reply(message: FromWorker) {
  process.send?.(message);
}

async function drain(drainMs: number) {
  if (draining) return;
  draining = true;
  await proxy?.close(drainMs);
  process.disconnect?.();
  process.exit(0);
}

process.on('message', (message: ToWorker) => {
  switch (message.type) {
    case 'apply': {
      const work =
        proxy === null ? ProxyServer.start(message.loaded, options) : proxy.apply(message.loaded).then(() => proxy!);
      work.then(
        (p) => {
          proxy = p;
          const s = p.snapshot;
          reply({
            type: 'reply',
            id: message.id,
            ok: true,
            value: { version: s.version, hash: s.hash, ports: p.ports() },
          });
        },
        (e: NodeJS.ErrnoException & { address?: string; port?: number }) =>
          reply({
            type: 'reply',
            id: message.id,
            ok: false,
            error: e.message,
            code: e.code,
            syscall: e.syscall,
            address: e.address,
            port: e.port,
          }),
      );
      break;
    }
    case 'query':
      if (proxy === null) reply({ type: 'reply', id: message.id, ok: false, error: 'not started' });
      else
        void describeProxy(proxy, message.view).then((value) =>
          reply({ type: 'reply', id: message.id, ok: true, value }),
        );
      break;
    case 'drain':
      void drain(message.drainMs);
      break;
  }
});

// Ctrl-C reaches the whole process group; the primary decides when workers stop.
process.on('SIGINT', () => {});
process.on('SIGTERM', () => void drain(5_000));
// If the primary dies, do not linger as an orphan holding ports.
process.on('disconnect', () => void drain(5_000));
