/**
 * The redirect and direct actions over real sockets: Location built from the request and the route's
 * parts, statuses, HEAD, and how the admin API shows each route's action.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { formatIssue } from '../../../config/issues.ts';
import { loadConfigText } from '../../../config/load.ts';
import { startGateway, startUpstream, type TestGateway, type Upstream } from '../../../testing/servers.ts';

describe('redirect and direct actions', () => {
  let upstream: Upstream;
  let gw: TestGateway;
  before(async () => {
    upstream = await startUpstream();
    gw = await startGateway({
      services: [{ name: 'svc', endpoints: [{ url: upstream.url }] }],
      routes: [
        { name: 'moved', match: { path: '/old/*' }, redirect: { prefix: '/new/' } },
        { name: 'whole', match: { path: '/exact' }, redirect: { path: '/elsewhere', status: 302, stripQuery: true } },
        {
          name: 'host',
          match: { path: '/docs/*' },
          redirect: { scheme: 'https', host: 'docs.example.com', status: 308 },
        },
        { name: 'port', match: { path: '/port' }, redirect: { port: 8443, scheme: 'https' } },
        {
          name: 'maintenance',
          match: { path: '/down' },
          directResponse: { status: 503, body: '{"down":true}', contentType: 'application/json' },
        },
        { name: 'fwd', match: { path: '/fwd' }, service: 'svc' },
      ],
    });
  });
  after(async () => {
    await gw.close();
    await upstream.close();
  });

  async function location(path: string, init: { method?: string; headers?: Record<string, string> } = {}) {
    const res = await request(`${gw.url()}${path}`, {
      ...init,
      headers: { host: 'shop.example:8080', ...init.headers },
    });
    await res.body.dump();
    return { status: res.statusCode, location: res.headers.location, length: res.headers['content-length'] };
  }

  it('replaces the matched prefix, keeping the request’s authority and query (301 by default)', async () => {
    assert.deepEqual(await location('/old/items/7?page=2'), {
      status: 301,
      location: 'http://shop.example:8080/new/items/7?page=2',
      length: '0',
    });
  });

  it('replaces the whole path with the given status, and can drop the query', async () => {
    const r = await location('/exact?x=1');
    assert.equal(r.status, 302);
    assert.equal(r.location, 'http://shop.example:8080/elsewhere');
  });

  it('a new scheme and host drop the request’s port; a given port is kept unless it is the scheme’s default', async () => {
    const host = await location('/docs/guide');
    assert.equal(host.status, 308);
    assert.equal(host.location, 'https://docs.example.com/docs/guide');
    assert.equal((await location('/port')).location, 'https://shop.example:8443/port');
  });

  it('never reaches an upstream', async () => {
    const before = upstream.seen.length;
    await location('/old/x', { method: 'POST' });
    assert.equal(upstream.seen.length, before);
  });

  it('a direct response answers with its status, type and body (no body for HEAD)', async () => {
    const res = await request(`${gw.url()}/down`);
    assert.equal(res.statusCode, 503);
    assert.equal(res.headers['content-type'], 'application/json');
    assert.deepEqual(await res.body.json(), { down: true });
    const head = await request(`${gw.url()}/down`, { method: 'HEAD' });
    assert.equal(head.headers['content-length'], '13');
    assert.equal(await head.body.text(), '');
  });

  it('the admin API shows each route’s action by kind', async () => {
    const res = await request(`${gw.adminUrl}/routes`);
    const { routes } = (await res.body.json()) as { routes: { name: string; action: { kind: string } }[] };
    const kinds = Object.fromEntries(routes.map((r) => [r.name, r.action]));
    assert.equal(kinds.moved!.kind, 'redirect');
    assert.deepEqual(kinds.maintenance, {
      kind: 'direct',
      status: 503,
      contentType: 'application/json',
      bodyBytes: 13,
    });
    assert.equal(kinds.fwd!.kind, 'forward');
    assert.equal((kinds.fwd as unknown as { destinations: { service: string }[] }).destinations[0]!.service, 'svc');
  });

  it('a route has one action; redirect.path and redirect.prefix exclude each other', async () => {
    const result = await loadConfigText(
      [
        'services: [{ name: svc, endpoints: [{ url: "http://127.0.0.1:1" }] }]',
        'routes:',
        '  - { name: a, match: { path: /a }, service: svc, redirect: { path: /b } }',
        '  - { name: b, match: { path: /b/* }, redirect: { path: /c, prefix: /d/ } }',
        '  - { name: c, match: { pathRegex: "^/c" }, redirect: { prefix: /d/ } }',
      ].join('\n'),
      'routes.yaml',
      {},
    );
    assert.equal(result.ok, false);
    const messages = result.ok ? [] : result.issues.map(formatIssue);
    assert.ok(
      messages.some((m) => /routes\[0\]\.redirect: a route has one action/.test(m)),
      messages.join('\n'),
    );
    assert.ok(
      messages.some((m) => /routes\[1\]\.redirect\.prefix: use either/.test(m)),
      messages.join('\n'),
    );
    assert.ok(messages.some((m) => /routes\[2\]\.redirect\.prefix: a prefix redirect needs match.path/.test(m)));
  });
});
