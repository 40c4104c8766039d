import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { startGateway, startUpstream, type TestGateway, type Upstream } from '../../testing/servers.ts';

describe('request-id plugin', () => {
  let upstream: Upstream;
  let gw: TestGateway;
  before(async () => {
    upstream = await startUpstream();
    gw = await startGateway({
      services: [{ name: 'svc', endpoints: [{ url: upstream.url }] }],
      routes: [
        {
          name: 'custom',
          match: { path: '/c' },
          service: 'svc',
          plugins: [{ name: 'request-id', config: { header: 'Kong-Request-ID' } }],
        },
        {
          name: 'distrust',
          match: { path: '/d' },
          service: 'svc',
          plugins: [{ name: 'request-id', config: { trustIncoming: false } }],
        },
        {
          name: 'quiet',
          match: { path: '/q' },
          service: 'svc',
          plugins: [{ name: 'request-id', config: { echo: false } }],
        },
      ],
    });
  });
  after(async () => {
    await gw.close();
    await upstream.close();
  });

  async function call(path: string, headers: Record<string, string> = {}) {
    const res = await request(`${gw.url()}${path}`, { headers });
    return { headers: res.headers, seen: ((await res.body.json()) as { headers: Record<string, string> }).headers };
  }

  it('carries the id in a custom header, both ways, and keeps an incoming one', async () => {
    const fresh = await call('/c');
    assert.match(String(fresh.headers['kong-request-id']), /^[0-9a-f-]{36}$/);
    assert.equal(fresh.seen['kong-request-id'], fresh.headers['kong-request-id']);
    const kept = await call('/c', { 'kong-request-id': 'abc-123' });
    assert.equal(kept.headers['kong-request-id'], 'abc-123');
    assert.equal(kept.seen['x-request-id'], 'abc-123');
  });

  it('replaces client ids when told not to trust them', async () => {
    const r = await call('/d', { 'x-request-id': 'forged' });
    assert.notEqual(r.seen['x-request-id'], 'forged');
    assert.equal(r.headers['x-request-id'], r.seen['x-request-id']);
  });

  it('keeps the id off the response with echo: false', async () => {
    const r = await call('/q');
    assert.equal(r.headers['x-request-id'], undefined);
    assert.ok(r.seen['x-request-id']);
  });
});
