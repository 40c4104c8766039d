/**
 * HTTP at the edge (RFC 9112), over raw sockets: the request line and headers are written by hand, and
 * each case checks what the client got and what reached a real upstream (its request line and headers
 * as received), so that nothing malformed is ever forwarded.
 */
import assert from 'node:assert/strict';
import { connect as h2connect } from 'node:http2';
import { connect } from 'node:net';
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

describe('slow request bodies: stalls and trickles get 408 and the connection closed', () => {
  /** What the upstream saw of each request body. */
  interface BodySeen {
    url: string;
    bytes: number;
    ended: boolean;
    aborted: boolean;
  }
  const bodies: BodySeen[] = [];
  let pauseMs = 0;
  let upstream: Upstream;
  let gw: TestGateway;
  const portOf = (name: string) => Number(new URL(gw.url(name)).port);

  before(async () => {
    upstream = await startUpstream((req, res) => {
      const seen: BodySeen = { url: req.url!, bytes: 0, ended: false, aborted: false };
      bodies.push(seen);
      let paused = false;
      req.on('data', (c: Buffer) => {
        seen.bytes += c.length;
        // The upstream stops reading for a while: backpressure reaches the client, which is not its fault.
        if (pauseMs > 0 && !paused) {
          paused = true;
          req.pause();
          setTimeout(() => req.resume(), pauseMs);
        }
      });
      req.on('end', () => {
        seen.ended = true;
        res.end(String(seen.bytes));
      });
      req.on('close', () => {
        if (!seen.ended) seen.aborted = true;
      });
    });
    const limits = (l: Record<string, unknown>) => ({ headersTimeout: '2s', ...l });
    gw = await startGateway({
      listeners: [
        { name: 'idle', limits: limits({ bodyIdleTimeout: '300ms', bodyMinBytesPerSecond: 0 }) },
        {
          name: 'rate',
          limits: limits({ bodyIdleTimeout: 0, bodyMinBytesPerSecond: 1000, bodyMinRateGrace: '300ms' }),
        },
        {
          name: 'tight',
          limits: limits({ bodyIdleTimeout: '300ms', bodyMinBytesPerSecond: 1000, bodyMinRateGrace: '300ms' }),
        },
        { name: 'off', limits: limits({ bodyIdleTimeout: 0, bodyMinBytesPerSecond: 0 }) },
        { name: 'h2', http2: true, limits: limits({ bodyIdleTimeout: '300ms' }) },
      ],
      services: [{ name: 'svc', endpoints: [{ url: upstream.url }] }],
      routes: [{ name: 'all', service: 'svc' }],
    });
  });

  after(async () => {
    await gw.close();
    await upstream.close();
  });

  /**
   * Sends a head and the first body bytes, then `drip` (if any) every `everyMs`; resolves with what
   * the proxy answered once it closes the connection.
   */
  function slowClient(port: number, head: string, first: string, drip = '', everyMs = 50) {
    return new Promise<{ text: string; tookMs: number }>((resolve, reject) => {
      const started = performance.now();
      const socket = connect(port, '127.0.0.1');
      let text = '';
      let timer: NodeJS.Timeout | undefined;
      socket.setEncoding('latin1');
      socket.on('data', (c: string) => (text += c));
      socket.on('error', () => {});
      socket.on('close', () => {
        clearInterval(timer);
        clearTimeout(guard);
        resolve({ text, tookMs: performance.now() - started });
      });
      socket.write(head + first);
      if (drip !== '') timer = setInterval(() => socket.writable && socket.write(drip), everyMs);
      const guard = setTimeout(() => {
        socket.destroy();
        reject(new Error(`still open after 5 s: ${text}`));
      }, 5000);
    });
  }

  /** Writes `total` bytes of body as fast as the connection takes them; resolves with the response. */
  function upload(port: number, path: string, total: number) {
    return new Promise<{ text: string; tookMs: number }>((resolve, reject) => {
      const started = performance.now();
      const socket = connect(port, '127.0.0.1');
      const chunk = Buffer.alloc(64 * 1024, 0x61);
      let sent = 0;
      let text = '';
      socket.setEncoding('latin1');
      socket.on('data', (c: string) => {
        text += c;
        if (/\r\n\r\n\d+$/.test(text)) {
          socket.destroy();
          resolve({ text, tookMs: performance.now() - started });
        }
      });
      socket.on('error', reject);
      socket.on('close', () => resolve({ text, tookMs: performance.now() - started }));
      const pump = () => {
        while (sent < total) {
          const n = Math.min(chunk.length, total - sent);
          sent += n;
          if (!socket.write(n === chunk.length ? chunk : chunk.subarray(0, n))) {
            socket.once('drain', pump);
            return;
          }
        }
      };
      socket.write(`POST ${path} HTTP/1.1\r\nHost: t\r\nContent-Length: ${total}\r\n\r\n`);
      pump();
    });
  }

  function assert408(text: string) {
    assert.match(text, /^HTTP\/1\.1 408 /, text.slice(0, 200));
    assert.match(text, /\r\nconnection: close\r\n/i);
    assert.match(text, /MG_REQUEST_TIMEOUT/);
  }

  it('a body that stalls → 408 after bodyIdleTimeout; the upstream sees an aborted request', async () => {
    const res = await slowClient(
      portOf('idle'),
      'POST /stall HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n',
      'ab',
    );
    assert408(res.text);
    assert.match(res.text, /bodyIdleTimeout/);
    assert.ok(res.tookMs >= 250 && res.tookMs < 2000, `cut after ${res.tookMs.toFixed(0)} ms`);
    await until(() => bodies.some((b) => b.url === '/stall' && b.aborted), 'the upstream request is aborted');
    assert.equal(bodies.find((b) => b.url === '/stall')!.ended, false, 'the upstream never got a whole body');
  });

  it('a chunked body that stalls → 408', async () => {
    const res = await slowClient(
      portOf('idle'),
      'POST /stall-chunked HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n',
      '3\r\nabc\r\n',
    );
    assert408(res.text);
    await until(() => bodies.some((b) => b.url === '/stall-chunked' && b.aborted), 'aborted upstream');
  });

  it('a body that trickles below bodyMinBytesPerSecond → 408 after the grace period, though bytes keep coming', async () => {
    const res = await slowClient(
      portOf('rate'),
      'POST /trickle HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n',
      'a',
      'a',
      50,
    );
    assert408(res.text);
    assert.match(res.text, /bodyMinBytesPerSecond/);
    assert.ok(res.tookMs >= 250 && res.tookMs < 2000, `cut after ${res.tookMs.toFixed(0)} ms`);
    await until(() => bodies.some((b) => b.url === '/trickle' && b.aborted), 'aborted upstream');
  });

  it('a 50 MB upload at loopback speed passes the tightest limits', async () => {
    const total = 50 * 1024 * 1024;
    const res = await upload(portOf('tight'), '/large', total);
    assert.match(res.text, /^HTTP\/1\.1 200 /, res.text.slice(0, 300));
    assert.ok(res.text.endsWith(`\r\n\r\n${total}`), 'the upstream received every byte');
    console.log(`# 50 MB upload through idle 300ms / 1000 B/s limits: ${res.tookMs.toFixed(0)} ms`);
  });

  it('an upstream that stops reading for 4× bodyIdleTimeout does not get its client cut (backpressure is not a stall)', async () => {
    pauseMs = 1200;
    try {
      const total = 48 * 1024 * 1024;
      const res = await upload(portOf('tight'), '/backpressure', total);
      assert.match(res.text, /^HTTP\/1\.1 200 /, res.text.slice(0, 300));
      assert.ok(res.text.endsWith(`\r\n\r\n${total}`));
      assert.ok(res.tookMs > pauseMs, `the upstream's pause held the upload (${res.tookMs.toFixed(0)} ms)`);
    } finally {
      pauseMs = 0;
    }
  });

  it('0 disables both: a body that pauses longer than the limits elsewhere still completes', async () => {
    const port = portOf('off');
    const result = await new Promise<string>((resolve, reject) => {
      const socket = connect(port, '127.0.0.1');
      let text = '';
      socket.setEncoding('latin1');
      socket.on('data', (c: string) => {
        text += c;
        if (/\r\n\r\n\d+$/.test(text)) {
          socket.destroy();
          resolve(text);
        }
      });
      socket.on('error', reject);
      socket.write('POST /off HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\nab');
      // The stimulus: a stall three times the other listeners' bodyIdleTimeout, then the rest.
      until(() => bodies.some((b) => b.url === '/off' && b.bytes === 2), 'the first bytes reached the upstream')
        .then(() => new Promise((r) => setTimeout(r, 900)))
        .then(() => socket.write('cd'), reject);
    });
    assert.match(result, /^HTTP\/1\.1 200 /);
    assert.ok(result.endsWith('\r\n\r\n4'));
  });

  it('HTTP/2 gRPC: a request stream that pauses is not cut (gRPC bounds it with its own deadline)', async () => {
    const session = h2connect(`http://127.0.0.1:${portOf('h2')}`);
    try {
      const status = await new Promise<number>((resolve, reject) => {
        const req = session.request({ ':method': 'POST', ':path': '/grpc-pause', 'content-type': 'application/grpc' });
        req.write('ab');
        req.on('response', (h) => resolve(Number(h[':status'])));
        req.on('error', reject);
        req.resume();
        // The stimulus: a pause three times bodyIdleTimeout, then the end of the stream.
        until(() => bodies.some((b) => b.url === '/grpc-pause' && b.bytes === 2), 'the first bytes arrived')
          .then(() => new Promise((r) => setTimeout(r, 900)))
          .then(() => req.end('cd'), reject);
      });
      assert.equal(status, 200);
      await until(() => bodies.some((b) => b.url === '/grpc-pause' && b.ended), 'the upstream got the whole stream');
    } finally {
      session.close();
    }
  });

  it('HTTP/2: a stalled body gets 408 and its stream is reset; the connection serves on', async () => {
    const session = h2connect(`http://127.0.0.1:${portOf('h2')}`);
    try {
      const stalled = await new Promise<{ status: number; body: string; rstCode: number | undefined }>(
        (resolve, reject) => {
          const req = session.request({ ':method': 'POST', ':path': '/h2-stall' });
          req.write('ab');
          let status = 0;
          let body = '';
          req.on('response', (h) => (status = Number(h[':status'])));
          req.setEncoding('utf8');
          req.on('data', (c: string) => (body += c));
          req.on('error', () => {});
          req.on('close', () => resolve({ status, body, rstCode: req.rstCode }));
          setTimeout(() => reject(new Error('the stalled stream is still open after 5 s')), 5000).unref();
        },
      );
      assert.equal(stalled.status, 408);
      assert.equal(JSON.parse(stalled.body).code, 'MG_REQUEST_TIMEOUT');
      assert.equal(stalled.rstCode, 0, 'RST_STREAM NO_ERROR: stop sending');
      await until(() => bodies.some((b) => b.url === '/h2-stall' && b.aborted), 'aborted upstream');

      const next = await new Promise<number>((resolve, reject) => {
        const req = session.request({ ':method': 'POST', ':path': '/h2-ok' });
        req.end('hello');
        req.on('response', (h) => resolve(Number(h[':status'])));
        req.on('error', reject);
        req.resume();
      });
      assert.equal(next, 200, 'the same connection serves the next request');
    } finally {
      session.close();
    }
  });
});
