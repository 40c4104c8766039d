import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { RedisServer } from '../../../test/helpers/redis.ts';
import { runCacheStoreConformance } from '../../plugins/cache/store.conformance.ts';
import { RedisCacheStore } from './cache.ts';
import { RedisConnection } from './connection.ts';

let server: RedisServer;
const connections: RedisConnection[] = [];
let fresh = 0;

function connect(prefix = `c${fresh++}:`): RedisConnection {
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

runCacheStoreConformance('redis', () => new RedisCacheStore(connect()));

describe('redis cache store', () => {
  it('shares entries between clients on the same prefix, and never between prefixes', async () => {
    const a = new RedisCacheStore(connect('shared*[x]:'));
    const b = new RedisCacheStore(connect('shared*[x]:'));
    const other = new RedisCacheStore(connect('other:'));
    const now = Date.now();
    const entry = {
      status: 200,
      headers: [],
      contentType: 'text/plain',
      body: Buffer.from('hi'),
      storedAt: now,
      expiresAt: now + 60_000,
      staleUntil: now + 60_000,
      keepUntil: now + 60_000,
      size: 200,
    };
    await a.set('r', 'k', entry);
    assert.equal((await b.get('r', 'k', now))?.body.toString(), 'hi');
    assert.equal(await other.get('r', 'k', now), undefined);
    assert.equal(await other.purge(), 0, 'a purge stays within its prefix, glob characters in it included');
    assert.equal(await b.purge({ route: 'r' }), 1);
    assert.equal(await a.get('r', 'k', now), undefined);
  });

  it('lets Redis expire an entry when it need no longer be kept', async () => {
    const c = connect();
    const now = Date.now();
    await new RedisCacheStore(c).set('r', 'k', {
      status: 200,
      headers: [],
      contentType: 'text/plain',
      body: Buffer.from('x'),
      storedAt: now,
      expiresAt: now + 10_000,
      staleUntil: now + 20_000,
      keepUntil: now + 30_000,
      size: 200,
    });
    const ttl = await c.client.pttl('cache:r:k');
    assert.ok(ttl > 29_000 && ttl <= 30_000, `pttl ${ttl}`);
  });
});
