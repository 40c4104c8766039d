/**
 * Decision trails in one gateway, over real sockets: the ring keeps at most `size` trails and
 * overwrites the oldest; sampling records all, none or a share; `X-Meshgate-Explain: 1` from an
 * identified consumer is answered with `X-Meshgate-Explain-Id` and always recorded, while an
 * anonymous client's (or one not on the allow-list) gets nothing; the header never goes upstream.
 * The story says why earlier routes did not match.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { addExplainEndpoint } from '../../admin/explain-endpoint.ts';
import type { ExplainResult } from '../../api/explain.ts';
import { explainStory } from '../../observability/explain-story.ts';
import { type FinishedStream, RecentRequests } from '../../observability/recent-requests.ts';
import { startGateway, startUpstream, type TestGateway, type Upstream } from '../../testing/servers.ts';
import { InProcessDataPlane } from '../data-plane.ts';

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

  it('explain turned off (no observability.explain): no trail even when asked', async () => {
    await gw.apply(config(undefined));
    const res = await call('/k/1', { 'x-api-key': KEY, 'x-meshgate-explain': '1', 'x-request-id': 'off-1' });
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['x-meshgate-explain-id'], undefined);
    assert.equal((await explain('off-1')).status, 404);
  });
});
