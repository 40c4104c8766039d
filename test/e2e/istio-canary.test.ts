/**
 * The Istio canary of the adoption story, loaded as it is: the VirtualService (canary header → v2,
 * the rest 90/10) and a DestinationRule with v1/v2 subsets, beside a native file that registers two
 * real upstreams as the service's endpoints, converted by the config pipeline and served by a proxy.
 */
import assert from 'node:assert/strict';
import { copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Pool } from 'undici';
import { compatConverters } from '../../src/compat/index.ts';
import { formatIssue } from '../../src/config/issues.ts';
import { checkConfig } from '../../src/config/pipeline.ts';
import { DirectorySource } from '../../src/config/sources/directory/directory.ts';
import { createPluginCatalog } from '../../src/plugins/index.ts';
import { ProxyServer } from '../../src/proxy/proxy.ts';
import { startUpstream, type Upstream } from '../helpers/servers.ts';

const fixtures = new URL('../fixtures/istio/', import.meta.url);

describe('Istio canary: VirtualService + DestinationRule loaded as they are', () => {
  let dir: string;
  let v1: Upstream;
  let v2: Upstream;
  let proxy: ProxyServer;
  let pool: Pool;

  before(async () => {
    v1 = await startUpstream(undefined, 'v1');
    v2 = await startUpstream(undefined, 'v2');
    dir = await mkdtemp(join(tmpdir(), 'mg-istio-'));
    for (const name of ['property-service-virtualservice.yaml', 'property-service-destinationrule.yaml'])
      await copyFile(new URL(name, fixtures), join(dir, name));
    await writeFile(
      join(dir, 'services.yaml'),
      [
        'services:',
        '  - name: property-service',
        '    endpoints:',
        `      - { url: "${v1.url}", labels: { version: v1 } }`,
        `      - { url: "${v2.url}", labels: { version: v2 } }`,
        '',
      ].join('\n'),
    );
    const catalog = createPluginCatalog();
    const source = new DirectorySource(dir, {});
    const checked = await checkConfig(await source.read(), 'start', {
      load: { catalog },
      converters: compatConverters({ listen: { address: '127.0.0.1', port: 0 } }),
    });
    if (!checked.ok) throw new Error(checked.issues.map(formatIssue).join('\n'));
    proxy = await ProxyServer.start(checked.value.loaded, { catalog });
    pool = new Pool(`http://127.0.0.1:${Object.values(proxy.ports())[0]}`, { connections: 32, pipelining: 1 });
  });

  after(async () => {
    await pool?.close();
    await proxy?.close(1000);
    await v1?.close();
    await v2?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  async function run(total: number, headers: Record<string, string> = {}): Promise<Record<string, number>> {
    const counts: Record<string, number> = {};
    let next = 0;
    await Promise.all(
      Array.from({ length: 32 }, async () => {
        while (next < total) {
          next++;
          const res = await pool.request({ method: 'GET', path: '/api/v1/properties/42', headers });
          await res.body.dump();
          const key = res.statusCode === 200 ? String(res.headers['x-upstream']) : `status ${res.statusCode}`;
          counts[key] = (counts[key] ?? 0) + 1;
        }
      }),
    );
    return counts;
  }

  it('sends every request with canary: true to v2', async () => {
    assert.deepEqual(await run(500, { canary: 'true' }), { v2: 500 });
  });

  it('splits the rest 90/10 within two points over 10,000 requests', async () => {
    const counts = await run(10_000);
    assert.equal((counts.v1 ?? 0) + (counts.v2 ?? 0), 10_000, JSON.stringify(counts));
    const v1Share = (counts.v1! / 10_000) * 100;
    assert.ok(Math.abs(v1Share - 90) <= 2, `v1 got ${v1Share}% (${JSON.stringify(counts)})`);
  });

  it('records each route’s origin, and keeps Istio’s order with a priority', () => {
    const routes = proxy.snapshot.config.routes ?? [];
    assert.deepEqual(
      routes.map((r) => [r.name, r.origin, r.priority]),
      [
        ['property-service-0', 'istio:VirtualService/default/property-service http[0]', 1],
        ['property-service-1', 'istio:VirtualService/default/property-service http[1]', 1],
      ],
    );
  });
});
