/**
 * The Kong front door of the adoption story, loaded as it is: the issue's kong.yaml (a service with a
 * nested route, rate-limiting at 100 a minute and 1,000 an hour, jwt) converted by the config pipeline
 * and served by a proxy over real sockets.
 *
 * The file is used word for word. What the test adds is Kong's own way of saying where things are,
 * appended as further top-level sections: an `upstreams` entry named `property-service` (in Kong a
 * service whose host names an upstream is balanced over its targets) whose one target is a real
 * upstream on 127.0.0.1, and a consumer with a `jwt_secrets` credential whose secret signs the test's
 * tokens.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { SignJWT } from 'jose';
import { Pool } from 'undici';
import { compatConverters } from '../../src/compat/index.ts';
import { formatIssue } from '../../src/config/issues.ts';
import { checkConfig } from '../../src/config/pipeline.ts';
import { createPluginCatalog } from '../../src/plugins/index.ts';
import { ProxyServer } from '../../src/proxy/proxy.ts';
import { startUpstream, type Upstream } from '../helpers/servers.ts';

const fixture = new URL('../fixtures/kong/property-service.yaml', import.meta.url);
const SECRET = 'a-test-secret-of-at-least-32-characters!';
const ISSUER = 'mobile-app-key';
// Just after a minute boundary, so the test's requests stay in one minute and one hour.
const T0 = 1_800_000_000_000 + 1_000;

describe('Kong front door: the issue’s kong.yaml loaded as it is', () => {
  let upstream: Upstream;
  let proxy: ProxyServer;
  let pool: Pool;
  let now = T0;
  let token: string;

  before(async () => {
    upstream = await startUpstream(undefined, 'property-service');
    const original = await readFile(fixture, 'utf8');
    const text = [
      original.trimEnd(),
      'upstreams:',
      '- name: property-service',
      '  targets:',
      `  - target: 127.0.0.1:${upstream.port}`,
      'consumers:',
      '- username: mobile-app',
      '  jwt_secrets:',
      `  - key: ${ISSUER}`,
      `    secret: ${JSON.stringify(SECRET)}`,
      '',
    ].join('\n');
    assert.ok(text.startsWith(original.trimEnd()), 'the issue’s file, unchanged, comes first');
    const catalog = createPluginCatalog();
    const checked = await checkConfig(
      { kind: 'texts', texts: [{ file: 'kong.yaml', text }], source: 'kong.yaml', env: {} },
      'start',
      {
        load: { catalog },
        converters: compatConverters({ listen: { address: '127.0.0.1', port: 0 } }),
      },
    );
    if (!checked.ok) throw new Error(checked.issues.map(formatIssue).join('\n'));
    proxy = await ProxyServer.start(checked.value.loaded, { catalog, now: () => now });
    pool = new Pool(`http://127.0.0.1:${Object.values(proxy.ports())[0]}`, { connections: 8 });
    token = await new SignJWT({ sub: 'alice' })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setIssuer(ISSUER)
      .sign(new TextEncoder().encode(SECRET));
  });

  after(async () => {
    await pool?.close();
    await proxy?.close(1000);
    await upstream?.close();
  });

  async function get(path: string, headers: Record<string, string> = {}, method = 'GET') {
    const res = await pool.request({ method, path, headers });
    const body = await res.body.text();
    return { status: res.statusCode, headers: res.headers, body };
  }

  it('requires a JWT: no token, or one signed with another secret, is refused with 401', async () => {
    const none = await get('/api/v1/properties');
    assert.equal(none.status, 401);
    assert.match(String(none.headers['www-authenticate']), /^Bearer/);
    const forged = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuer(ISSUER)
      .sign(new TextEncoder().encode('another-secret-also-32-characters-long'));
    assert.equal((await get('/api/v1/properties', { authorization: `Bearer ${forged}` })).status, 401);
    assert.equal(upstream.seen.length, 0, 'nothing reached the service');
  });

  it('forwards with a token as Kong would: prefix stripped, the service’s host as Host, RateLimit headers for 100/min and 1,000/h', async () => {
    const res = await get('/api/v1/properties/42?view=full', { authorization: `Bearer ${token}` });
    assert.equal(res.status, 200, res.body);
    const seen = upstream.seen.at(-1)!;
    assert.equal(seen.url, '/42?view=full', 'strip_path (default true) removed /api/v1/properties');
    assert.equal(seen.headers.host, `127.0.0.1:${upstream.port}`, 'preserve_host (default false): the target’s host');
    assert.equal(seen.headers['x-consumer-username'], 'mobile-app');
    assert.equal(res.headers['ratelimit-limit'], '100');
    assert.equal(res.headers['ratelimit-remaining'], '99');
    assert.equal(res.headers['x-ratelimit-limit-minute'], '100');
    assert.equal(res.headers['x-ratelimit-remaining-minute'], '99');
    assert.equal(res.headers['x-ratelimit-limit-hour'], '1000');
    assert.equal(res.headers['x-ratelimit-remaining-hour'], '999');
  });

  it('takes the token from the jwt query parameter too (Kong’s uri_param_names default)', async () => {
    const res = await get(`/api/v1/properties?jwt=${token}`);
    assert.equal(res.status, 200);
    assert.equal(res.headers['x-ratelimit-remaining-minute'], '98');
  });

  it('routes GET only, and only under /api/v1/properties', async () => {
    assert.equal((await get('/api/v1/properties', { authorization: `Bearer ${token}` }, 'POST')).status, 404);
    assert.equal((await get('/api/v1/other', { authorization: `Bearer ${token}` })).status, 404);
  });

  it('refuses the 101st request of the minute with 429 and Retry-After; the hour counts on; a new minute has room', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 98; i++)
      statuses.push((await get('/api/v1/properties', { authorization: `Bearer ${token}` })).status);
    assert.ok(
      statuses.every((s) => s === 200),
      'requests 3 to 100 pass',
    );
    const refused = await get('/api/v1/properties', { authorization: `Bearer ${token}` });
    assert.equal(refused.status, 429);
    assert.equal(refused.headers['x-ratelimit-remaining-minute'], '0');
    assert.equal(refused.headers['x-ratelimit-remaining-hour'], '900');
    assert.equal(refused.headers['retry-after'], '59', 'the rest of the minute');
    now += 60_000;
    const next = await get('/api/v1/properties', { authorization: `Bearer ${token}` });
    assert.equal(next.status, 200);
    assert.equal(next.headers['x-ratelimit-remaining-minute'], '99');
    assert.equal(next.headers['x-ratelimit-remaining-hour'], '899');
  });
});
