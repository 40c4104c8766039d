/**
 * Decision trails in one gateway, over real sockets: the ring keeps at most `size` trails and
 * overwrites the oldest; sampling records all, none or a share; `X-Meshgate-Explain: 1` from an
 * identified consumer is answered with `X-Meshgate-Explain-Id` and always recorded, while an
 * anonymous client's (or one not on the allow-list) gets nothing; the header never goes upstream.
 * The story says why earlier routes did not match, and what a plugin says of itself (the cache).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { addExplainEndpoint } from '../../admin/explain-endpoint.ts';
import type { ExplainResult } from '../../api/explain.ts';
import { explainStory } from '../../observability/explain-story.ts';
import { type FinishedStream, RecentRequests } from '../../observability/recent-requests.ts';
import { startGateway, startUpstream, type TestGateway, type Upstream } from '../../testing/servers.ts';
import type { CompiledRoute } from '../compiled.ts';
import { InProcessDataPlane } from '../data-plane.ts';
import { whyNot } from './read.ts';

const KEY = 'explain-key-0123456789abcdef';
const OTHER_KEY = 'other-key-0123456789abcdef01';

function finished(requestId: string, trail: { requestId: string; traceId: undefined } | null): FinishedStream {
  return {
    requestId,
    traceId: undefined,
    trace: null,
    startEpochMs: 0,
    method: 'GET',
    host: 'h',
    path: '/',
    route: null,
    serviceName: undefined,
    destination: null,
    endpoint: null,
    status: 200,
    code: null,
    tries: 1,
    trail,
  };
}

describe('the trail ring', () => {
  it('keeps at most its size, overwrites the oldest, and finds trails by id', () => {
    const ring = new RecentRequests(8);
    ring.resizeTrails(3);
    for (let i = 1; i <= 5; i++) ring.add(finished(`r${i}`, { requestId: `r${i}`, traceId: undefined }), 1, 1);
    ring.add(finished('r6', null), 1, 1);
    const ids = (match: string[]) => ring.findTrails(match, 16).map((t) => t.requestId);
    assert.deepEqual(ids(['r1', 'r2', 'r3', 'r4', 'r5', 'r6']), ['r3', 'r4', 'r5']);
    assert.deepEqual(ids(['r6']), [], 'a request without a trail adds none');
    assert.equal(ring.find(['r6'], 16).length, 1, 'its record is kept all the same');
    ring.resizeTrails(2);
    assert.deepEqual(ids(['r3', 'r4', 'r5']), ['r4', 'r5'], 'shrinking keeps the newest');
    ring.add(finished('r7', { requestId: 'r7', traceId: undefined }), 1, 1);
    assert.deepEqual(ids(['r4', 'r5', 'r7']), ['r5', 'r7']);
    ring.resizeTrails(0);
    ring.add(finished('r8', { requestId: 'r8', traceId: undefined }), 1, 1);
    assert.deepEqual(ids(['r5', 'r7', 'r8']), []);
  });
});

describe('why a route did not match, in words', () => {
  const route = (match: Record<string, unknown>) => ({ config: { name: 'r', match } }) as unknown as CompiledRoute;
  const head = {
    method: 'POST',
    host: 'api.example.com',
    path: '/v2/items/9',
    query: 'page=2&token=s3cret',
    headers: ['x-tenant', 'blue', 'authorization', 'Bearer abc', 'cookie', 'session=xyz'],
  };

  it('names each failed condition: host, path, method, header, query parameter, cookie', () => {
    assert.deepEqual(
      whyNot(
        route({
          hosts: ['shop.example.com', '*.internal'],
          path: '/v1/*',
          methods: ['GET', 'HEAD'],
          headers: { 'X-Tenant': 'red' },
          query: { page: { regex: '1|3' } },
          cookies: { beta: { present: true } },
        }),
        head,
      ),
      [
        'host api.example.com is not one of shop.example.com, *.internal',
        'path /v2/items/9 does not match /v1/*',
        'method POST is not one of GET, HEAD',
        'header x-tenant is "blue" (wants "red")',
        'query parameter page is "2" (wants a value matching 1|3)',
        'cookie beta is absent (wants it present)',
      ],
    );
  });

  it('a route that matches has no reason; credentials are never shown', () => {
    assert.deepEqual(whyNot(route({ hosts: ['*.example.com'], path: '/v2/items/:id', methods: ['POST'] }), head), []);
    assert.deepEqual(whyNot(route({ headers: { authorization: { prefix: 'Basic ' } } }), head), [
      'header authorization has another value (wants a value starting with "Basic ")',
    ]);
    assert.deepEqual(whyNot(route({ cookies: { session: 'abc' } }), head), [
      'cookie session has another value (wants "abc")',
    ]);
  });
});

describe('decision trails in a gateway', () => {
  let upstream: Upstream;
  let gw: TestGateway;

  const config = (explain: Record<string, unknown> | undefined) => ({
    ...(explain === undefined ? {} : { observability: { explain } }),
    services: [{ name: 'svc', endpoints: [{ url: upstream.url }] }],
    consumers: [
      { name: 'mobile-app', groups: ['mobile'], credentials: [{ type: 'api-key', key: KEY }] },
      { name: 'partner', credentials: [{ type: 'api-key', key: OTHER_KEY }] },
    ],
    routes: [
      { name: 'canary', match: { path: '/k/*', headers: { canary: 'true' } }, service: 'svc' },
      { name: 'keyed', match: { path: '/k/*', methods: ['GET'] }, service: 'svc', plugins: [{ name: 'key-auth' }] },
      { name: 'public', match: { path: '/open/*' }, service: 'svc' },
      {
        name: 'cached',
        match: { path: '/cached/*' },
        service: 'svc',
        plugins: [{ name: 'cache', config: { ttl: '60s' } }],
      },
    ],
  });

  before(async () => {
    upstream = await startUpstream();
    gw = await startGateway(config({ size: 4 }));
    addExplainEndpoint(gw.admin, new InProcessDataPlane(gw.proxy), { id: 'gateway', kind: 'gateway', service: null });
  });
  after(async () => {
    await gw.close();
    await upstream.close();
  });

  async function call(path: string, headers: Record<string, string>) {
    const res = await request(`${gw.url()}${path}`, { headers });
    await res.body.dump();
    return res;
  }

  async function explain(id: string) {
    const res = await request(`${gw.adminUrl}/requests/${id}/explain`);
    return { status: res.statusCode, body: (await res.body.json()) as ExplainResult };
  }

  it('an identified consumer that asks gets X-Meshgate-Explain-Id and its trail, with no sampling', async () => {
    const res = await call('/k/1', { 'x-api-key': KEY, 'x-meshgate-explain': '1', 'x-request-id': 'asked-1' });
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['x-meshgate-explain-id'], 'asked-1');
    assert.equal(upstream.seen.at(-1)!.headers['x-meshgate-explain'], undefined, 'never forwarded upstream');
    const found = await explain('asked-1');
    assert.equal(found.status, 200);
    const trail = found.body.hops[0]!.trail;
    assert.equal(trail.reason, 'asked');
    assert.equal(trail.route, 'keyed');
    assert.deepEqual(
      trail.routes.map((r) => [r.name, r.verdict, r.reasons]),
      [
        ['canary', 'no-match', ['header canary is absent (wants "true")']],
        ['keyed', 'chosen', []],
        ['public', 'no-match', ['path /k/1 does not match /open/*']],
        ['cached', 'no-match', ['path /k/1 does not match /cached/*']],
      ],
    );
    assert.deepEqual(
      trail.plugins.map((p) => [p.name, p.outcome, p.consumer]),
      [['key-auth', 'continue', 'mobile-app']],
    );
    assert.equal(trail.consumer?.name, 'mobile-app');
    assert.equal(trail.tries.length, 1);
    assert.equal(trail.tries[0]!.outcome, 'status 200');
    const story = explainStory(found.body);
    assert.match(story, /route canary: not matched: header canary is absent \(wants "true"\)/);
    assert.match(story, /plugin key-auth \(authenticate, route\): consumer mobile-app identified: passed/);
    assert.match(story, /try 1: 127\.0\.0\.1:\d+ at \+[\d.]+ms → status 200/);
  });

  it('an anonymous client that asks gets nothing: no header, no trail (and the header is still not forwarded)', async () => {
    const open = await call('/open/1', { 'x-meshgate-explain': '1', 'x-request-id': 'anon-1' });
    assert.equal(open.statusCode, 200);
    assert.equal(open.headers['x-meshgate-explain-id'], undefined);
    assert.equal(upstream.seen.at(-1)!.headers['x-meshgate-explain'], undefined);
    const refused = await call('/k/1', { 'x-meshgate-explain': '1', 'x-request-id': 'anon-2' });
    assert.equal(refused.statusCode, 401);
    assert.equal(refused.headers['x-meshgate-explain-id'], undefined);
    assert.equal((await explain('anon-1')).status, 404);
    assert.equal((await explain('anon-2')).status, 404);
  });

  it('without sampling or asking nothing is recorded; the allow-list limits who may ask', async () => {
    await call('/k/1', { 'x-api-key': KEY, 'x-request-id': 'plain-1' });
    assert.equal((await explain('plain-1')).status, 404);
    await gw.apply(config({ size: 4, consumers: ['group:mobile'] }));
    const other = await call('/k/1', { 'x-api-key': OTHER_KEY, 'x-meshgate-explain': '1', 'x-request-id': 'p-1' });
    assert.equal(other.headers['x-meshgate-explain-id'], undefined);
    assert.equal((await explain('p-1')).status, 404);
    const member = await call('/k/1', { 'x-api-key': KEY, 'x-meshgate-explain': '1', 'x-request-id': 'm-1' });
    assert.equal(member.headers['x-meshgate-explain-id'], 'm-1');
    assert.equal((await explain('m-1')).status, 200);
  });

  it('sampling: rate 1 records every request, and the ring keeps the last `size`', async () => {
    await gw.apply(config({ size: 4, sampleRate: 1 }));
    for (let i = 0; i < 6; i++) await call('/open/1', { 'x-request-id': `s-${i}` });
    const kept = await Promise.all([0, 1, 2, 3, 4, 5].map(async (i) => (await explain(`s-${i}`)).status));
    assert.deepEqual(kept, [404, 404, 200, 200, 200, 200]);
    assert.equal((await explain('s-5')).body.hops[0]!.trail.reason, 'sampled');
  });

  it('sampling: rate 0.5 records about half (bounded: 200 requests, between 20% and 80%)', async () => {
    await gw.apply(config({ size: 1000, sampleRate: 0.5 }));
    let recorded = 0;
    for (let i = 0; i < 200; i++) await call('/open/1', { 'x-request-id': `half-${i}` });
    for (let i = 0; i < 200; i++) if ((await explain(`half-${i}`)).status === 200) recorded++;
    assert.ok(recorded > 40 && recorded < 160, `${recorded} of 200 recorded`);
  });

  it("a plugin's own verdict: the cache's MISS, then HIT", async () => {
    await gw.apply(config({ size: 16, sampleRate: 1 }));
    await call('/cached/1', { 'x-request-id': 'c-1' });
    await call('/cached/1', { 'x-request-id': 'c-2' });
    const verdict = async (id: string) => (await explain(id)).body.hops[0]!.trail.plugins[0]!;
    assert.deepEqual((await verdict('c-1')).facts, { status: 'MISS' });
    const hit = await verdict('c-2');
    assert.deepEqual([hit.outcome, hit.status, hit.facts], ['reply', 200, { status: 'HIT' }]);
    assert.equal((await explain('c-2')).body.hops[0]!.trail.tries.length, 0, 'a hit never went upstream');
    assert.match(explainStory((await explain('c-2')).body), /plugin cache \(\w+, route\): answered 200 .* — cache HIT/);
  });

  it('explain turned off (no observability.explain): no trail even when asked', async () => {
    await gw.apply(config(undefined));
    const res = await call('/k/1', { 'x-api-key': KEY, 'x-meshgate-explain': '1', 'x-request-id': 'off-1' });
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['x-meshgate-explain-id'], undefined);
    assert.equal((await explain('off-1')).status, 404);
  });
});

describe('decision trails of a composed request (aggregate)', () => {
  it("lists each call's tries: a call retried after a 503, and a call that answered at once", async () => {
    const failedOnce = new Set<string>();
    const items = await startUpstream((req, res) => {
      const id = String(req.headers['x-request-id']);
      res.writeHead(failedOnce.has(id) ? 200 : 503, { 'content-type': 'application/json' });
      res.end(failedOnce.has(id) ? '{"id":1}' : '{}');
      failedOnce.add(id);
    }, 'items');
    const owners = await startUpstream((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"name":"o"}');
    }, 'owners');
    const gw = await startGateway({
      observability: { explain: { size: 8, sampleRate: 1 } },
      services: [
        {
          name: 'items',
          endpoints: [{ url: items.url }],
          retries: { attempts: 1, on: ['5xx'], backoff: { base: '5ms', max: '5ms' }, budget: { minPerSecond: 100 } },
        },
        { name: 'owners', endpoints: [{ url: owners.url }] },
      ],
      routes: [
        {
          name: 'composed',
          aggregate: {
            calls: [
              { name: 'item', service: 'items', path: '/items/1', required: true },
              { name: 'owner', service: 'owners', path: '/owners/1' },
            ],
          },
        },
      ],
    });
    addExplainEndpoint(gw.admin, new InProcessDataPlane(gw.proxy), { id: 'gateway', kind: 'gateway', service: null });
    try {
      const res = await request(`${gw.url()}/x`, { headers: { 'x-request-id': 'agg-1' } });
      assert.equal(res.statusCode, 200, await res.body.text());
      const found = await request(`${gw.adminUrl}/requests/agg-1/explain`);
      const body = (await found.body.json()) as ExplainResult;
      const trail = body.hops[0]!.trail;
      assert.equal(trail.tries.length, 0, 'the request itself made no try of its own');
      assert.deepEqual(
        trail.subRequests.map((s) => [s.call, s.service, s.tries.map((t) => [t.outcome, t.retried]), s.stop]),
        [
          [
            'item',
            'items',
            [
              ['status 503', true],
              ['status 200', false],
            ],
            null,
          ],
          ['owner', 'owners', [['status 200', false]], null],
        ],
      );
      const delay = trail.subRequests[0]!.tries[0]!.retryDelayMs!;
      assert.ok(delay >= 0 && delay <= 5, `backoff ${delay} ms, within backoff.max`);
      const story = explainStory(body);
      assert.match(
        story,
        /call item to items: 2 tries\n\s+try 1: 127\.0\.0\.1:\d+ at \+[\d.]+ms → status 503 after [\d.]+ms; retried after [\d.]+ms backoff/,
      );
      assert.match(story, /\n\s+try 2: 127\.0\.0\.1:\d+ at \+[\d.]+ms → status 200/);
      assert.match(story, /call owner to owners: 1 try\n\s+try 1: .* → status 200/);
    } finally {
      await gw.close();
      await items.close();
      await owners.close();
    }
  });
});
