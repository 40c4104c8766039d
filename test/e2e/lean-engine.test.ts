/**
 * The lean HTTP/1.1 engine against node:http's, byte for byte: the same raw requests (well-formed,
 * malformed, smuggling attempts, keep-alive and framing cases) go to a gateway on each engine, and
 * status, headers, body, whether the connection closed and what reached the upstream must agree.
 * Then what only a raw socket shows: pipelined requests answered in order, Expect: 100-continue,
 * and the keep-alive timeout.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { parseRaw, type RawResponse, rawRequest } from '../helpers/raw.ts';
import { startGateway, startUpstream, type TestGateway, type Upstream } from '../helpers/servers.ts';

const ENGINES = ['node', 'lean'] as const;
type Engine = (typeof ENGINES)[number];

interface Side {
  upstream: Upstream;
  gw: TestGateway;
  port: number;
}

const sides = {} as Record<Engine, Side>;

/**
 * Echoes what framing the upstream saw (a body under `…/big`: its length); `?ms=N` answers after N ms;
 * `/chunked` streams; `/status/N`.
 */
async function startSide(engine: Engine): Promise<Side> {
  const upstream = await startUpstream((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.stringify({
        method: req.method,
        url: req.url,
        body: url.pathname.endsWith('/big') ? String(Buffer.concat(chunks).length) : Buffer.concat(chunks).toString(),
        contentLength: req.headers['content-length'] ?? null,
        chunked: req.headers['transfer-encoding'] ?? null,
      });
      const answer = () => {
        if (url.pathname === '/chunked') {
          res.writeHead(200, { 'content-type': 'text/plain' });
          res.write('first,');
          setImmediate(() => res.end('second'));
        } else if (url.pathname.startsWith('/status/')) {
          res.writeHead(Number(url.pathname.slice(8)), { 'x-case': 'status' });
          res.end();
        } else {
          res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
          res.end(body);
        }
      };
      const ms = Number(url.searchParams.get('ms') ?? 0);
      if (ms > 0) setTimeout(answer, ms);
      else answer();
    });
  }, 'up');
  const gw = await startGateway({
    listeners: [
      {
        name: 'main',
        engine,
        limits: { maxHeaderBytes: 16384, maxUrlBytes: 512, headersTimeout: '2s', keepAliveTimeout: '400ms' },
      },
    ],
    services: [{ name: 'svc', endpoints: [{ url: upstream.url }] }],
    routes: [
      { name: 'small', match: { path: '/small/*' }, service: 'svc', limits: { maxBodyBytes: 10 } },
      // A body filter that lets a text body stream through its transform (a second consumer between
      // the client's body and undici, with its own buffer).
      {
        name: 'filtered',
        match: { path: '/filtered/*' },
        service: 'svc',
        plugins: [{ name: 'request-transformer', config: { add: { json: ['a:1'] }, maxBodyBytes: 64 } }],
      },
      { name: 'all', service: 'svc' },
    ],
  });
  return { upstream, gw, port: Number(new URL(gw.url()).port) };
}

/** What must agree between engines: ids, dates and ports differ by nature. */
function normalised(res: RawResponse, port: number) {
  const uuid = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g;
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(res.headers)) {
    if (name === 'date' || name === 'x-request-id') continue;
    headers[name] = value.replace(uuid, 'ID');
  }
  return {
    status: res.status,
    headers,
    // A second response in the same read carries its own Date line, which may fall in the next second.
    body: res.body
      .replace(uuid, 'ID')
      .replace(/\r\ndate: [^\r]*/gi, '\r\ndate: DATE')
      .replaceAll(String(port), 'PORT'),
    closed: res.closed,
  };
}

