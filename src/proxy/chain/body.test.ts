/**
 * Filters that read and rewrite bodies, end to end over real sockets: streaming and buffered, in both
 * directions, with the framing the proxy fixes, the limits, backpressure, and the zero-copy path left
 * alone for routes without body filters.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect } from 'node:net';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { definePlugin, type Filter } from '../../core/plugin.ts';
import { builtinPlugins } from '../../plugins/index.ts';
import { PluginRegistry } from '../../plugins/registry.ts';
import { startGateway, startUpstream, type TestGateway, type Upstream } from '../../testing/servers.ts';

/** Streams the response body in upper case, chunk by chunk. */
const upperResponse = definePlugin({
  name: 'upper-response',
  phase: 'transform',
  order: 100,
  description: 'test: upper-cases the response body as it streams',
  configSchema: { type: 'object' },
  compile() {
    const filter: Filter = {
      rewriteResponseBody: (_ctx, chunk) => chunk.toString('latin1').toUpperCase(),
    };
    return () => filter;
  },
});

/** Replaces the whole response body with an envelope around it. */
const wrapResponse = definePlugin<{ limit: number }>({
  name: 'wrap-response',
  phase: 'transform',
  order: 200,
  description: 'test: wraps the whole response body',
  configSchema: { type: 'object' },
  compile(config) {
    const filter: Filter = {
      responseBodyLimit: config.limit,
      rewriteResponseBody: async (_ctx, body) => {
        await new Promise((resolve) => setImmediate(resolve));
        return JSON.stringify({ wrapped: body.toString() });
      },
    };
    return () => filter;
  },
});

/** Would wrap a response whole in a tiny limit, but declines every response (`wantsResponseBody`). */
const decliningWrap = definePlugin({
  name: 'declining-wrap',
  phase: 'transform',
  order: 300,
  description: 'test: a buffering response filter that wants no response',
  configSchema: { type: 'object' },
  compile() {
    const filter: Filter = {
      responseBodyLimit: 1,
      wantsResponseBody: (_ctx, response) => response.header('content-type') === 'image/png',
      rewriteResponseBody: () => 'wrapped',
    };
    return () => filter;
  },
});

/** Streams the request body in upper case, holding nothing back. */
const upperRequest = definePlugin({
  name: 'upper-request',
  phase: 'transform',
  order: 100,
  description: 'test: upper-cases the request body as it streams',
  configSchema: { type: 'object' },
  compile() {
    const filter: Filter = {
      onRequestBody: (_ctx, chunk, end) => (end ? '\n' : chunk.toString('latin1').toUpperCase()),
    };
    return () => filter;
  },
});

/** Reads the whole request body as JSON: adds a field, or refuses a body that is not JSON. */
const stampRequest = definePlugin<{ limit: number }>({
  name: 'stamp-request',
  phase: 'transform',
  order: 200,
  description: 'test: rewrites a JSON request body whole',
  configSchema: { type: 'object' },
  compile(config) {
    const filter: Filter = {
      requestBodyLimit: config.limit,
      onRequestBody: (ctx, body) => {
        let parsed: Record<string, unknown>;
        try {
          parsed = JSON.parse(body.toString());
        } catch {
          return { status: 400, code: 'TEST_NOT_JSON', detail: 'the body is not JSON' };
        }
        return JSON.stringify({ ...parsed, stampedBy: ctx.routeName });
      },
    };
    return () => filter;
  },
});

