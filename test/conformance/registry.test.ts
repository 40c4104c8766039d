/** Runs the registry conformance suite against each implementation. */

import { randomBytes } from 'node:crypto';
import { after, before } from 'node:test';
import { connectEtcd, type EtcdConnection } from '../../src/control-plane/etcd/etcd.ts';
import { EtcdRegistry } from '../../src/control-plane/registry/etcd.ts';
import { MemoryRegistry } from '../../src/control-plane/registry/memory.ts';
import { ManualClock } from '../../src/core/clock.ts';
import { EtcdServer } from '../helpers/etcd.ts';
import { registryConformance } from './registry.ts';

registryConformance('memory', async () => {
  const clock = new ManualClock();
  const registry = new MemoryRegistry({ clock });
  return {
    registry,
    advance: async (ms) => clock.advance(ms),
    expiryGraceMs: 0,
    close: async () => {
      await registry.close();
    },
  };
});

// One etcd for the file; each case gets a prefix of its own, so the cases run at once.
let etcd: EtcdServer;
before(async () => {
  etcd = await EtcdServer.start();
});
after(async () => {
  await etcd?.stop();
});

registryConformance(
  'etcd',
  async () => {
    const connection: EtcdConnection = await connectEtcd([etcd.url], `/test-${randomBytes(4).toString('hex')}/`);
    const registry = await EtcdRegistry.open(connection);
    return {
      registry,
      // Leases run on etcd's clock: time passes for real.
      advance: (ms) => new Promise((r) => setTimeout(r, ms)),
      // etcd looks for expired leases every 500 ms, then deletes their keys through consensus.
      expiryGraceMs: 1_500,
      close: async () => {
        await registry.close();
        connection.close();
      },
    };
  },
  { concurrency: true },
);
