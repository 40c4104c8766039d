/**
 * Limits, slow clients, request smuggling and header hygiene, over raw sockets: each case sends the
 * exact bytes, checks the status (and that the connection is closed where framing is at stake), and
 * that nothing reached the upstream.
 */
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { rawRequest } from '../helpers/raw.ts';
import { startGateway, startUpstream, type TestGateway, type Upstream } from '../helpers/servers.ts';

/** Requests whose body the upstream read to the end. */
let completedBodies = 0;

describe('request hygiene', () => {
  let upstream: Upstream;
  let gw: TestGateway;
  let port: number;

  before(async () => {
    upstream = await startUpstream((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        completedBodies++;
        const body = JSON.stringify({ url: req.url, headers: req.headers, body: Buffer.concat(chunks).toString() });
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
        res.end(body);
      });
    });
    gw = await startGateway({
      listeners: [
        {
          name: 'main',
          limits: {
            maxHeaderBytes: 2048,
            maxUrlBytes: 512,
            headersTimeout: '300ms',
            requestTimeout: '800ms',
            maxBodyBytes: 1000,
          },
        },
      ],
      services: [{ name: 'svc', endpoints: [{ url: upstream.url }] }],
      routes: [
        { name: 'small', match: { path: '/small/*' }, service: 'svc', limits: { maxBodyBytes: 10 } },
        { name: 'unlimited', match: { path: '/big/*' }, service: 'svc', limits: { maxBodyBytes: 0 } },
        { name: 'all', service: 'svc' },
      ],
    });
    port = Number(new URL(gw.url()).port);
  });

  after(async () => {
    await gw.close();
    await upstream.close();
  });

  async function refused(request: string | Buffer, status: number, code: string, quietMs = 300) {
    const before = upstream.seen.length;
    const res = await rawRequest(port, request, quietMs);
    assert.equal(res.status, status, res.text.slice(0, 300));
    assert.equal(res.headers['content-type'], 'application/problem+json');
    assert.equal(JSON.parse(res.body).code, code);
    assert.equal(res.closed, true, 'the connection is closed');
    assert.equal(upstream.seen.length, before, 'nothing reached the upstream');
    return res;
  }

  it('a well-formed request passes (the baseline for the rest)', async () => {
    const res = await rawRequest(port, 'POST /ok HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello');
    assert.equal(res.status, 200);
    assert.equal(JSON.parse(res.body).body, 'hello');
  });

  describe('limits and slow clients', () => {
    it('request head larger than maxHeaderBytes → 431', async () => {
      await refused(`GET / HTTP/1.1\r\nHost: t\r\nX-Big: ${'a'.repeat(4000)}\r\n\r\n`, 431, 'MG_HEADERS_TOO_LARGE');
    });

    it('request target longer than maxUrlBytes → 414', async () => {
      await refused(`GET /${'u'.repeat(600)} HTTP/1.1\r\nHost: t\r\n\r\n`, 414, 'MG_URL_TOO_LONG');
    });

    it('Content-Length over the route limit → 413 before anything is forwarded', async () => {
      await refused(
        'POST /small/x HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n\r\nhello world',
        413,
        'MG_BODY_TOO_LARGE',
      );
    });

    it('Content-Length over the listener limit (routes without their own) → 413', async () => {
      await refused(
        `POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 1001\r\n\r\n${'b'.repeat(1001)}`,
        413,
        'MG_BODY_TOO_LARGE',
      );
    });

    it('a route with maxBodyBytes 0 takes bodies of any size', async () => {
      const res = await rawRequest(
        port,
        `POST /big/x HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n${'b'.repeat(5000)}`,
      );
      assert.equal(res.status, 200);
      assert.equal(JSON.parse(res.body).body.length, 5000);
    });

    it('a chunked body that grows past the limit → 413, and the upstream never gets a complete request', async () => {
      const done = completedBodies;
      const res = await rawRequest(
        port,
        'POST /small/x HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n',
      );
      assert.equal(res.status, 413);
      assert.equal(JSON.parse(res.body).code, 'MG_BODY_TOO_LARGE');
      assert.equal(res.closed, true);
      // The next request is the marker: its body is read whole after the refused one would have been.
      const ok = await rawRequest(
        port,
        'POST /small/y HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
      );
      assert.equal(JSON.parse(ok.body).body, 'hello', 'a chunked body within the limit passes');
      assert.equal(completedBodies, done + 1, 'the upstream never read the refused body whole');
    });

    it('a request head that trickles in (slowloris) → 408 and close after headersTimeout', async () => {
      const before = upstream.seen.length;
      const started = performance.now();
      const res = await new Promise<{ text: string; closed: boolean }>((resolve) => {
        const socket: Socket = connect(port, '127.0.0.1');
        let text = '';
        socket.on('data', (c) => (text += c));
        socket.on('close', () => resolve({ text, closed: true }));
        socket.write('GET / HTTP/1.1\r\nHost: t\r\n');
        const drip = setInterval(() => socket.writable && socket.write('X-Drip: 1\r\n'), 50);
        socket.on('close', () => clearInterval(drip));
        setTimeout(() => socket.destroy(), 5000);
      });
      const took = performance.now() - started;
      assert.match(res.text, /^HTTP\/1\.1 408 /);
      assert.match(res.text, /MG_REQUEST_TIMEOUT/);
      assert.ok(took < 2000, `closed after ${took} ms`);
      assert.equal(upstream.seen.length, before, 'nothing reached the upstream');
    });

    it('a body that stops arriving → 408 and close after requestTimeout; the upstream gets no complete body', async () => {
      const done = completedBodies;
      const started = performance.now();
      const res = await new Promise<{ text: string }>((resolve) => {
        const socket: Socket = connect(port, '127.0.0.1');
        let text = '';
        socket.on('data', (c) => (text += c));
        socket.on('close', () => resolve({ text }));
        socket.write('POST /slow HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nab');
        setTimeout(() => socket.destroy(), 5000);
      });
      const took = performance.now() - started;
      assert.match(res.text, /^HTTP\/1\.1 408 /);
      assert.ok(took < 2500, `closed after ${took} ms`);
      assert.equal(completedBodies, done);
    });

    it('a connection that sends nothing is closed after headersTimeout (HTTP/1.1 and h2c-sniffing listeners)', async () => {
      const g = await startGateway({
        listeners: [
          { name: 'h1', limits: { headersTimeout: '300ms' } },
          { name: 'h2c', http2: true, limits: { headersTimeout: '300ms' } },
        ],
        routes: [{ name: 'ok', directResponse: { status: 200 } }],
      });
      try {
        for (const name of ['h1', 'h2c']) {
          const started = performance.now();
          await new Promise<void>((resolve, reject) => {
            const s = connect(Number(new URL(g.url(name)).port), '127.0.0.1');
            // Read whatever comes (a 408 may precede the close): a paused socket would never see the end.
            s.resume();
            s.on('error', () => {});
            s.on('close', () => resolve());
            setTimeout(() => reject(new Error(`${name}: still open`)), 3000);
          });
          const took = performance.now() - started;
          assert.ok(took >= 250 && took < 2500, `${name}: closed after ${took} ms`);
        }
      } finally {
        await g.close();
      }
    });

    it('connections beyond maxConnections are closed on arrival', async () => {
      const g = await startGateway({
        listeners: [{ name: 'main', limits: { maxConnections: 2 } }],
        routes: [{ name: 'ok', directResponse: { status: 200, body: 'ok' } }],
      });
      const p = Number(new URL(g.url()).port);
      const open: Socket[] = [];
      try {
        for (let i = 0; i < 2; i++) {
          const s = connect(p, '127.0.0.1');
          await new Promise((r) => s.once('connect', r));
          open.push(s);
        }
        await sleep(50);
        // A reset arrives as an error: closed too.
        const third = await rawRequest(p, 'GET / HTTP/1.1\r\nHost: t\r\n\r\n', 500).catch((e: Error) => ({
          status: 0,
          text: e.message,
          closed: true,
        }));
        assert.equal(third.status, 0, `the third connection was served: ${third.text}`);
        assert.equal(third.closed, true, 'closed on arrival, not left waiting');
        open.pop()!.destroy();
        await sleep(50);
        assert.equal((await rawRequest(p, 'GET / HTTP/1.1\r\nHost: t\r\n\r\n')).status, 200, 'a freed slot serves');
      } finally {
        for (const s of open) s.destroy();
        await g.close();
      }
    });
  });

  describe('ambiguous framing and malformed heads → 400, connection closed, nothing forwarded', () => {
    const cases: [string, string][] = [
      [
        'Content-Length with Transfer-Encoding',
        'POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n',
      ],
      [
        'two different Content-Lengths',
        'POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde',
      ],
      ['two equal Content-Lengths', 'POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\nabcd'],
      ['a Content-Length list', 'POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 4, 4\r\n\r\nabcd'],
      ['a signed Content-Length', 'POST / HTTP/1.1\r\nHost: t\r\nContent-Length: +4\r\n\r\nabcd'],
      [
        'a malformed chunk size',
        'POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n',
      ],
      [
        'an oversized chunk size',
        'POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFFF\r\nabc\r\n0\r\n\r\n',
      ],
      ['chunked not last', 'POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n'],
      ['an unknown transfer coding', 'POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n'],
      ['whitespace before the colon', 'POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n'],
      ['obsolete line folding', 'GET / HTTP/1.1\r\nHost: t\r\nX-A: a\r\n  folded\r\n\r\n'],
      ['a bare LF ending a header line', 'GET / HTTP/1.1\r\nHost: t\r\nX-A: a\nX-B: b\r\n\r\n'],
      [
        'a bare LF in a chunked body',
        'POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\n0\r\n\r\n',
      ],
      ['a bare CR', 'GET / HTTP/1.1\r\nHost: t\r\nX-A: a\rX-B: b\r\n\r\n'],
      ['an invalid header name', 'GET / HTTP/1.1\r\nHost: t\r\nX(A): a\r\n\r\n'],
      ['a NUL in a header value', 'GET / HTTP/1.1\r\nHost: t\r\nX-A: a\x00b\r\n\r\n'],
      ['a space in the target', 'GET /a b HTTP/1.1\r\nHost: t\r\n\r\n'],
      ['Transfer-Encoding in HTTP/1.0', 'POST / HTTP/1.0\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'],
      ['two Host headers', 'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n'],
      ['HTTP/1.1 without Host', 'GET / HTTP/1.1\r\n\r\n'],
    ];
    for (const [name, bytes] of cases) {
      it(name, async () => {
        const res = await refused(bytes, 400, 'MG_BAD_REQUEST');
        assert.ok(JSON.parse(res.body).detail.length > 10);
        assert.doesNotMatch(res.text, /smuggled/);
      });
    }
  });

  describe('header hygiene', () => {
    it('hop-by-hop headers, Proxy-Connection and headers named in Connection never reach the upstream', async () => {
      const res = await rawRequest(
        port,
        'GET /hop HTTP/1.1\r\nHost: t\r\nConnection: X-Internal, Upgrade-Insecure\r\nX-Internal: secret\r\n' +
          'Upgrade-Insecure: 1\r\nProxy-Connection: keep-alive\r\nKeep-Alive: timeout=9\r\nTE: gzip\r\nTrailer: X-T\r\n' +
          'Upgrade: something\r\nX-Kept: yes\r\n\r\n',
      );
      const seen = JSON.parse(res.body).headers;
      for (const h of ['x-internal', 'upgrade-insecure', 'proxy-connection', 'keep-alive', 'te', 'trailer', 'upgrade'])
        assert.equal(seen[h], undefined, `${h} reached the upstream`);
      assert.equal(seen['x-kept'], 'yes');
    });

    it('client X-Forwarded-* and Forwarded are replaced on an untrusted listener, never passed on', async () => {
      const res = await rawRequest(
        port,
        'GET /xf HTTP/1.1\r\nHost: t\r\nX-Forwarded-For: 10.0.0.1\r\nX-Forwarded-For: 10.0.0.2\r\n' +
          'X-Forwarded-Proto: https\r\nX-Forwarded-Host: admin.internal\r\nForwarded: for=10.0.0.1;proto=https\r\n\r\n',
      );
      const seen = JSON.parse(res.body).headers;
      assert.equal(seen['x-forwarded-for'], '127.0.0.1');
      assert.equal(seen['x-forwarded-proto'], 'http');
      assert.equal(seen['x-forwarded-host'], 't');
      assert.equal(seen.forwarded, 'for=127.0.0.1;host=t;proto=http');
    });

    it('the path is normalised for matching only: dot segments, duplicate slashes, encoded dots', async () => {
      const res = await rawRequest(
        port,
        'GET /big/../small/./%2e/a//b HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n\r\nhello world',
      );
      assert.equal(res.status, 413, 'matched /small/* after normalising, so its limit applies');
      const up = await rawRequest(port, 'GET /x/%2E%2E/y//z/. HTTP/1.1\r\nHost: t\r\n\r\n');
      assert.equal(JSON.parse(up.body).url, '/x/%2E%2E/y//z/.', 'the upstream gets the path as sent');
    });

    it('a path that climbs above the root is rejected', async () => {
      const before = upstream.seen.length;
      for (const target of ['/../etc/passwd', '/a/%2e%2e/%2E%2E/etc', '/a/../../b']) {
        const res = await rawRequest(port, `GET ${target} HTTP/1.1\r\nHost: t\r\n\r\n`);
        assert.equal(res.status, 400, target);
        assert.equal(JSON.parse(res.body).code, 'MG_PATH_OUTSIDE_ROOT');
      }
      assert.equal(upstream.seen.length, before);
    });
  });
});

