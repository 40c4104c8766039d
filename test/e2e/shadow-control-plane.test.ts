/**
 * A shadow config proposed to the control plane, as a user runs it (docs/shadow.md): a control plane,
 * a `meshgate gateway --control-plane` and two `meshgate sidecar`s of property-service (v1, v2), the
 * live model splitting 90/10. `meshgate diff --live --control-plane URL --config candidate.yaml`
 * makes every proxy's candidate config from a 50/50 model and sets it as that proxy's shadow; the
 * gateway's share of requests drawn elsewhere is 50% ± 3 points while the live split stays 90/10;
 * interrupting diff clears every proxy's shadow and prints the summed report with a line per proxy.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Pool, request } from 'undici';
import type { ShadowReport } from '../../src/api/shadow.ts';
import { eventually } from '../helpers/mesh.ts';
import { MeshProcesses } from '../helpers/mesh-processes.ts';
import { MeshgateProcess, runMeshgate } from '../helpers/process.ts';

const model = (v1Weight: number, v2Subset = 'v2') => `listeners:
  - { name: public, port: 0, address: 127.0.0.1 }
services:
  - name: property-service
    endpoints: []
    subsets: { v1: { version: v1 }, v2: { version: v2 } }
routes:
  - name: property-api
    match: { path: /api/* }
    destinations:
      - { service: property-service, subset: v1, weight: ${v1Weight} }
      - { service: property-service, subset: ${v2Subset}, weight: ${100 - v1Weight} }
`;

describe('meshgate diff --live --control-plane', { timeout: 180_000 }, () => {
  let mesh: MeshProcesses;
  let cpUrl: string;
  let gatewayUrl: string;
  const admins: string[] = [];
  const served = { v1: 0, v2: 0 };

  const sidecar = async (version: 'v1' | 'v2') => {
    const app = await mesh.app((_req, res) => {
      served[version]++;
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(version);
    });
    const started = await mesh.sidecar({
      service: 'property-service',
      app,
      id: `property-${version}`,
      labels: `version=${version}`,
    });
    admins.push(started.admin);
  };

  const status = async (url: string) => {
    const res = await request(url);
    return { status: res.statusCode, body: (await res.body.json()) as Record<string, unknown> };
  };

  before(async () => {
    mesh = await MeshProcesses.start(model(90));
    cpUrl = mesh.cpUrl;
    const [gateway] = await Promise.all([mesh.gateway(), sidecar('v1'), sidecar('v2')]);
    gatewayUrl = gateway.url;
    admins.push(gateway.admin);
    await eventually(
      async () => {
        const view = (await status(`${gateway.admin}/services`)).body as {
          services: { name: string; endpoints: unknown[] }[];
        };
        return view.services.find((s) => s.name === 'property-service')?.endpoints.length === 2;
      },
      20_000,
      'both property-service instances at the gateway',
    );
  });

  after(() => mesh.stop());

  it('a candidate model moving half the traffic to v2: 50% ± 3 points at the gateway; live stays 90/10; every shadow cleared', async () => {
    // Independent draws: P(differ) = 0.9·0.5 + 0.1·0.5 = 0.5, σ = sqrt(0.25/n) = 0.79 points for
    // n = 4000, so ±3 points is > 3.7σ; live v2 (p = 0.1): σ = 0.47 points, ±2 points > 4σ.
    const n = 4000;
    const candidate = join(mesh.dir, 'candidate.yaml');
    writeFileSync(candidate, model(50));
    const diff = new MeshgateProcess([
      ...['diff', '--live', '--control-plane', cpUrl, '--config', candidate, '--for', '300s', '--json'],
    ]);
    try {
      // Set on all three proxies before any request is sent.
      await eventually(
        async () => {
          const r = await status(`${cpUrl}/shadow/report`);
          return r.status === 200 && (r.body as unknown as ShadowReport).proxies?.length === 3;
        },
        20_000,
        'the shadow config set on the gateway and both sidecars',
      );
      for (const admin of admins) assert.equal((await status(`${admin}/shadow/report`)).status, 200, admin);
      const before = { ...served };
      const pool = new Pool(gatewayUrl, { connections: 16 });
      let sent = 0;
      let ok = 0;
      await Promise.all(
        Array.from({ length: 16 }, async () => {
          while (sent < n) {
            sent++;
            const res = await pool.request({ method: 'GET', path: '/api/properties/7' });
            await res.body.dump();
            if (res.statusCode === 200) ok++;
          }
        }),
      );
      await pool.close();
      assert.equal(ok, n);
      // Every request compared at the gateway before diff is stopped.
      await eventually(
        async () => {
          const r = (await status(`${cpUrl}/shadow/report`)).body as unknown as ShadowReport;
          return r.proxies?.find((p) => p.proxy === 'gateway')?.totals.compared === n;
        },
        20_000,
        `${n} requests compared at the gateway`,
      );
      assert.equal(await diff.stop('SIGINT'), 130, diff.stderr);
      assert.match(diff.stderr, /shadow config [0-9a-f]{8} set on .* \(3 proxies, 3 process\(es\), sampling 100%\)/);
      assert.match(diff.stderr, /shadow config cleared/);
      const report = JSON.parse(diff.stdout) as ShadowReport;
      const byProxy = new Map(report.proxies!.map((p) => [p.proxy, p]));
      assert.deepEqual([...byProxy.keys()], ['gateway', 'property-v1', 'property-v2']);
      const gateway = byProxy.get('gateway')!;
      assert.equal(gateway.kind, 'gateway');
      assert.equal(gateway.differences.destination.compared, n);
      const share = gateway.differences.destination.differ / n;
      assert.ok(Math.abs(share - 0.5) < 0.03, `${gateway.differences.destination.differ} of ${n} differ`);
      // A sidecar's inbound config sends everything to its app, live and candidate alike.
      for (const id of ['property-v1', 'property-v2'])
        assert.equal(byProxy.get(id)!.differences.destination.differ, 0, id);
      assert.equal(
        report.totals.compared,
        report.proxies!.reduce((sum, p) => sum + p.totals.compared, 0),
      );
      const v2 = served.v2 - before.v2;
      assert.equal(served.v1 - before.v1 + v2, n, 'the shadow sent nothing upstream');
      assert.ok(Math.abs(v2 / n - 0.1) < 0.02, `live v2 got ${v2} of ${n}`);
    } finally {
      await diff.stop('SIGINT');
    }
    assert.equal((await status(`${cpUrl}/shadow/report`)).status, 404);
    for (const admin of admins) assert.equal((await status(`${admin}/shadow/report`)).status, 404, admin);
  });

  it('a candidate model that is not valid: the issues validate gives, no proxy gets a shadow', async () => {
    const candidate = join(mesh.dir, 'bad.yaml');
    writeFileSync(candidate, model(50, 'v3'));
    const diff = await runMeshgate(['diff', '--live', '--control-plane', cpUrl, '--config', candidate, '--for', '5s']);
    const validate = await runMeshgate(['validate', candidate]);
    assert.equal(diff.code, 2, diff.stderr);
    assert.equal(validate.code, 1);
    const located = validate.stderr.split('\n')[0]!;
    assert.match(located, /bad\.yaml:\d+:\d+: routes\[0\]\.destinations\[1\]\.subset/);
    assert.equal(diff.stderr.split('\n')[0], located);
    assert.equal((await status(`${cpUrl}/shadow/report`)).status, 404);
    for (const admin of admins) assert.equal((await status(`${admin}/shadow/report`)).status, 404, admin);
  });
});
