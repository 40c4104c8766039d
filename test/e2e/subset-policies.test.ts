/**
 * A subset with policies of its own (`services[].subsetPolicies`): traffic to it gets its own circuit
 * breaker, outlier detection and balancer over exactly its endpoints, with the subset's fields over the
 * service's; traffic to the service or to another subset keeps the service's. Its state carries over
 * a reload as a service's does.
 */
import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request } from 'undici';
import { startGateway, startUpstream, type Upstream } from '../helpers/servers.ts';

const agent = new Agent({ connections: 64 });

async function until(condition: () => boolean, what: string, timeoutMs = 5000) {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

async function get(url: string, headers: Record<string, string> = {}) {
  const res = await request(url, { dispatcher: agent, headers });
  const text = await res.body.text();
  return {
    status: res.statusCode,
    code: res.headers['x-meshgate-code'],
    upstream: res.headers['x-upstream'] as string | undefined,
    text,
  };
}

/** An upstream that holds every request until `release()`. */
async function heldUpstream(name: string) {
  const held: ServerResponse[] = [];
  const upstream = await startUpstream((_req, res) => {
    held.push(res);
  }, name);
  return {
    upstream,
    held,
    release() {
      for (const res of held.splice(0)) res.end('done');
    },
  };
}

const routes = [
  { name: 'v1', match: { path: '/v1/*' }, destinations: [{ service: 'svc', subset: 'v1' }] },
  { name: 'v2', match: { path: '/v2/*' }, destinations: [{ service: 'svc', subset: 'v2' }] },
  { name: 'all', match: { path: '/all/*' }, service: 'svc' },
];

interface ServicesView {
  services: {
    name: string;
    circuitBreaker: { thresholds: Record<string, number>; overflows: Record<string, number> };
    endpoints: { url: string; outlier: { ejected: boolean } }[];
    subsetUnits?: {
      name: string;
      circuitBreaker: { thresholds: Record<string, number>; current: Record<string, number> };
      outlierDetection: { consecutiveErrors: number; baseEjectionMs: number } | null;
      endpoints: { url: string; outlier: { ejected: boolean } }[];
    }[];
  }[];
}

async function servicesView(adminUrl: string): Promise<ServicesView['services'][number]> {
  const res = await request(`${adminUrl}/services`, { dispatcher: agent });
  return ((await res.body.json()) as ServicesView).services[0]!;
}

describe('subset policies', () => {
  it('subset v2 with maxRequests 1 refuses a second concurrent request to v2, while v1 and the whole service take many under the service’s limits', async () => {
    const v1 = await heldUpstream('v1');
    const v2 = await heldUpstream('v2');
    const gw = await startGateway({
      services: [
        {
          name: 'svc',
          endpoints: [
            { url: v1.upstream.url, labels: { version: 'v1' } },
            { url: v2.upstream.url, labels: { version: 'v2' } },
          ],
          subsets: { v1: { version: 'v1' }, v2: { version: 'v2' } },
          circuitBreaker: { maxRequests: 100 },
          subsetPolicies: { v2: { circuitBreaker: { maxRequests: 1 } } },
        },
      ],
      routes,
    });
    try {
      const first = get(`${gw.url()}/v2/held`);
      await until(() => v2.held.length === 1, 'the first v2 request at its upstream');
      const refused = await get(`${gw.url()}/v2/second`);
      assert.equal(refused.status, 503);
      assert.equal(refused.code, 'MG_CIRCUIT_OPEN');
      assert.match(JSON.parse(refused.text).detail, /service svc\/v2 has 1 requests in flight.*maxRequests/);

      const many = Array.from({ length: 8 }, (_, i) => get(`${gw.url()}/v1/held/${i}`));
      await until(() => v1.held.length === 8, 'eight v1 requests at their upstream');
      // The whole service has its own breaker (100): it still reaches v2's endpoint past the subset's limit.
      const whole = Array.from({ length: 4 }, (_, i) => get(`${gw.url()}/all/held/${i}`));
      await until(() => v1.held.length + v2.held.length === 13, 'the whole service’s requests at the upstreams');

      const view = await servicesView(gw.adminUrl);
      assert.equal(view.name, 'svc');
      assert.equal(view.circuitBreaker.thresholds.maxRequests, 100);
      // The subset's refusal counts in the service's counters (metrics stay per service).
      assert.equal(view.circuitBreaker.overflows.maxRequests, 1);
      const unit = view.subsetUnits?.find((u) => u.name === 'svc/v2');
      assert.ok(unit, 'the subset’s own unit is shown as svc/v2');
      assert.equal(unit.circuitBreaker.thresholds.maxRequests, 1);
      assert.equal(unit.circuitBreaker.current.requests, 1);
      assert.deepEqual(
        unit.endpoints.map((e) => e.url),
        [v2.upstream.url],
      );

      while (
        (await Promise.race([
          Promise.all([first, ...many, ...whole]).then(() => true),
          sleep(20).then(() => false),
        ])) === false
      ) {
        v1.release();
        v2.release();
      }
      for (const r of await Promise.all([first, ...many, ...whole])) assert.equal(r.status, 200);
      // The breaker closed again: the next v2 request goes through.
      const after = get(`${gw.url()}/v2/after`);
      await until(() => v2.held.length === 1, 'the next v2 request at its upstream');
      v2.release();
      assert.equal((await after).status, 200);
    } finally {
      v1.release();
      v2.release();
      await gw.close();
      await v1.upstream.close();
      await v2.upstream.close();
    }
  });

  it('subset v2 ejects after 1 consecutive 5xx while the service’s detector (5) does not; the ejection survives reloads', async () => {
    const failing = await startUpstream((_req, res) => {
      res.statusCode = 500;
      res.end('broken');
    }, 'failing');
    const good = await startUpstream(undefined, 'good');
    const other = await startUpstream(undefined, 'other');
    const upstreams: Upstream[] = [failing, good, other];
    const service = {
      name: 'svc',
      endpoints: [
        { url: failing.url, labels: { version: 'v2' } },
        { url: good.url, labels: { version: 'v2' } },
        { url: other.url, labels: { version: 'v1' } },
      ],
      subsets: { v1: { version: 'v1' }, v2: { version: 'v2' } },
      loadBalancer: { policy: 'round-robin', panicThreshold: 0 },
      outlierDetection: { consecutiveErrors: 5, baseEjectionTime: '60s', maxEjectionPercent: 50 },
      subsetPolicies: { v2: { outlierDetection: { consecutiveErrors: 1 } } },
    };
    const gw = await startGateway({ services: [service], routes });
    try {
      // Until the failing endpoint answers once, round-robin alternates; after that one 500 it is ejected.
      const seen: string[] = [];
      for (let i = 0; i < 4 && !seen.includes('failing'); i++) seen.push((await get(`${gw.url()}/v2/x`)).upstream!);
      assert.ok(seen.includes('failing'), `the failing endpoint got a request: ${seen.join(', ')}`);
      for (let i = 0; i < 6; i++) {
        const r = await get(`${gw.url()}/v2/after-${i}`);
        assert.equal(r.status, 200);
        assert.equal(r.upstream, 'good');
      }
      // The whole service (consecutiveErrors 5) keeps sending to the failing endpoint.
      const whole: number[] = [];
      for (let i = 0; i < 6; i++) whole.push((await get(`${gw.url()}/all/${i}`)).status);
      assert.equal(whole.filter((s) => s === 500).length, 2, `statuses of the whole service: ${whole.join(', ')}`);

      const view = await servicesView(gw.adminUrl);
      const unit = view.subsetUnits!.find((u) => u.name === 'svc/v2')!;
      // The subset's field over the service's, field by field.
      assert.equal(unit.outlierDetection!.consecutiveErrors, 1);
      assert.equal(unit.outlierDetection!.baseEjectionMs, 60_000);
      assert.equal(unit.endpoints.find((e) => e.url === failing.url)!.outlier.ejected, true);
      assert.equal(view.endpoints.find((e) => e.url === failing.url)!.outlier.ejected, false);

      // A reload that leaves the service unchanged keeps the unit and its ejection.
      const before = gw.proxy.snapshot.services.get('svc')!.unitFor('v2');
      await gw.apply({
        services: [service],
        routes: [...routes, { name: 'extra', match: { path: '/x' }, service: 'svc' }],
      });
      assert.equal(gw.proxy.snapshot.services.get('svc')!.unitFor('v2'), before, 'the unchanged unit is reused');
      assert.equal((await get(`${gw.url()}/v2/reloaded`)).upstream, 'good');

      // A changed service takes the subset's endpoints over with their ejection (its detector is unchanged).
      await gw.apply({ services: [{ ...service, timeouts: { request: '10s' } }], routes });
      const replaced = gw.proxy.snapshot.services.get('svc')!.unitFor('v2');
      assert.notEqual(replaced, before);
      assert.equal(replaced.all.endpoints.find((e) => e.url === failing.url)!.ejected, true);
      for (let i = 0; i < 4; i++) assert.equal((await get(`${gw.url()}/v2/changed-${i}`)).upstream, 'good');
    } finally {
      await gw.close();
      for (const u of upstreams) await u.close();
    }
  });

  it('subset v2 balances round-robin while the service hashes a key onto one endpoint', async () => {
    const names = ['a1', 'a2', 'b1', 'b2'];
    const upstreams = await Promise.all(names.map((n) => startUpstream(undefined, n)));
    const gw = await startGateway({
      services: [
        {
          name: 'svc',
          endpoints: upstreams.map((u, i) => ({ url: u.url, labels: { version: i < 2 ? 'v1' : 'v2' } })),
          subsets: { v1: { version: 'v1' }, v2: { version: 'v2' } },
          loadBalancer: { policy: 'ring-hash', hashOn: { header: 'x-user' } },
          subsetPolicies: { v2: { loadBalancer: { policy: 'round-robin' } } },
        },
      ],
      routes,
    });
    try {
      const count = async (path: string) => {
        const by = new Map<string, number>();
        for (let i = 0; i < 8; i++) {
          const r = await get(`${gw.url()}${path}/${i}`, { 'x-user': 'alice' });
          assert.equal(r.status, 200);
          by.set(r.upstream!, (by.get(r.upstream!) ?? 0) + 1);
        }
        return Object.fromEntries([...by].sort());
      };
      const v1 = await count('/v1');
      assert.equal(Object.keys(v1).length, 1, `one key, one endpoint of v1: ${JSON.stringify(v1)}`);
      assert.deepEqual(await count('/v2'), { b1: 4, b2: 4 });
    } finally {
      await gw.close();
      for (const u of upstreams) await u.close();
    }
  });
});
