/**
 * Two `meshgate control-plane --etcd` processes on one real etcd, a `meshgate gateway` connected to
 * each (through a TCP front that fails over to the other control plane, as a load balancer or a
 * Service address would), and an instance whose heartbeats go to either control plane.
 *
 * Checked: killing one control plane under load fails no request; the instance stays registered
 * (its lease is kept alive through the other); a config change made afterwards reaches both
 * gateways; the killed control plane, restarted, comes back with the registry, the model and the
 * change log, including the per-proxy results the other one recorded.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { type AddressInfo, connect, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import type { ChangeRecord, Instance, ProxyStatusView } from '../../src/api/mesh.ts';
import { startUpstream, type Upstream } from '../../src/testing/servers.ts';
import { EtcdServer } from '../helpers/etcd.ts';
import { closedLoopLoad } from '../helpers/load.ts';
import { eventually } from '../helpers/mesh.ts';
import { MeshgateProcess } from '../helpers/process.ts';

const model = (body: string) => `listeners:
  - { name: public, port: 0, address: 127.0.0.1 }
services:
  - { name: echo, endpoints: [] }
routes:
  - { name: version, match: { path: /version }, directResponse: { status: 200, body: "${body}" } }
  - { name: api, match: { path: /api/* }, service: echo }
`;

/** A TCP front: each connection goes to the first of `ports()` that accepts it. */
async function front(ports: () => number[]): Promise<{ url: string; server: Server }> {
  const server = createServer((client) => {
    client.pause();
    const list = ports();
    const attempt = (i: number) => {
      if (i >= list.length) return client.destroy();
      const upstream = connect(list[i]!, '127.0.0.1');
      upstream.once('error', () => attempt(i + 1));
      upstream.once('connect', () => {
        upstream.removeAllListeners('error');
        upstream.on('error', () => client.destroy());
        client.on('error', () => upstream.destroy());
        upstream.on('close', () => client.destroy());
        client.on('close', () => upstream.destroy());
        client.pipe(upstream);
        upstream.pipe(client);
      });
    };
    attempt(0);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

async function json<T>(
  url: string,
  init: { method?: 'PUT'; body?: string } = {},
): Promise<{ status: number; body: T }> {
  const res = await request(url, { ...init, headers: { 'content-type': 'application/json' } });
  return { status: res.statusCode, body: (await res.body.json()) as T };
}

async function text(url: string): Promise<string> {
  const res = await request(url);
  return res.body.text();
}

describe('control planes sharing etcd', { timeout: 90_000 }, () => {
  let etcd: EtcdServer;
  let dir: string;
  let upstream: Upstream;
  const processes: MeshgateProcess[] = [];
  const servers: Server[] = [];
  const cpPorts: number[] = [0, 0];
  const cps: MeshgateProcess[] = [];
  const gateways: { id: string; url: string; process: MeshgateProcess }[] = [];
  let heartbeats: NodeJS.Timeout | undefined;
  const heartbeatMisses: string[] = [];
  let firstChange: number;

  const startControlPlane = async (i: number, extra: string[] = []) => {
    const p = new MeshgateProcess([
      'control-plane',
      '--etcd',
      etcd.url,
      '--etcd-prefix',
      '/e2e/',
      '--port',
      String(cpPorts[i]),
      ...extra,
    ]);
    processes.push(p);
    const started = await p.waitFor('control plane started');
    cpPorts[i] = started.port as number;
    cps[i] = p;
    return p;
  };
  const cpUrl = (i: number) => `http://127.0.0.1:${cpPorts[i]}`;

  before(async () => {
    etcd = await EtcdServer.start();
    dir = mkdtempSync(join(tmpdir(), 'meshgate-etcd-e2e-'));
    writeFileSync(join(dir, 'mesh.yaml'), model('v1'));
    upstream = await startUpstream(undefined, 'echo-1');
    await startControlPlane(0, ['--config', join(dir, 'mesh.yaml')]);
    await startControlPlane(1);

    // Registered through one control plane; heartbeats alternate between both.
    const registered = await json<Instance>(`${cpUrl(0)}/instances/echo-1`, {
      method: 'PUT',
      body: JSON.stringify({ service: 'echo', address: '127.0.0.1', port: upstream.port, ttlMs: 3_000 }),
    });
    assert.equal(registered.status, 200, JSON.stringify(registered.body));
    let beat = 0;
    heartbeats = setInterval(async () => {
      const order = beat++ % 2 === 0 ? [0, 1] : [1, 0];
      for (const i of order) {
        try {
          const res = await request(`${cpUrl(i)}/instances/echo-1/heartbeat`, { method: 'PUT', body: '{}' });
          await res.body.dump();
          if (res.statusCode !== 200) heartbeatMisses.push(`${res.statusCode} from control plane ${i}`);
          return;
        } catch {}
      }
      heartbeatMisses.push('no control plane answered');
    }, 700);

    // Each gateway's front prefers a different control plane: one gateway on each.
    for (const [i, order] of [
      [0, [0, 1]],
      [1, [1, 0]],
    ] as const) {
      const { url, server } = await front(() => order.map((o) => cpPorts[o]!));
      servers.push(server);
      const id = `gw-${i}`;
      const p = new MeshgateProcess([
        'gateway',
        '--control-plane',
        url,
        '--id',
        id,
        '--workers',
        '0',
        '--admin-port',
        '0',
      ]);
      processes.push(p);
      const started = await p.waitFor('gateway started', 20_000);
      gateways.push({
        id,
        url: `http://127.0.0.1:${(started.listeners as Record<string, number>).public}`,
        process: p,
      });
    }
  });

  after(async () => {
    clearInterval(heartbeats);
    await Promise.all(processes.map((p) => p.stop('SIGKILL')));
    for (const s of servers) s.close();
    await upstream?.close();
    await etcd?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('the model and the instance are the same on both; each has its own gateway', async () => {
    for (const i of [0, 1]) {
      const status = await json<{ model: { source: string } }>(`${cpUrl(i)}/status`);
      assert.match(status.body.model.source, /mesh\.yaml$/);
      const { body } = await json<{ instances: Instance[] }>(`${cpUrl(i)}/instances`);
      assert.deepEqual(
        body.instances.map((x) => x.id),
        ['echo-1'],
      );
      const proxies = await json<{ proxies: ProxyStatusView[] }>(`${cpUrl(i)}/proxies`);
      assert.deepEqual(
        proxies.body.proxies.filter((p) => p.connected).map((p) => p.id),
        [`gw-${i}`],
      );
    }
    for (const gw of gateways) {
      await eventually(
        async () => (await request(`${gw.url}/api/x`)).statusCode === 200,
        5_000,
        `${gw.id} serves /api`,
      );
      assert.equal(await text(`${gw.url}/version`), 'v1');
    }
    // The instance's registration is one change, with the same id on both control planes.
    const [a, b] = await Promise.all(
      [0, 1].map((i) => json<{ changes: ChangeRecord[] }>(`${cpUrl(i)}/changes?limit=20`)),
    );
    const registeredA = a!.body.changes.find((c) => /echo-1 .* registered/.test(c.cause));
    const registeredB = b!.body.changes.find((c) => /echo-1 .* registered/.test(c.cause));
    assert.ok(registeredA && registeredA.id === registeredB?.id);
    firstChange = registeredA.id;
  });

  it('killing one control plane under load fails no request, and the instance stays', async () => {
    const loads = gateways.map((gw) => closedLoopLoad(gw.url, { connections: 4, durationMs: 3_000, path: '/api/x' }));
    await new Promise((r) => setTimeout(r, 1_000));
    await cps[0]!.stop('SIGKILL');
    const killedAt = performance.now();
    const results = await Promise.all(loads);
    for (const [i, r] of results.entries()) {
      assert.equal(r.failed, 0, `${gateways[i]!.id}: ${r.failures.join(', ')}`);
      // Served on through the kill: how many depends on the machine, that it went on does not.
      const after = r.okAt.filter((t) => t > killedAt).length;
      assert.ok(after >= 10, `${gateways[i]!.id} served ${after} of ${r.ok} after the kill`);
    }
    // Its lease is kept alive through the survivor; no heartbeat was refused.
    await new Promise((r) => setTimeout(r, 1_500));
    assert.deepEqual(heartbeatMisses, []);
    const { body } = await json<{ instances: Instance[] }>(`${cpUrl(1)}/instances`);
    assert.deepEqual(
      body.instances.map((x) => x.id),
      ['echo-1'],
    );
  });

  it('a config change made afterwards reaches every gateway', async () => {
    const put = await json<{ change: number }>(`${cpUrl(1)}/config`, { method: 'PUT', body: model('v2') });
    assert.equal(put.status, 200, JSON.stringify(put.body));
    for (const gw of gateways)
      await eventually(async () => (await text(`${gw.url}/version`)) === 'v2', 10_000, `${gw.id} serves v2`);
    // Both gateways are now served by the survivor, and the change record says both applied it.
    const record = await eventually(async () => {
      const r = await json<ChangeRecord>(`${cpUrl(1)}/changes/${put.body.change}`);
      return r.body.status === 'applied' ? r.body : undefined;
    });
    assert.deepEqual(
      record.results.map((r) => [r.proxy, r.status]),
      [
        ['gw-0', 'applied'],
        ['gw-1', 'applied'],
      ],
    );
  });

  it('the restarted control plane comes back with the registry, the model and the change log', async () => {
    await startControlPlane(0);
    const status = await json<{ model: { version: string; source: string } }>(`${cpUrl(0)}/status`);
    const survivor = await json<{ model: { version: string } }>(`${cpUrl(1)}/status`);
    assert.equal(status.body.model.version, survivor.body.model.version);
    assert.equal(status.body.model.source, 'admin-api');
    const { body } = await json<{ instances: Instance[] }>(`${cpUrl(0)}/instances`);
    assert.deepEqual(
      body.instances.map((x) => x.id),
      ['echo-1'],
    );
    // Records from before its restart, merged with what the other control plane wrote.
    const before = await json<ChangeRecord>(`${cpUrl(0)}/changes/${firstChange}`);
    assert.equal(before.status, 200);
    assert.match(before.body.cause, /echo-1 .* registered/);
    const recent = await json<{ changes: ChangeRecord[] }>(`${cpUrl(0)}/changes?limit=50`);
    const config = recent.body.changes.find((c) => c.kind === 'config' && /admin API/.test(c.cause));
    assert.ok(config, JSON.stringify(recent.body.changes.map((c) => c.cause)));
    assert.deepEqual(
      config.results.map((r) => r.status),
      ['applied', 'applied'],
    );
  });
});
