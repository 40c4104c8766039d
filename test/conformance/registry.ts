/**
 * The registry conformance suite (house rule 9): every Registry implementation runs it. A harness
 * gives a fresh registry and a way to let time pass: a manual clock for the in-memory registry, real
 * time for a store whose leases run on a server.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Instance, InstanceRegistration } from '../../src/api/mesh.ts';
import { RegistrationError, type Registry, type RegistryEvent } from '../../src/control-plane/registry/registry.ts';

export interface RegistryHarness {
  registry: Registry;
  /** Lets `ms` of registry time pass (and whatever is due happen). */
  advance(ms: number): Promise<void>;
  /**
   * How late after its TTL an expiry may be seen: 0 with a manual clock; with leases on a server,
   * its expiry check interval and the round trip of the delete.
   */
  expiryGraceMs: number;
  close(): Promise<void>;
}

/** Runs `check` until it passes, for at most `graceMs` (once when 0): expiry may be a little late. */
async function within(graceMs: number, check: () => Promise<void>): Promise<void> {
  const deadline = Date.now() + graceMs;
  for (;;) {
    try {
      return await check();
    } catch (e) {
      if (Date.now() >= deadline) throw e;
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}

const photo1: InstanceRegistration = {
  id: 'photo-1',
  service: 'photo-service',
  address: '127.0.0.1',
  port: 15006,
  labels: { version: 'v1', zone: 'eu-1' },
  health: 'healthy',
  ttlMs: 3_000,
};
const photo2: InstanceRegistration = { ...photo1, id: 'photo-2', port: 15016, labels: { version: 'v2' } };
const search1: InstanceRegistration = { id: 'search-1', service: 'search-service', address: '10.0.0.7', port: 8080 };

function recorder(registry: Registry) {
  const events: RegistryEvent[] = [];
  const stop = registry.watch((e) => events.push(e));
  const summary = () => events.map((e) => `${e.type} ${e.instance.id}`);
  return { events, stop, summary };
}

/**
 * `concurrency`: run the cases at once (each has its own registry); for real-time harnesses, whose
 * TTL cases take seconds each.
 */
export function registryConformance(
  name: string,
  makeHarness: () => Promise<RegistryHarness>,
  options: { concurrency?: boolean } = {},
): void {
  describe(`registry conformance: ${name}`, { concurrency: options.concurrency ?? false }, () => {
    const withHarness = (fn: (h: RegistryHarness) => Promise<void>) => async () => {
      const h = await makeHarness();
      try {
        await fn(h);
      } finally {
        await h.close();
      }
    };

    it(
      'registers an instance with service, address, port, labels and health, and lists it',
      withHarness(async ({ registry }) => {
        const { summary } = recorder(registry);
        const stored = await registry.register(photo1);
        assert.deepEqual(
          {
            id: stored.id,
            service: stored.service,
            address: stored.address,
            port: stored.port,
            labels: stored.labels,
            health: stored.health,
            ttlMs: stored.ttlMs,
          },
          { ...photo1, labels: { version: 'v1', zone: 'eu-1' } },
        );
        assert.ok(stored.registeredAt > 0 && stored.lastHeartbeatAt >= stored.registeredAt);
        assert.deepEqual(
          (await registry.list()).map((i) => i.id),
          ['photo-1'],
        );
        assert.deepEqual(summary(), ['registered photo-1']);
      }),
    );

    it(
      'defaults: health healthy, no labels, the default TTL',
      withHarness(async ({ registry }) => {
        const stored = await registry.register(search1);
        assert.equal(stored.health, 'healthy');
        assert.deepEqual(stored.labels, {});
        assert.equal(stored.ttlMs, 3_000);
      }),
    );

    it(
      'lists by service, then id',
      withHarness(async ({ registry }) => {
        await registry.register(search1);
        await registry.register(photo2);
        await registry.register(photo1);
        assert.deepEqual(
          (await registry.list()).map((i) => i.id),
          ['photo-1', 'photo-2', 'search-1'],
        );
      }),
    );

    it(
      'registering again under the same id replaces the instance: updated when it changed, silent when not',
      withHarness(async ({ registry }) => {
        await registry.register(photo1);
        const { summary } = recorder(registry);
        await registry.register(photo1);
        await registry.register({ ...photo1, labels: { version: 'v3' } });
        assert.deepEqual(summary(), ['updated photo-1']);
        const [only] = await registry.list();
        assert.deepEqual(only!.labels, { version: 'v3' });
        assert.equal((await registry.list()).length, 1);
      }),
    );

    it(
      'heartbeats within the TTL keep an instance, well past one TTL',
      withHarness(async ({ registry, advance }) => {
        await registry.register(photo1);
        for (let i = 0; i < 5; i++) {
          await advance(2_000);
          assert.ok(await registry.heartbeat('photo-1'), `heartbeat ${i} found the instance`);
        }
        assert.deepEqual(
          (await registry.list()).map((i) => i.id),
          ['photo-1'],
        );
      }),
    );

    it(
      'a heartbeat may change the health, which is an update; the same health is not',
      withHarness(async ({ registry }) => {
        await registry.register(photo1);
        const { summary } = recorder(registry);
        await registry.heartbeat('photo-1', { health: 'healthy' });
        const after = await registry.heartbeat('photo-1', { health: 'unhealthy' });
        assert.equal(after?.health, 'unhealthy');
        assert.deepEqual(summary(), ['updated photo-1']);
        assert.equal((await registry.list())[0]!.health, 'unhealthy');
      }),
    );

    it(
      'a heartbeat for an unknown id answers null, so the instance registers again',
      withHarness(async ({ registry }) => {
        assert.equal(await registry.heartbeat('nobody'), null);
      }),
    );

    it(
      'deregistering removes at once; an unknown id is false',
      withHarness(async ({ registry }) => {
        await registry.register(photo1);
        await registry.register(photo2);
        const { summary } = recorder(registry);
        assert.equal(await registry.deregister('photo-1'), true);
        assert.equal(await registry.deregister('photo-1'), false);
        assert.deepEqual(
          (await registry.list()).map((i) => i.id),
          ['photo-2'],
        );
        assert.deepEqual(summary(), ['deregistered photo-1']);
      }),
    );

    it(
      'a missed TTL removes the instance (not before the TTL, not long after)',
      withHarness(async ({ registry, advance, expiryGraceMs }) => {
        await registry.register(photo1);
        await registry.register({ ...photo2, ttlMs: 10_000 });
        const { summary } = recorder(registry);
        await advance(2_500);
        assert.equal((await registry.list()).length, 2, 'still there before the TTL');
        await advance(1_000);
        await within(expiryGraceMs, async () => {
          assert.deepEqual(
            (await registry.list()).map((i: Instance) => i.id),
            ['photo-2'],
          );
          assert.deepEqual(summary(), ['expired photo-1']);
        });
        assert.equal(await registry.heartbeat('photo-1'), null, 'an expired instance must register again');
      }),
    );

    it(
      'a heartbeat restarts the TTL from the heartbeat, not from the registration',
      withHarness(async ({ registry, advance, expiryGraceMs }) => {
        await registry.register(photo1);
        await advance(2_000);
        await registry.heartbeat('photo-1');
        await advance(2_000);
        assert.equal((await registry.list()).length, 1, '4 s after registering, 2 s after the heartbeat');
        await advance(1_500);
        await within(expiryGraceMs, async () => assert.equal((await registry.list()).length, 0));
      }),
    );

    it(
      'TTLs are kept within 1 s and 5 min',
      withHarness(async ({ registry }) => {
        assert.equal((await registry.register({ ...photo1, ttlMs: 10 })).ttlMs, 1_000);
        assert.equal((await registry.register({ ...photo2, ttlMs: 86_400_000 })).ttlMs, 300_000);
      }),
    );

    it(
      'rejects an invalid registration, naming each problem, and stores nothing',
      withHarness(async ({ registry }) => {
        await assert.rejects(
          registry.register({ ...photo1, id: 'bad id', port: 0, service: '-x' } as InstanceRegistration),
          (e: Error) => {
            assert.ok(e instanceof RegistrationError);
            assert.match(e.message, /id "bad id" is not valid/);
            assert.match(e.message, /port must be >= 1/);
            assert.match(e.message, /service must match pattern/);
            return true;
          },
        );
        await assert.rejects(
          registry.register({ ...photo1, health: 'sick' } as unknown as InstanceRegistration),
          /health must be equal to one of the allowed values/,
        );
        await assert.rejects(
          registry.register({ ...photo1, colour: 'red' } as unknown as InstanceRegistration),
          /unknown field "colour"/,
        );
        assert.deepEqual(await registry.list(), []);
      }),
    );

    it(
      'a stopped watch hears nothing more',
      withHarness(async ({ registry }) => {
        const { events, stop } = recorder(registry);
        await registry.register(photo1);
        stop();
        await registry.deregister('photo-1');
        assert.equal(events.length, 1);
      }),
    );
  });
}