const CASES: Record<string, string> = {
  'a GET': 'GET /a?b=1 HTTP/1.1\r\nHost: t\r\n\r\n',
  'a POST with a length': 'POST /p HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello',
  'a chunked POST': 'POST /p HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
  'a chunked POST with trailers':
    'POST /p HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\nX-T: 1\r\n\r\n',
  'a HEAD': 'HEAD /h HTTP/1.1\r\nHost: t\r\n\r\n',
  'a 204 from upstream': 'GET /status/204 HTTP/1.1\r\nHost: t\r\n\r\n',
  'a 304 from upstream': 'GET /status/304 HTTP/1.1\r\nHost: t\r\n\r\n',
  'a chunked response': 'GET /chunked HTTP/1.1\r\nHost: t\r\n\r\n',
  'Connection: close': 'GET /c HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n',
  'HTTP/1.0 without keep-alive': 'GET /old HTTP/1.0\r\nHost: t\r\n\r\n',
  'HTTP/1.0 with keep-alive': 'GET /old HTTP/1.0\r\nHost: t\r\nConnection: keep-alive\r\n\r\n',
  'HTTP/1.0 and a chunked response': 'GET /chunked HTTP/1.0\r\nHost: t\r\nConnection: keep-alive\r\n\r\n',
  'HTTP/1.0 without Host': 'GET /old HTTP/1.0\r\n\r\n',
  'an absolute-form target': 'GET http://t/abs HTTP/1.1\r\nHost: other\r\n\r\n',
  'no route body limit exceeded': 'POST /small/x HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n\r\nhello world',
  'a chunked body over the route limit':
    'POST /small/x HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nb\r\nhello world\r\n0\r\n\r\n',
  'Expect: 100-continue with the body':
    'POST /e HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nok',
  'an unknown expectation': 'POST /e HTTP/1.1\r\nHost: t\r\nExpect: something\r\nContent-Length: 2\r\n\r\nok',
  'an h2c upgrade served as HTTP/1.1': 'GET /u HTTP/1.1\r\nHost: t\r\nConnection: upgrade\r\nUpgrade: h2c\r\n\r\n',
  'a target over maxUrlBytes': `GET /${'u'.repeat(600)} HTTP/1.1\r\nHost: t\r\n\r\n`,
  'a head over maxHeaderBytes': `GET / HTTP/1.1\r\nHost: t\r\nX-Big: ${'a'.repeat(17_000)}\r\n\r\n`,
  '990 header lines': `GET / HTTP/1.1\r\nHost: t\r\n${headerLines(989)}\r\n`,
  '1001 header lines (node:http refuses more than 1000)': `GET / HTTP/1.1\r\nHost: t\r\n${headerLines(1000)}\r\n`,
  'Content-Length and chunked':
    'POST /s HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
  'two different Content-Lengths': 'POST /s HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab',
  'two equal Content-Lengths': 'POST /s HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nab',
  'a negative Content-Length': 'POST /s HTTP/1.1\r\nHost: t\r\nContent-Length: -1\r\n\r\n',
  'chunked not last': 'POST /s HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n',
  'a malformed chunk size': 'POST /s HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhi\r\n0\r\n\r\n',
  'a chunk without its CRLF': 'POST /s HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhiX0\r\n\r\n',
  'obsolete line folding': 'GET / HTTP/1.1\r\nHost: t\r\nX-A: one\r\n two\r\n\r\n',
  'whitespace before a colon': 'GET / HTTP/1.1\r\nHost: t\r\nX-A : one\r\n\r\n',
  'a bare LF': 'GET / HTTP/1.1\nHost: t\n\n',
  'a NUL in a value': 'GET / HTTP/1.1\r\nHost: t\r\nX-A: a\0b\r\n\r\n',
  'a space in the target': 'GET /a b HTTP/1.1\r\nHost: t\r\n\r\n',
  'a lower-case method': 'get / HTTP/1.1\r\nHost: t\r\n\r\n',
  'an unknown version': 'GET / HTTP/1.2\r\nHost: t\r\n\r\n',
  'HTTP/1.1 without Host': 'GET / HTTP/1.1\r\n\r\n',
  'two Hosts': 'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n',
  'Transfer-Encoding in HTTP/1.0': 'POST /s HTTP/1.0\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
  CONNECT: 'CONNECT t:443 HTTP/1.1\r\nHost: t:443\r\n\r\n',
  'an HTTP/2 preface': 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n',
  'a request smuggled behind a chunked body':
    'POST /s HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nContent-Length: 30\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n',
  'two keep-alive requests in one write': 'GET /1 HTTP/1.1\r\nHost: t\r\n\r\nGET /2 HTTP/1.1\r\nHost: t\r\n\r\n',
  'a good request, then garbage': 'GET /1 HTTP/1.1\r\nHost: t\r\n\r\nNOT HTTP AT ALL\r\n\r\n',
};

