/**
 * Static stability of the proxy's subscription, against a control plane that misbehaves: a real HTTP
 * server speaking the stream protocol badly (garbage events, invalid configs, silence, refusals,
 * dropped connections). The proxy is a real ProxyServer serving real requests throughout.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, describe, it } from 'node:test';
import { request } from 'undici';
import { eventually, startMeshProxy, type TestMeshProxy } from '../../../test/helpers/mesh.ts';
import type { Ack, StreamHello } from '../../api/mesh.ts';
import { hashConfig } from '../../config/load.ts';

const GOOD = {
  listeners: [{ name: 'main', port: 0, address: '127.0.0.1' }],
  routes: [{ name: 'hello', directResponse: { status: 200, body: 'good' } }],
};

/** A control plane under the test's control: it records hellos and ACKs, and runs `onStream` per stream. */
class RogueControlPlane {
  readonly server: Server;
  readonly hellos: { at: number; hello: StreamHello }[] = [];
  readonly acks: Ack[] = [];
  onStream: (res: ServerResponse, hello: StreamHello, n: number) => void = () => {};
  private streams: ServerResponse[] = [];

  constructor() {
    this.server = createServer((req, res) => void this.handle(req, res));
  }

  async listen(): Promise<string> {
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  private async handle(req: IncomingMessage, res: ServerResponse) {
    let body = '';
    for await (const chunk of req) body += chunk;
    if (req.url === '/ack') {
      this.acks.push(JSON.parse(body));
      res.end('{}');
      return;
    }
    const hello = JSON.parse(body) as StreamHello;
    this.hellos.push({ at: performance.now(), hello });
    this.streams.push(res);
    this.onStream(res, hello, this.hellos.length);
  }

  static event(res: ServerResponse, event: string, data: unknown) {
    res.write(`event: ${event}\ndata: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`);
  }

  static welcome(res: ServerResponse, stream: string, keepaliveMs = 5_000) {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    RogueControlPlane.event(res, 'welcome', { stream, controlPlane: { id: 'rogue', startedAt: '' }, keepaliveMs });
  }

  async close() {
    for (const s of this.streams) s.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

async function body(url: string) {
  const res = await request(url);
  return `${res.statusCode} ${await res.body.text()}`;
}

describe('proxy subscription: static stability', () => {
  const closers: (() => Promise<void>)[] = [];
  after(async () => {
    for (const c of closers.reverse()) await c();
  });
  async function setup(extra = {}) {
    const rogue = new RogueControlPlane();
    const url = await rogue.listen();
    closers.push(() => rogue.close());
    return { rogue, url, start: () => track(startMeshProxy(url, { id: 'p1', kind: 'gateway' }, extra)) };
  }
  const track = (p: TestMeshProxy) => {
    closers.push(() => p.close());
    return p;
  };

  it('NACKs an invalid config with located issues and keeps serving; ignores garbage', async () => {
    const { rogue, start } = await setup();
    rogue.onStream = (res) => {
      RogueControlPlane.welcome(res, 's1');
      RogueControlPlane.event(res, 'push', { version: 'v1', nonce: 'n1', changes: [1], config: GOOD });
    };
    const proxy = start();
    await proxy.subscription.firstConfig;
    const base = `http://127.0.0.1:${proxy.plane.ports().main}`;
    assert.equal(await body(base), '200 good');
    await eventually(() => rogue.acks.length === 1, 2_000, 'the ACK');
    assert.deepEqual(
      { ...rogue.acks[0], applyMs: undefined, rssBytes: undefined },
      { proxy: 'p1', stream: 's1', nonce: 'n1', version: 'v1', status: 'ack', applyMs: undefined, rssBytes: undefined },
    );
    // The process's resident memory when it answered (this test process's).
    assert.ok(rogue.acks[0]!.rssBytes! > 10 * 2 ** 20 && rogue.acks[0]!.rssBytes! <= process.memoryUsage.rss() * 2);

    const stream = (rogue as unknown as { streams: ServerResponse[] }).streams[0]!;
    RogueControlPlane.event(stream, 'push', '{not json');
    RogueControlPlane.event(stream, 'push', { config: GOOD });
    RogueControlPlane.event(stream, 'push', {
      version: 'v2',
      nonce: 'n2',
      changes: [2],
      config: { ...GOOD, routes: [{ name: 'broken', service: 'nowhere' }], colour: 'red' },
    });
    await eventually(() => rogue.acks.length === 2, 2_000, 'the NACK');
    const nack = rogue.acks[1]!;
    assert.equal(nack.status, 'nack');
    assert.equal(nack.nonce, 'n2');
    assert.equal(nack.kept, 'v1');
    assert.match(nack.error!.message, /invalid config: 2 problems/);
    assert.deepEqual(nack.error!.issues!.map((i) => `${i.path}: ${i.message}`).sort(), [
      'colour: unknown field "colour"',
      'routes[0].service: unknown service "nowhere"',
    ]);
    assert.equal(proxy.subscription.status().garbage, 2);
    assert.equal(await body(base), '200 good', 'still the last good config');
    assert.equal(proxy.subscription.status().version, 'v1');
  });

  it('reconnects with exponential backoff and full jitter, and says which version it serves', async () => {
    const { rogue, start } = await setup({ reconnectBaseMs: 40, reconnectMaxMs: 320, random: () => 1 });
    rogue.onStream = (res, _hello, n) => {
      if (n === 1) {
        RogueControlPlane.welcome(res, 's1');
        RogueControlPlane.event(res, 'push', { version: 'v1', nonce: 'n1', changes: [], config: GOOD });
        setTimeout(() => res.destroy(), 100);
      } else if (n < 6) {
        res.writeHead(503, { 'content-type': 'application/json' });
        res.end('{"error":"overloaded"}');
      } else RogueControlPlane.welcome(res, 's6');
    };
    const proxy = start();
    await proxy.subscription.firstConfig;
    const base = `http://127.0.0.1:${proxy.plane.ports().main}`;
    await eventually(() => rogue.hellos.length >= 6, 5_000, 'six connection attempts');
    assert.equal(await body(base), '200 good', 'served all along');
    const gaps = rogue.hellos.slice(1).map((h, i) => h.at - rogue.hellos[i]!.at);
    // With the jitter pinned at its ceiling: 40, 80, 160, 320, 320 ms after each failure.
    const expected = [40, 80, 160, 320, 320];
    gaps.slice(1).forEach((gap, i) => {
      assert.ok(
        gap >= expected[i + 1]! - 5 && gap < expected[i + 1]! + 150,
        `gap ${i + 1}: ${gap} ms, expected ~${expected[i + 1]}`,
      );
    });
    assert.equal(rogue.hellos[0]!.hello.version, null);
    assert.ok(
      rogue.hellos.slice(1).every((h) => h.hello.version === 'v1'),
      'every reconnect carries v1',
    );
    assert.match(proxy.subscription.status().lastError ?? '', /overloaded/);
    await eventually(() => proxy.subscription.status().connected, 2_000, 'connected again');
  });

  it('jitter spreads reconnects below the ceiling', async () => {
    const { rogue, start } = await setup({ reconnectBaseMs: 200, reconnectMaxMs: 200, random: () => 0.25 });
    rogue.onStream = (res, _hello, n) => {
      if (n < 3) {
        res.writeHead(503);
        res.end();
      } else RogueControlPlane.welcome(res, 's');
    };
    start();
    await eventually(() => rogue.hellos.length >= 3, 3_000, 'three attempts');
    const gap = rogue.hellos[2]!.at - rogue.hellos[1]!.at;
    assert.ok(gap >= 45 && gap < 150, `a quarter of the 200 ms ceiling, got ${gap}`);
  });

  it('a silent stream is given up after the idle timeout, and the proxy reconnects', async () => {
    const { rogue, start } = await setup({ idleTimeoutMs: 200, reconnectBaseMs: 10, reconnectMaxMs: 10 });
    rogue.onStream = (res, _hello, n) => {
      RogueControlPlane.welcome(res, `s${n}`);
      if (n === 1) RogueControlPlane.event(res, 'push', { version: 'v1', nonce: 'n1', changes: [], config: GOOD });
    };
    const proxy = start();
    await proxy.subscription.firstConfig;
    await eventually(() => rogue.hellos.length >= 2, 2_000, 'a reconnect');
    const gap = rogue.hellos[1]!.at - rogue.hellos[0]!.at;
    assert.ok(gap >= 190 && gap < 600, `reconnected ${gap} ms after the last event`);
    assert.match(proxy.subscription.status().lastError ?? '', /silent for 200 ms/);
  });

  it('keeps serving while the control plane is gone for good', async () => {
    const { rogue, start } = await setup({ reconnectBaseMs: 20, reconnectMaxMs: 50 });
    rogue.onStream = (res) => {
      RogueControlPlane.welcome(res, 's1');
      RogueControlPlane.event(res, 'push', { version: hashConfig(GOOD), nonce: 'n1', changes: [], config: GOOD });
    };
    const proxy = start();
    await proxy.subscription.firstConfig;
    const base = `http://127.0.0.1:${proxy.plane.ports().main}`;
    await rogue.close();
    await eventually(
      () => proxy.subscription.status().failures >= 3,
      2_000,
      'three failed reconnects: it keeps trying',
    );
    assert.equal(proxy.subscription.status().connected, false);
    for (let i = 0; i < 20; i++) assert.equal(await body(base), '200 good');
    assert.match(proxy.subscription.status().lastError ?? '', /ECONNREFUSED/);
  });
});
