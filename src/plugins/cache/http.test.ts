/**
 * The cache as an HTTP cache, over real sockets with a real upstream that counts its calls and an
 * injected clock: Cache-Control and Expires of the response, the request's directives, Vary, the key
 * (query order, key headers, consumers), conditional requests, Age, X-Cache-Status, the byte budget
 * and purges through the admin API.
 */
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { SignJWT } from 'jose';
import { request } from 'undici';
import { startGateway, startUpstream, type TestGateway, type Upstream } from '../../testing/servers.ts';

const T0 = 1_800_000_000_000;
let now = T0;
const KEY_A = 'consumer-a-key-0123456789abcdef';
const KEY_B = 'consumer-b-key-0123456789abcdef';
const SECRET_A = 'consumer-a-jwt-secret-0123456789abcdef';
const SECRET_B = 'consumer-b-jwt-secret-0123456789abcdef';

/** A bearer token of `issuer`, valid at the test's clock (T0), whatever the real time. */
async function bearer(issuer: string, secret: string, sub: string): Promise<string> {
  const token = await new SignJWT({ sub })
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuer(issuer)
    .setIssuedAt(Math.floor(T0 / 1000))
    .setExpirationTime(Math.floor(T0 / 1000) + 3600)
    .sign(new TextEncoder().encode(secret));
  return `Bearer ${token}`;
}

type Behaviour = (req: IncomingMessage, res: ServerResponse, call: number) => void;

