import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { startGateway, startUpstream, type TestGateway, type Upstream } from '../../testing/servers.ts';

describe('cors plugin', () => {
  let upstream: Upstream;
  let gw: TestGateway;
  before(async () => {
    upstream = await startUpstream();
    gw = await startGateway({
      services: [{ name: 'svc', endpoints: [{ url: upstream.url }] }],
      consumers: [{ name: 'c', credentials: [{ type: 'api-key', key: 'cors-key-0123456789abcdef' }] }],
      plugins: [
        {
          name: 'cors',
          config: {
            origins: ['https://app.example.com', 'https://*.partner.example'],
            credentials: true,
            exposedHeaders: ['x-total'],
            maxAge: 120,
          },
        },
      ],
      routes: [
        { name: 'api', match: { path: '/api/*' }, service: 'svc' },
        { name: 'locked', match: { path: '/locked/*' }, service: 'svc', plugins: [{ name: 'key-auth' }] },
      ],
    });
  });
  after(async () => {
    await gw.close();
    await upstream.close();
  });

  it('answers a preflight at the gateway: 204 with the CORS headers, nothing upstream', async () => {
    const before = upstream.seen.length;
    const res = await request(`${gw.url()}/api/items`, {
      method: 'OPTIONS',
      headers: {
        origin: 'https://app.example.com',
        'access-control-request-method': 'PUT',
        'access-control-request-headers': 'content-type, x-trace',
      },
    });
    await res.body.dump();
    assert.equal(res.statusCode, 204);
    assert.equal(res.headers['access-control-allow-origin'], 'https://app.example.com');
    assert.match(String(res.headers['access-control-allow-methods']), /PUT/);
    assert.equal(res.headers['access-control-allow-headers'], 'content-type, x-trace');
    assert.equal(res.headers['access-control-allow-credentials'], 'true');
    assert.equal(res.headers['access-control-max-age'], '120');
    assert.equal(res.headers['x-meshgate-code'], undefined, 'a preflight answer is not an error');
    assert.equal(res.headers['cache-control'], undefined);
    assert.equal(upstream.seen.length, before);
  });

  it('a preflight from an origin not allowed gets no allow-origin', async () => {
    const res = await request(`${gw.url()}/api/items`, {
      method: 'OPTIONS',
      headers: { origin: 'https://evil.example', 'access-control-request-method': 'GET' },
    });
    await res.body.dump();
    assert.equal(res.statusCode, 204);
    assert.equal(res.headers['access-control-allow-origin'], undefined);
  });

  it('adds CORS headers to actual responses, wildcard subdomains included', async () => {
    const res = await request(`${gw.url()}/api/items`, { headers: { origin: 'https://eu.partner.example' } });
    await res.body.dump();
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['access-control-allow-origin'], 'https://eu.partner.example');
    assert.equal(res.headers['access-control-expose-headers'], 'x-total');
    assert.match(String(res.headers.vary), /Origin/);
  });

  it('adds them to local replies too, so a browser can read a 401', async () => {
    const res = await request(`${gw.url()}/locked/1`, { headers: { origin: 'https://app.example.com' } });
    await res.body.dump();
    assert.equal(res.statusCode, 401);
    assert.equal(res.headers['access-control-allow-origin'], 'https://app.example.com');
  });
});
