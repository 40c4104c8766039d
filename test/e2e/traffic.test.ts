/**
 * Traffic management over real sockets: balancing policies, consistent hashing, canaries by cookie,
 * sticky splits, mirroring to a shadow that may hang or fail, and fault injection.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request } from 'undici';
import { echo, startGateway, startUpstream, type TestGateway, type Upstream } from '../helpers/servers.ts';

const agent = new Agent({ connections: 64 });
after(() => agent.close());

async function get(url: string, headers: Record<string, string> = {}, method = 'GET', body?: string) {
  const started = performance.now();
  const res = await request(url, { headers, method, body, dispatcher: agent });
  const text = await res.body.text();
  return {
    status: res.statusCode,
    upstream: res.headers['x-upstream'] as string | undefined,
    text,
    ms: performance.now() - started,
    headers: res.headers,
  };
}

/** Runs `total` requests over `concurrency` connections; `make(i)` gives each its path and headers. */
async function spread(
  total: number,
  concurrency: number,
  make: (i: number) => { url: string; headers?: Record<string, string> },
): Promise<Awaited<ReturnType<typeof get>>[]> {
  const results: Awaited<ReturnType<typeof get>>[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) {
        const i = next++;
        const { url, headers } = make(i);
        results[i] = await get(url, headers);
      }
    }),
  );
  return results;
}

const count = <T>(items: T[], key: (t: T) => string | undefined) => {
  const out: Record<string, number> = {};
  for (const item of items) {
    const k = key(item) ?? '?';
    out[k] = (out[k] ?? 0) + 1;
  }
  return out;
};

async function upstreams(...names: string[]): Promise<Upstream[]> {
  return Promise.all(names.map((n) => startUpstream(echo, n)));
}

async function closeAll(gw: TestGateway, servers: Upstream[]) {
  await gw.close();
  for (const s of servers) await s.close();
}

