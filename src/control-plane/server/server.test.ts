/**
 * The push protocol end to end in one process, on real sockets: a control plane, real ProxyServers
 * subscribed to it, real upstreams. Versions, nonces, ACK/NACK, change records, "unchanged proxies
 * receive nothing", debounce, warm-up and resync.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { eventually, model, startControlPlane, startMeshProxy } from '../../../test/helpers/mesh.ts';
import { startUpstream, type Upstream } from '../../../test/helpers/servers.ts';
import type { ChangeRecord, ProxyIdentity, ProxyStatusView } from '../../api/mesh.ts';
import { parsePrometheusText, type Scrape } from '../../testing/prometheus.ts';

const sidecar = (id: string, service: string, upstreams?: string[]): ProxyIdentity => ({
  id,
  kind: 'sidecar',
  service,
  address: '127.0.0.1',
  inboundPort: 0,
  outboundPort: 0,
  app: 'http://127.0.0.1:1',
  ...(upstreams ? { upstreams } : {}),
});

async function json<T>(
  url: string,
  init: { method?: string; body?: unknown } = {},
): Promise<{ status: number; body: T }> {
  const res = await request(url, {
    method: (init.method ?? 'GET') as 'GET',
    body: init.body === undefined ? undefined : typeof init.body === 'string' ? init.body : JSON.stringify(init.body),
    headers: { 'content-type': 'application/json' },
  });
  return { status: res.statusCode, body: (await res.body.json()) as T };
}

const register = (url: string, id: string, service: string, port: number, labels: Record<string, string> = {}) =>
  json(`${url}/instances/${id}`, { method: 'PUT', body: { service, address: '127.0.0.1', port, labels } });

async function settled(url: string, id: number): Promise<ChangeRecord> {
  return eventually(
    async () => {
      const { body } = await json<ChangeRecord>(`${url}/changes/${id}`);
      return body.status === 'propagating' ? undefined : body;
    },
    5_000,
    `change ${id} to settle`,
  );
}

async function scrape(url: string): Promise<Scrape> {
  const res = await request(`${url}/metrics`);
  assert.equal(res.statusCode, 200);
  return parsePrometheusText(await res.body.text());
}

const statusOf = async (url: string, id: string) =>
  (await json<{ proxies: ProxyStatusView[] }>(`${url}/proxies`)).body.proxies.find((p) => p.id === id);

describe('control plane push protocol', () => {
  const closers: (() => Promise<void>)[] = [];
  after(async () => {
    for (const close of closers.reverse()) await close();
  });
  const proxyFor = (url: string, identity: ProxyIdentity, extra = {}) => {
    const p = startMeshProxy(url, identity, extra);
    closers.push(() => p.close());
    return p;
  };

  it('pushes each proxy its config, records the ACK, and the change reports who applied it and how fast', async () => {
    const cp = await startControlPlane();
    closers.push(cp.close);
    const upstream: Upstream = await startUpstream();
    closers.push(upstream.close);
    const a = proxyFor(cp.url, sidecar('a', 'front'));
    await a.subscription.firstConfig;
    await eventually(async () => (await statusOf(cp.url, 'a'))?.state === 'SYNCED', 5_000, 'a in sync');

    const { body: instance } = await register(cp.url, 'photo-1', 'photo-service', upstream.port);
    assert.equal((instance as { id: string }).id, 'photo-1');
    const changes = (await json<{ changes: ChangeRecord[] }>(`${cp.url}/changes`)).body.changes;
    const record = await settled(cp.url, changes[0]!.id);
    assert.equal(record.kind, 'registry');
    assert.match(record.cause, /photo-service instance photo-1 \(127\.0\.0\.1:\d+\) registered/);
    assert.equal(record.status, 'applied');
    assert.deepEqual(
      record.results.map((r) => [r.proxy, r.status]),
      [['a', 'applied']],
    );
    assert.equal(record.propagation.applied, 1);
    assert.ok(
      record.propagation.p99Ms !== null && record.propagation.p99Ms < 1_000,
      JSON.stringify(record.propagation),
    );

    // The proxy routes to the new instance by name, through its outbound listener.
    const outbound = a.plane.ports().outbound!;
    const res = await request(`http://127.0.0.1:${outbound}/photos`, { headers: { host: 'photo-service' } });
    assert.equal(res.statusCode, 200);
    await res.body.dump();
    assert.equal(upstream.seen.at(-1)?.headers.host, 'photo-service');

    const status = (await statusOf(cp.url, 'a'))!;
    assert.equal(status.state, 'SYNCED');
    assert.equal(status.ackedVersion, a.subscription.status().version);
    assert.equal(status.ackedVersion, status.expectedVersion);

    // The same story in the control plane's own metrics: one proxy, one instance, two pushes (the
    // first config at connect, then the registration), both ACKed, the change propagated once.
    const m = await scrape(cp.url);
    assert.equal(m.value('control_plane_connected_proxies', { kind: 'sidecar' }), 1);
    assert.equal(m.value('control_plane_instances', { service: 'photo-service' }), 1);
    assert.equal(m.value('control_plane_changes_total', { kind: 'registry' }), 1);
    assert.equal(m.value('control_plane_pushes_total'), 2);
    assert.equal(m.value('control_plane_push_duration_seconds_count', { result: 'ack' }), 2);
    assert.equal(m.value('control_plane_change_propagation_seconds_count'), 1);
    assert.equal(m.value('control_plane_nacks_total'), 0);
  });

  it('each proxy reports its resident memory with its ACK; GET /status shows each and the total', async () => {
    const cp = await startControlPlane();
    closers.push(cp.close);
    const proxies = [proxyFor(cp.url, sidecar('m1', 'front')), proxyFor(cp.url, sidecar('m2', 'back'))];
    await Promise.all(proxies.map((p) => p.subscription.firstConfig));
    await eventually(
      async () =>
        (await Promise.all(['m1', 'm2'].map((id) => statusOf(cp.url, id)))).every((s) => s?.state === 'SYNCED'),
      5_000,
      'both in sync',
    );
    // Both run in this test's process: each reported this process's RSS when it answered.
    const rss = process.memoryUsage.rss();
    for (const id of ['m1', 'm2']) {
      const view = (await statusOf(cp.url, id))!;
      assert.ok(typeof view.rssBytes === 'number' && view.rssBytes > 10 * 2 ** 20 && view.rssBytes <= 2 * rss, id);
      assert.ok(view.rssAt !== null && !Number.isNaN(Date.parse(view.rssAt!)));
    }
    const { body } = await json<{ proxies: { total: number; rssBytes: number; rss: Record<string, number> } }>(
      `${cp.url}/status`,
    );
    assert.deepEqual(Object.keys(body.proxies.rss).sort(), ['m1', 'm2']);
    assert.equal(body.proxies.rssBytes, body.proxies.rss.m1! + body.proxies.rss.m2!);
  });

  it('a model service without endpoints takes its instances from the registry', async () => {
    const cp = await startControlPlane();
    closers.push(cp.close);
    const upstream: Upstream = await startUpstream();
    closers.push(upstream.close);
    // Declared for its settings only (timeouts, balancing): no `endpoints` at all.
    const put = await json<{ version: string }>(`${cp.url}/config`, {
      method: 'PUT',
      body:
        'services:\n' +
        '  - name: photo-service\n' +
        '    timeouts: { request: 2s }\n' +
        '    loadBalancer: { policy: least-request }\n',
    });
    assert.equal(put.status, 200, JSON.stringify(put.body));
    const a = proxyFor(cp.url, sidecar('a', 'front'));
    await a.subscription.firstConfig;
    await register(cp.url, 'photo-1', 'photo-service', upstream.port);
    const outbound = a.plane.ports().outbound!;
    const res = await eventually(
      async () => {
        const r = await request(`http://127.0.0.1:${outbound}/photos`, { headers: { host: 'photo-service' } });
        await r.body.dump();
        return r.statusCode === 200 ? r : undefined;
      },
      5_000,
      'the registered instance to serve',
    );
    assert.equal(res.statusCode, 200);
    assert.equal(upstream.seen.at(-1)!.headers.host, 'photo-service');
  });

  it('a real proxy rebuilds deltas into the config the control plane meant, on its first stream', async () => {
    const cp = await startControlPlane();
    closers.push(cp.close);
    const upstream: Upstream = await startUpstream();
    closers.push(upstream.close);
    const a = proxyFor(cp.url, sidecar('a', 'front', ['photo-service', 'search-service']));
    await a.subscription.firstConfig;
    await register(cp.url, 'search-1', 'search-service', 10_001);
    await register(cp.url, 'photo-1', 'photo-service', upstream.port);
    const outbound = a.plane.ports().outbound!;
    await eventually(
      async () => {
        const r = await request(`http://127.0.0.1:${outbound}/photos`, { headers: { host: 'photo-service' } });
        await r.body.dump();
        return r.statusCode === 200;
      },
      5_000,
      'the instance registered after the first config to serve',
    );
    await json(`${cp.url}/instances/search-1`, { method: 'DELETE' });
    const status = await eventually(
      async () => {
        const s = await statusOf(cp.url, 'a');
        return s?.state === 'SYNCED' ? s : undefined;
      },
      5_000,
      'a in sync after the deregistration',
    );
    assert.equal(status.ackedVersion, status.expectedVersion);
    assert.equal(a.applied.at(-1), status.expectedVersion, 'the rebuilt config hashes to the version pushed');
    assert.equal(a.subscription.status().connects, 1, 'no delta needed a reconnect');
    assert.equal(a.subscription.status().garbage, 0);
  });

  it('sends nothing to proxies whose config did not change', async () => {
    const cp = await startControlPlane();
    closers.push(cp.close);
    const callsPhoto = proxyFor(cp.url, sidecar('calls-photo', 'front', ['photo-service']));
    const callsSearch = proxyFor(cp.url, sidecar('calls-search', 'front', ['search-service']));
    await Promise.all([callsPhoto.subscription.firstConfig, callsSearch.subscription.firstConfig]);
    const before = callsSearch.subscription.status().lastPush;

    await register(cp.url, 'photo-1', 'photo-service', 10001);
    const id = (await json<{ changes: ChangeRecord[] }>(`${cp.url}/changes`)).body.changes[0]!.id;
    const record = await settled(cp.url, id);
    assert.deepEqual(
      record.results.map((r) => r.proxy),
      ['calls-photo'],
    );
    assert.equal(record.unaffected, 1);
    assert.equal(callsPhoto.applied.length, 2);
    // A marker: a change calls-search does hear of. Pushes on its stream arrive in order, so had the
    // photo change been sent to it, that push would have come first.
    await register(cp.url, 'search-1', 'search-service', 10002);
    const searchId = (await json<{ changes: ChangeRecord[] }>(`${cp.url}/changes`)).body.changes[0]!.id;
    assert.deepEqual(
      (await settled(cp.url, searchId)).results.map((r) => r.proxy),
      ['calls-search'],
    );
    assert.notDeepEqual(callsSearch.subscription.status().lastPush, before);
    assert.equal(callsSearch.applied.length, 2, 'calls-search got the search change only');
    assert.equal(callsPhoto.applied.length, 2, 'and calls-photo not the search one');

    // A heartbeat changes nothing anyone sees: no change record, no push. The next record after it is
    // the next registration's.
    const last = (await json<{ changes: ChangeRecord[] }>(`${cp.url}/changes`)).body.changes[0]!.id;
    const beat = await json(`${cp.url}/instances/photo-1/heartbeat`, { method: 'PUT', body: {} });
    assert.equal(beat.status, 200);
    await register(cp.url, 'photo-2', 'photo-service', 10003);
    const next = (await json<{ changes: ChangeRecord[] }>(`${cp.url}/changes`)).body.changes;
    assert.equal(next[1]!.id, last);
    assert.match(next[0]!.cause, /photo-2 .* registered/);
  });

  it('coalesces a burst of changes: the first is pushed at once, the rest together', async () => {
    // A window wide enough that six concurrent registrations land in it even on a loaded machine.
    const cp = await startControlPlane({ debounceMs: 400 });
    closers.push(cp.close);
    const p = proxyFor(cp.url, sidecar('burst', 'front'));
    await p.subscription.firstConfig;
    await sleep(450);
    await Promise.all([1, 2, 3, 4, 5, 6].map((n) => register(cp.url, `photo-${n}`, 'photo-service', 10000 + n)));
    const changes = (await json<{ changes: ChangeRecord[] }>(`${cp.url}/changes?limit=6`)).body.changes;
    const records = await Promise.all(changes.map((c) => settled(cp.url, c.id)));
    const nonces = new Set(records.map((r) => r.results[0]!.nonce));
    assert.ok(nonces.size <= 2, `six changes went out in ${nonces.size} pushes`);
    assert.ok(p.applied.length <= 3, `${p.applied.length} configs applied`);
    assert.ok(records.every((r) => r.status === 'applied'));
  });

  it('shows the model and its text with secret values hidden', async () => {
    const cp = await startControlPlane();
    closers.push(cp.close);
    const put = await json(`${cp.url}/config`, {
      method: 'PUT',
      body: `consumers: [{ name: partner, credentials: [{ type: api-key, key: literal-key-0123456789 }] }]
routes: [{ name: hello, directResponse: { status: 200, body: one } }]
`,
    });
    assert.equal(put.status, 200);
    for (const path of ['/config', '/config/source']) {
      const res = await request(`${cp.url}${path}`);
      const text = await res.body.text();
      assert.equal(res.statusCode, 200, path);
      assert.ok(!text.includes('literal-key-0123456789'), `${path} shows no secret`);
      assert.match(text, /partner/, path);
    }
  });

  it('a proxy that cannot apply its config NACKs with the reason, keeps serving the old one, and the change says so', async () => {
    const taken: Server = createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    closers.push(() => new Promise((r) => taken.close(() => r())));
    const takenPort = (taken.address() as { port: number }).port;
    const cp = await startControlPlane({
      model: model(`
listeners: [{ name: public, port: 0, address: 127.0.0.1 }]
routes: [{ name: hello, directResponse: { status: 200, body: one } }]
`),
    });
    closers.push(cp.close);
    const gw = proxyFor(cp.url, { id: 'gw', kind: 'gateway' });
    await gw.subscription.firstConfig;
    const port = gw.plane.ports().public!;

    const put = await json<{ change: number }>(`${cp.url}/config`, {
      method: 'PUT',
      body: `listeners: [{ name: public, port: 0, address: 127.0.0.1 }, { name: extra, port: ${takenPort}, address: 127.0.0.1 }]
routes: [{ name: hello, directResponse: { status: 200, body: two } }]
`,
    });
    assert.equal(put.status, 200);
    const record = await settled(cp.url, put.body.change);
    assert.equal(record.status, 'rejected');
    assert.equal(record.results[0]!.status, 'rejected');
    assert.match(record.results[0]!.error!.message, /address already in use 127\.0\.0\.1:\d+/);

    const res = await request(`http://127.0.0.1:${port}/`);
    assert.equal(await res.body.text(), 'one', 'the last good config is still served');
    const status = (await statusOf(cp.url, 'gw'))!;
    assert.equal(status.state, 'NACKED');
    assert.match(status.lastNack!.error.message, /address already in use/);
    assert.equal(gw.subscription.status().lastNack?.version, status.sentVersion);
    const m = await scrape(cp.url);
    assert.equal(m.value('control_plane_nacks_total'), 1);
    assert.equal(m.value('control_plane_push_duration_seconds_count', { result: 'nack' }), 1);
  });

  it('rejects an invalid model with the validator’s located errors, and keeps the one in force', async () => {
    const cp = await startControlPlane();
    closers.push(cp.close);
    const before = cp.cp.currentModel.version;
    const put = await json<{ issues: { line: number; column: number; path: string; message: string }[] }>(
      `${cp.url}/config`,
      { method: 'PUT', body: 'routes:\n  - name: r\n    service: nowhere\n' },
    );
    assert.equal(put.status, 400);
    assert.deepEqual(
      put.body.issues.map((i) => `${i.line}:${i.column}: ${i.path}: ${i.message}`),
      ['3:14: routes[0].service: unknown service "nowhere"'],
    );
    assert.equal(cp.cp.currentModel.version, before);
    const reserved = await json<{ issues: { message: string }[] }>(`${cp.url}/config`, {
      method: 'PUT',
      body: 'services: [{ name: inbound.x, endpoints: [] }, { name: my_service, endpoints: [] }]\n',
    });
    assert.equal(reserved.status, 400);
    assert.match(reserved.body.issues[0]!.message, /reserved for sidecars/);
    assert.match(reserved.body.issues[1]!.message, /cannot be a host name/);
    const same = await json<{ unchanged: boolean }>(`${cp.url}/config`, { method: 'PUT', body: '{}' });
    assert.equal(same.body.unchanged, true, 'the same model is no change');
  });

  it('during warm-up pushes nothing; a proxy that reconnects with the right version is sent nothing', async () => {
    const cp = await startControlPlane({ warmupMs: 400 });
    closers.push(cp.close);
    const early = proxyFor(cp.url, sidecar('early', 'front'));
    await eventually(async () => (await statusOf(cp.url, 'early'))?.connected, 2_000, 'early connected');
    await register(cp.url, 'photo-1', 'photo-service', 10001);
    assert.equal(early.applied.length, 0, 'nothing pushed during warm-up');
    assert.equal((await statusOf(cp.url, 'early'))!.state, 'NOT_SENT');
    await early.subscription.firstConfig;
    // In sync means it acknowledged the latest config: a push during the warm-up (without the
    // instance) would have been a second one before it.
    await eventually(async () => (await statusOf(cp.url, 'early'))?.state === 'SYNCED', 2_000, 'early in sync');
    assert.equal(early.applied.length, 1, 'one push at the end of warm-up, with the registered instance');
    const startup = (await json<{ changes: ChangeRecord[] }>(`${cp.url}/changes`)).body.changes.find(
      (c) => c.kind === 'startup',
    )!;
    assert.match(startup.cause, /warm-up over with 1 instances and 1 proxies connected/);

    // The control plane restarts (same port, empty registry): the proxy keeps serving, reconnects
    // with its version, the instance registers again during the warm-up, and nothing is pushed.
    const version = early.subscription.status().version;
    const lastPush = early.subscription.status().lastPush;
    const port = Number(new URL(cp.url).port);
    await cp.close();
    const restarted = await startControlPlane({ warmupMs: 300, port });
    closers.push(restarted.close);
    await eventually(async () => (await statusOf(restarted.url, 'early'))?.connected, 3_000, 'reconnected');
    assert.equal((await statusOf(restarted.url, 'early'))!.ackedVersion, version, 'the hello carried the version');
    await register(restarted.url, 'photo-1', 'photo-service', 10001);
    await eventually(async () => restarted.cp.isWarm, 2_000, 'warm-up over');
    await eventually(async () => (await statusOf(restarted.url, 'early'))?.state === 'SYNCED', 2_000, 'resynced');
    assert.deepEqual(early.subscription.status().lastPush, lastPush, 'sent nothing: it already had the right version');
    // A marker: a real change is pushed; had the resync pushed too, it would have come before it.
    await register(restarted.url, 'photo-2', 'photo-service', 10002);
    await eventually(() => early.applied.length >= 2, 2_000, 'the next change applied');
    assert.notDeepEqual(early.subscription.status().lastPush, lastPush);
    assert.equal(early.applied.length, 2, 'the change is the only push since the restart');
  });

  it('refuses bad messages at the boundary', async () => {
    const cp = await startControlPlane();
    closers.push(cp.close);
    const hello = await json<{ error: string }>(`${cp.url}/stream`, {
      method: 'POST',
      body: { proxy: { id: 'x', kind: 'router' }, version: null },
    });
    assert.equal(hello.status, 400);
    assert.match(hello.body.error, /kind/);
    const stale = await json<{ error: string }>(`${cp.url}/ack`, {
      method: 'POST',
      body: { proxy: 'ghost', stream: 's-1', nonce: 'n', version: 'v', status: 'ack' },
    });
    assert.equal(stale.status, 409);
    const badReg = await json<{ error: string }>(`${cp.url}/instances/x1`, {
      method: 'PUT',
      body: { service: 'photo-service', address: '127.0.0.1', port: 70000 },
    });
    assert.equal(badReg.status, 400);
    assert.match(badReg.body.error, /port must be <= 65535/);
    assert.equal((await json(`${cp.url}/instances/nobody/heartbeat`, { method: 'PUT', body: {} })).status, 404);
    assert.equal((await json(`${cp.url}/instances/nobody`, { method: 'DELETE' })).status, 404);
    assert.equal((await json(`${cp.url}/changes/999`)).status, 404);
  });
});
