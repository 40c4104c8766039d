import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { startGateway, startUpstream, type TestGateway, type Upstream } from '../../testing/servers.ts';

describe('acl plugin', () => {
  let upstream: Upstream;
  let gw: TestGateway;
  const keys = { mobile: 'mobile-key-0123456789abcdef', partner: 'partner-key-0123456789abcdef' };
  before(async () => {
    upstream = await startUpstream();
    gw = await startGateway({
      services: [{ name: 'svc', endpoints: [{ url: upstream.url }] }],
      consumers: [
        { name: 'mobile-app', groups: ['mobile'], credentials: [{ type: 'api-key', key: keys.mobile }] },
        { name: 'partner', groups: ['partners', 'blocked'], credentials: [{ type: 'api-key', key: keys.partner }] },
      ],
      routes: [
        {
          name: 'mobile-only',
          match: { path: '/m/*' },
          service: 'svc',
          plugins: [{ name: 'key-auth' }, { name: 'acl', config: { allow: ['mobile'] } }],
        },
        {
          name: 'not-blocked',
          match: { path: '/n/*' },
          service: 'svc',
          plugins: [{ name: 'key-auth' }, { name: 'acl', config: { deny: ['blocked'] } }],
        },
        {
          name: 'no-auth',
          match: { path: '/x/*' },
          service: 'svc',
          plugins: [{ name: 'acl', config: { allow: ['mobile'] } }],
        },
      ],
    });
  });
  after(async () => {
    await gw.close();
    await upstream.close();
  });

  const status = async (path: string, key?: string) =>
    (await request(`${gw.url()}${path}`, { headers: key ? { apikey: key } : {} })).statusCode;

  it('allow lists groups that pass; others get 403', async () => {
    assert.equal(await status('/m/1', keys.mobile), 200);
    assert.equal(await status('/m/1', keys.partner), 403);
  });

  it('deny lists groups that are refused', async () => {
    assert.equal(await status('/n/1', keys.mobile), 200);
    assert.equal(await status('/n/1', keys.partner), 403);
  });

  it('without an authenticated consumer: 401', async () => {
    assert.equal(await status('/x/1'), 401);
  });

  it('runs after authentication whatever the list order (phases)', async () => {
    const routes = (await (await request(`${gw.adminUrl}/routes`)).body.json()) as {
      routes: { name: string; plugins: { name: string; phase: string }[] }[];
    };
    const chain = routes.routes.find((r) => r.name === 'mobile-only')!.plugins.map((p) => `${p.phase}:${p.name}`);
    assert.deepEqual(chain, ['authenticate:key-auth', 'authorize:acl']);
  });
});
