import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { startGateway, startUpstream, type TestGateway, type Upstream } from '../../testing/servers.ts';

const KEY = 'mobile-key-0123456789abcdef';

describe('key-auth plugin', () => {
  let upstream: Upstream;
  let gw: TestGateway;
  before(async () => {
    upstream = await startUpstream();
    gw = await startGateway({
      services: [{ name: 'svc', endpoints: [{ url: upstream.url }] }],
      consumers: [
        { name: 'mobile-app', groups: ['mobile', 'beta'], credentials: [{ type: 'api-key', key: KEY }] },
        { name: 'partner', credentials: [{ type: 'api-key', key: 'partner-key-0123456789abcdef' }] },
      ],
      routes: [
        { name: 'keys', match: { path: '/k/*' }, service: 'svc', plugins: [{ name: 'key-auth' }] },
        {
          name: 'header-only',
          match: { path: '/h/*' },
          service: 'svc',
          plugins: [{ name: 'key-auth', config: { keyNames: ['x-key'], in: ['header'], hideCredentials: false } }],
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
    const text = await res.body.text();
    return { status: res.statusCode, headers: res.headers, json: JSON.parse(text), text };
  }

  it('a valid key in a header authenticates its consumer; the key does not go upstream', async () => {
    const r = await call('/k/1', { 'x-api-key': KEY });
    assert.equal(r.status, 200);
    assert.equal(r.json.headers['x-consumer-username'], 'mobile-app');
    assert.equal(r.json.headers['x-consumer-groups'], 'mobile, beta');
    assert.equal(r.json.headers['x-api-key'], undefined);
    assert.match(r.json.headers['x-credential-identifier'], /^[0-9a-f]{12}$/);
    assert.ok(!KEY.includes(r.json.headers['x-credential-identifier']));
  });

  it('a key in the query string works and is removed from the upstream URL', async () => {
    const r = await call(`/k/1?a=1&apikey=${KEY}&b=2`);
    assert.equal(r.status, 200);
    assert.equal(r.json.url, '/k/1?a=1&b=2');
    // The rest of the query reaches the upstream byte for byte (not re-encoded: %20 stays, + stays).
    const kept = await call(`/k/1?q=a%20b+c&apikey=${KEY}&apikey=${KEY}&flag&x=%2F`);
    assert.equal(kept.status, 200);
    assert.equal(kept.json.url, '/k/1?q=a%20b+c&flag&x=%2F');
  });

  it('no key → 401 with a Key challenge; a wrong key → 401; neither reaches the upstream', async () => {
    const before = upstream.seen.length;
    const none = await call('/k/1');
    assert.equal(none.status, 401);
    assert.equal(none.headers['www-authenticate'], 'Key realm="meshgate"');
    assert.match(none.json.detail, /no API key/);
    const wrong = await call('/k/1', { apikey: 'not-a-real-key-at-all-1234' });
    assert.equal(wrong.status, 401);
    assert.match(wrong.json.detail, /not valid/);
    assert.ok(!wrong.text.includes('not-a-real-key'), 'the key is not echoed');
    assert.equal(upstream.seen.length, before);
  });

  it('honours keyNames, in and hideCredentials', async () => {
    const r = await call('/h/1', { 'x-key': KEY });
    assert.equal(r.status, 200);
    assert.equal(r.json.headers['x-key'], KEY, 'hideCredentials: false keeps it');
    assert.equal((await call(`/h/1?x-key=${KEY}`)).status, 401, 'query not enabled');
  });
});