function headerLines(n: number): string {
  let lines = '';
  for (let i = 0; i < n; i++) lines += `x-${i}: 1\r\n`;
  return lines;
}

describe('lean engine', () => {
  before(async () => {
    for (const engine of ENGINES) sides[engine] = await startSide(engine);
  });

  after(async () => {
    for (const engine of ENGINES) {
      await sides[engine].gw.close();
      await sides[engine].upstream.close();
    }
  });

  it('answers every case exactly as the node engine does, and forwards exactly what it forwards', async () => {
    for (const [name, request] of Object.entries(CASES)) {
      const results = await Promise.all(
        ENGINES.map(async (engine) => {
          const side = sides[engine];
          const seenBefore = side.upstream.seen.length;
          const res = await rawRequest(side.port, request, 250);
          const forwarded = side.upstream.seen.slice(seenBefore).map((r) => `${r.method} ${r.url}`);
          return { ...normalised(res, side.port), forwarded };
        }),
      );
      assert.deepEqual(results[1], results[0], `${name}: lean (actual) differs from node (expected)`);
    }
  });

  it('serves the request pipelined behind an h2c upgrade it served as HTTP/1.1 (node:http drops it)', async () => {
    const side = sides.lean;
    const seenBefore = side.upstream.seen.length;
    const res = await rawRequest(
      side.port,
      'GET /u HTTP/1.1\r\nHost: t\r\nConnection: upgrade\r\nUpgrade: h2c\r\n\r\nGET /after HTTP/1.1\r\nHost: t\r\n\r\n',
      250,
    );
    assert.deepEqual(
      side.upstream.seen.slice(seenBefore).map((r) => `${r.method} ${r.url}`),
      ['GET /u', 'GET /after'],
    );
    assert.match(res.body, /"url":"\/u".*HTTP\/1\.1 200 OK.*"url":"\/after"/s);
    assert.equal(res.closed, false);
  });

  for (const engine of ENGINES) {
    it(`${engine}: pipelined requests are answered in order, whatever order the upstream answers in`, async () => {
      const socket = connect(sides[engine].port, '127.0.0.1');
      await once(socket, 'connect');
      const text = readAll(socket);
      socket.write(
        'GET /slow?ms=300&n=1 HTTP/1.1\r\nHost: t\r\n\r\n' +
          'POST /slow?n=2 HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc' +
          'GET /slow?ms=100&n=3 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n',
      );
      const all = await text;
      const bodies = [...all.matchAll(/\{"method":"(\w+)","url":"([^"]+)","body":"(\w*)"/g)].map(
        (m) => `${m[1]} ${m[2]} ${m[3]}`,
      );
      assert.deepEqual(bodies, ['GET /slow?ms=300&n=1 ', 'POST /slow?n=2 abc', 'GET /slow?ms=100&n=3 ']);
      assert.equal(all.split('HTTP/1.1 200 OK').length - 1, 3);
    });

    it(`${engine}: after a body that backed up behind a body filter, the next request on the connection is read`, async () => {
      const socket = connect(sides[engine].port, '127.0.0.1');
      await once(socket, 'connect');
      let received = '';
      const seen = (pattern: RegExp) =>
        new Promise<void>((resolve, reject) => {
          const timer = setTimeout(
            () => reject(new Error(`no ${pattern} within 10 s; got ${received.slice(0, 300)}`)),
            10_000,
          );
          const check = () => {
            if (!pattern.test(received)) return;
            clearTimeout(timer);
            socket.off('data', check);
            resolve();
          };
          socket.on('data', check);
          check();
        });
      socket.on('data', (c: Buffer) => (received += c.toString('latin1')));
      // The body backs up behind the body filter's transform: the parser is paused when the message
      // completes, and the request's stream, now ended, never asks for more.
      const size = 100_000;
      socket.write(
        `POST /filtered/big HTTP/1.1\r\nHost: t\r\nContent-Type: text/plain\r\nContent-Length: ${size}\r\n\r\n`,
      );
      socket.write(Buffer.alloc(size, 0x61));
      await seen(/"url":"\/filtered\/big","body":"100000"/);
      // The next request comes in a later read, once the first is answered.
      socket.write('GET /after HTTP/1.1\r\nHost: t\r\n\r\n');
      await seen(/"url":"\/after"/);
      socket.destroy();
    });

    it(`${engine}: a pipelined head left incomplete is held to headersTimeout, not the longer keepAliveTimeout`, async () => {
      const gw = await startGateway({
        listeners: [{ name: 'main', engine, limits: { headersTimeout: '500ms', keepAliveTimeout: '3s' } }],
        services: [{ name: 'svc', endpoints: [{ url: sides[engine].upstream.url }] }],
        routes: [{ name: 'all', service: 'svc' }],
      });
      try {
        const socket = connect(Number(new URL(gw.url()).port), '127.0.0.1');
        await once(socket, 'connect');
        const text = readAll(socket);
        const sentAt = performance.now();
        // The second message begins in the read that completes the first, and its head never ends.
        socket.write('GET /first HTTP/1.1\r\nHost: t\r\n\r\nGET /second HTTP/1.1\r\nHost: t\r\n');
        const all = await text;
        const closedAfter = performance.now() - sentAt;
        assert.match(all, /^HTTP\/1\.1 200 OK/);
        assert.ok(closedAfter >= 450, `closed after ${closedAfter} ms, before the 500 ms headersTimeout`);
        assert.ok(closedAfter < 3000, `closed after ${closedAfter} ms: held to keepAliveTimeout instead`);
      } finally {
        await gw.close();
      }
    });

    it(`${engine}: Expect: 100-continue gets 100 before the body is sent, then the response`, async () => {
      const socket = connect(sides[engine].port, '127.0.0.1');
      await once(socket, 'connect');
      socket.write('POST /continue HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n');
      const [interim] = (await once(socket, 'data')) as [Buffer];
      assert.match(interim.toString('latin1'), /^HTTP\/1\.1 100 Continue\r\n\r\n/);
      const text = readAll(socket);
      // Not end(): a client's half-close ends the exchange on both engines (no half-open connections).
      socket.write('body');
      const res = parseRaw((await text).replace(/^HTTP\/1\.1 100 Continue\r\n\r\n/, ''), true);
      assert.equal(res.status, 200);
      assert.equal(JSON.parse(res.body).body, 'body');
    });

    it(`${engine}: an idle keep-alive connection is closed after keepAliveTimeout`, async () => {
      const socket = connect(sides[engine].port, '127.0.0.1');
      await once(socket, 'connect');
      socket.write('GET /idle HTTP/1.1\r\nHost: t\r\n\r\n');
      const [first] = (await once(socket, 'data')) as [Buffer];
      assert.match(first.toString('latin1'), /^HTTP\/1\.1 200 OK\r\n/);
      const answeredAt = performance.now();
      socket.resume();
      await Promise.race([
        once(socket, 'close'),
        new Promise((_, reject) => setTimeout(() => reject(new Error('still open after 5 s')), 5000).unref()),
      ]);
      const idleMs = performance.now() - answeredAt;
      assert.ok(idleMs >= 300, `closed after ${idleMs} ms, before the 400 ms keepAliveTimeout`);
    });
  }
});

/** Everything the server sends until it closes the connection (bounded: 10 s). */
function readAll(socket: Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no close within 10 s; got ${Buffer.concat(chunks).toString('latin1').slice(0, 500)}`));
    }, 10_000);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('latin1'));
    });
  });
}
