import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Pool, request } from 'undici';
import { addShadowEndpoints } from '../../admin/shadow-endpoints.ts';
import type { ShadowReport } from '../../api/shadow.ts';
import { createPluginCatalog } from '../../plugins/index.ts';
import { startGateway, startUpstream, type TestGateway, type Upstream } from '../../testing/servers.ts';
import { InProcessDataPlane } from '../data-plane.ts';

const KEY = 'shadow-test-key-0123456789abcdef';

async function admin(gw: TestGateway, method: string, path: string, body?: string) {
  const res = await request(`${gw.adminUrl}${path}`, { method, ...(body === undefined ? {} : { body }) });
  return { status: res.statusCode, body: (await res.body.json()) as Record<string, unknown> };
}

/** Polls the report until `test` holds, or fails at the deadline. */
async function reportWhen(gw: TestGateway, test: (r: ShadowReport) => boolean, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await admin(gw, 'GET', '/shadow/report');
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const report = r.body as unknown as ShadowReport;
    if (test(report)) return report;
    if (Date.now() > deadline) assert.fail(`the report never got there: ${JSON.stringify(report.totals)}`);
    await sleep(20);
  }
}

/** `count` GETs over `connections` keep-alive connections; returns their statuses. */
async function load(origin: string, path: string, count: number, headers: Record<string, string> = {}) {
  const pool = new Pool(origin, { connections: 16 });
  const statuses: number[] = [];
  let sent = 0;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (sent < count) {
        sent++;
        const res = await pool.request({ method: 'GET', path, headers });
        await res.body.dump();
        statuses.push(res.statusCode);
      }
    }),
  );
  await pool.close();
  return statuses;
}

