import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { parseConfig } from '../config/load.ts';
import { startGateway, startUpstream, type TestGateway, type Upstream } from '../testing/servers.ts';

const KEY = 'versioning-key-0123456789abcdef';

describe('API versions: lifecycle headers', () => {
  let upstream: Upstream;
  let gw: TestGateway;
  before(async () => {
    upstream = await startUpstream();
    gw = await startGateway({
      services: [{ name: 'svc', endpoints: [{ url: upstream.url }] }],
      consumers: [{ name: 'app', credentials: [{ type: 'api-key', key: KEY }] }],
      routes: [
        {
          name: 'props-v1',
          match: { path: '/api/v1/*' },
          service: 'svc',
          plugins: [{ name: 'key-auth' }],
          version: {
            api: 'property-api',
            name: 'v1',
            deprecation: '2026-01-01T00:00:00Z',
            sunset: '2026-06-30T23:59:59+02:00',
            link: '/api/v2/properties',
            deprecationLink: 'https://developer.example.com/deprecation',
          },
        },
        {
          name: 'props-v2',
          match: { path: '/api/v2/*' },
          service: 'svc',
          version: { api: 'property-api', name: 'v2' },
        },
        {
          name: 'old-page',
          match: { path: '/old' },
          directResponse: { status: 410, body: 'gone' },
          version: { api: 'pages', name: 'v0', sunset: '2025-12-31T00:00:00.750Z' },
        },
        { name: 'plain', match: { path: '/plain/*' }, service: 'svc' },
      ],
    });
  });
  after(async () => {
    await gw.close();
    await upstream.close();
  });

  async function get(path: string, headers: Record<string, string> = {}) {
    const res = await request(`${gw.url()}${path}`, { headers });
    await res.body.dump();
    return { status: res.statusCode, headers: res.headers };
  }

  it('a deprecated version’s upstream answers carry Deprecation (sf-date), Sunset (HTTP-date) and Link', async () => {
    const r = await get('/api/v1/items/1', { 'x-api-key': KEY });
    assert.equal(r.status, 200);
    assert.equal(r.headers.deprecation, `@${Date.UTC(2026, 0, 1) / 1000}`);
    assert.equal(r.headers.sunset, 'Tue, 30 Jun 2026 21:59:59 GMT');
    assert.equal(
      r.headers.link,
      '</api/v2/properties>; rel="successor-version", <https://developer.example.com/deprecation>; rel="deprecation"; type="text/html"',
    );
  });

  it('a local reply of that route carries them too (401 from key-auth)', async () => {
    const r = await get('/api/v1/items/1');
    assert.equal(r.status, 401);
    assert.equal(r.headers.deprecation, '@1767225600');
    assert.equal(r.headers.sunset, 'Tue, 30 Jun 2026 21:59:59 GMT');
    assert.match(String(r.headers.link), /rel="successor-version"/);
  });

  it('a direct response carries its route’s Sunset, to the whole second', async () => {
    const r = await get('/old');
    assert.equal(r.status, 410);
    assert.equal(r.headers.sunset, 'Wed, 31 Dec 2025 00:00:00 GMT');
    assert.equal(r.headers.deprecation, undefined);
    assert.equal(r.headers.link, undefined);
  });

  it('a version without dates or links, a route without a version, and no route at all get none', async () => {
    for (const path of ['/api/v2/items/1', '/plain/x', '/nowhere']) {
      const r = await get(path);
      assert.equal(r.headers.deprecation, undefined, path);
      assert.equal(r.headers.sunset, undefined, path);
      assert.equal(r.headers.link, undefined, path);
    }
  });

  it('meshgate proxy-config routes shows the version column', async () => {
    const { runMeshgate } = await import('../../test/helpers/process.ts');
    const out = await runMeshgate(['proxy-config', 'routes', '--admin', gw.adminUrl]);
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stdout, /^ROUTE .* TO\s+VERSION$/m);
    assert.match(out.stdout, /^props-v1 .*property-api v1 \(sunset 2026-06-30T23:59:59\+02:00\)$/m);
    assert.match(out.stdout, /^props-v2 .*property-api v2$/m);
    assert.match(out.stdout, /^plain .*svc\s+-$/m);
  });

  it('the admin API’s routes view shows a route’s version', async () => {
    const res = await request(`${gw.adminUrl}/routes`);
    const body = (await res.body.json()) as { routes: { name: string; version?: { api: string; name: string } }[] };
    assert.deepEqual(
      body.routes.map((r) => [r.name, r.version?.api, r.version?.name]),
      [
        ['props-v1', 'property-api', 'v1'],
        ['props-v2', 'property-api', 'v2'],
        ['old-page', 'pages', 'v0'],
        ['plain', undefined, undefined],
      ],
    );
  });
});

describe('API versions: config checks', () => {
  const yaml = (version: string) => `routes:
  - name: r
    directResponse: { status: 200 }
    version:
${version}
`;

  it('refuses a sunset before the deprecation, at the sunset’s line and column', () => {
    const result = parseConfig(
      yaml(`      api: a
      name: v1
      deprecation: 2026-06-01T00:00:00Z
      sunset: 2026-05-31T23:59:59Z`),
      'gw.yaml',
      {},
    );
    assert.equal(result.ok, false);
    const issues = result.ok ? [] : result.issues;
    assert.equal(issues.length, 1, JSON.stringify(issues));
    assert.equal(issues[0]!.path, 'routes[0].version.sunset');
    assert.equal(issues[0]!.file, 'gw.yaml');
    assert.equal(issues[0]!.line, 8);
    assert.equal(issues[0]!.column, 15);
    assert.match(issues[0]!.message, /before the deprecation/);
  });

  it('refuses a date-time that does not exist, and one that is not RFC 3339', () => {
    const result = parseConfig(
      yaml(`      api: a
      name: v1
      deprecation: 2026-02-30T00:00:00Z
      sunset: 2026-07-01`),
      'gw.yaml',
      {},
    );
    const issues = result.ok ? [] : result.issues;
    assert.deepEqual(
      issues.map((i) => i.path),
      ['routes[0].version.deprecation', 'routes[0].version.sunset'],
    );
    assert.match(issues[0]!.message, /not a date-time that exists/);
  });

  it('accepts equal deprecation and sunset in different offsets', () => {
    const result = parseConfig(
      yaml(`      api: a
      name: v1
      deprecation: 2026-06-01T02:00:00+02:00
      sunset: 2026-06-01T00:00:00Z`),
      'gw.yaml',
      {},
    );
    assert.equal(result.ok, true, JSON.stringify(result.ok ? null : result.issues));
  });
});
