/**
 * response-transformer over real sockets: an upstream answering what each test path asks for, a
 * gateway in front, and the client's view of the response.
 */
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { request } from 'undici';
import { startGateway, startUpstream, type TestGateway, type Upstream } from '../../testing/servers.ts';

/** The v2 service's answer for one thing. */
function thingV2(id: string) {
  return {
    id,
    title: 'Desk lamp',
    priceCents: 1999,
    currency: 'EUR',
    stock: { warehouse: 'north', count: 4 },
    links: { self: `/api/v2/things/${id}` },
  };
}

function answer(req: IncomingMessage, res: ServerResponse) {
  const url = new URL(req.url!, 'http://x');
  const send = (status: number, headers: Record<string, string | string[]>, body: string | Buffer) => {
    res.writeHead(status, { 'content-length': String(Buffer.byteLength(body)), ...headers });
    res.end(body);
  };
  const v2 = /^\/api\/v2\/things\/([^/]+)$/.exec(url.pathname);
  if (v2) return send(200, { 'content-type': 'application/json; charset=utf-8' }, JSON.stringify(thingV2(v2[1]!)));
  switch (url.pathname.split('/').at(-1)) {
    case 'headers':
      return send(
        200,
        {
          'content-type': 'text/plain',
          server: 'upstream/1.0',
          'x-old': 'kept value',
          'x-version': '1',
          'x-keep': 'upstream',
          'set-cookie': ['a=1', 'b=2'],
        },
        'ok',
      );
    case 'json':
      return send(
        200,
        { 'content-type': 'application/vnd.api+json' },
        JSON.stringify({ secret: 's', old: 1, items: [{ price: 5 }, { price: 6 }], tags: 'a', keep: 'yes' }),
      );
    case 'text':
      return send(200, { 'content-type': 'text/plain' }, Buffer.alloc(200_000, 0x62));
    case 'gzip':
      return send(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' }, GZ);
    case 'invalid':
      return send(200, { 'content-type': 'application/json' }, '{"secret": ');
    case 'big':
      return send(200, { 'content-type': 'application/json' }, JSON.stringify({ pad: 'x'.repeat(500) }));
    case 'error':
      return send(
        404,
        { 'content-type': 'application/problem+json' },
        JSON.stringify({ title: 'missing', trace: 't' }),
      );
    default:
      return send(200, { 'content-type': 'application/json' }, '{}');
  }
}

const GZ = gzipSync(JSON.stringify({ secret: 's' }));
const KEY = 'response-transform-key-0123456789abcdef';

describe('response-transformer plugin', () => {
  let upstream: Upstream;
  let gw: TestGateway;
  before(async () => {
    upstream = await startUpstream(answer);
    const route = (name: string, path: string, config: unknown, extra: unknown[] = []) => ({
      name,
      match: { path },
      service: 'svc',
      plugins: [...extra, { name: 'response-transformer', config }],
    });
    const jsonOps = {
      remove: { json: ['secret', 'items.1'] },
      rename: { json: ['old:renamed'] },
      replace: { json: ['items.0.price:9', 'absent:x'], json_types: ['number'] },
      add: { json: ['via:$(headers.x-client)', 'keep:no', 'flag:true'], json_types: ['string', 'string', 'boolean'] },
      append: { json: ['tags:b'] },
    };
    gw = await startGateway({
      services: [{ name: 'svc', endpoints: [{ url: upstream.url }] }],
      consumers: [{ name: 'mobile-app', credentials: [{ type: 'api-key', key: KEY }] }],
      routes: [
        route(
          'consumer',
          '/c/*',
          { add: { headers: ['x-served-to:$(consumer.name)'], json: ['servedTo:$(consumer.name)'] } },
          [{ name: 'key-auth' }],
        ),
        // The old API over the new service: v1's path and shape, answered by v2.
        {
          name: 'things-v1',
          match: { path: '/api/v1/things/:id' },
          service: 'svc',
          plugins: [
            { name: 'request-transformer', config: { replace: { uri: '/api/v2/things/$(params.id)' } } },
            {
              name: 'response-transformer',
              config: {
                remove: { json: ['links', 'stock.warehouse', 'currency'] },
                rename: { json: ['title:name', 'priceCents:price', 'stock.count:in_stock'] },
                add: { json: ['api_version:1'], json_types: ['number'], headers: ['deprecation:true'] },
              },
            },
          ],
        },
        route('headers', '/r/headers', {
          remove: { headers: ['server'] },
          rename: { headers: ['x-old:x-new', 'set-cookie:x-cookies'] },
          replace: { headers: ['x-version:2', 'x-absent:never'] },
          add: { headers: ['x-source:gateway', 'x-keep:gateway', 'x-route:$(params.x)$(headers.x-client)'] },
          append: { headers: ['x-keep:second', 'set-cookie:c=3'] },
        }),
        route('cookies', '/r/cookies/*', { append: { headers: ['set-cookie:c=3'] } }),
        route('json', '/r/*', jsonOps),
        route('limit', '/l/*', { ...jsonOps, maxBodyBytes: 100 }),
        route('head-only', '/h/*', { add: { headers: ['x-a:1'] } }),
      ],
    });
  });
  after(async () => {
    await gw.close();
    await upstream.close();
  });

  async function call(path: string, headers: Record<string, string> = {}) {
    const res = await request(`${gw.url()}${path}`, { headers });
    const body = Buffer.from(await res.body.arrayBuffer());
    return { status: res.statusCode, headers: res.headers, body, text: body.toString('utf8') };
  }

  it('a v1 route keeps its shape over the v2 service (path and JSON answer)', async () => {
    const r = await call('/api/v1/things/42');
    assert.equal(r.status, 200);
    assert.equal(upstream.seen.at(-1)!.url, '/api/v2/things/42');
    assert.deepEqual(JSON.parse(r.text), {
      id: '42',
      name: 'Desk lamp',
      price: 1999,
      stock: {},
      in_stock: 4,
      api_version: 1,
    });
    assert.equal(r.headers.deprecation, 'true');
    assert.equal(Number(r.headers['content-length']), r.body.length);
  });

  it('headers: remove, rename (every line kept), replace only when present, add only when absent, append', async () => {
    const r = await call('/r/headers', { 'x-client': 'web' });
    assert.equal(r.headers.server, undefined);
    assert.equal(r.headers['x-old'], undefined);
    assert.equal(r.headers['x-new'], 'kept value');
    assert.deepEqual(r.headers['x-cookies'], ['a=1', 'b=2']);
    assert.deepEqual(r.headers['set-cookie'], 'c=3');
    assert.equal(r.headers['x-version'], '2');
    assert.equal(r.headers['x-absent'], undefined);
    assert.equal(r.headers['x-source'], 'gateway');
    assert.deepEqual(r.headers['x-keep'], ['upstream', 'second']);
    // $(params.x) is absent (the route has no :x), so the whole value is: nothing is added.
    assert.equal(r.headers['x-route'], undefined);
    assert.equal(r.text, 'ok');
  });

  it('append adds a Set-Cookie line of its own', async () => {
    const r = await call('/r/cookies/headers');
    assert.deepEqual(r.headers['set-cookie'], ['a=1', 'b=2', 'c=3']);
  });

  it('json: each operation by dot path, with json_types and a template from the request', async () => {
    const r = await call('/r/json', { 'x-client': 'web' });
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], 'application/vnd.api+json');
    assert.equal(Number(r.headers['content-length']), r.body.length);
    assert.deepEqual(JSON.parse(r.text), {
      renamed: 1,
      items: [{ price: 9 }],
      tags: ['a', 'b'],
      keep: 'yes',
      via: 'web',
      flag: true,
    });
  });

  it('templates read the consumer the request was authenticated as', async () => {
    const r = await call('/c/json', { 'x-api-key': KEY });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers['x-served-to'], 'mobile-app');
    assert.equal(JSON.parse(r.text).servedTo, 'mobile-app');
    assert.equal(JSON.parse(r.text).secret, 's', 'the rest of the answer as sent');
  });

  it('an upstream error in problem+json is reshaped too', async () => {
    const r = await call('/r/error');
    assert.equal(r.status, 404);
    assert.deepEqual(JSON.parse(r.text), { title: 'missing', trace: 't', keep: 'no', flag: true, tags: ['b'] });
  });

  it('a body that is not JSON goes through as sent, length and bytes, whatever its size', async () => {
    const r = await call('/l/text');
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-length'], '200000');
    assert.equal(r.body.compare(Buffer.alloc(200_000, 0x62)), 0);
  });

  it('a gzip JSON body and an invalid JSON body pass through byte for byte', async () => {
    const gz = await call('/r/gzip');
    assert.equal(gz.headers['content-encoding'], 'gzip');
    assert.equal(gz.headers['content-length'], String(GZ.length));
    assert.equal(gz.body.compare(GZ), 0);
    const invalid = await call('/r/invalid');
    assert.equal(invalid.text, '{"secret": ');
  });

  it('a JSON body over maxBodyBytes becomes 502 MG_RESPONSE_TOO_LARGE', async () => {
    const r = await call('/l/big');
    assert.equal(r.status, 502);
    assert.equal(JSON.parse(r.text).code, 'MG_RESPONSE_TOO_LARGE');
    const small = await call('/l/json');
    assert.equal(small.status, 200);
    assert.equal(JSON.parse(small.text).renamed, 1);
  });

  it('a config with header operations only leaves the body and its framing alone', async () => {
    const r = await call('/h/json');
    assert.equal(r.headers['x-a'], '1');
    assert.equal(
      r.text,
      JSON.stringify({ secret: 's', old: 1, items: [{ price: 5 }, { price: 6 }], tags: 'a', keep: 'yes' }),
    );
    assert.equal(r.headers['content-length'], String(r.body.length));
  });
});
