/**
 * request-transformer over real sockets: a gateway in front of an upstream that answers with what it
 * received (method, url, headers, body bytes), so each assertion reads what really went upstream.
 */
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { SignJWT } from 'jose';
import { request } from 'undici';
import { formatIssue } from '../../config/issues.ts';
import { parseConfigTexts } from '../../config/load.ts';
import type { PluginDeps } from '../../core/plugin.ts';
import { startGateway, startUpstream, type TestGateway, type Upstream } from '../../testing/servers.ts';
import { createPluginCatalog } from '../index.ts';
import plugin from './plugin.ts';

const KEY = 'transform-key-0123456789abcdef';
const SECRET = 'transform-shared-secret-0123456789abcdef';

interface Received {
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  /** The body bytes, base64. */
  raw: string;
}

describe('request-transformer plugin', () => {
  let upstream: Upstream;
  let gw: TestGateway;
  before(async () => {
    upstream = await startUpstream((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        const answer = JSON.stringify({
          method: req.method,
          url: req.url,
          headers: req.headers,
          body: body.toString('utf8'),
          raw: body.toString('base64'),
        });
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(answer);
      });
    });
    const route = (name: string, path: string, config: unknown, extra: unknown[] = []) => ({
      name,
      match: { path },
      service: 'svc',
      plugins: [...extra, { name: 'request-transformer', config }],
    });
    gw = await startGateway({
      services: [{ name: 'svc', endpoints: [{ url: upstream.url }] }],
      consumers: [
        { name: 'mobile-app', groups: ['mobile'], credentials: [{ type: 'api-key', key: KEY }] },
        { name: 'partner', credentials: [{ type: 'jwt', issuer: 'partner', secret: SECRET }] },
      ],
      routes: [
        route('headers', '/h/*', {
          remove: { headers: ['x-drop'] },
          rename: { headers: ['x-old:x-new'] },
          replace: { headers: ['x-version:2', 'x-absent:never'] },
          add: { headers: ['x-source:gateway', 'x-keep:overwritten?'] },
          append: { headers: ['x-list:b', 'x-fresh:1', 'cookie:b=2'] },
        }),
        route('query', '/q/*', {
          remove: { querystring: ['drop'] },
          rename: { querystring: ['old name:new name'] },
          replace: { querystring: ['page:1', 'absent:x'] },
          add: { querystring: ['lang:en gb', 'keep:no'] },
          append: { querystring: ['tag:b&c'] },
        }),
        route('json', '/j/*', {
          remove: { json: ['secret', 'items.1', 'meta.internal'] },
          rename: { json: ['old:renamed', 'meta.from:moved.to'] },
          replace: { json: ['items.0.price:9', 'absent:x'], json_types: ['number'] },
          add: { json: ['added:yes', 'keep:no', 'deep.a.b:true'], json_types: ['string', 'string', 'boolean'] },
          append: { json: ['tags:new', 'single:two', 'fresh:one'] },
        }),
        route('templates', '/t/:id', {
          add: {
            headers: ['x-id:$(params.id)', 'x-page:$(query.page)', 'x-ua:agent=$(headers.user-agent)'],
            querystring: ['from-header:$(headers.x-user)'],
            json: ['id:$(params.id)', 'count:$(query.n)', 'price:$$5'],
            json_types: ['string', 'number'],
          },
          remove: { headers: ['x-user'] },
        }),
        route('consumer', '/c/*', { add: { headers: ['x-who:$(consumer.name)'] } }, [{ name: 'key-auth' }]),
        route(
          'claims',
          '/claims/*',
          {
            add: {
              headers: ['x-sub:$(claims.sub)', 'x-tenant:$(claims.org.tenant)'],
              json: ['roles:$(claims.roles)', 'who:user $(claims.sub)'],
            },
          },
          [{ name: 'jwt' }],
        ),
        route('uri', '/v1/things/:id', {
          replace: { uri: '/v2/things/$(params.id)/detail' },
          remove: { querystring: ['legacy'] },
        }),
        route('uri-missing', '/u2/*', { replace: { uri: '/to/$(query.target)' } }),
        {
          ...route('uri-over-rewrite', '/rw/*', { replace: { uri: '/from-uri' } }),
          rewrite: { prefix: '/from-rewrite', host: 'rewritten.example' },
        },
        route('limit', '/l/*', { add: { json: ['a:1'] }, maxBodyBytes: 64 }),
        route('head-only', '/ho/*', { add: { headers: ['x-a:1'] } }),
      ],
    });
  });
  after(async () => {
    await gw.close();
    await upstream.close();
  });

  async function call(
    path: string,
    options: { method?: 'GET' | 'POST'; headers?: Record<string, string>; body?: string | Buffer | Readable } = {},
  ): Promise<{ status: number; got: Received; text: string }> {
    const res = await request(`${gw.url()}${path}`, {
      method: options.method ?? (options.body === undefined ? 'GET' : 'POST'),
      headers: options.headers,
      body: options.body,
    });
    const text = await res.body.text();
    return { status: res.statusCode, got: res.statusCode === 200 ? JSON.parse(text) : ({} as Received), text };
  }

  const json = (value: unknown) => ({
    method: 'POST' as const,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(value),
  });

  it('headers: remove, rename (value kept), replace only when present, add only when absent, append', async () => {
    const { got } = await call('/h/1', {
      headers: {
        'x-drop': 'secret',
        'x-old': 'value',
        'x-version': '1',
        'x-keep': 'client',
        'x-list': 'a',
        cookie: 'a=1',
      },
    });
    assert.equal(got.headers['x-drop'], undefined);
    assert.equal(got.headers['x-old'], undefined);
    assert.equal(got.headers['x-new'], 'value');
    assert.equal(got.headers['x-version'], '2');
    assert.equal(got.headers['x-absent'], undefined);
    assert.equal(got.headers['x-source'], 'gateway');
    assert.equal(got.headers['x-keep'], 'client');
    assert.equal(got.headers['x-list'], 'a, b');
    assert.equal(got.headers['x-fresh'], '1');
    assert.equal(got.headers.cookie, 'a=1; b=2');
  });

  it('query: each operation; untouched parameters keep their bytes, written ones are form-encoded', async () => {
    const { got } = await call('/q/1?drop=1&x=%2F%20a+b&old+name=v%20w&page=7&page=8&keep=yes&tag=a');
    const [path, query] = got.url.split('?');
    assert.equal(path, '/q/1');
    assert.equal(query, 'x=%2F%20a+b&new+name=v%20w&page=1&keep=yes&tag=a&lang=en+gb&tag=b%26c');
    const params = new URLSearchParams(query);
    assert.equal(params.get('x'), '/ a b');
    assert.equal(params.get('new name'), 'v w');
    assert.deepEqual(params.getAll('tag'), ['a', 'b&c']);
    assert.equal(params.get('lang'), 'en gb');
    // Names match decoded: `old%20name` is the same parameter as `old+name`.
    const other = await call('/q/1?old%20name=1');
    assert.equal(other.got.url, '/q/1?new+name=1&lang=en+gb&keep=no&tag=b%26c');
    // No query at all: only add and append write one.
    assert.equal((await call('/q/1')).got.url, '/q/1?lang=en+gb&keep=no&tag=b%26c');
  });

  it('json: each operation by dot path, arrays by index, json_types', async () => {
    const { got } = await call(
      '/j/1',
      json({
        secret: 's',
        old: { a: 1 },
        items: [{ price: 5 }, { price: 6 }, { price: 7 }],
        meta: { internal: true, from: 'x' },
        keep: 'yes',
        tags: ['a'],
        single: 'one',
      }),
    );
    assert.equal(got.headers['content-type'], 'application/json');
    assert.equal(Number(got.headers['content-length']), Buffer.byteLength(got.body));
    assert.deepEqual(JSON.parse(got.body), {
      renamed: { a: 1 },
      items: [{ price: 9 }, { price: 7 }],
      meta: {},
      moved: { to: 'x' },
      keep: 'yes',
      tags: ['a', 'new'],
      single: ['one', 'two'],
      added: 'yes',
      deep: { a: { b: true } },
      fresh: ['one'],
    });
  });

  it('templates read path parameters, the query and headers as the request reached the plugin', async () => {
    const { got } = await call('/t/a%20b?page=3&n=12', {
      ...json({ keep: 1 }),
      headers: { 'content-type': 'application/json', 'user-agent': 'probe/1', 'x-user': 'ann' },
    });
    assert.equal(got.headers['x-id'], 'a b');
    assert.equal(got.headers['x-page'], '3');
    assert.equal(got.headers['x-ua'], 'agent=probe/1');
    // x-user was removed by the same plugin, but templates saw it.
    assert.equal(got.headers['x-user'], undefined);
    assert.equal(got.url, '/t/a%20b?page=3&n=12&from-header=ann');
    assert.deepEqual(JSON.parse(got.body), { keep: 1, id: 'a b', count: 12, price: '$5' });
    // A value whose reference is absent is not written.
    const bare = await call('/t/9', json({}));
    assert.equal(bare.got.headers['x-page'], undefined);
    assert.deepEqual(JSON.parse(bare.got.body), { id: '9', price: '$5' });
  });

  it('a template value a header cannot carry (CR LF from the query) is not written', async () => {
    const { got } = await call('/t/1?page=a%0d%0aX-Injected:%201');
    assert.equal(got.headers['x-page'], undefined);
    assert.equal(got.headers['x-injected'], undefined);
  });

  it('$(consumer.name) after key-auth', async () => {
    const { status, got } = await call('/c/1', { headers: { 'x-api-key': KEY } });
    assert.equal(status, 200);
    assert.equal(got.headers['x-who'], 'mobile-app');
  });

  it('$(claims.…) after jwt, keeping a claim’s JSON type in a JSON field', async () => {
    const jwt = await new SignJWT({ sub: 'user-42', roles: ['admin', 'ops'], org: { tenant: 'acme' } })
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuer('partner')
      .setIssuedAt()
      .setExpirationTime('1h')
      .sign(new TextEncoder().encode(SECRET));
    const { status, got } = await call('/claims/1', {
      ...json({}),
      headers: { 'content-type': 'application/json', authorization: `Bearer ${jwt}` },
    });
    assert.equal(status, 200);
    assert.equal(got.headers['x-sub'], 'user-42');
    assert.equal(got.headers['x-tenant'], 'acme');
    assert.deepEqual(JSON.parse(got.body), { roles: ['admin', 'ops'], who: 'user user-42' });
  });

  it('replace.uri sets the upstream path, encoding values as a segment, keeping the query as changed', async () => {
    const { got } = await call('/v1/things/a%2Fb?legacy=1&page=2');
    assert.equal(got.url, '/v2/things/a%2Fb/detail?page=2');
    // An absent value leaves the path alone.
    assert.equal((await call('/u2/x?y=1')).got.url, '/u2/x?y=1');
    assert.equal((await call('/u2/x?target=a%20b')).got.url, '/to/a%20b?target=a%20b');
    // It replaces the route's rewrite of the path; the rewrite's Host still applies.
    const rewritten = await call('/rw/a/b?q=1');
    assert.equal(rewritten.got.url, '/from-uri?q=1');
    assert.equal(rewritten.got.headers.host, 'rewritten.example');
  });

  it('a body that is not JSON streams through untouched, byte for byte, whatever its size', async () => {
    const bytes = Buffer.from([0x61, 0x2e, 0x62, 0x3d, 0xff, 0x00, 0x7b]);
    async function* chunks() {
      yield bytes.subarray(0, 3);
      yield bytes.subarray(3);
    }
    const { got } = await call('/j/1', {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: Readable.from(chunks()),
    });
    assert.equal(Buffer.from(got.raw, 'base64').compare(bytes), 0);
    // Never collected: a text body far over the route's JSON limit (64 bytes) goes through whole.
    const large = Buffer.alloc(100_000, 0x61);
    const big = await call('/l/1', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: large });
    assert.equal(big.status, 200);
    assert.equal(Buffer.from(big.got.raw, 'base64').compare(large), 0);
  });

  it('a gzip JSON body and an invalid JSON body pass through byte for byte', async () => {
    const gz = gzipSync(JSON.stringify({ secret: 's' }));
    const zipped = await call('/j/1', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' },
      body: gz,
    });
    assert.equal(Buffer.from(zipped.got.raw, 'base64').compare(gz), 0);
    const invalid = await call('/j/1', { ...json({}), body: '{"secret": 1,' });
    assert.equal(invalid.got.body, '{"secret": 1,');
    // A JSON body no operation changes keeps its bytes (no re-serialising).
    const untouched = await call('/l/1', { ...json({}), body: `{ "a" : 0 }` });
    assert.equal(untouched.got.body, '{ "a" : 0 }');
  });

  it('a JSON body over maxBodyBytes is refused with 413 before anything goes upstream', async () => {
    const before = upstream.seen.length;
    const big = await call('/l/1', json({ pad: 'x'.repeat(100) }));
    assert.equal(big.status, 413);
    assert.equal(JSON.parse(big.text).code, 'MG_BODY_TOO_LARGE');
    assert.equal(upstream.seen.length, before);
    const small = await call('/l/1', json({ b: 2 }));
    assert.deepEqual(JSON.parse(small.got.body), { b: 2, a: '1' });
  });

  it('a config without json operations gives filters with no body hook, whatever the request', () => {
    const deps = {} as PluginDeps;
    const head = plugin.compile({ add: { headers: ['x-a:1'] } }, deps) as (ctx: never) => object;
    const filter = head({ hasBody: true, header: () => 'application/json' } as never);
    assert.equal('onRequestBody' in filter, false);
    const withJson = plugin.compile({ add: { json: ['a:1'] } }, deps) as (ctx: never) => object;
    const jsonRequest = {
      hasBody: true,
      header: (n: string) => (n === 'content-type' ? 'application/json' : undefined),
    };
    assert.equal('onRequestBody' in withJson(jsonRequest as never), true);
    const textRequest = { hasBody: true, header: (n: string) => (n === 'content-type' ? 'text/plain' : undefined) };
    assert.equal('onRequestBody' in withJson(textRequest as never), false);
  });

  it('a route with only header operations forwards the body as sent (same framing)', async () => {
    const { got } = await call('/ho/1', json({ a: 1 }));
    assert.equal(got.body, '{"a":1}');
    assert.equal(got.headers['content-length'], '7');
    assert.equal(got.headers['x-a'], '1');
  });
});

