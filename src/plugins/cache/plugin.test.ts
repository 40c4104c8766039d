import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { startGateway, startUpstream, type TestGateway, type Upstream } from '../../testing/servers.ts';

let now = 1_800_000_000_000;

describe('cache plugin', () => {
  let upstream: Upstream;
  let gw: TestGateway;
  let served = 0;
  before(async () => {
    upstream = await startUpstream((req, res) => {
      served++;
      const headers: Record<string, string> = { 'content-type': 'application/json', etag: `"v${served}"` };
      if (req.url?.startsWith('/nostore')) headers['cache-control'] = 'no-store';
      if (req.url?.startsWith('/short')) headers['cache-control'] = 'max-age=5';
      if (req.url?.startsWith('/cookie')) headers['set-cookie'] = 'a=b';
      if (req.url?.startsWith('/missing')) res.statusCode = 404;
      res.writeHead(res.statusCode, headers);
      res.end(JSON.stringify({ served, url: req.url }));
    });
    gw = await startGateway(
      {
        services: [{ name: 'search', endpoints: [{ url: upstream.url }] }],
        routes: [
          {
            name: 'search-canary',
            match: { path: '/*', headers: { canary: 'true' } },
            service: 'search',
            plugins: [{ name: 'cache', config: { ttl: '300s' } }],
          },
          { name: 'search', service: 'search', plugins: [{ name: 'cache', config: { ttl: '300s' } }] },
        ],
      },
      { now: () => now },
    );
  });
  after(async () => {
    await gw.close();
    await upstream.close();
  });

  async function get(path: string, headers: Record<string, string> = {}) {
    const res = await request(`${gw.url()}${path}`, { headers });
    return { status: res.statusCode, headers: res.headers, json: (await res.body.json()) as { served: number } };
  }

  it('serves the second request from the cache, with its headers and Age, without the upstream', async () => {
    const first = await get('/api/v1/search/homes?city=Oslo');
    assert.equal(first.headers['x-cache-status'], 'MISS');
    const before = upstream.seen.length;
    now += 7_000;
    const second = await get('/api/v1/search/homes?city=Oslo');
    assert.equal(second.headers['x-cache-status'], 'HIT');
    assert.equal(second.headers.age, '7');
    assert.equal(second.headers.etag, first.headers.etag);
    assert.equal(second.headers['content-type'], 'application/json');
    assert.deepEqual(second.json, first.json);
    assert.equal(upstream.seen.length, before);
    assert.equal(second.headers['x-meshgate-code'], undefined, 'a hit is a response, not an error');
  });

  it('keeps each route to its own entries, even with the same settings', async () => {
    const main = await get('/api/v1/search/route-split');
    assert.equal((await get('/api/v1/search/route-split')).headers['x-cache-status'], 'HIT');
    const canary = await get('/api/v1/search/route-split', { canary: 'true' });
    assert.equal(canary.headers['x-cache-status'], 'MISS', 'the canary route does not answer from the main route');
    assert.notEqual(canary.json.served, main.json.served);
  });

  it('keys on the query, and expires after the ttl', async () => {
    await get('/api/v1/search/x?q=1');
    assert.equal((await get('/api/v1/search/x?q=2')).headers['x-cache-status'], 'MISS');
    assert.equal((await get('/api/v1/search/x?q=1')).headers['x-cache-status'], 'HIT');
    now += 301_000;
    assert.equal((await get('/api/v1/search/x?q=1')).headers['x-cache-status'], 'MISS');
  });

  it('honours a shorter upstream max-age, and never stores no-store, Set-Cookie or non-200 responses', async () => {
    await get('/short');
    now += 4_000;
    assert.equal((await get('/short')).headers['x-cache-status'], 'HIT', 'cached within its max-age');
    now += 2_000;
    assert.equal((await get('/short')).headers['x-cache-status'], 'MISS');
    for (const path of ['/nostore', '/cookie', '/missing']) {
      await get(path);
      assert.equal((await get(path)).headers['x-cache-status'], 'MISS', path);
    }
  });

  it('does not serve or store requests with credentials, or those asking for a fresh answer', async () => {
    await get('/private', { authorization: 'Bearer x' });
    assert.equal((await get('/private', { authorization: 'Bearer x' })).headers['x-cache-status'], 'BYPASS');
    await get('/fresh');
    assert.equal((await get('/fresh', { 'cache-control': 'no-cache' })).headers['x-cache-status'], 'REFRESH');
  });

  it('purges one route or every route through the admin API', async () => {
    await get('/api/v1/search/purge');
    await get('/api/v1/search/purge', { canary: 'true' });
    assert.equal((await get('/api/v1/search/purge')).headers['x-cache-status'], 'HIT');
    const purge = async (path: string) => {
      const res = await request(`${gw.adminUrl}${path}`, { method: 'DELETE' });
      return { status: res.statusCode, body: (await res.body.json()) as { removed: number } };
    };
    const one = await purge('/cache/search');
    assert.equal(one.status, 200);
    assert.ok(one.body.removed >= 1);
    assert.equal((await get('/api/v1/search/purge')).headers['x-cache-status'], 'MISS');
    assert.equal(
      (await get('/api/v1/search/purge', { canary: 'true' })).headers['x-cache-status'],
      'HIT',
      'other routes kept',
    );
    assert.ok((await purge('/cache')).body.removed >= 1);
    assert.equal((await get('/api/v1/search/purge', { canary: 'true' })).headers['x-cache-status'], 'MISS');
  });
});
