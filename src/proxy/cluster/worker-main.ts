/**
 * A gateway worker: a data plane and nothing else. It receives configs already validated by the
 * primary (so it loads neither the YAML parser nor the schema validator: a lean process), serves
 * them, answers admin queries, and drains when told.
 */
import { createLogger } from '../../observability/logger.ts';
import { createPluginCatalog } from '../../plugins/index.ts';
import { countInPrimary } from '../../stores/primary.ts';
import { describeProxy } from '../describe.ts';
import { type PreparedChange, ProxyServer } from '../proxy.ts';
import type { FromWorker, ToWorker } from './protocol.ts';

let proxy: ProxyServer | null = null;
const options = {
  catalog: createPluginCatalog(),
  log: createLogger({ name: 'worker' }),
  role: process.env.MESHGATE_ROLE === 'mesh' ? ('mesh' as const) : ('gateway' as const),
  serviceName: process.env.MESHGATE_SERVICE,
};
let draining = false;
// In-memory rate limits count in the primary, so that a limit holds for the machine, not per worker.
const limits = countInPrimary((message) => {
  process.send?.(message);
});

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

/** A reload this worker prepared, waiting for the primary's commit or discard. */
let pending: { change: number; prepared: PreparedChange } | null = null;
/** Config messages run one at a time, in the order the primary sent them. */
let configWork: Promise<unknown> = Promise.resolve();

function inForce(p: ProxyServer) {
  const s = p.snapshot;
  return { version: s.version, hash: s.hash, ports: p.ports() };
}

async function onConfigMessage(message: Extract<ToWorker, { type: 'apply' | 'prepare' | 'commit' | 'discard' }>) {
  switch (message.type) {
    case 'apply':
      if (proxy === null) proxy = await ProxyServer.start(message.loaded, options);
      else await proxy.apply(message.loaded);
      return inForce(proxy);
    case 'prepare': {
      if (proxy === null) throw new Error('not started');
      if (pending !== null) await proxy.discard(pending.prepared);
      pending = null;
      const prepared = await proxy.prepare(message.loaded);
      pending = { change: message.change, prepared };
      return { version: prepared.snapshot.version, hash: prepared.snapshot.hash };
    }
    case 'commit': {
      if (proxy === null || pending?.change !== message.change)
        throw new Error(`change ${message.change} is not prepared here`);
      const { prepared } = pending;
      pending = null;
      proxy.commit(prepared);
      return inForce(proxy);
    }
    case 'discard':
      // Also sent to a worker that refused (it holds nothing then) or whose answer came too late.
      if (proxy !== null && pending?.change === message.change) await proxy.discard(pending.prepared);
      if (pending?.change === message.change) pending = null;
      return {};
  }
}

process.on('message', (message: ToWorker) => {
  switch (message.type) {
    case 'apply':
    case 'prepare':
    case 'commit':
    case 'discard': {
      const work = configWork.then(() => onConfigMessage(message));
      configWork = work.catch(() => {});
      work.then(
        (value) => reply({ type: 'reply', id: message.id, ok: true, value }),
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
    case 'limit-decided':
      limits.decided(message);
      break;
  }
});

// Ctrl-C reaches the whole process group; the primary decides when workers stop.
process.on('SIGINT', () => {});
process.on('SIGTERM', () => void drain(5_000));
// If the primary dies, do not linger as an orphan holding ports.
process.on('disconnect', () => {
  limits.close(new Error('the primary process is gone'));
  void drain(5_000);
});
