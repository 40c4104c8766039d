/**
 * Acceptance for the mesh, as real processes on 127.0.0.1: a control plane, four services with two
 * instances each (small node apps in this process, each beside a `meshgate sidecar` process), and a
 * `meshgate gateway --control-plane`. The front service calls the three others by name through its
 * sidecar's outbound listener: as an HTTP proxy (absolute-form) and by Host header.
 *
 * Checked: fan-out through the gateway by name; a killed instance leaves the endpoints within its
 * TTL and a gracefully stopped one at once; a new instance gets traffic within 1 s of registering;
 * killing the control plane under load changes nothing for traffic, and after its restart every
 * proxy is back in sync.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import type { ChangeRecord, Instance, ProxyStatusView } from '../../src/api/mesh.ts';
import { closedLoopLoad } from '../helpers/load.ts';
import { eventually } from '../helpers/mesh.ts';
import { freePort } from '../helpers/ports.ts';
import { MeshgateProcess, runMeshgate } from '../helpers/process.ts';

const MODEL = `listeners:
  - { name: public, port: 0, address: 127.0.0.1 }
services:
  - name: front
    endpoints: []
    timeouts: { request: 5s }
routes:
  - name: api
    match: { path: /api/* }
    service: front
`;

/** What front calls, and how: absolute-form through the proxy, Host header, Host with a port. */
const CALLS = [
  { service: 'photo-service', path: 'http://photo-service/photos/1', host: 'photo-service' },
  { service: 'property-service', path: '/properties/1', host: 'property-service' },
  { service: 'search-service', path: '/search?q=house', host: 'search-service:80' },
];
const SERVICES = ['front', ...CALLS.map((c) => c.service)];

interface App {
  id: string;
  service: string;
  url: string;
  server: Server;
  /** The sidecar's outbound port, known once the sidecar has started. */
  outbound: number;
  served: number;
  close(): Promise<void>;
}

const agent = new Agent({ keepAlive: true, maxSockets: 64 });

function call(
  outbound: number,
  c: (typeof CALLS)[number],
  requestId: string,
): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: '127.0.0.1', port: outbound, path: c.path, headers: { host: c.host, 'x-request-id': requestId }, agent },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => {
          try {
            resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) });
          } catch {
            resolve({ status: res.statusCode ?? 0, body: text });
          }
        });
      },
    );
    req.on('error', reject);
    req.end();
  });
}

async function startApp(service: string, id: string): Promise<App> {
  const app: App = { id, service, url: '', server: createServer(), outbound: 0, served: 0, close: async () => {} };
  app.server.on('request', (req, res) => {
    if (req.url === '/healthz') return res.end('ok');
    app.served++;
    const reply = (status: number, body: unknown) => {
      const text = JSON.stringify(body);
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    };
    if (service !== 'front') return reply(200, { service, instance: id, host: req.headers.host, url: req.url });
    const requestId = String(req.headers['x-request-id'] ?? '');
    Promise.all(CALLS.map((c) => call(app.outbound, c, requestId))).then(
      (results) => {
        const failed = results.find((r) => r.status !== 200);
        reply(failed ? 502 : 200, { service, instance: id, calls: results.map((r) => r.body) });
      },
      (e: Error) => reply(502, { service, instance: id, error: e.message }),
    );
  });
  app.server.listen(0, '127.0.0.1');
  await once(app.server, 'listening');
  app.url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  app.close = () =>
    new Promise<void>((resolve) => {
      app.server.close(() => resolve());
      app.server.closeAllConnections();
    });
  return app;
}

interface MeshInstance {
  id: string;
  service: string;
  app: App;
  sidecar: MeshgateProcess;
  admin: number;
}

async function getJson<T>(url: string): Promise<T> {
  const res = await request(url);
  return (await res.body.json()) as T;
}

const meshgate = runMeshgate;

