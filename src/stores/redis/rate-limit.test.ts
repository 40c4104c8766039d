import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { RedisServer } from '../../../test/helpers/redis.ts';
import { runStoreConformance } from '../../plugins/rate-limit/store.conformance.ts';
import type { Window } from '../../plugins/rate-limit/store.ts';
import { RedisConnection } from './connection.ts';
import { RedisRateLimitStore } from './rate-limit.ts';

let server: RedisServer;
const connections: RedisConnection[] = [];
let fresh = 0;

/** Each store its own key prefix: conformance cases never see each other's counters. */
function connect(prefix = `t${fresh++}:`): RedisConnection {
  const c = new RedisConnection({ url: server.url, keyPrefix: prefix }, () => {});
  connections.push(c);
  return c;
}

before(async () => {
  server = await RedisServer.start();
});
after(async () => {
  for (const c of connections) c.close();
  await server.close();
});

runStoreConformance('redis', () => new RedisRateLimitStore(connect()));

describe('redis rate-limit store', () => {
  const minute: Window = { limit: 100, windowMs: 60_000, algorithm: 'sliding' };

  it('admits exactly the limit when two clients race for the last slots', async () => {
    const a = new RedisRateLimitStore(connect('race:'));
    const b = new RedisRateLimitStore(connect('race:'));
    const now = Date.now();
    const decisions = await Promise.all(
      Array.from({ length: 300 }, (_, i) => (i % 2 === 0 ? a : b).consume('k-race', [minute], now)),
    );
    assert.equal(decisions.filter((d) => d.allowed).length, 100);
  });

  it('writes its keys under the prefix, with an expiry of two windows', async () => {
    const c = connect('pfx:');
    const now = 1_800_000_030_000;
    await new RedisRateLimitStore(c).consume('k-keys', [minute], now);
    const raw = new RedisConnection({ url: server.url, keyPrefix: '' }, () => {});
    connections.push(raw);
    const keys = await raw.client.keys('pfx:*');
    assert.deepEqual(keys, ['pfx:rl:{k-keys}:60000s:1800000000000']);
    const ttl = await raw.client.pttl(keys[0]!);
    assert.ok(ttl > 119_000 && ttl <= 120_000, `pttl ${ttl}`);
  });

  it('runs the script again after SCRIPT FLUSH (EVALSHA falls back to EVAL)', async () => {
    const store = new RedisRateLimitStore(connect());
    const now = Date.now();
    assert.ok((await store.consume('k-flush', [minute], now)).allowed);
    await connections.at(-1)!.client.script('FLUSH');
    const d = await store.consume('k-flush', [minute], now);
    assert.ok(d.allowed);
    assert.equal(d.windows[0]!.remaining, 98);
  });
});

describe('redis connection failures', () => {
  it('fails at once while Redis is down, logs the outage once, and counts again when it returns', async () => {
    const own = await RedisServer.start();
    const warnings: string[] = [];
    const c = new RedisConnection({ url: own.url, keyPrefix: 'down:' }, (m) => warnings.push(m));
    try {
      const store = new RedisRateLimitStore(c);
      const w: Window = { limit: 5, windowMs: 60_000, algorithm: 'fixed' };
      const now = Date.now();
      for (let i = 0; i < 2; i++) assert.ok((await store.consume('k', [w], now)).allowed);
      await own.kill();
      // Until the client notices the closed socket a command may still be sent; from then on, none is.
      const deadline = Date.now() + 5_000;
      let failedFast = false;
      while (!failedFast && Date.now() < deadline) {
        const started = performance.now();
        try {
          await store.consume('k', [w], now);
        } catch {
          failedFast = performance.now() - started < 50;
        }
        await new Promise((r) => setTimeout(r, 10));
      }
      assert.ok(failedFast, 'a decision fails within 50 ms while Redis is down');
      assert.equal(warnings.filter((m) => m.startsWith('redis unavailable')).length, 1);
      await own.start();
      // The restarted Redis is empty (no persistence): counting starts over, through the same client.
      let d = null;
      while (d === null && Date.now() < deadline + 5_000) {
        d = await store.consume('k', [w], now).catch(() => null);
        if (d === null) await new Promise((r) => setTimeout(r, 20));
      }
      assert.ok(d?.allowed);
      assert.equal(d.windows[0]!.remaining, 4);
      assert.ok(warnings.includes('redis available again'));
    } finally {
      c.close();
      await own.close();
    }
  });
});
