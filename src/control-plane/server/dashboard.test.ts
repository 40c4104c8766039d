/**
 * The dashboard's API on the control plane, end to end in one process on real sockets: a gateway and
 * two sidecars (v1, v2) subscribed to it, real apps behind the sidecars, traffic through the gateway.
 * Checked: the topology and golden signals from the proxies' telemetry reports; the split by version;
 * a weight change previewed (validated, diffed), applied as a recorded change every affected proxy
 * ACKs, and the traffic moving; a request looked up by id across proxies; the page and the API under
 * the Content-Security-Policy, and an operator token required when tokens are configured.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { request } from 'undici';
import { eventually, model, startControlPlane, startMeshProxy } from '../../../test/helpers/mesh.ts';
import { startUpstream } from '../../../test/helpers/servers.ts';
import type { LookupResult, WeightsOutcome } from '../../admin/dashboard/api.ts';
import { CONTENT_SECURITY_POLICY } from '../../admin/dashboard/static.ts';
import type { Overview } from '../../admin/dashboard/telemetry-store.ts';
import type { ChangeRecord, ProxyIdentity } from '../../api/mesh.ts';
import { silentLogger } from '../../observability/logger.ts';
import { Authenticator } from '../auth/tokens.ts';
import { emptyModel } from '../model/model.ts';
import { MemoryRegistry } from '../registry/memory.ts';
import { ControlPlane } from './control-plane.ts';
import { orderHops } from './dashboard.ts';
import { controlPlaneApi } from './http.ts';

const MODEL = `listeners:
  - { name: public, port: 0, address: 127.0.0.1 }
services:
  - name: front
    subsets:
      v1: { version: v1 }
      v2: { version: v2 }
routes:
  - name: split
    match: { path: /api/* }
    destinations:
      - { service: front, subset: v1, weight: 90 }
      - { service: front, subset: v2, weight: 10 }
`;

async function json<T>(url: string, init: { method?: string; body?: unknown; token?: string } = {}) {
  const res = await request(url, {
    method: (init.method ?? 'GET') as 'GET',
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
    headers: {
      'content-type': 'application/json',
      ...(init.token ? { authorization: `Bearer ${init.token}` } : {}),
    },
  });
  return { status: res.statusCode, headers: res.headers, body: (await res.body.json()) as T };
}

describe('the dashboard on the control plane', () => {
  const closers: (() => Promise<void>)[] = [];
  after(async () => {
    for (const close of closers.reverse()) await close();
  });

  it('shows the topology, splits by version, changes weights as a recorded change, and finds a request', async () => {
    const cp = await startControlPlane({ model: model(MODEL), telemetryIntervalMs: 200 });
    closers.push(cp.close);
    const api = `${cp.url}/dashboard/api`;
    const gateway = startMeshProxy(cp.url, { id: 'gw', kind: 'gateway' });
    closers.push(() => gateway.close());
    const sidecars = [];
    for (const version of ['v1', 'v2']) {
      const app = await startUpstream(undefined, `app-${version}`);
      closers.push(app.close);
      const identity: ProxyIdentity = {
        id: `front-${version}`,
        kind: 'sidecar',
        service: 'front',
        address: '127.0.0.1',
        inboundPort: 0,
        outboundPort: 0,
        app: `http://127.0.0.1:${app.port}`,
        labels: { version },
      };
      const sidecar = startMeshProxy(cp.url, identity);
      closers.push(() => sidecar.close());
      sidecars.push(sidecar);
      await sidecar.subscription.firstConfig;
      const registered = await json(`${cp.url}/instances/front-${version}`, {
        method: 'PUT',
        body: { service: 'front', address: '127.0.0.1', port: sidecar.plane.ports().inbound, labels: { version } },
      });
      assert.equal(registered.status, 200, JSON.stringify(registered.body));
    }
    await gateway.subscription.firstConfig;
    const publicUrl = () => `http://127.0.0.1:${gateway.plane.ports().public}`;
    const send = async (n: number, id = () => `r-${Math.random()}`) => {
      let ok = 0;
      for (let i = 0; i < n; i++) {
        const res = await request(`${publicUrl()}/api/items/${i}`, { headers: { 'x-request-id': id() } });
        await res.body.dump();
        if (res.statusCode === 200) ok++;
      }
      return ok;
    };
    // Both subsets have their endpoint in the gateway's config before traffic is measured.
    await eventually(async () => (await send(20)) === 20, 10_000, 'the split to answer');

    const overview = await eventually(
      async () => {
        await send(10);
        const o = (await json<Overview>(`${api}/overview?window=60000`)).body;
        const front = o.nodes.find((n) => n.id === 'service:front');
        const called = o.edges.find((e) => e.id === 'gateway:gateway>service:front');
        // Every proxy has reported twice: the sidecars' view and the gateway's.
        const split = o.routes.find((r) => r.name === 'split');
        return front &&
          front.stat.rps > 0 &&
          front.versions.length === 2 &&
          called &&
          called.stat.rps > 0 &&
          split?.history.rps.some((v) => v !== null && v > 0)
          ? o
          : undefined;
      },
      20_000,
      'front with traffic from both versions',
    );
    assert.deepEqual(
      overview.nodes.map((n) => n.id),
      ['clients', 'gateway:gateway', 'service:front'],
    );
    assert.deepEqual(
      overview.edges.map((e) => e.id),
      ['clients>gateway:gateway', 'gateway:gateway>service:front'],
    );
    const edge = overview.edges.find((e) => e.id === 'gateway:gateway>service:front')!;
    assert.ok(edge.stat.rps > 0 && edge.stat.errorRate === 0, JSON.stringify(edge.stat));
    assert.ok(edge.stat.p99Ms !== null && edge.stat.p99Ms > 0);
    assert.equal(edge.mtls, 'DISABLE', 'no mesh section: plaintext');
    const split = overview.routes.find((r) => r.name === 'split')!;
    assert.deepEqual(split.services, ['front']);
    assert.ok(
      split.history.rps.some((v) => v !== null && v > 0),
      'the route has a history',
    );
    const before = overview.nodes.find((n) => n.id === 'service:front')!.versions;
    assert.ok(before.find((v) => v.version === 'v1')!.share! > 0.6, JSON.stringify(before));

    // Canary: preview first (valid, a diff of the model, nothing applied), then apply.
    const routes = (await json<{ routes: { name: string }[] }>(`${api}/routes`)).body.routes;
    assert.deepEqual(
      routes.map((r) => r.name),
      ['split'],
    );
    const invalid = await json<WeightsOutcome>(`${api}/routes/split/weights?dryRun=true`, {
      method: 'POST',
      body: { weights: [0, 0] },
    });
    assert.equal(invalid.status, 400);
    const preview = await json<WeightsOutcome>(`${api}/routes/split/weights?dryRun=true`, {
      method: 'POST',
      body: { weights: [0, 100] },
    });
    assert.equal(preview.status, 200, JSON.stringify(preview.body));
    assert.ok(
      preview.body.diff!.some((l) => /^-\s+weight: 90$/.test(l)),
      preview.body.diff!.join('\n'),
    );
    assert.ok(preview.body.diff!.some((l) => /^\+\s+weight: 100$/.test(l)));
    const lastBefore = (await json<{ changes: ChangeRecord[] }>(`${api}/changes`)).body.changes[0]!.id;
    const applied = await json<WeightsOutcome>(`${api}/routes/split/weights`, {
      method: 'POST',
      body: { weights: [0, 100] },
    });
    assert.equal(applied.status, 200, JSON.stringify(applied.body));
    const changeId = applied.body.change!;
    assert.ok(changeId > lastBefore);
    const record = await eventually(
      async () => {
        const r = (await json<ChangeRecord>(`${cp.url}/changes/${changeId}`)).body;
        return r.status === 'propagating' ? undefined : r;
      },
      10_000,
      'the change to settle',
    );
    assert.equal(record.status, 'applied');
    assert.match(record.cause, /weights of route split set to 0\/100, through the admin API/);
    assert.ok(record.results.some((r) => r.proxy === 'gw' && r.status === 'applied'));
    const diff = (await json<{ diff: string[] }>(`${api}/changes/${changeId}/diff`)).body.diff;
    assert.deepEqual(diff, preview.body.diff);
    // The traffic moves: every new request reaches v2.
    const v2App = (await json<Overview>(`${api}/overview`)).body;
    assert.ok(v2App);
    await eventually(
      async () => {
        await send(10);
        const o = (await json<Overview>(`${api}/overview?window=1000`)).body;
        const v2 = o.nodes.find((n) => n.id === 'service:front')!.versions.find((v) => v.version === 'v2');
        return v2 && v2.share !== null && v2.share > 0.95;
      },
      20_000,
      "v2's share to reach all of the traffic",
    );

    // Request lookup: the gateway's hop and the sidecar's, by the request id they both saw.
    await send(1, () => 'lookup-me-1');
    const found = await eventually(
      async () => {
        const r = (await json<LookupResult>(`${api}/requests/lookup-me-1`)).body;
        return r.hops.length >= 2 ? r : undefined;
      },
      10_000,
      'the hops of the request',
    );
    assert.equal(found.asked, 3);
    assert.deepEqual(found.hops.map((h) => h.proxy).sort(), ['front-v2', 'gw']);
    assert.equal(found.hops[0]!.proxy, 'gw', 'the gateway saw it first');
    assert.equal(found.hops.find((h) => h.proxy === 'gw')!.subset, 'v2');
    const none = (await json<LookupResult>(`${api}/requests/never-sent`)).body;
    assert.deepEqual(none.hops, []);

    // Proxies, with the telemetry they report.
    const proxies = (await json<{ proxies: { id: string; state: string; telemetry: unknown }[] }>(`${api}/proxies`))
      .body.proxies;
    assert.deepEqual(
      proxies.map((p) => [p.id, p.state]),
      [
        ['front-v1', 'SYNCED'],
        ['front-v2', 'SYNCED'],
        ['gw', 'SYNCED'],
      ],
    );
    assert.ok(proxies.every((p) => p.telemetry !== null));
  });

  it('serves the page under a strict policy, compressed; the API asks for the operator token', async () => {
    const registry = new MemoryRegistry();
    const cp = new ControlPlane({ registry, model: emptyModel(), log: silentLogger(), warmupMs: 0 });
    await cp.start();
    const token = 'operator-token-of-at-least-32-characters';
    const api = controlPlaneApi(cp, silentLogger(), { auth: new Authenticator({ operator: [token] }) });
    await api.listen(0, '127.0.0.1');
    closers.push(async () => {
      cp.close();
      await api.close();
    });
    const base = `http://127.0.0.1:${api.port}`;
    const page = await request(`${base}/dashboard/`, { headers: { 'accept-encoding': 'gzip' } });
    assert.equal(page.statusCode, 200);
    assert.equal(page.headers['content-security-policy'], CONTENT_SECURITY_POLICY);
    assert.match(CONTENT_SECURITY_POLICY, /default-src 'self'/);
    assert.equal(page.headers['content-encoding'], 'gzip');
    const html = gunzipSync(Buffer.from(await page.body.arrayBuffer())).toString('utf8');
    assert.match(html, /<script type="module" src="app.js"><\/script>/);
    assert.doesNotMatch(html, /<script>|<style|style=/, 'nothing inline');
    const js = await request(`${base}/dashboard/app.js`);
    assert.equal(js.statusCode, 200);
    assert.match(String(js.headers['content-type']), /text\/javascript/);
    await js.body.dump();

    const refused = await json<{ code: string }>(`${base}/dashboard/api/overview`);
    assert.equal(refused.status, 401);
    assert.equal(refused.body.code, 'MG_UNAUTHORIZED');
    const events = await request(`${base}/dashboard/api/events`);
    assert.equal(events.statusCode, 401);
    await events.body.dump();
    const allowed = await json<Overview>(`${base}/dashboard/api/overview`, { token });
    assert.equal(allowed.status, 200);
    assert.equal(allowed.headers['content-security-policy'], CONTENT_SECURITY_POLICY);
    assert.deepEqual(allowed.body.nodes, []);
    // A proxy's report needs a proxy's credential and its open stream.
    const report = await json(`${base}/telemetry`, {
      method: 'POST',
      token,
      body: { proxy: 'p', stream: 's', since: 0, latencyBounds: [], series: [], services: [], inflight: 0 },
    });
    assert.equal(report.status, 409);
  });
});

describe("ordering one request's hops", () => {
  const order = (hops: { name: string; start: number; duration: number }[]) => {
    orderHops(
      hops,
      (h) => h.start,
      (h) => h.duration,
      (h) => h.name.split(',')[0]!,
    );
    return hops.map((h) => h.name);
  };

  it('puts a caller before the hops it made, though their clocks put a hop a little earlier', () => {
    // The gateway's clock 2 ms ahead of the sidecar's: its first try's hop seems to start first.
    assert.deepEqual(
      order([
        { name: 'sidecar, second try', start: 1_010, duration: 20 },
        { name: 'sidecar, first try', start: 999, duration: 3 },
        { name: 'gateway', start: 1_001, duration: 40 },
      ]),
      ['gateway', 'sidecar, first try', 'sidecar, second try'],
    );
    // The sidecar’s clock 8 ms behind: both its hops seem to start before the gateway's, and the
    // first try (shorter) must still come before the second.
    assert.deepEqual(
      order([
        { name: 'sidecar, second try', start: 1_004, duration: 20 },
        { name: 'gateway', start: 1_006, duration: 40 },
        { name: 'sidecar, first try', start: 998, duration: 3 },
      ]),
      ['gateway', 'sidecar, first try', 'sidecar, second try'],
    );
  });

  it('keeps hops that do not lie within one another in the order they started', () => {
    assert.deepEqual(
      order([
        { name: 'later', start: 2_000, duration: 5 },
        { name: 'earlier', start: 1_000, duration: 50 },
      ]),
      ['earlier', 'later'],
    );
  });
});
