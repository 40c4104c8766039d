/**
 * HTTP at the edge (RFC 9112), over raw sockets: the request line and headers are written by hand, and
 * each case checks what the client got and what reached a real upstream (its request line and headers
 * as received), so that nothing malformed is ever forwarded.
 */
import assert from 'node:assert/strict';
import { connect as h2connect } from 'node:http2';
import { after, before, describe, it } from 'node:test';
import { rawRequest } from '../helpers/raw.ts';
import { startGateway, startUpstream, type TestGateway, type Upstream } from '../helpers/servers.ts';

/** Polls `condition` until it holds, or fails after `timeoutMs`. */
async function until(condition: () => boolean, what: string, timeoutMs = 5000) {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) assert.fail(`timed out waiting: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** The last request an upstream received, with its headers as it read them (names lower-cased). */
function last(upstream: Upstream) {
  const seen = upstream.seen.at(-1)!;
  const headers: Record<string, string[]> = {};
  for (let i = 0; i < seen.rawHeaders.length; i += 2)
    (headers[seen.rawHeaders[i]!.toLowerCase()] ??= []).push(seen.rawHeaders[i + 1]!);
  return { url: seen.url, method: seen.method, headers };
}

describe('HTTP at the edge', () => {
  let a: Upstream;
  let other: Upstream;
  let gw: TestGateway;
  let port: number;
  let h2port: number;

  before(async () => {
    a = await startUpstream(undefined, 'a');
    other = await startUpstream(undefined, 'other');
    gw = await startGateway({
      listeners: [{ name: 'main' }, { name: 'h2c', http2: true }],
      services: [
        { name: 'a', endpoints: [{ url: a.url }] },
        { name: 'other', endpoints: [{ url: other.url }] },
      ],
      routes: [
        { name: 'a', match: { hosts: ['a.example'] }, service: 'a' },
        { name: 'strip', match: { path: '/strip/*' }, service: 'other', rewrite: { prefix: '/' } },
        { name: 'other', service: 'other' },
      ],
    });
    port = Number(new URL(gw.url('main')).port);
    h2port = Number(new URL(gw.url('h2c')).port);
  });

  after(async () => {
    await gw.close();
    await a.close();
    await other.close();
  });

  const seenCount = () => a.seen.length + other.seen.length;

  async function refused(request: string) {
    const before = seenCount();
    const res = await rawRequest(port, request);
    assert.equal(res.status, 400, res.text.slice(0, 300));
    assert.equal(res.headers['content-type'], 'application/problem+json');
    assert.equal(JSON.parse(res.body).code, 'MG_BAD_REQUEST');
    assert.equal(res.closed, true, 'the connection is closed');
    assert.equal(seenCount(), before, 'nothing reached an upstream');
    return res;
  }

  describe('Host (RFC 9112 §3.2, RFC 3986 §3.2.2)', () => {
    const malformed = [
      ['a space', 'a b.example'],
      ['a slash', 'a.example/evil'],
      ['userinfo', 'user@a.example'],
      ['two colons', 'a.example:80:80'],
      ['a non-numeric port', 'a.example:http'],
      ['a port without a host', ':8080'],
      ['a bad percent-escape', 'a%zz.example'],
      ['a quote', 'a"b.example'],
      ['a non-ASCII byte', 'caf\xe9.example'],
      ['an unclosed IPv6 literal', '[::1'],
      ['an IPv6 address without brackets', '::1'],
      ['a bracketed non-address', '[a.example]'],
      ['a zone in an IPv6 literal', '[fe80::1%25eth0]'],
      ['a query', 'a.example?x=1'],
    ];
    for (const [name, host] of malformed) {
      it(`${name} → 400, never forwarded`, async () => {
        const res = await refused(`GET /x HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
        assert.match(JSON.parse(res.body).detail, /Host/);
      });
    }

    it('valid forms are forwarded with Host exactly as sent', async () => {
      for (const host of ['A.Example:8080', '[::1]:8443', '[2001:db8::7]', 'a-b_c~d.example', 'xn--caf-dma.example.']) {
        const res = await rawRequest(port, `GET /h HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
        assert.equal(res.status, 200, host);
        const up = last(host.toLowerCase().startsWith('a.example') ? a : other);
        assert.deepEqual(up.headers.host, [host]);
      }
    });

    it('an empty Host is valid (no authority) and matches only host-less routes', async () => {
      const res = await rawRequest(port, 'GET /empty HTTP/1.1\r\nHost:\r\n\r\n');
      assert.equal(res.status, 200);
      assert.equal(res.headers['x-upstream'], 'other');
      assert.deepEqual(last(other).headers.host, ['']);
    });
  });

  describe('absolute-form (RFC 9112 §3.2.2)', () => {
    it('is routed by the target’s authority, which replaces Host; the path goes as sent', async () => {
      const res = await rawRequest(
        port,
        'GET http://a.example:8080/x//y/%7e?q=%2F HTTP/1.1\r\nHost: other.example\r\n\r\n',
      );
      assert.equal(res.status, 200);
      assert.equal(res.headers['x-upstream'], 'a', 'routed by the target’s host, not by Host');
      const up = last(a);
      assert.equal(up.url, '/x//y/%7e?q=%2F');
      assert.deepEqual(up.headers.host, ['a.example:8080']);
      assert.deepEqual(up.headers['x-forwarded-host'], ['a.example:8080']);
    });

    it('https scheme, any case, and an empty path (sent as /)', async () => {
      const res = await rawRequest(port, 'GET HTTPS://A.example?x HTTP/1.1\r\nHost: a.example\r\n\r\n');
      assert.equal(res.status, 200);
      const up = last(a);
      assert.equal(up.url, '/?x');
      assert.deepEqual(up.headers.host, ['A.example']);
    });

    it('without a Host header', async () => {
      const res = await rawRequest(port, 'GET http://a.example/nohost HTTP/1.1\r\n\r\n');
      assert.equal(res.status, 200);
      assert.equal(last(a).url, '/nohost');
      assert.deepEqual(last(a).headers.host, ['a.example']);
    });

    for (const [name, target] of [
      ['another scheme', 'ftp://a.example/x'],
      ['a WebSocket scheme', 'ws://a.example/x'],
      ['userinfo', 'http://user:secret@a.example/x'],
      ['an empty authority', 'http:///x'],
      ['a port without a host', 'http://:80/x'],
      ['a malformed port', 'http://a.example:8o/x'],
      ['a relative target', 'x/y'],
    ]) {
      it(`${name} → 400, never forwarded`, async () => {
        await refused(`GET ${target} HTTP/1.1\r\nHost: a.example\r\n\r\n`);
      });
    }

    it('a malformed Host beside an absolute-form target → 400', async () => {
      await refused('GET http://a.example/x HTTP/1.1\r\nHost: a b\r\n\r\n');
    });
  });

  describe('the path goes upstream byte for byte', () => {
    for (const path of ['/a//b', '/a/./b/../c', '/a/%7Euser/%41', '/a/%2e%2E/b', '/files/a%2Fb', '/x/', '/a;p=1/b']) {
      it(path, async () => {
        const res = await rawRequest(port, `GET ${path}?q=1&r=%20 HTTP/1.1\r\nHost: t\r\n\r\n`);
        assert.equal(res.status, 200);
        assert.equal(last(other).url, `${path}?q=1&r=%20`);
      });
    }

    it('matching still uses the normalised path: /x/../strip/a matches /strip/* and is rewritten from it', async () => {
      const res = await rawRequest(port, 'GET /x/../strip/a//b HTTP/1.1\r\nHost: t\r\n\r\n');
      assert.equal(res.status, 200);
      assert.equal(last(other).url, '/a/b', 'the prefix was not sent as matched: the normalised path is rewritten');
    });

    it('a prefix rewrite keeps the rest of the path as sent', async () => {
      const res = await rawRequest(port, 'GET /strip/a//b/%7E?q HTTP/1.1\r\nHost: t\r\n\r\n');
      assert.equal(res.status, 200);
      assert.equal(last(other).url, '/a//b/%7E?q');
    });

    it('a path above the root is still refused', async () => {
      const before = seenCount();
      const res = await rawRequest(port, 'GET /a/%2e%2e/%2e%2e/etc/passwd HTTP/1.1\r\nHost: t\r\n\r\n');
      assert.equal(res.status, 400);
      assert.equal(JSON.parse(res.body).code, 'MG_PATH_OUTSIDE_ROOT');
      assert.equal(seenCount(), before);
    });
  });

  describe('HTTP/2 :authority', () => {
    async function h2(headers: Record<string, string>) {
      const session = h2connect(`http://127.0.0.1:${h2port}`);
      try {
        return await new Promise<{ status: number; body: string }>((resolve, reject) => {
          const req = session.request({ ':method': 'GET', ...headers });
          let body = '';
          let status = 0;
          req.on('response', (h) => (status = Number(h[':status'])));
          req.setEncoding('utf8');
          req.on('data', (c: string) => (body += c));
          req.on('end', () => resolve({ status, body }));
          req.on('error', reject);
        });
      } finally {
        session.close();
      }
    }

    it('routes by :authority and forwards it as Host', async () => {
      const res = await h2({ ':path': '/h2//p', ':authority': 'a.example:1' });
      assert.equal(res.status, 200);
      const up = last(a);
      assert.equal(up.url, '/h2//p');
      assert.deepEqual(up.headers.host, ['a.example:1']);
    });

    it('a Host that names another authority than :authority → 400, never forwarded', async () => {
      const before = seenCount();
      const res = await h2({ ':path': '/h2', ':authority': 'a.example', host: 'other.example' });
      assert.equal(res.status, 400);
      assert.equal(JSON.parse(res.body).code, 'MG_BAD_REQUEST');
      assert.equal(seenCount(), before);
    });

    it('a malformed Host or :authority → 400 (nghttp2 itself resets a stream with bytes it never allows)', async () => {
      const before = seenCount();
      const cases: [Record<string, string>, string][] = [
        [{ ':path': '/h2', host: 'a.example:80:80' }, '400'],
        [{ ':path': '/h2', ':authority': 'a.example:http' }, '400'],
        [{ ':path': '/h2', ':authority': '[a.example]' }, '400'],
        [{ ':path': '/h2', ':authority': 'a.example', host: 'a.example:8o' }, '400'],
        [{ ':path': '/h2', host: 'user@a.example' }, 'ERR_HTTP2_STREAM_ERROR'],
        [{ ':path': '/h2', ':authority': 'a b' }, 'ERR_HTTP2_STREAM_ERROR'],
      ];
      for (const [headers, expected] of cases) {
        const outcome = await h2(headers).then(
          (res) => String(res.status),
          (e: NodeJS.ErrnoException) => e.code ?? 'error',
        );
        assert.equal(outcome, expected, JSON.stringify(headers));
      }
      assert.equal(seenCount(), before);
    });
  });
});

