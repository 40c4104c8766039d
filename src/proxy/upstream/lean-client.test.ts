/**
 * The lean upstream client against raw TCP upstreams that write exactly the bytes under test: framing
 * (length, chunked, close-delimited, HEAD, 204/304, 1xx), keep-alive and `Connection: close`, upstreams
 * that close early, handlers that abort, request bodies, timeouts and refused header values.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import { after, describe, it } from 'node:test';
import type { Dispatcher } from 'undici';
import { ConnectionPool, type PoolClient, type PooledHandler } from './pool.ts';

/** One request as the upstream read it. */
interface Seen {
  head: string;
  body: string;
  connection: number;
}

/**
 * A raw upstream: reads each request (head, and a body framed by length or chunks), then calls
 * `answer` with the socket to write whatever bytes the test wants.
 */
async function rawUpstream(answer: (socket: Socket, seen: Seen, index: number) => void) {
  const seen: Seen[] = [];
  const sockets = new Set<Socket>();
  let connections = 0;
  const server: Server = createServer((socket) => {
    const connection = ++connections;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let buffer = Buffer.alloc(0);
    socket.on('data', (chunk) => {
      buffer = Buffer.concat([buffer, chunk]);
      for (;;) {
        const end = buffer.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buffer.subarray(0, end).toString('latin1');
        let rest = buffer.subarray(end + 4);
        let body = '';
        const length = /\r\ncontent-length: (\d+)/i.exec(head);
        if (length !== null) {
          const n = Number(length[1]);
          if (rest.length < n) return;
          body = rest.subarray(0, n).toString('latin1');
          rest = rest.subarray(n);
        } else if (/\r\ntransfer-encoding: chunked/i.test(head)) {
          const last = rest.indexOf('0\r\n\r\n');
          if (last < 0) return;
          let text = rest.subarray(0, last).toString('latin1');
          while (text.length > 0) {
            const lineEnd = text.indexOf('\r\n');
            const size = Number.parseInt(text.slice(0, lineEnd), 16);
            body += text.slice(lineEnd + 2, lineEnd + 2 + size);
            text = text.slice(lineEnd + 4 + size);
          }
          rest = rest.subarray(last + 5);
        }
        buffer = rest;
        const request = { head, body, connection };
        seen.push(request);
        answer(socket, request, seen.length - 1);
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    get connections() {
      return connections;
    },
    sockets,
    async close() {
      for (const s of sockets) s.destroy();
      server.close();
      await once(server, 'close');
    },
  };
}

/** What a handler saw, and a promise for its end (resolves on end and on error). */
class Recorder implements PooledHandler {
  client: PoolClient | null = null;
  status = 0;
  interim: number[] = [];
  headers: Record<string, string | string[] | undefined> = {};
  body = '';
  error: (Error & { code?: string }) | null = null;
  ended = false;
  controller: Dispatcher.DispatchController | null = null;
  sent = 0;
  readonly done: Promise<void>;
  private resolve!: () => void;
  private readonly pool: ConnectionPool;
  onStart: ((controller: Dispatcher.DispatchController) => void) | null = null;

  constructor(pool: ConnectionPool) {
    this.pool = pool;
    this.done = new Promise((resolve) => (this.resolve = resolve));
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
  }

  onResponseStart(
    controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: Record<string, string | string[] | undefined>,
  ): void {
    if (statusCode < 200) {
      this.interim.push(statusCode);
      return;
    }
    this.status = statusCode;
    this.headers = headers;
    this.onStart?.(controller);
  }

  onResponseData(_controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.body += chunk.toString('latin1');
  }

  onBodySent(chunk: Buffer): void {
    this.sent += chunk.length;
  }

  onResponseEnd(): void {
    this.ended = true;
    this.pool.release(this);
    this.resolve();
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    this.error = error;
    this.pool.release(this);
    this.resolve();
  }
}

function leanPool(url: string, keepAliveMs = 10_000) {
  return new ConnectionPool(url, { connectTimeoutMs: 2000, maxConnections: 4, keepAliveMs, engine: 'lean' });
}

async function send(
  pool: ConnectionPool,
  options: Partial<Dispatcher.DispatchOptions> = {},
  setup?: (r: Recorder) => void,
): Promise<Recorder> {
  const r = new Recorder(pool);
  setup?.(r);
  pool.dispatch(
    {
      method: 'GET',
      path: '/',
      headers: ['host', 'upstream.test', 'x-trace', 'abc'],
      ...options,
    } as Dispatcher.DispatchOptions,
    r,
  );
  await r.done;
  return r;
}

const closers: (() => Promise<void>)[] = [];
after(async () => {
  for (const close of closers) await close();
});

async function upstream(answer: (socket: Socket, seen: Seen, index: number) => void) {
  const u = await rawUpstream(answer);
  const pool = leanPool(u.url);
  closers.push(
    () => pool.destroy(),
    () => u.close(),
  );
  return { u, pool };
}

describe('lean upstream client: response framing', () => {
  it('reads a content-length response and keeps the connection for the next request', async () => {
    const { u, pool } = await upstream((s) =>
      s.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\nx-a: 2\r\n\r\nhello'),
    );
    const first = await send(pool);
    assert.equal(first.status, 200);
    assert.equal(first.body, 'hello');
    assert.deepEqual(first.headers['x-a'], ['1', '2']);
    assert.equal(first.headers['content-length'], '5');
    const second = await send(pool);
    assert.equal(second.body, 'hello');
    assert.equal(u.connections, 1, 'both requests on one connection');
    assert.match(
      u.seen[0]!.head,
      /^GET \/ HTTP\/1\.1\r\nhost: upstream\.test\r\nx-trace: abc\r\nconnection: keep-alive$/,
    );
  });

  it('reads a chunked response, chunk by chunk, and keeps the connection', async () => {
    const { u, pool } = await upstream((s) =>
      s.write(
        'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n4\r\ndefg\r\n0\r\nx-trailer: t\r\n\r\n',
      ),
    );
    const r = await send(pool);
    assert.equal(r.body, 'abcdefg');
    assert.equal(r.ended, true);
    await send(pool);
    assert.equal(u.connections, 1);
  });

  it('reads a close-delimited body to the close, and opens a new connection next time', async () => {
    const { u, pool } = await upstream((s) =>
      s.end('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end'),
    );
    const r = await send(pool);
    assert.equal(r.error, null);
    assert.equal(r.body, 'until the end');
    const again = await send(pool);
    assert.equal(again.body, 'until the end');
    assert.equal(u.connections, 2);
  });

  it('passes over 1xx interim responses and hands the final one over', async () => {
    const { pool } = await upstream((s) =>
      s.write(
        'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n' +
          'HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok',
      ),
    );
    const r = await send(pool, { method: 'POST', body: Buffer.from('x') });
    assert.equal(r.status, 201);
    assert.equal(r.body, 'ok');
    assert.deepEqual(r.interim, [], 'interim responses do not reach the handler');
  });

  it('reads no body for HEAD, 204 and 304', async () => {
    const { pool } = await upstream((s, seen) => {
      if (seen.head.startsWith('HEAD')) s.write('HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n');
      else if (seen.head.includes('/204')) s.write('HTTP/1.1 204 No Content\r\n\r\n');
      else s.write('HTTP/1.1 304 Not Modified\r\nContent-Length: 1000\r\n\r\n');
    });
    const head = await send(pool, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.body, '');
    assert.equal(head.ended, true);
    const noContent = await send(pool, { path: '/204' });
    assert.deepEqual([noContent.status, noContent.body, noContent.ended], [204, '', true]);
    const notModified = await send(pool, { path: '/304' });
    assert.deepEqual([notModified.status, notModified.body, notModified.ended], [304, '', true]);
  });

  it('does not reuse a connection after the upstream says Connection: close, or announces too short a keep-alive', async () => {
    const { u, pool } = await upstream((s, _seen, i) =>
      s.write(
        i === 0
          ? 'HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\na'
          : 'HTTP/1.1 200 OK\r\nKeep-Alive: timeout=1\r\nContent-Length: 1\r\n\r\nb',
      ),
    );
    await send(pool);
    const second = await send(pool);
    assert.equal(second.body, 'b');
    const third = await send(pool);
    assert.equal(third.body, 'b');
    assert.equal(u.connections, 3, 'a new connection after close and after a 1 s announcement (less the 2 s margin)');
  });
});

describe('lean upstream client: failures', () => {
  it('fails with a reset when the upstream closes mid-body', async () => {
    const { pool } = await upstream((s) => s.end('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this'));
    const r = await send(pool);
    assert.equal(r.status, 200);
    assert.equal(r.body, 'only this');
    assert.equal(r.error?.code, 'UND_ERR_SOCKET');
    assert.equal(r.ended, false);
  });

  it('fails with a reset when the upstream closes before answering', async () => {
    const { pool } = await upstream((s) => s.end());
    const r = await send(pool);
    assert.equal(r.status, 0);
    assert.equal(r.error?.code, 'UND_ERR_SOCKET');
  });

  it('fails with a parser error on a malformed response', async () => {
    const { pool } = await upstream((s) =>
      s.write('HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab'),
    );
    const r = await send(pool);
    assert.match(r.error?.code ?? '', /^HPE_/);
  });

  it('destroys the connection when the handler aborts', async () => {
    let upstreamSocket: Socket | null = null;
    const { u, pool } = await upstream((s, _seen, i) => {
      if (i > 0) return void s.write('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n');
      upstreamSocket = s;
      s.write('HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\nfirst bytes');
    });
    const reason = new Error('client closed');
    const r = await send(pool, {}, (rec) => {
      rec.onStart = (controller) => controller.abort(reason);
    });
    assert.equal(r.error, reason);
    assert.ok(upstreamSocket);
    if (u.sockets.has(upstreamSocket)) await once(upstreamSocket as Socket, 'close');
    const next = await send(pool);
    assert.equal(next.status, 200);
    assert.equal(u.connections, 2);
  });

  it('fails the request, and only it, when its handler throws from the response head', async () => {
    const { u, pool } = await upstream((s) => s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'));
    const thrown = new Error('a response hook failed');
    const r = await send(pool, {}, (rec) => {
      rec.onStart = () => {
        throw thrown;
      };
    });
    assert.equal(r.error, thrown);
    const next = await send(pool);
    assert.equal(next.body, 'ok');
    assert.equal(u.connections, 2);
  });

  it('fails with a headers timeout when the upstream never answers', async () => {
    const { pool } = await upstream(() => {});
    const started = performance.now();
    const r = await send(pool, { headersTimeout: 300 });
    assert.equal(r.error?.code, 'UND_ERR_HEADERS_TIMEOUT');
    assert.ok(performance.now() - started >= 300);
  });

  it('fails with a body timeout when the upstream stops sending the body', async () => {
    const { pool } = await upstream((s) => s.write('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc'));
    const r = await send(pool, { bodyTimeout: 300 });
    assert.equal(r.body, 'abc');
    assert.equal(r.error?.code, 'UND_ERR_BODY_TIMEOUT');
  });

  it('fails to connect with the socket error', async () => {
    const u = await rawUpstream(() => {});
    const url = u.url;
    await u.close();
    const pool = leanPool(url);
    const r = await send(pool);
    assert.equal(r.error?.code, 'ECONNREFUSED');
    await pool.destroy();
  });

  it('refuses a header value with CR or LF and sends nothing', async () => {
    const { u, pool } = await upstream((s) => s.write('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'));
    const r = await send(pool, { headers: ['host', 'a', 'x-claim', 'v\r\nx-injected: 1'] });
    assert.equal(r.error?.code, 'UND_ERR_INVALID_ARG');
    assert.equal(u.seen.length, 0);
    const ok = await send(pool);
    assert.equal(ok.status, 200);
  });

  it('writes its own framing and connection lines only, whatever the header list says', async () => {
    const { u, pool } = await upstream((s) => s.write('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'));
    await send(pool, {
      method: 'POST',
      headers: ['host', 'h', 'Transfer-Encoding', 'chunked', 'Connection', 'close', 'x-a', '1'],
      body: Buffer.from('abc'),
    });
    assert.equal(
      u.seen[0]!.head,
      'POST / HTTP/1.1\r\nhost: h\r\nx-a: 1\r\nconnection: keep-alive\r\ncontent-length: 3',
    );
    assert.equal(u.seen[0]!.body, 'abc');
  });
});

describe('lean upstream client: request bodies and idle connections', () => {
  it('sends a Buffer body with its length, a stream of unknown length chunked, and a declared length as is', async () => {
    const { u, pool } = await upstream((s) => s.write('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'));
    const a = await send(pool, { method: 'POST', body: Buffer.from('whole') });
    assert.equal(a.sent, 5);
    await send(pool, { method: 'POST', body: Readable.from([Buffer.from('one,'), Buffer.from('two')]) });
    await send(pool, {
      method: 'PUT',
      headers: ['host', 'h', 'content-length', '6'],
      body: Readable.from([Buffer.from('abc'), Buffer.from('def')]),
    });
    await send(pool, { method: 'POST' });
    assert.match(u.seen[0]!.head, /\r\ncontent-length: 5$/);
    assert.equal(u.seen[0]!.body, 'whole');
    assert.match(u.seen[1]!.head, /\r\ntransfer-encoding: chunked$/);
    assert.equal(u.seen[1]!.body, 'one,two');
    assert.match(u.seen[2]!.head, /\r\ncontent-length: 6$/);
    assert.equal(u.seen[2]!.body, 'abcdef');
    assert.match(u.seen[3]!.head, /\r\ncontent-length: 0$/);
    assert.equal(u.connections, 1);
  });

  it('fails a streamed body shorter than its declared length', async () => {
    const { pool } = await upstream((s) => s.write('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'));
    const r = await send(pool, {
      method: 'PUT',
      headers: ['host', 'h', 'content-length', '10'],
      body: Readable.from([Buffer.from('abc')]),
    });
    assert.equal(r.error?.code, 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH');
  });

  it('opens a new connection when the upstream closed the idle one', async () => {
    const { u, pool } = await upstream((s, _seen, i) => {
      s.write('HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx');
      if (i === 0) setImmediate(() => s.end());
    });
    await send(pool);
    // Wait until the client has seen the close: the upstream's socket is gone and the client's FIN arrived.
    const deadline = performance.now() + 3000;
    while (u.sockets.size > 0) {
      assert.ok(performance.now() < deadline, 'the upstream closed its side');
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    const r = await send(pool);
    assert.equal(r.error, null);
    assert.equal(r.body, 'x');
    assert.equal(u.connections, 2);
  });

  it('never takes stray bytes already waiting on an idle connection for the next response', async () => {
    let first: Socket | null = null;
    const { u, pool } = await upstream((s, _seen, i) => {
      if (i === 0) first = s;
      s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${i === 0 ? 5 : 6}\r\n\r\n${i === 0 ? 'first' : 'second'}`);
    });
    await send(pool);
    // A stray response lands on the idle connection, and the next request is dispatched in the check
    // phase, before the event loop polls for it again: only a check made after the next poll (undici's
    // idle-socket check) sees the bytes before the request is written on that connection.
    (first as unknown as Socket).write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstray');
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
    await new Promise((resolve) => setImmediate(resolve));
    const r = await send(pool);
    assert.equal(r.body, 'second');
    assert.equal(u.connections, 2);
  });

  it('closes a connection unused past its keep-alive and opens a new one', async () => {
    const u = await rawUpstream((s) => s.write('HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx'));
    const pool = leanPool(u.url, 200);
    closers.push(
      () => pool.destroy(),
      () => u.close(),
    );
    await send(pool);
    const deadline = performance.now() + 3000;
    while (u.sockets.size > 0) {
      assert.ok(performance.now() < deadline, 'the idle connection was closed by the client');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const r = await send(pool);
    assert.equal(r.body, 'x');
    assert.equal(u.connections, 2);
  });
});