describe('cache plugin as an HTTP cache', () => {
  let upstream: Upstream;
  let gw: TestGateway;
  const calls = new Map<string, number>();
  const behaviours = new Map<string, Behaviour>();

  /** The upstream answers `path` with these headers and a body naming the path and the call. */
  function respond(path: string, headers: Record<string, string> = {}, status = 200) {
    behaviours.set(path, (_req, res, call) => {
      res.writeHead(status, { 'content-type': 'text/plain', ...headers });
      res.end(`${path} #${call}`);
    });
  }
  const callsOf = (path: string) => calls.get(path) ?? 0;

  before(async () => {
    upstream = await startUpstream((req, res) => {
      const path = req.url!.split('?')[0]!;
      const call = callsOf(path) + 1;
      calls.set(path, call);
      const behaviour = behaviours.get(path);
      if (behaviour !== undefined) behaviour(req, res, call);
      else {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end(`${req.url} #${call} ${req.headers['accept-language'] ?? ''}`);
      }
    });
    gw = await startGateway(
      {
        consumers: [
          { name: 'a', credentials: [{ type: 'api-key', key: KEY_A }] },
          { name: 'b', credentials: [{ type: 'api-key', key: KEY_B }] },
          { name: 'jwt-a', credentials: [{ type: 'jwt', issuer: 'issuer-a', secret: SECRET_A }] },
          { name: 'jwt-b', credentials: [{ type: 'jwt', issuer: 'issuer-b', secret: SECRET_B }] },
        ],
        services: [{ name: 'up', endpoints: [{ url: upstream.url }] }],
        routes: [
          {
            name: 'keyed',
            match: { path: '/keyed/*' },
            service: 'up',
            plugins: [{ name: 'cache', config: { ttl: '60s', keyHeaders: ['Accept-Language'] } }],
          },
          {
            name: 'consumers',
            match: { path: '/consumers/*' },
            service: 'up',
            plugins: [{ name: 'key-auth' }, { name: 'cache', config: { ttl: '60s', perConsumer: true } }],
          },
          {
            name: 'jwt-consumers',
            match: { path: '/jwt-consumers/*' },
            service: 'up',
            plugins: [{ name: 'jwt' }, { name: 'cache', config: { ttl: '60s', perConsumer: true } }],
          },
          {
            name: 'authorized',
            match: { path: '/authorized/*' },
            service: 'up',
            plugins: [{ name: 'cache', config: { ttl: '60s', cacheAuthorized: true } }],
          },
          {
            name: 'small',
            match: { path: '/small/*' },
            service: 'up',
            // Room for three 1000-byte responses (each accounted with its headers and overhead), not four.
            plugins: [{ name: 'cache', config: { ttl: '60s', maxBytes: 4000, statuses: [200, 404] } }],
          },
          { name: 'web', service: 'up', plugins: [{ name: 'cache', config: { ttl: '60s' } }] },
        ],
      },
      { now: () => now },
    );
  });
  after(async () => {
    await gw.close();
    await upstream.close();
  });

  async function get(path: string, headers: Record<string, string> = {}, method = 'GET') {
    const res = await request(`${gw.url()}${path}`, { method, headers });
    const text = await res.body.text();
    return { status: res.statusCode, headers: res.headers, text, cache: res.headers['x-cache-status'] };
  }

  describe('response Cache-Control and Expires', () => {
    it('never stores no-store, private or no-cache responses', async () => {
      for (const directive of ['no-store', 'private', 'no-cache', 'private, max-age=60', 'no-cache="set-cookie"']) {
        const path = `/cc/${encodeURIComponent(directive)}`;
        respond(path, { 'cache-control': directive });
        assert.equal((await get(path)).cache, 'MISS', directive);
        assert.equal((await get(path)).cache, 'MISS', directive);
        assert.equal(callsOf(path), 2, directive);
      }
    });

    it('keeps a response for its max-age, longer or shorter than the ttl', async () => {
      now = T0;
      respond('/cc/max-age-10', { 'cache-control': 'max-age=10' });
      respond('/cc/max-age-600', { 'cache-control': 'public, max-age=600' });
      await get('/cc/max-age-10');
      await get('/cc/max-age-600');
      now = T0 + 9_000;
      assert.equal((await get('/cc/max-age-10')).cache, 'HIT');
      now = T0 + 10_000;
      assert.equal((await get('/cc/max-age-10')).cache, 'MISS', 'expired at its max-age');
      now = T0 + 300_000;
      const long = await get('/cc/max-age-600');
      assert.equal(long.cache, 'HIT', 'kept past the 60s ttl: the response said 600');
      assert.equal(long.headers.age, '300');
      assert.equal(callsOf('/cc/max-age-600'), 1);
    });

    it('prefers s-maxage to max-age (a shared cache), and max-age=0 is not stored', async () => {
      now = T0;
      respond('/cc/s-maxage', { 'cache-control': 'max-age=100, s-maxage=5' });
      respond('/cc/zero', { 'cache-control': 'max-age=0' });
      await get('/cc/s-maxage');
      now = T0 + 4_000;
      assert.equal((await get('/cc/s-maxage')).cache, 'HIT');
      now = T0 + 6_000;
      assert.equal((await get('/cc/s-maxage')).cache, 'MISS');
      await get('/cc/zero');
      assert.equal((await get('/cc/zero')).cache, 'MISS');
    });

    it('uses Expires less Date when there is no max-age; an invalid Expires is already expired', async () => {
      now = T0;
      const date = new Date(T0).toUTCString();
      respond('/exp/valid', { date, expires: new Date(T0 + 20_000).toUTCString() });
      respond('/exp/invalid', { date, expires: '0' });
      respond('/exp/max-age-wins', {
        date,
        expires: new Date(T0 + 20_000).toUTCString(),
        'cache-control': 'max-age=5',
      });
      for (const path of ['/exp/valid', '/exp/invalid', '/exp/max-age-wins']) await get(path);
      now = T0 + 6_000;
      assert.equal((await get('/exp/max-age-wins')).cache, 'MISS', 'max-age wins over Expires');
      assert.equal((await get('/exp/invalid')).cache, 'MISS');
      now = T0 + 19_000;
      assert.equal((await get('/exp/valid')).cache, 'HIT');
      now = T0 + 20_000;
      assert.equal((await get('/exp/valid')).cache, 'MISS');
    });

    it('counts the Age the response came with, and Age grows on the clock', async () => {
      now = T0;
      respond('/age/aged', { 'cache-control': 'max-age=60', age: '30' });
      respond('/age/new', { 'cache-control': 'max-age=60' });
      await get('/age/aged');
      await get('/age/new');
      now = T0 + 1_000;
      assert.equal((await get('/age/new')).headers.age, '1');
      now = T0 + 20_000;
      const aged = await get('/age/aged');
      assert.equal(aged.headers.age, '50');
      assert.equal((await get('/age/new')).headers.age, '20');
      now = T0 + 31_000;
      assert.equal((await get('/age/aged')).cache, 'MISS', 'its 60s were half gone when it arrived');
    });

    it('stores only the statuses configured (default 200), and never Vary: *', async () => {
      respond('/small/gone', {}, 404);
      respond('/gone', {}, 404);
      respond('/vary-star', { vary: '*' });
      await get('/small/gone');
      assert.equal((await get('/small/gone')).cache, 'HIT', 'statuses: [200, 404]');
      await get('/gone');
      assert.equal((await get('/gone')).cache, 'MISS', 'the default is 200 only');
      await get('/vary-star');
      assert.equal((await get('/vary-star')).cache, 'MISS');
    });
  });

  describe('request directives and methods', () => {
    it('bypasses no-store requests, and refreshes no-cache and max-age=0 ones', async () => {
      now = T0;
      const first = await get('/req/store', { 'cache-control': 'no-store' });
      assert.equal(first.cache, 'BYPASS');
      assert.equal((await get('/req/store')).cache, 'MISS', 'the no-store request stored nothing');
      assert.equal((await get('/req/store')).cache, 'HIT');

      const refreshed = await get('/req/store', { 'cache-control': 'no-cache' });
      assert.equal(refreshed.cache, 'REFRESH');
      const after = await get('/req/store');
      assert.equal(after.cache, 'HIT');
      assert.equal(after.text, refreshed.text, 'the refreshed response replaced the entry');
      assert.equal((await get('/req/store', { 'cache-control': 'max-age=0' })).cache, 'REFRESH');
      assert.equal(callsOf('/req/store'), 4);
    });

    it('serves an entry no older than a request max-age asks for', async () => {
      now = T0;
      await get('/req/max-age');
      now = T0 + 10_000;
      assert.equal((await get('/req/max-age', { 'cache-control': 'max-age=20' })).cache, 'HIT');
      assert.equal((await get('/req/max-age', { 'cache-control': 'max-age=5' })).cache, 'MISS');
    });

    it('bypasses other methods, Authorization and Cookie', async () => {
      await get('/methods');
      assert.equal((await get('/methods', {}, 'POST')).cache, 'BYPASS');
      assert.equal((await get('/methods', { authorization: 'Bearer t' })).cache, 'BYPASS');
      assert.equal((await get('/methods', { cookie: 'a=b' })).cache, 'BYPASS');
      assert.equal((await get('/methods')).cache, 'HIT');
    });

    it('answers HEAD from the GET entry, with its length and no body', async () => {
      const got = await get('/head');
      const head = await get('/head', {}, 'HEAD');
      assert.equal(head.cache, 'HIT');
      assert.equal(head.text, '');
      assert.equal(head.headers['content-length'], String(Buffer.byteLength(got.text)));
      assert.equal(callsOf('/head'), 1);
    });
  });

  describe('the key', () => {
    it('puts query parameters in order, keeping the order of repeated ones', async () => {
      await get('/q?b=2&a=1&c=3');
      assert.equal((await get('/q?a=1&c=3&b=2')).cache, 'HIT');
      assert.equal((await get('/q?c=3&&b=2&a=1')).cache, 'HIT');
      await get('/q?x=1&x=2');
      assert.equal((await get('/q?x=2&x=1')).cache, 'MISS', 'repeated parameters keep their order');
    });

    it('keeps a variant per value of the request headers the response varies on, normalised', async () => {
      behaviours.set('/vary', (req, res, call) => {
        res.writeHead(200, { 'content-type': 'text/plain', vary: 'Accept-Language, accept-encoding' });
        res.end(`${req.headers['accept-language']} #${call}`);
      });
      const en = await get('/vary', { 'accept-language': 'en' });
      const nb = await get('/vary', { 'accept-language': 'nb' });
      assert.equal(en.cache, 'MISS');
      assert.equal(nb.cache, 'MISS');
      const enAgain = await get('/vary', { 'accept-language': ' EN ' });
      assert.equal(enAgain.cache, 'HIT');
      assert.equal(enAgain.text, en.text);
      const nbAgain = await get('/vary', { 'accept-language': 'nb' });
      assert.equal(nbAgain.text, nb.text);
      assert.equal((await get('/vary', { 'accept-language': 'nb', 'accept-encoding': 'gzip' })).cache, 'MISS');
      assert.equal(callsOf('/vary'), 3);
    });

    it('keys on the configured headers', async () => {
      const en = await get('/keyed/x', { 'accept-language': 'en-GB, en' });
      const nb = await get('/keyed/x', { 'accept-language': 'nb' });
      assert.notEqual(en.text, nb.text);
      const enAgain = await get('/keyed/x', { 'accept-language': 'en-gb,en' });
      assert.equal(enAgain.cache, 'HIT');
      assert.equal(enAgain.text, en.text);
      assert.equal((await get('/keyed/x')).cache, 'MISS', 'no value is a value of its own');
    });

    it('keeps each consumer’s responses apart with perConsumer', async () => {
      const a = await get('/consumers/me', { apikey: KEY_A });
      const b = await get('/consumers/me', { apikey: KEY_B });
      assert.equal(a.cache, 'MISS');
      assert.equal(b.cache, 'MISS');
      const aAgain = await get('/consumers/me', { apikey: KEY_A });
      assert.equal(aAgain.cache, 'HIT');
      assert.equal(aAgain.text, a.text);
      assert.equal((await get('/consumers/me', { apikey: KEY_B })).text, b.text);
      assert.equal((await get('/consumers/me')).status, 401, 'the cache runs after authentication');
      assert.equal(callsOf('/consumers/me'), 2);
    });

    it('with perConsumer, caches requests with a bearer token under the JWT’s consumer, not the token', async () => {
      now = T0;
      const a = await get('/jwt-consumers/me', { authorization: await bearer('issuer-a', SECRET_A, 'ann') });
      const b = await get('/jwt-consumers/me', { authorization: await bearer('issuer-b', SECRET_B, 'bob') });
      assert.equal(a.status, 200, a.text);
      assert.equal(a.cache, 'MISS');
      assert.equal(b.cache, 'MISS');
      assert.notEqual(a.text, b.text);
      // Another token of the same consumer (another subject) finds that consumer's entry.
      const aAgain = await get('/jwt-consumers/me', { authorization: await bearer('issuer-a', SECRET_A, 'amy') });
      assert.equal(aAgain.cache, 'HIT');
      assert.equal(aAgain.text, a.text);
      const bAgain = await get('/jwt-consumers/me', { authorization: await bearer('issuer-b', SECRET_B, 'bob') });
      assert.equal(bAgain.cache, 'HIT');
      assert.equal(bAgain.text, b.text);
      assert.equal((await get('/jwt-consumers/me')).status, 401, 'the cache runs after authentication');
      assert.equal(callsOf('/jwt-consumers/me'), 2);
    });

    it('with cacheAuthorized, requests with Authorization or Cookie share one entry', async () => {
      now = T0;
      const first = await get('/authorized/x', { authorization: 'Bearer one' });
      assert.equal(first.cache, 'MISS');
      const other = await get('/authorized/x', { authorization: 'Bearer two' });
      assert.equal(other.cache, 'HIT');
      assert.equal(other.text, first.text);
      assert.equal((await get('/authorized/x', { cookie: 'session=s' })).cache, 'HIT');
      assert.equal((await get('/authorized/x')).cache, 'HIT');
      assert.equal(callsOf('/authorized/x'), 1);
    });
  });

  describe('conditional requests', () => {
    it('answers a matching If-None-Match (weak comparison) with 304 from a fresh entry', async () => {
      now = T0;
      respond('/cond/etag', { etag: '"v1"', 'cache-control': 'max-age=60' });
      await get('/cond/etag');
      now = T0 + 3_000;
      for (const ifNoneMatch of ['"v1"', 'W/"v1"', '"v0", "v1"', '*']) {
        const res = await get('/cond/etag', { 'if-none-match': ifNoneMatch });
        assert.equal(res.status, 304, ifNoneMatch);
        assert.equal(res.text, '');
        assert.equal(res.headers.etag, '"v1"');
        assert.equal(res.headers['cache-control'], 'max-age=60');
        assert.equal(res.headers.age, '3');
        assert.equal(res.cache, 'HIT');
        assert.equal(res.headers['content-length'], undefined);
      }
      const changed = await get('/cond/etag', { 'if-none-match': '"v0"' });
      assert.equal(changed.status, 200);
      assert.equal(changed.text, '/cond/etag #1');
      assert.equal(callsOf('/cond/etag'), 1);
    });

    it('answers If-Modified-Since from Last-Modified', async () => {
      now = T0;
      const modified = new Date(T0 - 3_600_000);
      respond('/cond/lm', { 'last-modified': modified.toUTCString() });
      await get('/cond/lm');
      const since = await get('/cond/lm', { 'if-modified-since': modified.toUTCString() });
      assert.equal(since.status, 304);
      const before = await get('/cond/lm', { 'if-modified-since': new Date(T0 - 7_200_000).toUTCString() });
      assert.equal(before.status, 200);
      assert.equal(callsOf('/cond/lm'), 1);
    });

    it('refreshes a stale entry when the upstream answers the client’s conditional request 304', async () => {
      now = T0;
      behaviours.set('/cond/revalidate', (req, res, call) => {
        if (req.headers['if-none-match'] === '"r1"') {
          res.writeHead(304, { etag: '"r1"', 'cache-control': 'max-age=10' });
          res.end();
          return;
        }
        res.writeHead(200, { 'content-type': 'text/plain', etag: '"r1"', 'cache-control': 'max-age=10' });
        res.end(`body #${call}`);
      });
      await get('/cond/revalidate');
      now = T0 + 15_000;
      const revalidated = await get('/cond/revalidate', { 'if-none-match': '"r1"' });
      assert.equal(revalidated.status, 304);
      assert.equal(revalidated.cache, 'REVALIDATED');
      const hit = await get('/cond/revalidate');
      assert.equal(hit.cache, 'HIT', 'fresh again after the 304');
      assert.equal(hit.text, 'body #1');
      assert.equal(hit.headers.age, '0');
      assert.equal(callsOf('/cond/revalidate'), 2);
    });
  });

  it('keeps within maxBytes, dropping the least recently used', async () => {
    now = T0;
    const body = 'x'.repeat(1000);
    for (const name of ['a', 'b', 'c', 'd'])
      behaviours.set(`/small/${name}`, (_req, res) => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end(body);
      });
    await get('/small/a');
    await get('/small/b');
    await get('/small/c');
    assert.equal((await get('/small/a')).cache, 'HIT', 'a is used: b is now the oldest');
    await get('/small/d');
    assert.equal((await get('/small/b')).cache, 'MISS', 'b made room for d');
    assert.equal((await get('/small/d')).cache, 'HIT');
    assert.equal((await get('/small/a')).cache, 'HIT');
  });

  describe('purge through the admin API', () => {
    async function purge(path: string) {
      const res = await request(`${gw.adminUrl}${path}`, { method: 'DELETE' });
      return { status: res.statusCode, body: (await res.body.json()) as { removed: number; error?: string } };
    }

    it('removes one URL with every variant, by key, in one route or all, one host or all', async () => {
      behaviours.set('/purge/item', (req, res, call) => {
        res.writeHead(200, { 'content-type': 'text/plain', vary: 'accept-language' });
        res.end(`${req.headers['accept-language']} #${call}`);
      });
      await get('/purge/item?b=2&a=1', { 'accept-language': 'en' });
      await get('/purge/item?a=1&b=2', { 'accept-language': 'nb' });
      await get('/purge/item?a=1');
      await get('/purge/other');
      const one = await purge(`/cache/web?key=${encodeURIComponent('/purge/item?a=1&b=2')}&host=127.0.0.1`);
      assert.equal(one.status, 200);
      assert.equal(one.body.removed, 3, 'the Vary marker and both variants');
      assert.equal((await get('/purge/item?b=2&a=1', { 'accept-language': 'en' })).cache, 'MISS');
      assert.equal((await get('/purge/item?a=1')).cache, 'HIT', 'another query is another key');
      assert.equal((await get('/purge/other')).cache, 'HIT');
      const anyHost = await purge(`/cache?key=${encodeURIComponent('/purge/item?a=1')}`);
      assert.equal(anyHost.body.removed, 2);
      assert.equal((await get('/purge/item?a=1')).cache, 'MISS');
      assert.equal(
        (await purge(`/cache/web?key=${encodeURIComponent('/purge/other')}&host=elsewhere`)).body.removed,
        0,
      );
    });

    it('removes every entry under a path prefix, in one route or all', async () => {
      await get('/tree/a');
      await get('/tree/b/c?x=1');
      await get('/treetop');
      await get('/keyed/tree/a');
      const res = await purge('/cache/web?prefix=/tree/');
      assert.equal(res.body.removed, 2);
      assert.equal((await get('/tree/a')).cache, 'MISS');
      assert.equal((await get('/treetop')).cache, 'HIT');
      assert.equal((await get('/keyed/tree/a')).cache, 'HIT', 'another route');
      assert.equal((await purge('/cache?prefix=/keyed/tree/')).body.removed, 1);
      assert.equal((await get('/keyed/tree/a')).cache, 'MISS');
    });

    it('refuses a purge it cannot make sense of', async () => {
      assert.equal((await purge('/cache?key=/a&prefix=/b')).status, 400);
      assert.equal((await purge('/cache?host=example.com')).status, 400);
      assert.equal((await purge('/cache?prefix=tree')).status, 400);
      assert.equal((await purge('/cache/web?key=a')).status, 400);
    });
  });
});