describe('request-transformer config errors', () => {
  it('a bad template, a bad entry, a framing header and a stray json_types are located', () => {
    const text = [
      'services: [{ name: svc, endpoints: [{ url: "http://127.0.0.1:1" }] }]',
      'routes:',
      '  - name: r',
      '    service: svc',
      '    plugins:',
      '      - name: request-transformer',
      '        config:',
      '          add:',
      '            headers: ["x-a:$(nope.x)", "no-colon"]',
      '            json: ["a:1"]',
      '            json_types: [number, boolean]',
      '          remove:',
      '            headers: [content-length]',
      '          rename:',
      '            headers: ["x-a:host"]',
      '          replace:',
      '            uri: "v2/$(params.id"',
      '            json: ["a..b:1"]',
      '          append:',
      '            json: ["n:ten"]',
      '            json_types: [number]',
    ].join('\n');
    const result = parseConfigTexts([{ file: 'gw.yaml', text }], 'gw.yaml', {}, { catalog: createPluginCatalog() });
    assert.equal(result.ok, false);
    const lines = result.ok ? [] : result.issues.map(formatIssue);
    const at = (path: string) => lines.find((l) => l.includes(`routes[0].plugins[0].config.${path}:`));
    assert.match(at('add.headers[0]') ?? '', /^gw\.yaml:9:\d+: .*unknown template root "nope"/);
    assert.match(at('add.headers[1]') ?? '', /^gw\.yaml:9:\d+: .*"no-colon" is not "name:value"/);
    assert.match(at('add.json_types[1]') ?? '', /^gw\.yaml:11:\d+: .*has no json entry/);
    assert.match(at('remove.headers[0]') ?? '', /^gw\.yaml:13:\d+: .*may not change content-length/);
    assert.match(
      at('rename.headers[0]') ?? '',
      /^gw\.yaml:15:\d+: .*may not change Host \(set it with the route's rewrite\.host\)/,
    );
    assert.match(at('replace.uri') ?? '', /^gw\.yaml:17:\d+: .*unclosed "\$\("/);
    assert.match(at('replace.json[0]') ?? '', /^gw\.yaml:18:\d+: .*not a dot path/);
    assert.match(at('append.json[0]') ?? '', /^gw\.yaml:20:\d+: .*"ten" is not a number/);
    assert.equal(lines.length, 8, lines.join('\n'));
  });

  it('the uri must be a path; querystring is not a response field', () => {
    const text = [
      'services: [{ name: svc, endpoints: [{ url: "http://127.0.0.1:1" }] }]',
      'routes:',
      '  - name: r',
      '    service: svc',
      '    plugins:',
      '      - { name: request-transformer, config: { replace: { uri: "/a?b=1" } } }',
      '      - { name: response-transformer, config: { add: { querystring: ["a:1"] } } }',
    ].join('\n');
    const result = parseConfigTexts([{ file: 'gw.yaml', text }], 'gw.yaml', {}, { catalog: createPluginCatalog() });
    const lines = result.ok ? [] : result.issues.map(formatIssue);
    assert.ok(
      lines.some((l) => /^gw\.yaml:6:\d+: .*replace\.uri: .*may not hold "\?"/.test(l)),
      lines.join('\n'),
    );
    assert.ok(
      lines.some((l) => /^gw\.yaml:7:\d+: .*plugins\[1\]\.config\.add/.test(l)),
      lines.join('\n'),
    );
  });
});