describe('load balancing policies', () => {
  it('round robin spreads evenly and by weight', async () => {
    const ups = await upstreams('a', 'b', 'c');
    const gw = await startGateway({
      services: [
        {
          name: 'svc',
          endpoints: [{ url: ups[0]!.url }, { url: ups[1]!.url }, { url: ups[2]!.url, weight: 2 }],
        },
      ],
      routes: [{ name: 'r', service: 'svc' }],
    });
    try {
      const results = await spread(400, 1, () => ({ url: `${gw.url()}/` }));
      assert.deepEqual(
        count(results, (r) => r.upstream),
        { a: 100, b: 100, c: 200 },
      );
    } finally {
      await closeAll(gw, ups);
    }
  });

  it('least request sends most requests to the endpoint that answers fastest', async () => {
    const fast = await startUpstream(echo, 'fast');
    // 100 ms, far above what a loaded machine adds to the fast one, so the balancer's signal is clear.
    const slow = await startUpstream((req, res) => setTimeout(() => echo(req, res), 100), 'slow');
    const gw = await startGateway({
      services: [
        { name: 'svc', endpoints: [{ url: fast.url }, { url: slow.url }], loadBalancer: { policy: 'least-request' } },
      ],
      routes: [{ name: 'r', service: 'svc' }],
    });
    try {
      const results = await spread(600, 8, () => ({ url: `${gw.url()}/` }));
      const c = count(results, (r) => r.upstream);
      assert.ok((c.fast ?? 0) > 0.8 * 600, `fast got ${c.fast}, slow ${c.slow}`);
      assert.ok((c.slow ?? 0) > 0, 'the slow endpoint still gets some');
    } finally {
      await closeAll(gw, [fast, slow]);
    }
  });

  for (const policy of ['ring-hash', 'maglev'] as const) {
    it(`${policy} keeps a key on one endpoint, and moves only the keys of an endpoint that leaves`, async () => {
      const ups = await upstreams('a', 'b', 'c', 'd');
      const config = (endpoints: Upstream[]) => ({
        services: [
          {
            name: 'svc',
            endpoints: endpoints.map((u) => ({ url: u.url })),
            loadBalancer: { policy, hashOn: { header: 'x-user' } },
          },
        ],
        routes: [{ name: 'r', service: 'svc' }],
      });
      const gw = await startGateway(config(ups));
      try {
        const users = Array.from({ length: 200 }, (_, i) => `user-${i}`);
        const first = await spread(200, 8, (i) => ({ url: `${gw.url()}/`, headers: { 'x-user': users[i]! } }));
        const again = await spread(200, 8, (i) => ({ url: `${gw.url()}/`, headers: { 'x-user': users[i]! } }));
        for (let i = 0; i < 200; i++) assert.equal(again[i]!.upstream, first[i]!.upstream, users[i]);
        assert.equal(Object.keys(count(first, (r) => r.upstream)).length, 4, 'keys spread over all endpoints');
        // d leaves (a config change): only d's users move.
        await gw.apply(config(ups.slice(0, 3)));
        const after = await spread(200, 8, (i) => ({ url: `${gw.url()}/`, headers: { 'x-user': users[i]! } }));
        let stayed = 0;
        let others = 0;
        for (let i = 0; i < 200; i++) {
          assert.notEqual(after[i]!.upstream, 'd');
          if (first[i]!.upstream === 'd') continue;
          others++;
          if (after[i]!.upstream === first[i]!.upstream) stayed++;
        }
        assert.ok(stayed / others >= 0.95, `${stayed} of ${others} stayed`);
      } finally {
        await closeAll(gw, ups);
      }
    });
  }

  it('hashes on a cookie, a query parameter or the client address', async () => {
    const ups = await upstreams('a', 'b', 'c');
    const service = (hashOn: Record<string, unknown>, name: string) => ({
      name,
      endpoints: ups.map((u) => ({ url: u.url })),
      loadBalancer: { policy: 'maglev', hashOn },
    });
    const gw = await startGateway({
      services: [
        service({ cookie: 'session' }, 'by-cookie'),
        service({ query: 'tenant' }, 'by-query'),
        service({ clientIp: true }, 'by-ip'),
      ],
      routes: [
        { name: 'c', match: { path: '/c' }, service: 'by-cookie' },
        { name: 'q', match: { path: '/q' }, service: 'by-query' },
        { name: 'i', match: { path: '/i' }, service: 'by-ip' },
      ],
    });
    try {
      for (let s = 0; s < 10; s++) {
        const cookie = await spread(5, 1, () => ({
          url: `${gw.url()}/c`,
          headers: { cookie: `theme=x; session=s${s}` },
        }));
        assert.equal(new Set(cookie.map((r) => r.upstream)).size, 1);
        const query = await spread(5, 1, () => ({ url: `${gw.url()}/q?tenant=t${s}&x=${Math.random()}` }));
        assert.equal(new Set(query.map((r) => r.upstream)).size, 1);
      }
      const ip = await spread(20, 4, () => ({ url: `${gw.url()}/i` }));
      assert.equal(new Set(ip.map((r) => r.upstream)).size, 1, 'one client address, one endpoint');
    } finally {
      await closeAll(gw, ups);
    }
  });
});

