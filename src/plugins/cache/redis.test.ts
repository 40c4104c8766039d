/**
 * The cache plugin with `store: redis`: two gateways share entries through one real Redis, follow
 * `failOpen` while it is down, and cache again once it is back.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { RedisServer } from '../../../test/helpers/redis.ts';
import { startGateway, startUpstream, type TestGateway, type Upstream } from '../../testing/servers.ts';

describe('cache plugin with store: redis', () => {
  let redis: RedisServer;
  let upstream: Upstream;
  let a: TestGateway;
  let b: TestGateway;
  let served = 0;

  before(async () => {
    redis = await RedisServer.start();
    upstream = await startUpstream((req, res) => {
      served++;
      const answer = () => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ served }));
      };
      // Slow enough for concurrent requests to overlap.
      if (req.url!.startsWith('/open/slow')) setTimeout(answer, 300);
      else answer();
    });
    const config = {
      redis: { url: redis.url, keyPrefix: 'cache-test:' },
      services: [{ name: 'search', endpoints: [{ url: upstream.url }] }],
      routes: [
        {
          name: 'open',
          match: { path: '/open/*' },
          service: 'search',
          plugins: [{ name: 'cache', config: { ttl: '60s', store: 'redis' } }],
        },
        {
          name: 'closed',
          match: { path: '/closed/*' },
          service: 'search',
          plugins: [{ name: 'cache', config: { ttl: '60s', store: 'redis', failOpen: false } }],
        },
      ],
    };
    a = await startGateway(config);
    b = await startGateway(config);
  });
  after(async () => {
    await a.close();
    await b.close();
    await upstream.close();
    await redis.close();
  });

  async function get(gw: TestGateway, path: string) {
    const res = await request(`${gw.url()}${path}`);
    return { status: res.statusCode, headers: res.headers, text: await res.body.text() };
  }

  it('is a config error without the top-level redis block', async () => {
    await assert.rejects(
      startGateway({
        routes: [
          {
            name: 'r',
            directResponse: { status: 200, body: 'x' },
            plugins: [{ name: 'rate-limit', config: { minute: 1, store: 'redis' } }],
          },
        ],
      }),
      /routes\[0\]\.plugins\[0\]\.config\.store: store: redis needs the top-level redis block/,
    );
  });

  it('coalesces concurrent misses within one gateway process', async () => {
    const before = served;
    const all = await Promise.all(Array.from({ length: 20 }, () => get(a, '/open/slow')));
    assert.equal(served, before + 1, 'one upstream call');
    assert.equal(new Set(all.map((r) => r.text)).size, 1);
    assert.equal(all.filter((r) => r.headers['x-cache-status'] === 'HIT').length, 19);
  });

  it('serves on one gateway what the other stored', async () => {
    const miss = await get(a, '/open/homes?city=Oslo');
    assert.equal(miss.headers['x-cache-status'], 'MISS');
    // The entry is written after the response ends: poll the other gateway until it is there.
    const deadline = Date.now() + 5_000;
    let hit = await get(b, '/open/homes?city=Oslo');
    while (hit.headers['x-cache-status'] !== 'HIT' && Date.now() < deadline) {
      await sleep(20);
      hit = await get(b, '/open/homes?city=Oslo');
    }
    assert.equal(hit.headers['x-cache-status'], 'HIT');
    assert.equal(hit.text, miss.text);
  });

  it('purges a route for every gateway through the admin API of one', async () => {
    await get(a, '/open/purged');
    const deadline = Date.now() + 5_000;
    while ((await get(b, '/open/purged')).headers['x-cache-status'] !== 'HIT' && Date.now() < deadline) await sleep(20);
    const res = await request(`${a.adminUrl}/cache/open`, { method: 'DELETE' });
    const body = (await res.body.json()) as { removed: number; errors: string[] };
    assert.equal(res.statusCode, 200);
    assert.ok(body.removed >= 1);
    assert.deepEqual(body.errors, []);
    assert.equal((await get(b, '/open/purged')).headers['x-cache-status'], 'MISS');
  });

  it('follows failOpen while Redis is down, and caches again once it is back', async () => {
    await get(a, '/open/down');
    await redis.kill();
    const deadline = Date.now() + 5_000;
    let refused = await get(a, '/closed/down');
    while (refused.status !== 503 && Date.now() < deadline) {
      await sleep(20);
      refused = await get(a, '/closed/down');
    }
    assert.equal(refused.status, 503);
    assert.equal(refused.headers['x-meshgate-code'], 'MG_STORE_UNAVAILABLE');
    const before = served;
    const passed = await get(a, '/open/down');
    assert.equal(passed.status, 200);
    assert.equal(passed.headers['x-cache-status'], 'MISS');
    assert.equal(served, before + 1, 'the upstream answered');
    const metrics = await (await request(`${a.adminUrl}/metrics`)).body.text();
    assert.match(metrics, /gateway_store_unavailable_total\{plugin="cache",route="closed",outcome="refused"\} [1-9]/);
    assert.match(metrics, /gateway_store_unavailable_total\{plugin="cache",route="open",outcome="passed"\} [1-9]/);
    const purge = await request(`${a.adminUrl}/cache`, { method: 'DELETE' });
    assert.equal(purge.statusCode, 503, 'a purge that cannot reach Redis says so');
    await purge.body.dump();

    await redis.start();
    let again = await get(a, '/closed/up');
    while (again.status === 503 && Date.now() < deadline + 5_000) {
      await sleep(20);
      again = await get(a, '/closed/up');
    }
    assert.equal(again.headers['x-cache-status'], 'MISS');
    let hit = await get(a, '/closed/up');
    while (hit.headers['x-cache-status'] !== 'HIT' && Date.now() < deadline + 5_000) {
      await sleep(20);
      hit = await get(a, '/closed/up');
    }
    assert.equal(hit.headers['x-cache-status'], 'HIT');
  });
});
