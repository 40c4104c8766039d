/**
 * The gateway core over real sockets: a real upstream, a real client (undici, raw sockets), the
 * gateway in between built from a config exactly as the CLI builds it.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request } from 'undici';
import { rawRequest } from '../helpers/raw.ts';
import {
  echo,
  simpleConfig,
  startGateway,
  startUpstream,
  type TestGateway,
  testListenerEngine,
  type Upstream,
} from '../helpers/servers.ts';

const agent = new Agent({ connections: 64 });
after(() => agent.close());

async function getJson(url: string, headers: Record<string, string> = {}) {
  const res = await request(url, { headers, dispatcher: agent });
  const text = await res.body.text();
  // biome-ignore lint/suspicious/noExplicitAny: JSON bodies of many shapes, asserted field by field
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {}
  return { status: res.statusCode, headers: res.headers, text, json };
}

describe('forwarding', () => {
  let upstream: Upstream;
  let gw: TestGateway;
  before(async () => {
    upstream = await startUpstream();
    gw = await startGateway(simpleConfig(upstream.url));
  });
  after(async () => {
    await gw.close();
    await upstream.close();
  });

  it('forwards method, path and query, and returns the upstream response', async () => {
    const r = await getJson(`${gw.url()}/api/items/42?verbose=1&x=%20y`);
    assert.equal(r.status, 200);
    assert.equal(r.json.method, 'GET');
    assert.equal(r.json.url, '/api/items/42?verbose=1&x=%20y');
    assert.equal(r.headers['x-upstream'], 'upstream');
  });

  it('generates a request id, sends it upstream and returns it', async () => {
    const r = await getJson(`${gw.url()}/id`);
    const id = r.headers['x-request-id'];
    assert.match(String(id), /^[0-9a-f-]{36}$/);
    assert.equal(r.json.headers['x-request-id'], id);
  });

  it('keeps a request id the client sent', async () => {
    const r = await getJson(`${gw.url()}/id`, { 'x-request-id': 'client-chosen-1' });
    assert.equal(r.headers['x-request-id'], 'client-chosen-1');
    assert.equal(r.json.headers['x-request-id'], 'client-chosen-1');
  });

  it('returns one request id when the upstream echoes one too (a proxy behind a proxy)', async () => {
    const echoing = await startUpstream((req, res) => {
      res.setHeader('x-request-id', String(req.headers['x-request-id']));
      echo(req, res);
    });
    const inner = await startGateway(simpleConfig(echoing.url));
    try {
      const res = await request(`${inner.url()}/id`, { headers: { 'x-request-id': 'hop-1' }, dispatcher: agent });
      await res.body.text();
      assert.equal(res.headers['x-request-id'], 'hop-1');
    } finally {
      await inner.close();
      await echoing.close();
    }
  });

  it('sets X-Forwarded-For/-Proto/-Host and Forwarded, replacing what an untrusted client sent', async () => {
    const port = new URL(gw.url()).port;
    const r = await getJson(`${gw.url()}/fwd`, {
      'x-forwarded-for': '6.6.6.6',
      'x-forwarded-proto': 'https',
      'x-forwarded-host': 'evil.example',
      forwarded: 'for=6.6.6.6',
    });
    const h = r.json.headers;
    assert.equal(h['x-forwarded-for'], '127.0.0.1');
    assert.equal(h['x-forwarded-proto'], 'http');
    assert.equal(h['x-forwarded-host'], `127.0.0.1:${port}`);
    assert.equal(h.forwarded, `for=127.0.0.1;host="127.0.0.1:${port}";proto=http`);
    assert.equal(h.host, `127.0.0.1:${port}`, 'the client Host is preserved by default');
  });

  it('strips hop-by-hop request headers, including those named in Connection', async () => {
    const port = Number(new URL(gw.url()).port);
    const res = await rawRequest(
      port,
      'GET /hop HTTP/1.1\r\nHost: a.test\r\nConnection: keep-alive, X-Secret\r\nX-Secret: 1\r\n' +
        'Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nTE: trailers\r\nTrailer: x\r\n' +
        'Proxy-Authorization: Basic Zm9vOmJhcg==\r\nX-Kept: yes\r\n\r\n',
    );
    assert.equal(res.status, 200);
    const seen = JSON.parse(res.body).headers;
    for (const h of ['x-secret', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'proxy-authorization'])
      assert.equal(seen[h], undefined, `${h} must not reach the upstream`);
    assert.notEqual(seen.connection, 'keep-alive, X-Secret');
    assert.equal(seen['x-kept'], 'yes');
  });

  it('answers HEAD without a body', async () => {
    const res = await request(`${gw.url()}/head`, { method: 'HEAD', dispatcher: agent });
    assert.equal(res.statusCode, 200);
    assert.equal(await res.body.text(), '');
  });

  it('reuses upstream connections (keep-alive pool)', async () => {
    let connections = 0;
    const counting = await startUpstream();
    counting.server.on('connection', () => connections++);
    const g = await startGateway(simpleConfig(counting.url));
    try {
      for (let i = 0; i < 30; i++) assert.equal((await getJson(`${g.url()}/k${i}`)).status, 200);
      assert.equal(connections, 1);
    } finally {
      await g.close();
      await counting.close();
    }
  });
});

describe('forwarding: trusted hops', () => {
  it('appends to X-Forwarded-For and keeps -Proto/-Host when one proxy in front is trusted', async () => {
    const upstream = await startUpstream();
    const gw = await startGateway({ ...simpleConfig(upstream.url), listeners: [{ name: 'edge', trustedHops: 1 }] });
    try {
      const r = await getJson(`${gw.url()}/x`, {
        'x-forwarded-for': '203.0.113.7',
        'x-forwarded-proto': 'https',
        'x-forwarded-host': 'api.example.com',
        forwarded: 'for=203.0.113.7;proto=https',
      });
      const h = r.json.headers;
      assert.equal(h['x-forwarded-for'], '203.0.113.7, 127.0.0.1');
      assert.equal(h['x-forwarded-proto'], 'https');
      assert.equal(h['x-forwarded-host'], 'api.example.com');
      assert.match(h.forwarded, /^for=203\.0\.113\.7;proto=https, for=127\.0\.0\.1;host=/);
      assert.equal(gw.ended.at(-1)?.clientAddress, '203.0.113.7');
    } finally {
      await gw.close();
      await upstream.close();
    }
  });
});

describe('forwarding: response hygiene', () => {
  it('does not pass hop-by-hop response headers back', async () => {
    const upstream = await startUpstream((_req, res) => {
      res.setHeader('connection', 'x-internal');
      res.setHeader('x-internal', 'secret');
      res.setHeader('keep-alive', 'timeout=2');
      res.setHeader('x-public', 'ok');
      res.end('hi');
    });
    const gw = await startGateway(simpleConfig(upstream.url));
    try {
      const r = await getJson(`${gw.url()}/`);
      assert.equal(r.headers['x-internal'], undefined);
      assert.equal(r.headers['x-public'], 'ok');
      assert.notEqual(r.headers['keep-alive'], 'timeout=2');
      assert.equal(r.text, 'hi');
    } finally {
      await gw.close();
      await upstream.close();
    }
  });

  it('passes repeated headers such as Set-Cookie through', async () => {
    const upstream = await startUpstream((_req, res) => {
      res.setHeader('set-cookie', ['a=1', 'b=2']);
      res.end();
    });
    const gw = await startGateway(simpleConfig(upstream.url));
    try {
      const r = await getJson(`${gw.url()}/`);
      assert.deepEqual(r.headers['set-cookie'], ['a=1', 'b=2']);
    } finally {
      await gw.close();
      await upstream.close();
    }
  });
});

describe('streaming', () => {
  it('streams the response: the first chunk arrives before the upstream has finished', async () => {
    let finishUpstream!: () => void;
    const upstreamDone = new Promise<void>((r) => (finishUpstream = r));
    const upstream = await startUpstream((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('first;');
      void upstreamDone.then(() => res.end('last'));
    });
    const gw = await startGateway(simpleConfig(upstream.url));
    try {
      const res = await request(`${gw.url()}/stream`, { dispatcher: agent });
      const reader = res.body[Symbol.asyncIterator]();
      const first = await reader.next();
      assert.equal(Buffer.from(first.value).toString(), 'first;');
      finishUpstream();
      let rest = '';
      for (let c = await reader.next(); !c.done; c = await reader.next()) rest += Buffer.from(c.value).toString();
      assert.equal(rest, 'last');
    } finally {
      await gw.close();
      await upstream.close();
    }
  });

  it('streams the request body: the upstream reads chunks while the client is still sending', async () => {
    const received: number[] = [];
    let sawFirstBeforeEnd = false;
    let clientFinished = false;
    const upstream = await startUpstream((req, res) => {
      let total = 0;
      req.on('data', (c: Buffer) => {
        if (total === 0 && !clientFinished) sawFirstBeforeEnd = true;
        total += c.length;
      });
      req.on('end', () => {
        received.push(total);
        res.end(String(total));
      });
    });
    const gw = await startGateway(simpleConfig(upstream.url));
    try {
      const chunk = Buffer.alloc(64 * 1024, 7);
      async function* body() {
        for (let i = 0; i < 64; i++) {
          yield chunk;
          if (i === 0) await sleep(200);
        }
        clientFinished = true;
      }
      const res = await request(`${gw.url()}/upload`, {
        method: 'POST',
        body: Readable.from(body()),
        dispatcher: agent,
      });
      assert.equal(await res.body.text(), String(64 * 64 * 1024));
      assert.ok(sawFirstBeforeEnd, 'the upstream saw data before the client finished sending');
    } finally {
      await gw.close();
      await upstream.close();
    }
  });

  it('forwards a body with Content-Length and a chunked body', async () => {
    const upstream = await startUpstream((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () =>
        res.end(
          JSON.stringify({ body: Buffer.concat(chunks).toString(), te: req.headers['transfer-encoding'] ?? null }),
        ),
      );
    });
    const gw = await startGateway(simpleConfig(upstream.url));
    try {
      const fixed = await request(`${gw.url()}/a`, { method: 'PUT', body: 'hello', dispatcher: agent });
      assert.deepEqual(JSON.parse(await fixed.body.text()), { body: 'hello', te: null });
      const port = Number(new URL(gw.url()).port);
      const raw = await rawRequest(
        port,
        'POST /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n',
      );
      assert.equal(JSON.parse(raw.body).body, 'hello world');
    } finally {
      await gw.close();
      await upstream.close();
    }
  });
});

describe('routing and rewrites', () => {
  let upstream: Upstream;
  let gw: TestGateway;
  before(async () => {
    upstream = await startUpstream();
    gw = await startGateway({
      services: [{ name: 'svc', endpoints: [{ url: upstream.url }] }],
      routes: [
        { name: 'strip', match: { path: '/strip/*' }, service: 'svc', rewrite: { prefix: '/' } },
        { name: 'replace', match: { path: '/v1/*' }, service: 'svc', rewrite: { prefix: '/api/v2/' } },
        {
          name: 'regex',
          match: { path: '/users/:id/profile' },
          service: 'svc',
          rewrite: { regex: { pattern: '^/users/([^/]+)/profile$', substitution: '/profiles/$1' } },
        },
        { name: 'host', match: { path: '/host' }, service: 'svc', rewrite: { host: 'internal.svc' } },
        { name: 'autohost', match: { path: '/autohost' }, service: 'svc', rewrite: { autoHost: true } },
        { name: 'vhost', match: { hosts: ['api.example.com'], path: '/*' }, service: 'svc' },
        { name: 'direct', match: { path: '/healthz' }, directResponse: { status: 200, body: 'ok' } },
        {
          name: 'only-post',
          match: { path: '/submit', methods: ['POST'] },
          directResponse: { status: 201, body: 'created' },
        },
      ],
    });
  });
  after(async () => {
    await gw.close();
    await upstream.close();
  });

  it('strips a prefix', async () => {
    assert.equal((await getJson(`${gw.url()}/strip/a/b?q=1`)).json.url, '/a/b?q=1');
    assert.equal((await getJson(`${gw.url()}/strip`)).json.url, '/');
  });

  it('replaces a prefix', async () => {
    assert.equal((await getJson(`${gw.url()}/v1/items/7`)).json.url, '/api/v2/items/7');
  });

  it('rewrites with a regular expression', async () => {
    assert.equal((await getJson(`${gw.url()}/users/ann/profile`)).json.url, '/profiles/ann');
  });

  it('rewrites the Host header to a literal or to the endpoint', async () => {
    assert.equal((await getJson(`${gw.url()}/host`)).json.headers.host, 'internal.svc');
    assert.equal((await getJson(`${gw.url()}/autohost`)).json.headers.host, `127.0.0.1:${upstream.port}`);
  });

  it('routes by host, ignoring the port and case', async () => {
    const r = await getJson(`${gw.url()}/anything`, { host: 'API.Example.com:8443' });
    assert.equal(r.status, 200);
    assert.equal(r.json.url, '/anything');
  });

  it('answers a direct response without an upstream', async () => {
    const before = upstream.seen.length;
    const r = await getJson(`${gw.url()}/healthz`);
    assert.equal(r.status, 200);
    assert.equal(r.text, 'ok');
    assert.equal(upstream.seen.length, before);
  });

  it('matches methods', async () => {
    assert.equal(
      (await request(`${gw.url()}/submit`, { method: 'POST', body: '', dispatcher: agent })).statusCode,
      201,
    );
    const r = await getJson(`${gw.url()}/submit`);
    assert.equal(r.status, 404);
  });

  it('normalises the path before matching and forwarding', async () => {
    const port = Number(new URL(gw.url()).port);
    const dots = await rawRequest(port, 'GET /x/../strip/./a//b HTTP/1.1\r\nHost: t\r\n\r\n');
    assert.equal(JSON.parse(dots.body).url, '/a/b');
    const encoded = await rawRequest(port, 'GET /strip/%2e%2e/v1/%2E/z HTTP/1.1\r\nHost: t\r\n\r\n');
    assert.equal(JSON.parse(encoded.body).url, '/api/v2/z');
  });

  it('rejects a path that climbs above the root, without forwarding it', async () => {
    const port = Number(new URL(gw.url()).port);
    const before = upstream.seen.length;
    const res = await rawRequest(port, 'GET /strip/../../etc/passwd HTTP/1.1\r\nHost: t\r\n\r\n');
    assert.equal(res.status, 400);
    assert.equal(JSON.parse(res.body).code, 'MG_PATH_OUTSIDE_ROOT');
    assert.equal(upstream.seen.length, before);
  });

  it('accepts an absolute-form request target and routes by its authority', async () => {
    const port = Number(new URL(gw.url()).port);
    const res = await rawRequest(port, 'GET http://api.example.com/abs?x=1 HTTP/1.1\r\nHost: ignored\r\n\r\n');
    assert.equal(res.status, 200);
    assert.equal(JSON.parse(res.body).url, '/abs?x=1');
  });
});

describe('weighted destinations and subsets', () => {
  it('splits 90/10 within ±2 points over 10,000 requests, and the canary header goes to v2', async () => {
    const v1 = await startUpstream(echo, 'v1');
    const v2 = await startUpstream(echo, 'v2');
    const gw = await startGateway({
      services: [
        {
          name: 'property-service',
          endpoints: [
            { url: v1.url, labels: { version: 'v1' } },
            { url: v2.url, labels: { version: 'v2' } },
          ],
          subsets: { v1: { version: 'v1' }, v2: { version: 'v2' } },
        },
      ],
      routes: [
        {
          name: 'canary',
          match: { path: '/api/v1/properties/*', headers: { canary: 'true' } },
          destinations: [{ service: 'property-service', subset: 'v2', weight: 100 }],
        },
        {
          name: 'split',
          match: { path: '/api/v1/properties/*' },
          destinations: [
            { service: 'property-service', subset: 'v1', weight: 90 },
            { service: 'property-service', subset: 'v2', weight: 10 },
          ],
        },
      ],
    });
    try {
      const total = 10_000;
      let next = 0;
      const counts = { v1: 0, v2: 0 };
      await Promise.all(
        Array.from({ length: 32 }, async () => {
          while (next < total) {
            next++;
            const res = await request(`${gw.url()}/api/v1/properties/1`, { dispatcher: agent });
            await res.body.dump();
            counts[res.headers['x-upstream'] as 'v1' | 'v2']++;
          }
        }),
      );
      assert.equal(counts.v1 + counts.v2, total);
      const share = (counts.v2 / total) * 100;
      assert.ok(share >= 8 && share <= 12, `v2 got ${share.toFixed(2)}%, expected 10 ± 2`);
      for (let i = 0; i < 50; i++) {
        const res = await request(`${gw.url()}/api/v1/properties/1`, {
          headers: { canary: 'true' },
          dispatcher: agent,
        });
        await res.body.dump();
        assert.equal(res.headers['x-upstream'], 'v2');
      }
    } finally {
      await gw.close();
      await v1.close();
      await v2.close();
    }
  });
});

describe('failures are explicit', () => {
  function assertProblem(r: Awaited<ReturnType<typeof getJson>>, status: number, code: string) {
    assert.equal(r.status, status);
    assert.equal(r.headers['content-type'], 'application/problem+json');
    assert.equal(r.headers['x-meshgate-code'], code);
    assert.equal(r.json.code, code);
    assert.equal(r.json.status, status);
    assert.equal(r.json.requestId, r.headers['x-request-id']);
    assert.ok(r.json.detail.length > 10, 'a reason a human can act on');
  }

  it('no route → 404 MG_ROUTE_NOT_FOUND', async () => {
    const gw = await startGateway({
      routes: [{ name: 'only', match: { path: '/only' }, directResponse: { status: 200 } }],
    });
    try {
      assertProblem(await getJson(`${gw.url()}/nothing-here`), 404, 'MG_ROUTE_NOT_FOUND');
    } finally {
      await gw.close();
    }
  });

  it('no endpoint → 503 MG_NO_HEALTHY_UPSTREAM', async () => {
    const gw = await startGateway({
      services: [{ name: 'empty', endpoints: [] }],
      routes: [{ name: 'r', service: 'empty' }],
    });
    try {
      assertProblem(await getJson(`${gw.url()}/`), 503, 'MG_NO_HEALTHY_UPSTREAM');
    } finally {
      await gw.close();
    }
  });

  it('connection refused → 502 MG_UPSTREAM_CONNECT_FAILURE, quickly', async () => {
    const closed = await startUpstream();
    const deadUrl = closed.url;
    await closed.close();
    const gw = await startGateway(simpleConfig(deadUrl));
    try {
      const started = performance.now();
      assertProblem(await getJson(`${gw.url()}/`), 502, 'MG_UPSTREAM_CONNECT_FAILURE');
      assert.ok(performance.now() - started < 1000);
    } finally {
      await gw.close();
    }
  });

  it('an upstream that never answers → 504 MG_UPSTREAM_TIMEOUT within the route timeout', async () => {
    const silent = await startUpstream(() => {});
    const gw = await startGateway(simpleConfig(silent.url, { timeouts: { request: '300ms' } }));
    try {
      const started = performance.now();
      const r = await getJson(`${gw.url()}/`);
      const took = performance.now() - started;
      assertProblem(r, 504, 'MG_UPSTREAM_TIMEOUT');
      assert.ok(took >= 280 && took < 1500, `took ${took} ms`);
    } finally {
      await gw.close();
      await silent.close();
    }
  });

  it('the service timeout applies when the route sets none', async () => {
    const silent = await startUpstream(() => {});
    const gw = await startGateway({
      services: [{ name: 'svc', endpoints: [{ url: silent.url }], timeouts: { request: '200ms' } }],
      routes: [{ name: 'r', service: 'svc' }],
    });
    try {
      assertProblem(await getJson(`${gw.url()}/`), 504, 'MG_UPSTREAM_TIMEOUT');
    } finally {
      await gw.close();
      await silent.close();
    }
  });

  it('a reset before the response → 502 MG_UPSTREAM_RESET', async () => {
    const resetting = await startUpstream((req) => req.socket.destroy());
    const gw = await startGateway(simpleConfig(resetting.url));
    try {
      assertProblem(await getJson(`${gw.url()}/`), 502, 'MG_UPSTREAM_RESET');
    } finally {
      await gw.close();
      await resetting.close();
    }
  });

  it('an upstream that dies mid-response aborts the client response (never a complete-looking one)', async () => {
    const dying = await startUpstream((_req, res) => {
      res.writeHead(200, { 'content-length': '1000' });
      res.write('x'.repeat(100));
      setTimeout(() => res.socket?.destroy(), 50);
    });
    const gw = await startGateway(simpleConfig(dying.url));
    try {
      const res = await request(`${gw.url()}/`, { dispatcher: agent });
      assert.equal(res.statusCode, 200);
      await assert.rejects(res.body.text());
    } finally {
      await gw.close();
      await dying.close();
    }
  });

  it('a client that disconnects aborts the upstream request', async () => {
    let upstreamSawClose!: () => void;
    const closedUpstream = new Promise<void>((r) => (upstreamSawClose = r));
    const slow = await startUpstream((_req, res) => {
      res.on('close', () => upstreamSawClose());
    });
    const gw = await startGateway(simpleConfig(slow.url));
    try {
      const controller = new AbortController();
      const pending = request(`${gw.url()}/slow`, { signal: controller.signal, dispatcher: agent }).catch((e) => e);
      while (slow.seen.length === 0) await sleep(10);
      controller.abort();
      await pending;
      await Promise.race([closedUpstream, sleep(2000).then(() => assert.fail('upstream request not aborted'))]);
      while (gw.ended.length === 0) await sleep(10);
      assert.equal(gw.ended[0]!.code, 'MG_CLIENT_CLOSED');
    } finally {
      await gw.close();
      await slow.close();
    }
  });
});

describe('listeners', () => {
  it('serves several listeners, each on its own port', async () => {
    const upstream = await startUpstream();
    const gw = await startGateway({ ...simpleConfig(upstream.url), listeners: [{ name: 'a' }, { name: 'b' }] });
    try {
      assert.notEqual(gw.url('a'), gw.url('b'));
      assert.equal((await getJson(`${gw.url('a')}/`)).status, 200);
      assert.equal((await getJson(`${gw.url('b')}/`)).status, 200);
    } finally {
      await gw.close();
      await upstream.close();
    }
  });

  it('fails to start with EADDRINUSE when its port is taken', async () => {
    const holder = createServer();
    holder.listen(0, '127.0.0.1');
    await once(holder, 'listening');
    const port = (holder.address() as AddressInfo).port;
    try {
      await assert.rejects(
        startGateway({ listeners: [{ name: 'taken', port }], routes: [] }),
        (e: NodeJS.ErrnoException) => e.code === 'EADDRINUSE',
      );
    } finally {
      holder.close();
    }
  });

  it('routes limited to listeners: each listener serves its own routes plus the unlimited ones', async () => {
    const direct = (body: string) => ({ status: 200, body });
    const config = (inbound: string, outbound: string) => ({
      listeners: [{ name: inbound }, { name: outbound }],
      routes: [
        { name: 'to-app', listeners: [inbound], directResponse: direct('app') },
        {
          name: 'to-photo',
          listeners: [outbound],
          match: { hosts: ['photo-service'] },
          directResponse: direct('photo'),
        },
        { name: 'shared', match: { path: '/shared' }, directResponse: direct('shared') },
      ],
    });
    const gw = await startGateway(config('in', 'out'));
    try {
      const text = async (listener: string, path: string, host = 'photo-service') =>
        (await getJson(`${gw.url(listener)}${path}`, { host })).text;
      assert.equal(await text('in', '/'), 'app');
      assert.equal(await text('in', '/any', 'elsewhere'), 'app');
      assert.equal(await text('out', '/'), 'photo');
      assert.equal((await getJson(`${gw.url('out')}/`, { host: 'elsewhere' })).status, 404);
      assert.equal(await text('in', '/shared'), 'shared');
      assert.equal(await text('out', '/shared', 'elsewhere'), 'shared');
      // A reload swaps the listeners' route tables together with the snapshot.
      await gw.apply(config('out', 'in'));
      assert.equal(await text('out', '/any', 'elsewhere'), 'app');
      assert.equal(await text('in', '/'), 'photo');
      const view = (await getJson(`${gw.adminUrl}/listeners`)).json;
      assert.deepEqual(
        view.listeners.map((l: { name: string; routes: string[] }) => [l.name, l.routes]),
        [
          ['out', ['to-app', 'shared']],
          ['in', ['to-photo', 'shared']],
        ],
      );
      // Plain listeners: the lean engine unless the suite runs on node:http (test/e2e/node-engine/).
      const engine = testListenerEngine();
      assert.deepEqual(
        view.listeners.map((l: { engine: string }) => l.engine),
        [engine, engine],
      );
    } finally {
      await gw.close();
    }
  });

  it('a changed service keeps the connections of its unchanged endpoints (an instance joining)', async () => {
    let connectionsA = 0;
    const a = await startUpstream(echo, 'a');
    const b = await startUpstream(echo, 'b');
    a.server.on('connection', () => connectionsA++);
    const config = (urls: string[]) => ({
      services: [{ name: 'svc', endpoints: urls.map((url) => ({ url })) }],
      routes: [{ name: 'all', service: 'svc' }],
    });
    const gw = await startGateway(config([a.url]));
    try {
      for (let i = 0; i < 5; i++) assert.equal((await getJson(`${gw.url()}/one`)).status, 200);
      const before = gw.proxy.snapshot.services.get('svc')!.all.endpoints[0]!;
      await gw.apply(config([a.url, b.url]));
      const after = gw.proxy.snapshot.services.get('svc')!.all.endpoints;
      assert.equal(after[0], before, 'the same endpoint, with its pool');
      const served = new Set<string>();
      for (let i = 0; i < 10; i++) served.add(String((await getJson(`${gw.url()}/two`)).headers['x-upstream']));
      assert.deepEqual([...served].sort(), ['a', 'b']);
      await gw.apply(config([b.url]));
      for (let i = 0; i < 4; i++) assert.equal((await getJson(`${gw.url()}/three`)).headers['x-upstream'], 'b');
      assert.equal(connectionsA, 1, 'one connection to a, kept across the change');
    } finally {
      await gw.close();
      await a.close();
      await b.close();
    }
  });
});
