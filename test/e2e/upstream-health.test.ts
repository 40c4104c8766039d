/**
 * Endpoint standing over real sockets: active health checks take endpoints out and bring them back,
 * outlier detection ejects endpoints that fail real traffic, panic mode spreads load when too few are
 * left, state survives a reload that keeps the service, and the admin API shows all of it.
 */
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request } from 'undici';
import { startGateway, startUpstream, type Upstream } from '../helpers/servers.ts';

const agent = new Agent({ connections: 16 });
after(() => agent.close());

async function until(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 5000) {
  const deadline = performance.now() + timeoutMs;
  while (!(await condition())) {
    if (performance.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

async function get(url: string) {
  const res = await request(url, { dispatcher: agent });
  const text = await res.body.text();
  return {
    status: res.statusCode,
    upstream: res.headers['x-upstream'] as string | undefined,
    code: res.headers['x-meshgate-code'],
    text,
  };
}

// biome-ignore lint/suspicious/noExplicitAny: the admin view is asserted field by field
async function services(adminUrl: string): Promise<any[]> {
  const res = await request(`${adminUrl}/services`, { dispatcher: agent });
  return ((await res.body.json()) as { services: unknown[] }).services;
}

/** An upstream whose /healthz status and whose answers can be changed while it runs. */
async function controllable(name: string) {
  const state = { health: 200, status: 200 };
  const upstream = await startUpstream((req: IncomingMessage, res: ServerResponse) => {
    if (req.url === '/healthz') {
      res.statusCode = state.health;
      res.end();
      return;
    }
    res.statusCode = state.status;
    res.end(name);
  }, name);
  return { upstream, state };
}

async function upstreamsSeen(url: string, n: number): Promise<Record<string, number>> {
  const seen: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const r = await get(url);
    const key = r.status === 200 ? r.upstream! : `status ${r.status}`;
    seen[key] = (seen[key] ?? 0) + 1;
  }
  return seen;
}

describe('active health checks through the gateway', () => {
  it('an endpoint failing its checks gets no traffic until it passes again; the admin API shows it', async () => {
    const a = await controllable('a');
    const b = await controllable('b');
    const gw = await startGateway({
      services: [
        {
          name: 'svc',
          endpoints: [{ url: a.upstream.url }, { url: b.upstream.url }],
          healthCheck: { path: '/healthz', interval: '50ms', jitter: '0', unhealthyThreshold: 2, healthyThreshold: 2 },
          // With one of two endpoints out, 50% are left: keep panic mode out of this test.
          loadBalancer: { panicThreshold: 40 },
        },
      ],
      routes: [{ name: 'r', service: 'svc' }],
    });
    try {
      await until(async () => (await services(gw.adminUrl))[0].endpointSets[0].available === 2, 'both healthy');
      a.state.health = 503;
      await until(async () => (await services(gw.adminUrl))[0].endpointSets[0].available === 1, 'a unhealthy');
      const view = (await services(gw.adminUrl))[0];
      const ea = view.endpoints.find((e: { url: string }) => e.url === a.upstream.url);
      assert.equal(ea.health.status, 'unhealthy');
      assert.equal(ea.health.lastResult, 'status 503');
      assert.equal(ea.available, false);
      assert.ok(
        view.stats.recentEvents.some(
          (e: { kind: string; endpoint: string }) => e.kind === 'unhealthy' && e.endpoint === a.upstream.url,
        ),
      );
      assert.deepEqual(await upstreamsSeen(gw.url(), 20), { b: 20 });

      a.state.health = 200;
      await until(async () => (await services(gw.adminUrl))[0].endpointSets[0].available === 2, 'a healthy again');
      const back = await upstreamsSeen(gw.url(), 20);
      assert.equal(back.a, 10);
    } finally {
      await gw.close();
      await a.upstream.close();
      await b.upstream.close();
    }
  });

  it('health checks stop when the service goes away', async () => {
    const a = await controllable('a');
    // A service that stays, checked at the same interval: its checks are the clock of this test.
    const b = await controllable('b');
    const check = { path: '/healthz', interval: '30ms', jitter: '0' };
    const keep = { name: 'keep', endpoints: [{ url: b.upstream.url }], healthCheck: check };
    const gw = await startGateway({
      services: [{ name: 'svc', endpoints: [{ url: a.upstream.url }], healthCheck: check }, keep],
      routes: [
        { name: 'r', service: 'svc' },
        { name: 'k', match: { path: '/k' }, service: 'keep' },
      ],
    });
    try {
      await until(() => a.upstream.seen.length >= 2, 'checks');
      await gw.apply({
        services: [keep],
        routes: [
          { name: 'r', directResponse: { status: 200 } },
          { name: 'k', match: { path: '/k' }, service: 'keep' },
        ],
      });
      // Three rounds of the kept service's checks: a check of the removed one in flight has landed.
      const seenB = () => b.upstream.seen.length;
      let mark = seenB();
      await until(() => seenB() >= mark + 3, 'three more checks of the kept service');
      const after = a.upstream.seen.length;
      mark = seenB();
      await until(() => seenB() >= mark + 5, 'five more checks of the kept service');
      assert.equal(a.upstream.seen.length, after, 'no checks of the removed service meanwhile');
    } finally {
      await gw.close();
      await a.upstream.close();
      await b.upstream.close();
    }
  });
});

describe('outlier detection and panic', () => {
  function outlierConfig(a: Upstream, b: Upstream, extra: Record<string, unknown> = {}) {
    return {
      services: [
        {
          name: 'svc',
          endpoints: [{ url: a.url }, { url: b.url }],
          outlierDetection: { consecutiveErrors: 3, baseEjectionTime: '400ms', maxEjectionPercent: 50 },
          ...extra,
        },
      ],
      routes: [{ name: 'r', service: 'svc' }],
    };
  }

  it('ejects an endpoint after consecutive 5xx, for the ejection time, then brings it back', async () => {
    const a = await controllable('a');
    const b = await controllable('b');
    a.state.status = 500;
    const gw = await startGateway(outlierConfig(a.upstream, b.upstream));
    try {
      const first = await upstreamsSeen(gw.url(), 6);
      assert.deepEqual(first, { 'status 500': 3, b: 3 }, 'three 500s from a, then it is ejected');
      assert.deepEqual(await upstreamsSeen(gw.url(), 10), { b: 10 });
      const view = (await services(gw.adminUrl))[0];
      const ea = view.endpoints.find((e: { url: string }) => e.url === a.upstream.url);
      assert.equal(ea.outlier.ejected, true);
      assert.ok(ea.outlier.ejectedForMs > 0 && ea.outlier.ejectedForMs <= 400);
      assert.equal(view.outlierDetection.ejected, 1);
      a.state.status = 200;
      await sleep(450);
      const back = await upstreamsSeen(gw.url(), 10);
      assert.equal(back.a, 5, 'a is back in rotation after its ejection time');
    } finally {
      await gw.close();
      await a.upstream.close();
      await b.upstream.close();
    }
  });

  it('keeps ejection and health state across a reload that leaves the service unchanged, and starts fresh when it changes', async () => {
    const a = await controllable('a');
    const b = await controllable('b');
    a.state.status = 500;
    const config = outlierConfig(a.upstream, b.upstream, {
      outlierDetection: { consecutiveErrors: 2, baseEjectionTime: '30s', maxEjectionPercent: 50 },
    });
    const gw = await startGateway(config);
    try {
      await upstreamsSeen(gw.url(), 4);
      const ejected = () => gw.proxy.snapshot.services.get('svc')!.all.endpoints[0]!.ejected;
      assert.equal(ejected(), true);
      await gw.apply({ ...config, routes: [{ name: 'renamed', service: 'svc' }] });
      assert.equal(ejected(), true, 'same service definition: same state');
      assert.deepEqual(await upstreamsSeen(gw.url(), 4), { b: 4 });
      await gw.apply(outlierConfig(a.upstream, b.upstream, { timeouts: { request: '10s' } }));
      assert.equal(ejected(), false, 'a changed service starts fresh');
    } finally {
      await gw.close();
      await a.upstream.close();
      await b.upstream.close();
    }
  });

  it('in panic mode (too few healthy endpoints) spreads load over all endpoints rather than none', async () => {
    const a = await controllable('a');
    const b = await controllable('b');
    a.state.health = 503;
    b.state.health = 503;
    const gw = await startGateway({
      services: [
        {
          name: 'svc',
          endpoints: [{ url: a.upstream.url }, { url: b.upstream.url }],
          healthCheck: { path: '/healthz', interval: '50ms', jitter: '0', unhealthyThreshold: 1 },
        },
        {
          name: 'strict',
          endpoints: [{ url: a.upstream.url }, { url: b.upstream.url }],
          healthCheck: { path: '/healthz', interval: '50ms', jitter: '0', unhealthyThreshold: 1 },
          loadBalancer: { panicThreshold: 0 },
        },
      ],
      routes: [
        { name: 'strict', match: { path: '/strict' }, service: 'strict' },
        { name: 'r', service: 'svc' },
      ],
    });
    try {
      await until(
        async () => (await services(gw.adminUrl)).every((s) => s.endpointSets[0].available === 0),
        'all unhealthy',
      );
      const view = (await services(gw.adminUrl)).find((s) => s.name === 'svc');
      assert.equal(view.endpointSets[0].panic, true);
      assert.deepEqual(await upstreamsSeen(gw.url(), 10), { a: 5, b: 5 });
      assert.equal(gw.ended.at(-1)!.panic, true);
      const strict = await get(`${gw.url()}/strict`);
      assert.equal(strict.status, 503);
      assert.equal(strict.code, 'MG_NO_HEALTHY_UPSTREAM');
      assert.match(JSON.parse(strict.text).detail, /no healthy endpoint/);
      assert.equal(gw.ended.at(-1)!.refusal, 'no-healthy-endpoint');
    } finally {
      await gw.close();
      await a.upstream.close();
      await b.upstream.close();
    }
  });
});
