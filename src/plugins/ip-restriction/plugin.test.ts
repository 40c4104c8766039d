import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { validateConfigObject } from '../../config/load.ts';
import { startGateway, startUpstream, type TestGateway, type Upstream } from '../../testing/servers.ts';
import { createPluginCatalog } from '../index.ts';

describe('ip-restriction plugin', () => {
  let upstream: Upstream;
  let gw: TestGateway;
  before(async () => {
    upstream = await startUpstream();
    gw = await startGateway({
      listeners: [{ name: 'edge', trustedHops: 1 }],
      services: [{ name: 'svc', endpoints: [{ url: upstream.url }] }],
      routes: [
        {
          name: 'office',
          match: { path: '/office/*' },
          service: 'svc',
          plugins: [{ name: 'ip-restriction', config: { allow: ['10.0.0.0/8', '2001:db8::/32'] } }],
        },
        {
          name: 'open',
          match: { path: '/open/*' },
          service: 'svc',
          plugins: [{ name: 'ip-restriction', config: { deny: ['203.0.113.0/24', '192.0.2.7'] } }],
        },
      ],
    });
  });
  after(async () => {
    await gw.close();
    await upstream.close();
  });

  // One trusted hop: the client address is the last X-Forwarded-For entry, as a load balancer sets it.
  const from = async (path: string, address: string) =>
    (await request(`${gw.url()}${path}`, { headers: { 'x-forwarded-for': address } })).statusCode;

  it('allow lists CIDR blocks, IPv4 and IPv6', async () => {
    assert.equal(await from('/office/1', '10.20.30.40'), 200);
    assert.equal(await from('/office/1', '2001:db8:1::5'), 200);
    assert.equal(await from('/office/1', '11.0.0.1'), 403);
    assert.equal(await from('/office/1', '2001:db9::1'), 403);
  });

  it('deny refuses blocks and single addresses', async () => {
    assert.equal(await from('/open/1', '203.0.113.99'), 403);
    assert.equal(await from('/open/1', '192.0.2.7'), 403);
    assert.equal(await from('/open/1', '192.0.2.8'), 200);
  });

  it('a bad CIDR is a located config error', () => {
    const r = validateConfigObject(
      {
        routes: [
          {
            name: 'r',
            directResponse: { status: 200 },
            plugins: [{ name: 'ip-restriction', config: { allow: ['10.0.0.0/40', 'nope'] } }],
          },
        ],
      },
      'x',
      { catalog: createPluginCatalog() },
    );
    assert.equal(r.ok, false);
    const paths = !r.ok ? r.issues.map((i) => `${i.path}: ${i.message}`) : [];
    assert.deepEqual(paths, [
      'routes[0].plugins[0].config.allow[0]: "/40" is not a prefix length for ipv4',
      'routes[0].plugins[0].config.allow[1]: "nope" is not an IP address or CIDR block',
    ]);
  });
});