describe('canaries and splits', () => {
  const canaryConfig = (v1: Upstream, v2: Upstream, route: Record<string, unknown> = {}) => ({
    services: [
      {
        name: 'property-service',
        endpoints: [
          { url: v1.url, labels: { version: 'v1' } },
          { url: v2.url, labels: { version: 'v2' } },
        ],
        subsets: { v1: { version: 'v1' }, v2: { version: 'v2' } },
      },
    ],
    routes: [
      {
        name: 'canary-cookie',
        match: { path: '/api/*', cookies: { canary: 'true' } },
        destinations: [{ service: 'property-service', subset: 'v2' }],
      },
      {
        name: 'split',
        match: { path: '/api/*' },
        destinations: [
          { service: 'property-service', subset: 'v1', weight: 50 },
          { service: 'property-service', subset: 'v2', weight: 50 },
        ],
        ...route,
      },
    ],
  });

  it('a canary cookie goes to v2', async () => {
    const [v1, v2] = await upstreams('v1', 'v2');
    const gw = await startGateway(canaryConfig(v1!, v2!));
    try {
      for (let i = 0; i < 30; i++)
        assert.equal((await get(`${gw.url()}/api/x`, { cookie: 'a=1; canary=true' })).upstream, 'v2');
      const other = await spread(200, 8, () => ({ url: `${gw.url()}/api/x`, headers: { cookie: 'canary=false' } }));
      assert.equal(Object.keys(count(other, (r) => r.upstream)).length, 2, 'without the cookie: the split');
    } finally {
      await closeAll(gw, [v1!, v2!]);
    }
  });

  it('sticky splits keep a client on one side, and still split clients by weight', async () => {
    const [v1, v2] = await upstreams('v1', 'v2');
    const gw = await startGateway(canaryConfig(v1!, v2!, { sticky: { cookie: 'session' } }));
    try {
      const sides: string[] = [];
      for (let s = 0; s < 400; s++) {
        const results = await spread(4, 4, () => ({
          url: `${gw.url()}/api/x`,
          headers: { cookie: `session=client-${s}` },
        }));
        const seen = new Set(results.map((r) => r.upstream));
        assert.equal(seen.size, 1, `client-${s} saw ${[...seen]}`);
        sides.push([...seen][0]!);
      }
      const v2share = sides.filter((s) => s === 'v2').length / sides.length;
      assert.ok(v2share > 0.4 && v2share < 0.6, `v2 got ${(v2share * 100).toFixed(1)}% of clients`);
    } finally {
      await closeAll(gw, [v1!, v2!]);
    }
  });
});

describe('mirroring', () => {
  async function mirrorGateway(
    main: Upstream,
    shadow: Upstream,
    percent: number,
    shadowTimeouts?: Record<string, string>,
  ) {
    return startGateway({
      services: [
        { name: 'main', endpoints: [{ url: main.url }] },
        { name: 'shadow', endpoints: [{ url: shadow.url }], ...(shadowTimeouts ? { timeouts: shadowTimeouts } : {}) },
      ],
      routes: [{ name: 'r', service: 'main', mirror: { service: 'shadow', percent } }],
    });
  }

  it('copies the configured share of requests, with their bodies, to the shadow', async () => {
    const main = await startUpstream(echo, 'main');
    const bodies: string[] = [];
    const shadow = await startUpstream((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        bodies.push(Buffer.concat(chunks).toString());
        res.end('shadow answer');
      });
    }, 'shadow');
    const gw = await mirrorGateway(main, shadow, 25);
    try {
      const total = 4000;
      const results = await spread(total, 16, (i) => ({ url: `${gw.url()}/m/${i}` }));
      assert.ok(results.every((r) => r.status === 200 && r.upstream === 'main'));
      await sleep(200);
      const share = (shadow.seen.length / total) * 100;
      assert.ok(share > 22 && share < 28, `shadow got ${share.toFixed(1)}%`);
      assert.ok(shadow.seen.every((s) => s.headers.host!.endsWith('-shadow')));
      assert.ok(shadow.seen.every((s) => s.url.startsWith('/m/')));

      // Bodies are copied once complete.
      const before = bodies.length;
      await gw.apply({
        services: [
          { name: 'main', endpoints: [{ url: main.url }] },
          { name: 'shadow', endpoints: [{ url: shadow.url }] },
        ],
        routes: [{ name: 'r', service: 'main', mirror: { service: 'shadow' } }],
      });
      const posted = await get(`${gw.url()}/post`, {}, 'POST', 'the body');
      assert.equal(posted.status, 200);
      while (bodies.length === before) await sleep(5);
      assert.equal(bodies.at(-1), 'the body');
    } finally {
      await closeAll(gw, [main, shadow]);
    }
  });

  it('a hanging or failing shadow changes nothing for clients', async () => {
    const main = await startUpstream(echo, 'main');
    const hanging = await startUpstream(() => {}, 'hanging');
    const failing = await startUpstream((req) => req.socket.destroy(), 'failing');
    const baselineGw = await startGateway({
      services: [{ name: 'main', endpoints: [{ url: main.url }] }],
      routes: [{ name: 'r', service: 'main' }],
    });
    const hangingGw = await mirrorGateway(main, hanging, 100, { request: '30s' });
    const failingGw = await mirrorGateway(main, failing, 100);
    try {
      const measure = async (gw: TestGateway) => {
        const results = await spread(1500, 16, (i) => ({ url: `${gw.url()}/x/${i}` }));
        for (const r of results) {
          assert.equal(r.status, 200);
          assert.equal(r.upstream, 'main');
          assert.equal(JSON.parse(r.text).url.startsWith('/x/'), true);
        }
        const ms = results.map((r) => r.ms).sort((a, b) => a - b);
        return { p50: ms[750]!, p99: ms[1485]!, max: ms.at(-1)! };
      };
      const baseline = await measure(baselineGw);
      const withHanging = await measure(hangingGw);
      const withFailing = await measure(failingGw);
      console.log(
        `# p99 ms: baseline ${baseline.p99.toFixed(1)}, hanging shadow ${withHanging.p99.toFixed(1)}, failing shadow ${withFailing.p99.toFixed(1)}`,
      );
      // The shadow really got traffic (and hung on it / failed it).
      assert.ok(hanging.seen.length > 0);
      assert.ok(failing.seen.length > 0);
      const shadow =
        hangingGw.proxy.snapshot.services.get('hanging' as string) ?? hangingGw.proxy.snapshot.services.get('shadow')!;
      assert.ok(shadow.breaker.requests > 0, 'copies are still hanging at the shadow');
      assert.ok(shadow.stats.mirrorDropped > 0, 'beyond its circuit breaker, copies are dropped, not queued');
      assert.ok(failingGw.proxy.snapshot.services.get('shadow')!.stats.mirrorFailed > 0);
      // Same latency as without a mirror: no request waited for the shadow (which never answers).
      for (const m of [withHanging, withFailing]) {
        assert.ok(m.max < 1000, `a client waited ${m.max.toFixed(0)} ms`);
        assert.ok(
          m.p99 < baseline.p99 * 3 + 20,
          `p99 ${m.p99.toFixed(1)} ms vs ${baseline.p99.toFixed(1)} ms without a mirror`,
        );
      }
    } finally {
      await baselineGw.close();
      await hangingGw.close();
      await failingGw.close();
      for (const s of [main, hanging, failing]) await s.close();
    }
  });
});

