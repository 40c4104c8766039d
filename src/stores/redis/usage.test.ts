import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { RedisServer } from '../../../test/helpers/redis.ts';
import { runUsageStoreConformance } from '../usage/store.conformance.ts';
import { RedisConnection } from './connection.ts';
import { RedisUsageStore } from './usage.ts';

let server: RedisServer;
const connections: RedisConnection[] = [];
let fresh = 0;
let last = '';

function connect(prefix: string): RedisConnection {
  const c = new RedisConnection({ url: server.url, keyPrefix: prefix, timeout: '5s' }, () => {});
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

// Each store its own key prefix: an empty store per case; `second` shares the last one's prefix.
runUsageStoreConformance(
  'redis',
  async () => {
    last = `u${fresh++}:`;
    return new RedisUsageStore(connect(last));
  },
  async () => new RedisUsageStore(connect(last)),
);

describe('redis usage store', () => {
  it('keeps one hash per hour and the set of hours under the key prefix', async () => {
    const store = new RedisUsageStore(connect('layout:'));
    const hour = 1_800_000_000_000 - (1_800_000_000_000 % 3_600_000);
    await store.add([
      { hour, consumer: 'alice', route: 'r', api: 'a', version: 'v1', statusClass: '2xx', requests: 2, bytes: 7 },
    ]);
    const raw = connect('');
    assert.deepEqual((await raw.client.keys('layout:*')).sort(), [`layout:usage:${hour}`, 'layout:usage:hours']);
    assert.deepEqual(await raw.client.hgetall(`layout:usage:${hour}`), {
      'r:["alice","r","a","v1","2xx"]': '2',
      'b:["alice","r","a","v1","2xx"]': '7',
    });
  });

  it('rejects an add while Redis is down, and adds again once it is back', async () => {
    const own = await RedisServer.start();
    const connection = new RedisConnection({ url: own.url, timeout: '2s' }, () => {});
    connections.push(connection);
    const store = new RedisUsageStore(connection);
    const r = {
      hour: 0,
      consumer: 'a',
      route: 'r',
      api: '',
      version: '',
      statusClass: '2xx' as const,
      requests: 1,
      bytes: 1,
    };
    await store.add([r]);
    await own.kill();
    await assert.rejects(store.add([r]));
    await own.start();
    const deadline = Date.now() + 10_000;
    for (;;) {
      try {
        await store.add([r]);
        break;
      } catch (e) {
        if (Date.now() > deadline) throw e;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
    // The server restarted empty (no persistence): only the add after it counts.
    assert.deepEqual(
      (await store.query({})).map((x) => x.requests),
      [1],
    );
    await own.close();
  });
});