/** Echoes the request body back with what the upstream saw of its framing. */
async function echoBody(): Promise<Upstream> {
  return startUpstream(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = JSON.stringify({
      body: Buffer.concat(chunks).toString(),
      contentLength: req.headers['content-length'] ?? null,
      transferEncoding: req.headers['transfer-encoding'] ?? null,
    });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
}

describe('body filters', () => {
  let upstream: Upstream;
  let big: Upstream;
  let streamed: Upstream;
  let gw: TestGateway;
  /** Bytes the `big` upstream managed to write before its socket pushed back, per request. */
  const bigWritten: number[] = [];
  let bigBlocked: (() => void) | null = null;

  before(async () => {
    upstream = await echoBody();
    // A JSON body sent in several chunks with a Content-Length, as a real service would.
    streamed = await startUpstream((req, res) => {
      if (req.url === '/head') {
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '5' });
        res.end();
        return;
      }
      if (req.url === '/empty') {
        res.writeHead(204);
        res.end();
        return;
      }
      const parts = ['{"name":', '"ada",', '"langs":["en","fr"]}'];
      const size = parts.reduce((n, p) => n + p.length, 0);
      const body = req.url === '/large' ? 'x'.repeat(4096) : null;
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': body?.length ?? size });
      if (body !== null) {
        res.end(body);
        return;
      }
      let i = 0;
      const next = () => {
        if (i === parts.length - 1) res.end(parts[i]);
        else {
          res.write(parts[i++]);
          setImmediate(next);
        }
      };
      next();
    });
    // Writes 64 KiB chunks until its socket pushes back, then reports how much it wrote.
    big = await startUpstream((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      const chunk = Buffer.alloc(64 * 1024, 'a');
      let written = 0;
      const pump = () => {
        while (written < 256 * 1024 * 1024) {
          written += chunk.length;
          if (!res.write(chunk)) {
            bigWritten.push(written);
            bigBlocked?.();
            return;
          }
        }
        res.end();
      };
      pump();
      res.on('close', () => undefined);
    });
    const catalog = new PluginRegistry([
      ...builtinPlugins,
      upperResponse,
      wrapResponse,
      upperRequest,
      stampRequest,
      decliningWrap,
    ] as never);
    gw = await startGateway(
      {
        services: [
          { name: 'echo', endpoints: [{ url: upstream.url }] },
          { name: 'json', endpoints: [{ url: streamed.url }] },
          { name: 'big', endpoints: [{ url: big.url }] },
        ],
        routes: [
          { name: 'plain', match: { path: '/plain' }, service: 'echo' },
          {
            name: 'upper-out',
            match: { path: '/upper/*' },
            service: 'json',
            rewrite: { prefix: '/' },
            plugins: [{ name: 'upper-response' }],
          },
          {
            name: 'wrap-out',
            match: { path: '/wrap/*' },
            service: 'json',
            rewrite: { prefix: '/' },
            plugins: [{ name: 'wrap-response', config: { limit: 1024 } }],
          },
          {
            name: 'both-out',
            match: { path: '/both' },
            service: 'json',
            rewrite: { prefix: '/' },
            plugins: [{ name: 'upper-response' }, { name: 'wrap-response', config: { limit: 1024 } }],
          },
          {
            name: 'declined',
            match: { path: '/declined/*' },
            service: 'json',
            rewrite: { prefix: '/' },
            plugins: [{ name: 'declining-wrap' }],
          },
          {
            name: 'declined-mixed',
            match: { path: '/declined-mixed/*' },
            service: 'json',
            rewrite: { prefix: '/' },
            plugins: [{ name: 'upper-response' }, { name: 'declining-wrap' }],
          },
          { name: 'upper-in', match: { path: '/upper-in' }, service: 'echo', plugins: [{ name: 'upper-request' }] },
          {
            name: 'stamp-in',
            match: { path: '/stamp-in' },
            service: 'echo',
            plugins: [{ name: 'stamp-request', config: { limit: 64 } }],
          },
          {
            name: 'stamp-retried',
            match: { path: '/stamp-retried' },
            service: 'echo',
            retries: { attempts: 2 },
            plugins: [{ name: 'stamp-request', config: { limit: 64 } }],
          },
          { name: 'big-out', match: { path: '/big' }, service: 'big', plugins: [{ name: 'upper-response' }] },
          {
            name: 'cached-wrap',
            match: { path: '/cached' },
            service: 'json',
            rewrite: { prefix: '/' },
            plugins: [
              { name: 'cache', config: { ttl: '60s' } },
              { name: 'wrap-response', config: { limit: 1024 } },
            ],
          },
        ],
      },
      { catalog },
    );
  });
  after(async () => {
    await gw.close();
    await Promise.all([upstream.close(), streamed.close(), big.close()]);
  });

  it('a route without body filters keeps the client’s framing (the zero-copy path)', async () => {
    const res = await request(`${gw.url()}/plain`, { method: 'POST', body: 'hello' });
    const seen = (await res.body.json()) as { body: string; contentLength: string };
    assert.equal(seen.body, 'hello');
    assert.equal(seen.contentLength, '5');
    assert.equal(res.headers['content-length'], String(Buffer.byteLength(JSON.stringify(seen))));
  });

  it('a streaming filter upper-cases a JSON response chunk by chunk; the proxy drops Content-Length', async () => {
    const res = await request(`${gw.url()}/upper/`);
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['content-length'], undefined);
    assert.equal(res.headers['transfer-encoding'], 'chunked');
    assert.deepEqual(await res.body.json(), { NAME: 'ADA', LANGS: ['EN', 'FR'] });
  });

  it('a buffering filter replaces the whole response body; the proxy sets the new Content-Length', async () => {
    const res = await request(`${gw.url()}/wrap/`);
    const text = await res.body.text();
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['content-length'], String(Buffer.byteLength(text)));
    assert.deepEqual(JSON.parse(text), { wrapped: '{"name":"ada","langs":["en","fr"]}' });
  });

  it('streaming and buffering filters on one route run in order on the whole body', async () => {
    const res = await request(`${gw.url()}/both`);
    assert.deepEqual(await res.body.json(), { wrapped: '{"NAME":"ADA","LANGS":["EN","FR"]}' });
  });

  it('a response cache stores the rewritten body, the bytes the client got', async () => {
    const first = await request(`${gw.url()}/cached`);
    const firstBody = await first.body.text();
    const second = await request(`${gw.url()}/cached`);
    const secondBody = await second.body.text();
    assert.equal(second.headers['x-cache-status'], 'HIT');
    assert.equal(secondBody, firstBody);
    assert.deepEqual(JSON.parse(secondBody), { wrapped: '{"name":"ada","langs":["en","fr"]}' });
  });

  it('a filter that declines a response (wantsResponseBody) neither buffers nor limits it', async () => {
    const alone = await request(`${gw.url()}/declined/`);
    // No body filter wants it: the zero-copy path, the upstream's length and bytes.
    assert.equal(alone.headers['content-length'], '34');
    assert.equal(await alone.body.text(), '{"name":"ada","langs":["en","fr"]}');
    const mixed = await request(`${gw.url()}/declined-mixed/`);
    assert.equal(mixed.statusCode, 200);
    assert.equal(mixed.headers['transfer-encoding'], 'chunked');
    assert.equal(await mixed.body.text(), '{"NAME":"ADA","LANGS":["EN","FR"]}');
  });

  it('a response over a buffering filter’s limit is a 502 MG_RESPONSE_TOO_LARGE', async () => {
    const res = await request(`${gw.url()}/wrap/large`);
    assert.equal(res.statusCode, 502);
    assert.equal(res.headers['x-meshgate-code'], 'MG_RESPONSE_TOO_LARGE');
    const problem = (await res.body.json()) as { detail: string; requestId: string };
    assert.match(problem.detail, /exceeds 1024 bytes/);
    assert.ok(problem.requestId.length > 0);
  });

  it('HEAD and 204 responses are not handed to body filters and keep their heads', async () => {
    const head = await request(`${gw.url()}/wrap/head`, { method: 'HEAD' });
    await head.body.dump();
    assert.equal(head.statusCode, 200);
    assert.equal(head.headers['content-length'], '5');
    const empty = await request(`${gw.url()}/wrap/empty`);
    assert.equal(empty.statusCode, 204);
    assert.equal(await empty.body.text(), '');
  });

  it('a streaming filter rewrites the request body on its way up, framed afresh', async () => {
    const res = await request(`${gw.url()}/upper-in`, {
      method: 'POST',
      body: 'quiet words',
      headers: { 'content-type': 'text/plain' },
    });
    const seen = (await res.body.json()) as { body: string; contentLength: string | null; transferEncoding: string };
    assert.equal(seen.body, 'QUIET WORDS\n');
    // Never the client's 11 bytes: chunked, or the exact new length when the body was all in before sending.
    if (seen.contentLength === null) assert.equal(seen.transferEncoding, 'chunked');
    else assert.equal(seen.contentLength, '12');
  });

  it('a large upload streams through a request filter whole, chunk by chunk', async () => {
    const chunk = 'abcdefgh'.repeat(8 * 1024); // 64 KiB
    const count = 128; // 8 MiB
    const res = await request(`${gw.url()}/upper-in`, {
      method: 'POST',
      body: Readable.from(
        (async function* () {
          for (let i = 0; i < count; i++) yield chunk;
        })(),
      ),
    });
    const seen = (await res.body.json()) as { body: string };
    assert.equal(seen.body.length, chunk.length * count + 1);
    assert.equal(seen.body.slice(0, 16), 'ABCDEFGHABCDEFGH');
    assert.equal(seen.body.indexOf('a'), -1);
  });

  it('a buffering filter rewrites the whole request body; the upstream gets the new Content-Length', async () => {
    const res = await request(`${gw.url()}/stamp-in`, { method: 'POST', body: '{"a":1}' });
    const seen = (await res.body.json()) as { body: string; contentLength: string | null };
    assert.deepEqual(JSON.parse(seen.body), { a: 1, stampedBy: 'stamp-in' });
    assert.equal(seen.contentLength, String(Buffer.byteLength(seen.body)));
  });

  it('a chunked request body is buffered as well, and a retry sends the rewritten body again', async () => {
    const chunks = ['{"b":', '2}'];
    const res = await request(`${gw.url()}/stamp-retried`, {
      method: 'PUT',
      body: Readable.from(
        (async function* () {
          for (const c of chunks) yield c;
        })(),
      ),
    });
    const seen = (await res.body.json()) as { body: string; contentLength: string | null };
    assert.deepEqual(JSON.parse(seen.body), { b: 2, stampedBy: 'stamp-retried' });
  });

  it('a buffering request filter may answer instead of forwarding', async () => {
    const before = upstream.seen.length;
    const res = await request(`${gw.url()}/stamp-in`, { method: 'POST', body: 'not json' });
    assert.equal(res.statusCode, 400);
    assert.equal(res.headers['x-meshgate-code'], 'TEST_NOT_JSON');
    await res.body.dump();
    assert.equal(upstream.seen.length, before);
  });

  it('a request body over a buffering filter’s limit is refused with 413, declared or chunked', async () => {
    const before = upstream.seen.length;
    const declared = await request(`${gw.url()}/stamp-in`, { method: 'POST', body: `{"a":"${'x'.repeat(100)}"}` });
    assert.equal(declared.statusCode, 413);
    assert.equal(declared.headers['x-meshgate-code'], 'MG_BODY_TOO_LARGE');
    await declared.body.dump();
    const chunked = await request(`${gw.url()}/stamp-in`, {
      method: 'POST',
      body: Readable.from(
        (async function* () {
          yield '{"a":"';
          yield 'x'.repeat(100);
          yield '"}';
        })(),
      ),
    });
    assert.equal(chunked.statusCode, 413);
    await chunked.body.dump();
    assert.equal(upstream.seen.length, before);
  });

  it('a streaming response rewrite keeps backpressure: a client that stops reading stops the upstream', async () => {
    const blocked = new Promise<void>((resolve) => {
      bigBlocked = resolve;
    });
    const port = new URL(gw.url()).port;
    const socket = connect(Number(port), '127.0.0.1');
    await once(socket, 'connect');
    socket.write('GET /big HTTP/1.1\r\nhost: example\r\n\r\n');
    // Read the head, then stop reading.
    await once(socket, 'data');
    socket.pause();
    await blocked;
    // Without backpressure the proxy would read all 256 MiB into memory; it stopped after a few buffers.
    assert.ok(bigWritten[0]! < 64 * 1024 * 1024, `the upstream wrote ${bigWritten[0]} bytes before blocking`);
    socket.destroy();
  });
});
