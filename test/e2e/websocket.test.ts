/**
 * WebSocket proxying with the `ws` package on both ends: messages both ways, close propagation, the
 * idle timeout, and upgrade requests that the route's action or filters refuse (never upgraded).
 */
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { WebSocket, WebSocketServer } from 'ws';
import { startGateway, startUpstream, type TestGateway, type Upstream } from '../helpers/servers.ts';

const MESSAGES = 10_000;

function wsUrl(gw: TestGateway, path: string, listener?: string) {
  return `${gw.url(listener).replace('http:', 'ws:')}${path}`;
}

function opened(ws: WebSocket): Promise<void> {
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
}

function closed(ws: WebSocket, timeoutMs = 3000): Promise<{ code: number; reason: string }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('not closed in time')), timeoutMs);
    ws.once('close', (code, reason) => {
      clearTimeout(timer);
      resolve({ code, reason: reason.toString() });
    });
  });
}

/** The status of an upgrade the server refused (ws reports it as 'unexpected-response'). */
function refusedStatus(ws: WebSocket): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    ws.once('open', () => reject(new Error('the connection was upgraded')));
    ws.once('error', () => {});
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
  });
}

describe('WebSocket', () => {
  let upstream: Upstream;
  let wss: WebSocketServer;
  let gw: TestGateway;
  const serverSockets: WebSocket[] = [];
  let upgrades = 0;

  before(async () => {
    upstream = await startUpstream();
    wss = new WebSocketServer({ server: upstream.server });
    // An upstream that is itself a meshgate (a sidecar) echoes the request id on the 101.
    wss.on('headers', (headers, req) => {
      if (req.url === '/chat/hello') headers.push(`X-Request-ID: ${req.headers['x-request-id']}`);
    });
    wss.on('connection', (ws, req) => {
      upgrades++;
      serverSockets.push(ws);
      if (req.url === '/chat/flood') {
        let received = 0;
        ws.on('message', (data) => {
          assert.equal(data.toString(), `up-${received}`);
          received++;
          if (received === MESSAGES) ws.send('got-all');
        });
        for (let i = 0; i < MESSAGES; i++) ws.send(`down-${i}`);
      } else if (req.url === '/chat/hello') {
        ws.send(`hello ${req.headers['x-forwarded-for']} ${req.headers['x-request-id'] ? 'with-id' : 'no-id'}`);
      }
    });
    gw = await startGateway({
      listeners: [{ name: 'main' }, { name: 'idle', limits: { websocketIdleTimeout: '300ms' } }],
      services: [{ name: 'chat', endpoints: [{ url: upstream.url }] }],
      routes: [
        { name: 'chat', match: { path: '/chat/*' }, service: 'chat' },
        { name: 'direct', match: { path: '/direct' }, directResponse: { status: 200, body: 'not a socket' } },
        { name: 'guarded', match: { path: '/guarded/*' }, service: 'chat', plugins: [{ name: 'key-auth' }] },
        { name: 'main-only', match: { path: '/main-only/*' }, service: 'chat', listeners: ['main'] },
      ],
    });
  });

  after(async () => {
    for (const ws of serverSockets) ws.terminate();
    wss.close();
    await gw.close();
    await upstream.close();
  });

  it(`exchanges ${MESSAGES} messages in both directions`, async () => {
    const ws = new WebSocket(wsUrl(gw, '/chat/flood'));
    const received: string[] = [];
    let gotAll!: () => void;
    const serverGotAll = new Promise<void>((r) => (gotAll = r));
    ws.on('message', (data) => {
      const text = data.toString();
      if (text === 'got-all') gotAll();
      else received.push(text);
    });
    await opened(ws);
    for (let i = 0; i < MESSAGES; i++) ws.send(`up-${i}`);
    await Promise.race([serverGotAll, sleep(20_000).then(() => assert.fail('the upstream did not get every message'))]);
    while (received.length < MESSAGES) await sleep(10);
    assert.deepEqual(received.slice(0, 3), ['down-0', 'down-1', 'down-2']);
    assert.equal(received.at(-1), `down-${MESSAGES - 1}`);
    ws.close();
    await closed(ws);
  });

  it('the upgrade request gets the usual request hygiene (forwarding headers, request id)', async () => {
    const ws = new WebSocket(wsUrl(gw, '/chat/hello'));
    const upgrade = new Promise<IncomingMessage>((resolve) => ws.once('upgrade', resolve));
    const first = await new Promise<string>((resolve) => ws.once('message', (d) => resolve(d.toString())));
    assert.equal(first, 'hello 127.0.0.1 with-id');
    const ids = (await upgrade).rawHeaders.filter((_, i, raw) => i % 2 === 1 && /^x-request-id$/i.test(raw[i - 1]!));
    assert.equal(ids.length, 1, 'one request id on the 101, even when the upstream echoes it');
    ws.close();
    await closed(ws);
  });

  it('closing the client closes the upstream side', async () => {
    const ws = new WebSocket(wsUrl(gw, '/chat/a'));
    await opened(ws);
    const server = serverSockets.at(-1)!;
    const serverClosed = closed(server);
    ws.close(4000, 'client done');
    const c = await serverClosed;
    assert.equal(c.code, 4000);
    assert.equal(c.reason, 'client done');
  });

  it('closing the upstream side closes the client', async () => {
    const ws = new WebSocket(wsUrl(gw, '/chat/b'));
    await opened(ws);
    const clientClosed = closed(ws);
    serverSockets.at(-1)!.close(4001, 'server done');
    const c = await clientClosed;
    assert.equal(c.code, 4001);
    assert.equal(c.reason, 'server done');
  });

  it('an upstream that vanishes (TCP reset) closes the client', async () => {
    const ws = new WebSocket(wsUrl(gw, '/chat/c'));
    await opened(ws);
    const clientClosed = closed(ws);
    serverSockets.at(-1)!.terminate();
    assert.equal((await clientClosed).code, 1006);
  });

  it('a silent connection is closed on both sides after websocketIdleTimeout', async () => {
    const ws = new WebSocket(wsUrl(gw, '/chat/idle', 'idle'));
    await opened(ws);
    const server = serverSockets.at(-1)!;
    const started = performance.now();
    const [client, upstreamSide] = await Promise.all([closed(ws), closed(server)]);
    const took = performance.now() - started;
    assert.equal(client.code, 1006);
    assert.equal(upstreamSide.code, 1006);
    assert.ok(took >= 250 && took < 2000, `closed after ${took} ms`);
  });

  it('a route with a direct response never upgrades', async () => {
    const before = upgrades;
    const r = await refusedStatus(new WebSocket(wsUrl(gw, '/direct')));
    assert.equal(r.status, 200);
    assert.equal(r.body, 'not a socket');
    assert.equal(upgrades, before);
  });

  it('a filter that refuses the upgrade request answers it, and nothing is upgraded', async () => {
    const seen = upstream.seen.length;
    const r = await refusedStatus(new WebSocket(wsUrl(gw, '/guarded/x')));
    assert.equal(r.status, 401);
    assert.equal(JSON.parse(r.body).code, 'MG_UNAUTHORIZED');
    assert.equal(upstream.seen.length, seen, 'the upstream never saw the request');
  });

  it('a route bound to one listener upgrades there only', async () => {
    const ws = new WebSocket(wsUrl(gw, '/main-only/x', 'main'));
    await opened(ws);
    ws.close();
    await closed(ws);
    const r = await refusedStatus(new WebSocket(wsUrl(gw, '/main-only/x', 'idle')));
    assert.equal(r.status, 404);
  });

  it('no route → 404, not upgraded', async () => {
    const r = await refusedStatus(new WebSocket(wsUrl(gw, '/elsewhere')));
    assert.equal(r.status, 404);
    assert.equal(JSON.parse(r.body).code, 'MG_ROUTE_NOT_FOUND');
  });
});