describe('shadow config: a candidate evaluated beside the live config', () => {
  let v1: Upstream;
  let v2: Upstream;
  let gw: TestGateway;
  const services = () => [
    {
      name: 'props',
      endpoints: [
        { url: v1.url, labels: { version: 'v1' } },
        { url: v2.url, labels: { version: 'v2' } },
      ],
      subsets: { v1: { version: 'v1' }, v2: { version: 'v2' } },
    },
  ];
  const split = (v1Weight: number) => [
    { service: 'props', subset: 'v1', weight: v1Weight },
    { service: 'props', subset: 'v2', weight: 100 - v1Weight },
  ];
  const liveConfig = () => ({
    services: services(),
    consumers: [{ name: 'app', credentials: [{ type: 'api-key', key: KEY }] }],
    routes: [
      { name: 'props', match: { path: '/props/*' }, destinations: split(90) },
      {
        name: 'limited',
        match: { path: '/limited/*' },
        service: 'props',
        plugins: [{ name: 'rate-limit', config: { limits: [{ requests: 30, window: '1m' }] } }],
      },
      { name: 'open', match: { path: '/open/*' }, service: 'props' },
      {
        name: 'old',
        match: { path: '/old/*' },
        service: 'props',
        version: { api: 'props', name: 'v0', deprecation: '2026-01-01T00:00:00Z' },
      },
    ],
  });
  /** The candidate as a user writes it: YAML text. */
  const candidate = (v1Weight: number) => `
services:
  - name: props
    endpoints:
      - { url: "${v1.url}", labels: { version: v1 } }
      - { url: "${v2.url}", labels: { version: v2 } }
    subsets: { v1: { version: v1 }, v2: { version: v2 } }
consumers:
  - { name: app, credentials: [{ type: api-key, key: ${KEY} }] }
routes:
  - name: props
    match: { path: /props/* }
    destinations:
      - { service: props, subset: v1, weight: ${v1Weight} }
      - { service: props, subset: v2, weight: ${100 - v1Weight} }
  - name: limited
    match: { path: /limited/* }
    service: props
    plugins:
      # the same limit as live: if the shadow counted in the live counters, live would refuse at 15
      - { name: rate-limit, config: { limits: [{ requests: 30, window: 1m }] } }
  - name: open
    match: { path: /open/* }
    service: props
    plugins:
      - { name: key-auth }
      - { name: rate-limit, config: { limits: [{ requests: 5, window: 1m }], by: ip } }
  - name: old
    match: { path: /old/* }
    service: props
    version: { api: props, name: v0, deprecation: "2026-03-01T00:00:00Z" }
  - name: new
    match: { path: /new/* }
    directResponse: { status: 200, body: new }
`;

  before(async () => {
    v1 = await startUpstream(undefined, 'v1');
    v2 = await startUpstream(undefined, 'v2');
    gw = await startGateway(liveConfig());
    addShadowEndpoints(gw.admin, new InProcessDataPlane(gw.proxy), { catalog: createPluginCatalog() });
  });
  after(async () => {
    await admin(gw, 'DELETE', '/shadow');
    await gw.close();
    await v1.close();
    await v2.close();
  });

  it('a 50/50 candidate against a 90/10 split: ~50% of destinations differ; live stays 90/10 and the shadow sends nothing', async () => {
    // Independent draws: P(differ) = 0.9·0.5 + 0.1·0.5 = 0.5. With n = 5000 its standard deviation is
    // sqrt(0.25/5000) ≈ 0.71 points, so ±3 points is > 4σ; live v2's share (p = 0.1) has σ ≈ 0.42
    // points, so ±2 points is > 4σ.
    const n = 5000;
    const set = await admin(gw, 'PUT', '/shadow', candidate(50));
    assert.equal(set.status, 200, JSON.stringify(set.body));
    const before1 = v1.seen.length;
    const before2 = v2.seen.length;
    const statuses = await load(gw.url(), '/props/1', n);
    assert.equal(statuses.filter((s) => s === 200).length, n);
    const report = await reportWhen(gw, (r) => r.totals.compared >= n);
    const live1 = v1.seen.length - before1;
    const live2 = v2.seen.length - before2;
    // Only the live draw reached an upstream: one request each, none from the shadow.
    assert.equal(live1 + live2, n);
    assert.ok(Math.abs(live2 / n - 0.1) < 0.02, `live v2 share ${live2 / n}`);
    const d = report.differences.destination;
    assert.equal(d.compared, n);
    assert.ok(Math.abs(d.differ / n - 0.5) < 0.03, `destination differs on ${d.differ} of ${n}`);
    assert.equal(report.differences.route.differ, 0);
    assert.equal(report.destinations.live['props/v1']! + report.destinations.live['props/v2']!, n);
    assert.ok(Math.abs(report.destinations.shadow['props/v2']! / n - 0.5) < 0.03);
    const example = report.examples.destination[0]!;
    assert.deepEqual(example.kinds, ['destination']);
    assert.equal(example.path, '/props/1');
    assert.notEqual(example.live.destination, example.shadow.destination);
    assert.equal(report.examples.destination.length, 10);
  });

  it('a stricter rate limit and a new key-auth are counted as refusals; nothing live is refused', async () => {
    const set = await admin(gw, 'PUT', '/shadow', candidate(90));
    assert.equal(set.status, 200);
    // The same limit on both sides: the live counter sees 25 of its 30; the shadow's own sees 25 too.
    const limited = await load(gw.url(), '/limited/x', 25);
    assert.deepEqual(new Set(limited), new Set([200]));
    const last = await request(`${gw.url()}/limited/x`);
    await last.body.dump();
    assert.equal(last.statusCode, 200);
    assert.equal(last.headers['ratelimit-remaining'], '4');
    // With the key: authenticated, then 5 a minute by address: 15 of 20 refused by the candidate.
    const open = await load(gw.url(), '/open/x', 20, { 'x-api-key': KEY });
    assert.deepEqual(new Set(open), new Set([200]));
    // Without the key: the candidate's key-auth refuses, so its rate limit is never reached.
    const anonymous = await load(gw.url(), '/open/y', 7);
    assert.deepEqual(new Set(anonymous), new Set([200]));
    const report = await reportWhen(gw, (r) => r.totals.compared >= 53);
    assert.equal(report.totals.pending, 0);
    assert.deepEqual(report.refusals['rate-limit'], { shadowOnly: 15, liveOnly: 0 });
    assert.deepEqual(report.refusals.auth, { shadowOnly: 7, liveOnly: 0 });
    assert.equal(report.differences.auth.differ, 7);
    assert.equal(report.differences['rate-limit'].differ, 15);
    assert.equal(report.differences['rate-limit'].compared, 46);
    const refused = report.examples['rate-limit'][0]!;
    assert.equal(refused.shadow.refused, 'MG_RATE_LIMITED');
    assert.equal(refused.live.refused, null);
    assert.equal(report.examples.auth[0]!.shadow.refused, 'MG_UNAUTHORIZED');
  });

  it('routes the live config does not have and changed version lifecycles are differences of their own', async () => {
    assert.equal((await admin(gw, 'PUT', '/shadow', candidate(90))).status, 200);
    const fresh = await request(`${gw.url()}/new/page`);
    await fresh.body.dump();
    assert.equal(fresh.statusCode, 404);
    const old = await request(`${gw.url()}/old/page`);
    await old.body.dump();
    const report = await reportWhen(gw, (r) => r.totals.compared >= 2);
    const route = report.examples.route[0]!;
    assert.deepEqual(route.live, { route: null, destination: null, refused: null, version: null });
    assert.equal(route.shadow.route, 'new');
    assert.equal(route.shadow.destination, '(direct)');
    assert.equal(report.differences.version.differ, 1);
    const version = report.examples.version[0]!;
    assert.match(version.live.version!, /^props v0 \(deprecation: @1767225600\)$/);
    assert.match(version.shadow.version!, /^props v0 \(deprecation: @1772323200\)$/);
  });

  it('a bad candidate is refused with located issues; the live config and the shadow in force stay', async () => {
    assert.equal((await admin(gw, 'PUT', '/shadow', candidate(90))).status, 200);
    const hash = gw.proxy.snapshot.hash;
    const inForce = (await admin(gw, 'GET', '/shadow/report')).body.hash;
    const bad = await admin(gw, 'PUT', '/shadow?file=candidate.yaml', 'routes:\n  - { name: r, service: nowhere }\n');
    assert.equal(bad.status, 400);
    const issues = bad.body.issues as { file: string; line: number; path: string }[];
    assert.deepEqual(
      issues.map((i) => [i.file, i.line, i.path]),
      [['candidate.yaml', 2, 'routes[0].service']],
    );
    assert.equal(gw.proxy.snapshot.hash, hash);
    assert.equal((await admin(gw, 'GET', '/shadow/report')).body.hash, inForce);
    const res = await request(`${gw.url()}/props/1`);
    await res.body.dump();
    assert.equal(res.statusCode, 200);
    const badSample = await admin(gw, 'PUT', '/shadow?sample=150', candidate(90));
    assert.equal(badSample.status, 400);
  });

  it('clearing the shadow stops its counting and answers its last report', async () => {
    assert.equal((await admin(gw, 'PUT', '/shadow', candidate(50))).status, 200);
    const shadow = gw.proxy.runtime.shadow!;
    await load(gw.url(), '/props/1', 10);
    await reportWhen(gw, (r) => r.totals.compared >= 10);
    const cleared = await admin(gw, 'DELETE', '/shadow');
    assert.equal(cleared.status, 200);
    assert.equal((cleared.body.report as ShadowReport).totals.seen, 10);
    assert.equal(gw.proxy.runtime.shadow, null);
    await load(gw.url(), '/props/1', 10);
    assert.equal(shadow.report().totals.seen, 10);
    assert.equal((await admin(gw, 'GET', '/shadow/report')).status, 404);
    assert.equal((await admin(gw, 'DELETE', '/shadow')).status, 404);
  });

  it('evaluates requests served by the lean HTTP/1.1 engine too', async () => {
    const lean = await startGateway({ ...liveConfig(), listeners: [{ name: 'main', engine: 'lean' }] });
    try {
      addShadowEndpoints(lean.admin, new InProcessDataPlane(lean.proxy), { catalog: createPluginCatalog() });
      assert.equal((await admin(lean, 'PUT', '/shadow', candidate(50))).status, 200);
      assert.deepEqual(new Set(await load(lean.url(), '/props/1', 200)), new Set([200]));
      const report = await reportWhen(lean, (r) => r.totals.compared >= 200);
      assert.equal(report.differences.destination.compared, 200);
      assert.ok(report.differences.destination.differ > 0);
    } finally {
      await lean.close();
    }
  });

  it('samples the given percent of requests', async () => {
    assert.equal((await admin(gw, 'PUT', '/shadow?sample=0', candidate(50))).status, 200);
    await load(gw.url(), '/props/1', 50);
    const report = (await admin(gw, 'GET', '/shadow/report')).body as unknown as ShadowReport;
    assert.equal(report.samplePercent, 0);
    assert.equal(report.totals.seen, 50);
    assert.equal(report.totals.compared + report.totals.pending, 0);
  });
});