describe('fault injection', () => {
  it('aborts the configured share of requests with the configured status', async () => {
    const [up] = await upstreams('a');
    const gw = await startGateway({
      services: [{ name: 'svc', endpoints: [{ url: up!.url }] }],
      routes: [{ name: 'r', service: 'svc', fault: { abort: { status: 418, percent: 30 } } }],
    });
    try {
      const results = await spread(2000, 16, () => ({ url: `${gw.url()}/` }));
      const aborted = results.filter((r) => r.status === 418);
      const share = aborted.length / 2000;
      assert.ok(share > 0.26 && share < 0.34, `${(share * 100).toFixed(1)}% aborted`);
      assert.equal(aborted[0]!.headers['x-meshgate-code'], 'MG_FAULT_INJECTED');
      assert.equal(up!.seen.length, 2000 - aborted.length, 'aborted requests never reach the upstream');
      assert.ok(gw.ended.some((c) => c.refusal === 'fault-abort'));
    } finally {
      await closeAll(gw, [up!]);
    }
  });

  it('delays requests, only those with the header when one is configured', async () => {
    const [up] = await upstreams('a');
    const gw = await startGateway({
      services: [{ name: 'svc', endpoints: [{ url: up!.url }] }],
      routes: [{ name: 'r', service: 'svc', fault: { delay: { duration: '150ms' }, header: 'x-chaos' } }],
    });
    try {
      const plain = await get(`${gw.url()}/`);
      assert.ok(plain.ms < 100, `no header, no delay (${plain.ms.toFixed(0)} ms)`);
      const chaos = await get(`${gw.url()}/`, { 'x-chaos': '1' });
      assert.equal(chaos.status, 200);
      assert.ok(chaos.ms >= 145, `delayed ${chaos.ms.toFixed(0)} ms`);
      assert.equal(gw.ended.at(-1)!.faultDelayMs, 150);
    } finally {
      await closeAll(gw, [up!]);
    }
  });
});