describe('encodedSlashes', () => {
  let upstream: Upstream;
  let gw: TestGateway;
  before(async () => {
    upstream = await startUpstream();
    gw = await startGateway({
      listeners: [
        { name: 'default' },
        { name: 'keep', encodedSlashes: 'keep' },
        { name: 'decode', encodedSlashes: 'decode' },
        { name: 'reject', encodedSlashes: 'reject' },
      ],
      services: [{ name: 'svc', endpoints: [{ url: upstream.url }] }],
      routes: [
        { name: 'admin', match: { path: '/admin/*' }, directResponse: { status: 403, body: 'admin' } },
        { name: 'all', service: 'svc' },
      ],
    });
  });
  after(async () => {
    await gw.close();
    await upstream.close();
  });

  const send = (listener: string, target: string) =>
    rawRequest(Number(new URL(gw.url(listener)).port), `GET ${target} HTTP/1.1\r\nHost: t\r\n\r\n`);

  it('keep (the default): %2F stays encoded, inside one segment, and is forwarded as sent', async () => {
    for (const listener of ['default', 'keep']) {
      const res = await send(listener, '/files/a%2Fb');
      assert.equal(res.status, 200);
      assert.equal(JSON.parse(res.body).url, '/files/a%2Fb');
      assert.equal((await send(listener, '/admin%2Fx')).status, 200, '/admin%2Fx is not below /admin/');
    }
  });

  it('decode: %2F and %5C become / before normalising and matching; the upstream gets the path as sent', async () => {
    const res = await send('decode', '/files/a%2Fb');
    assert.equal(JSON.parse(res.body).url, '/files/a%2Fb');
    assert.equal((await send('decode', '/admin%2Fx')).status, 403, 'matched /admin/* after decoding');
    assert.equal((await send('decode', '/x%2F..%2F..%2Fetc')).status, 400, 'cannot climb with encoded slashes');
  });

  it('reject: a path with an encoded slash is refused', async () => {
    const before = upstream.seen.length;
    const res = await send('reject', '/files/a%2Fb');
    assert.equal(res.status, 400);
    assert.equal(JSON.parse(res.body).code, 'MG_BAD_REQUEST');
    assert.equal(upstream.seen.length, before);
  });
});