describe('overload replies carry Retry-After', () => {
  it('503 MG_CIRCUIT_OPEN (Retry-After: 1) and 503 MG_NO_HEALTHY_UPSTREAM (Retry-After: 5); nothing more reaches the upstream', async () => {
    const held: (() => void)[] = [];
    const upstream = await startUpstream((_req, res) => held.push(() => res.end('late')));
    const gw = await startGateway({
      services: [
        { name: 'svc', endpoints: [{ url: upstream.url }], circuitBreaker: { maxRequests: 1 } },
        { name: 'empty', endpoints: [] },
      ],
      routes: [
        { name: 'empty', match: { path: '/empty/*' }, service: 'empty' },
        { name: 'svc', service: 'svc' },
      ],
    });
    const port = Number(new URL(gw.url()).port);
    try {
      const first = rawRequest(port, 'GET /held HTTP/1.1\r\nHost: t\r\n\r\n', 5000);
      await until(() => upstream.seen.length === 1, 'the first request is held by the upstream');

      const open = await rawRequest(port, 'GET /more HTTP/1.1\r\nHost: t\r\n\r\n');
      assert.equal(open.status, 503);
      assert.equal(open.headers['x-meshgate-code'], 'MG_CIRCUIT_OPEN');
      assert.equal(open.headers['retry-after'], '1');

      const none = await rawRequest(port, 'GET /empty/x HTTP/1.1\r\nHost: t\r\n\r\n');
      assert.equal(none.status, 503);
      assert.equal(none.headers['x-meshgate-code'], 'MG_NO_HEALTHY_UPSTREAM');
      assert.equal(none.headers['retry-after'], '5');

      const notFound = await rawRequest(port, 'GET /x HTTP/1.1\r\nHost: t\r\nHost: u\r\n\r\n');
      assert.equal(notFound.status, 400);
      assert.equal(notFound.headers['retry-after'], undefined, 'only overload replies carry it');

      assert.equal(upstream.seen.length, 1, 'the refused requests never reached the upstream');
      for (const release of held) release();
      assert.equal((await first).status, 200);
    } finally {
      for (const release of held) release();
      await gw.close();
      await upstream.close();
    }
  });
});