describe('mesh: control plane, sidecars, gateway', { timeout: 120_000 }, () => {
  let dir: string;
  let cpPort: number;
  let cpUrl: string;
  let cp: MeshgateProcess;
  let gateway: MeshgateProcess;
  let gatewayUrl: string;
  const instances: MeshInstance[] = [];
  const processes: MeshgateProcess[] = [];
  const apps: App[] = [];

  const startControlPlane = async () => {
    const p = new MeshgateProcess([
      'control-plane',
      '--config',
      join(dir, 'mesh.yaml'),
      '--port',
      String(cpPort),
      '--warmup',
      '1500ms',
    ]);
    processes.push(p);
    await p.waitFor('control plane started');
    return p;
  };

  const startInstance = async (service: string, n: number): Promise<MeshInstance> => {
    const id = `${service}-${n}`;
    const app = await startApp(service, id);
    apps.push(app);
    const sidecar = new MeshgateProcess([
      'sidecar',
      '--service',
      service,
      '--app',
      app.url,
      '--control-plane',
      cpUrl,
      '--id',
      id,
      '--labels',
      `version=v${n}`,
      '--inbound-port',
      '0',
      '--outbound-port',
      '0',
      '--admin-port',
      '0',
      '--drain',
      '2s',
    ]);
    processes.push(sidecar);
    const started = await sidecar.waitFor('sidecar started', 20_000);
    app.outbound = (started.listeners as Record<string, number>).outbound!;
    await sidecar.waitFor('instance registered');
    const instance = { id, service, app, sidecar, admin: started.admin as number };
    instances.push(instance);
    return instance;
  };

  /** Endpoints of `service` in the config a proxy serves, from its own admin API. */
  const endpointsAt = async (admin: number, service: string): Promise<string[]> => {
    const view = await getJson<{ services: { name: string; endpoints: { url: string }[] }[] }>(
      `http://127.0.0.1:${admin}/services`,
    );
    return view.services.find((s) => s.name === service)?.endpoints.map((e) => e.url) ?? [];
  };
  const inboundUrl = async (instance: MeshInstance) => {
    const cfg = await getJson<{ listeners: Record<string, number> }>(`http://127.0.0.1:${instance.admin}/config`);
    return `http://127.0.0.1:${cfg.listeners.inbound}`;
  };
  const fronts = () => instances.filter((i) => i.service === 'front');

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'meshgate-mesh-'));
    writeFileSync(join(dir, 'mesh.yaml'), MODEL);
    cpPort = await freePort();
    cpUrl = `http://127.0.0.1:${cpPort}`;
    cp = await startControlPlane();
    gateway = new MeshgateProcess([
      'gateway',
      '--control-plane',
      cpUrl,
      '--id',
      'gateway',
      '--workers',
      '0',
      '--admin-port',
      '0',
    ]);
    processes.push(gateway);
    await Promise.all(SERVICES.flatMap((s) => [startInstance(s, 1), startInstance(s, 2)]));
    const started = await gateway.waitFor('gateway started', 20_000);
    gatewayUrl = `http://127.0.0.1:${(started.listeners as Record<string, number>).public}`;
  });

  after(async () => {
    await Promise.all(processes.map((p) => p.stop('SIGKILL')));
    await Promise.all(apps.map((a) => a.close()));
    agent.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a request through the gateway fans out across the services by name, over every instance', async () => {
    await eventually(async () => (await endpointsAt(fronts()[0]!.admin, 'search-service')).length === 2, 5_000);
    const seen = new Set<string>();
    for (let i = 0; i < 40; i++) {
      const res = await request(`${gatewayUrl}/api/home`, { headers: { 'x-request-id': `fan-${i}` } });
      const body = (await res.body.json()) as {
        instance: string;
        calls: { service: string; instance: string; host: string; url: string }[];
      };
      assert.equal(res.statusCode, 200, JSON.stringify(body));
      seen.add(body.instance);
      assert.deepEqual(
        body.calls.map((c) => c.service),
        CALLS.map((c) => c.service),
      );
      for (const c of body.calls) seen.add(c.instance);
      // The callee sees the name it was called by, and the path without the absolute form.
      assert.equal(body.calls[0]!.url, '/photos/1');
      assert.equal(body.calls[2]!.host, 'search-service:80');
    }
    assert.deepEqual([...seen].sort(), SERVICES.flatMap((s) => [`${s}-1`, `${s}-2`]).sort());
  });

  it('proxy-status and proxy-config show every proxy in sync and what one proxy has', async () => {
    await eventually(
      async () => {
        const { proxies } = await getJson<{ proxies: ProxyStatusView[] }>(`${cpUrl}/proxies`);
        return proxies.length === 9 && proxies.every((p) => p.state === 'SYNCED');
      },
      5_000,
      'nine proxies in sync',
    );
    const status = await meshgate(['proxy-status', '--control-plane', cpUrl]);
    assert.equal(status.code, 0, status.stderr);
    assert.match(
      status.stdout,
      /^PROXY\s+KIND\s+SERVICE\s+STATE\s+VERSION\s+EXPECTED\s+LAST ACK\s+CERT EXPIRES\s+LAST NACK$/m,
    );
    assert.match(status.stdout, /^front-1\s+sidecar\s+front\s+SYNCED\s+[0-9a-f]{8}\s+[0-9a-f]{8}/m);
    assert.match(status.stdout, /^gateway\s+gateway\s+-\s+SYNCED/m);
    const endpoints = await meshgate(['proxy-config', 'endpoints', 'front-1', '--control-plane', cpUrl, '-o', 'json']);
    assert.equal(endpoints.code, 0, endpoints.stderr);
    const view = JSON.parse(endpoints.stdout) as { state: string; endpoints: { service: string; labels: object }[] };
    assert.equal(view.state, 'SYNCED');
    assert.deepEqual(
      view.endpoints.filter((e) => e.service === 'photo-service').map((e) => e.labels),
      [{ version: 'v1' }, { version: 'v2' }],
    );
    const routes = await meshgate(['proxy-config', 'routes', 'front-2', '--control-plane', cpUrl]);
    assert.match(
      routes.stdout,
      /^outbound\.photo-service\s+outbound\s+photo-service\s+\*\s+\*\s+-\s+forward\s+photo-service$/m,
    );
  });

  it('a gracefully stopped instance leaves the endpoints at once, and no request fails', async () => {
    const victim = instances.find((i) => i.id === 'photo-service-2')!;
    const url = await inboundUrl(victim);
    const load = closedLoopLoad(gatewayUrl, { connections: 4, durationMs: 2_500, path: '/api/graceful' });
    await sleep(500);
    const stoppedAt = Date.now();
    victim.sidecar.child.kill('SIGTERM');
    await eventually(
      async () => !(await endpointsAt(fronts()[0]!.admin, 'photo-service')).includes(url),
      2_000,
      'the endpoint to go',
    );
    const goneAfter = Date.now() - stoppedAt;
    assert.ok(goneAfter < 500, `gone from the callers' endpoints ${goneAfter} ms after SIGTERM`);
    assert.equal(await victim.sidecar.exited(), 0);
    const result = await load;
    assert.equal(result.failed, 0, result.failures.join('\n'));
    assert.ok(result.ok > 20, `${result.ok} requests`);
    await victim.app.close();
    instances.splice(instances.indexOf(victim), 1);
  });

  it('a killed instance leaves the endpoints within its TTL (3 s)', async () => {
    const victim = instances.find((i) => i.id === 'search-service-2')!;
    const url = await inboundUrl(victim);
    assert.ok((await endpointsAt(fronts()[0]!.admin, 'search-service')).includes(url));
    const killedAt = Date.now();
    victim.sidecar.child.kill('SIGKILL');
    await victim.app.close();
    await eventually(
      async () => !(await endpointsAt(fronts()[0]!.admin, 'search-service')).includes(url),
      6_000,
      'the endpoint to go',
    );
    const goneAfter = Date.now() - killedAt;
    assert.ok(goneAfter <= 3_300, `gone ${goneAfter} ms after the kill (TTL 3 s)`);
    const changes = (await getJson<{ changes: ChangeRecord[] }>(`${cpUrl}/changes`)).changes;
    const expired = changes.find((c) => c.cause.includes('search-service-2') && c.cause.endsWith('expired'))!;
    assert.ok(expired, 'the expiry is a change of its own');
    await eventually(
      async () => (await getJson<ChangeRecord>(`${cpUrl}/changes/${expired.id}`)).status !== 'propagating',
    );
    instances.splice(instances.indexOf(victim), 1);
  });

  it('an instance whose app stops answering leaves the endpoints at its next check, and returns with it', async () => {
    const victim = instances.find((i) => i.id === 'property-service-2')!;
    const url = await inboundUrl(victim);
    const port = Number(new URL(victim.app.url).port);
    await victim.app.close();
    const closedAt = Date.now();
    await eventually(
      async () => !(await endpointsAt(fronts()[0]!.admin, 'property-service')).includes(url),
      4_000,
      'the endpoint to go',
    );
    const goneAfter = Date.now() - closedAt;
    assert.ok(goneAfter < 2_500, `gone ${goneAfter} ms after the app stopped (checked every 1 s)`);
    victim.app.server.listen(port, '127.0.0.1');
    await once(victim.app.server, 'listening');
    await eventually(
      async () => (await endpointsAt(fronts()[0]!.admin, 'property-service')).includes(url),
      4_000,
      'the endpoint to return',
    );
  });

  it('a new instance receives traffic within 1 s of registering', async () => {
    const stop = { now: false };
    let firstServedAt = 0;
    const starting = startInstance('photo-service', 3);
    // Keep traffic flowing through the gateway while the instance comes up.
    const traffic = (async () => {
      while (!stop.now) {
        const res = await request(`${gatewayUrl}/api/new`);
        const body = (await res.body.json()) as { calls?: { instance: string }[] };
        if (firstServedAt === 0 && body.calls?.some((c) => c.instance === 'photo-service-3'))
          firstServedAt = Date.now();
        await sleep(10);
      }
    })();
    await starting;
    await eventually(() => firstServedAt > 0, 3_000, 'the new instance to be called');
    stop.now = true;
    await traffic;
    const registered = (
      await getJson<{ instances: (Instance & { registeredAt: string })[] }>(`${cpUrl}/instances`)
    ).instances.find((i) => i.id === 'photo-service-3')!;
    const after = firstServedAt - Date.parse(registered.registeredAt);
    assert.ok(after < 1_000, `first request ${after} ms after registering`);
  });

  it('killing the control plane under load changes nothing for traffic; after a restart every proxy is back in sync', async () => {
    const before = (await getJson<{ proxies: ProxyStatusView[] }>(`${cpUrl}/proxies`)).proxies.filter(
      (p) => p.connected,
    );
    const load = closedLoopLoad(gatewayUrl, { connections: 4, durationMs: 4_000, path: '/api/outage' });
    await sleep(800);
    cp.child.kill('SIGKILL');
    await cp.exited();
    const result = await load;
    assert.equal(result.failed, 0, result.failures.join('\n'));
    assert.ok(result.ok > 20, `${result.ok} requests during the outage`);

    cp = await startControlPlane();
    await eventually(
      async () => {
        const { proxies } = await getJson<{ proxies: ProxyStatusView[] }>(`${cpUrl}/proxies`);
        return proxies.length === before.length && proxies.every((p) => p.state === 'SYNCED') && proxies;
      },
      20_000,
      `all ${before.length} proxies in sync with the restarted control plane`,
    );
    const { proxies } = await getJson<{ proxies: ProxyStatusView[] }>(`${cpUrl}/proxies`);
    for (const p of before)
      assert.equal(proxies.find((q) => q.id === p.id)?.ackedVersion, p.ackedVersion, `${p.id} kept its version`);
    const startup = (await getJson<{ changes: ChangeRecord[] }>(`${cpUrl}/changes?limit=100`)).changes.find(
      (c) => c.kind === 'startup',
    )!;
    assert.equal(startup.status, 'no-op', 'every proxy already had the right config: nothing to push');
    const res = await request(`${gatewayUrl}/api/after`);
    assert.equal(res.statusCode, 200);
    await res.body.dump();
  });
});
