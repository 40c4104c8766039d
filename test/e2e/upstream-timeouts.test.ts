/**
 * Upstream timeouts on real sockets: a try's timeout holds while its connection is still being set up
 * (a slow TLS handshake), and an upstream that stops sending mid-body is cut off after the idle
 * timeout, per service and per route.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createNetServer, type Server as NetServer } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { getCACertificates, setDefaultCACertificates } from 'node:tls';
import { request } from 'undici';
import { startGateway, startUpstream } from '../../src/testing/servers.ts';
import { TestPki } from '../helpers/certs.ts';

describe('upstream timeouts', () => {
  const pki = new TestPki('upstream-ca');
  let front: NetServer;
  let port = 0;

  before(async () => {
    // The gateway trusts this test's CA as it would a public one.
    setDefaultCACertificates([...getCACertificates('default'), readFileSync(pki.ca.cert, 'utf8')]);
    const leaf = pki.leaf('upstream', ['upstream.test', 'IP:127.0.0.1']);
    const https = createHttpsServer({ cert: readFileSync(leaf.cert), key: readFileSync(leaf.key) }, (_req, res) =>
      res.end('slow handshake, fast answer'),
    );
    // TCP connects at once; the TLS handshake starts 400 ms later.
    front = createNetServer((socket) => {
      setTimeout(() => https.emit('connection', socket), 400);
    });
    await new Promise<void>((r) => front.listen(0, '127.0.0.1', r));
    port = (front.address() as { port: number }).port;
  });

  after(() => {
    front.close();
    pki.remove();
  });

  it('a try whose connection is still being set up when its timeout passes fails with 504, not later with 200', async () => {
    const gw = await startGateway({
      services: [
        {
          name: 'slow-tls',
          endpoints: [{ url: `https://127.0.0.1:${port}` }],
          timeouts: { connect: '5s', request: '150ms' },
        },
      ],
      routes: [{ name: 'r', service: 'slow-tls' }],
    });
    try {
      const res = await request(`${gw.url()}/x`);
      const body = await res.body.text();
      assert.equal(res.statusCode, 504, body);
      assert.equal(res.headers['x-meshgate-code'], 'MG_UPSTREAM_TIMEOUT');
    } finally {
      await gw.close();
    }
  });

  it('an upstream that stops sending mid-body is cut off after the idle timeout (service, then route)', async () => {
    const stalling = await startUpstream((_req, res) => {
      res.writeHead(200, { 'content-length': '100' });
      res.write('first part;');
      // …and nothing more.
    });
    const gw = await startGateway({
      services: [{ name: 'stall', endpoints: [{ url: stalling.url }], timeouts: { idle: '200ms' } }],
      routes: [
        { name: 'longer', match: { path: '/longer' }, service: 'stall', timeouts: { idle: '600ms' } },
        { name: 'default', service: 'stall' },
      ],
    });
    try {
      for (const [path, idleMs] of [
        ['/x', 200],
        ['/longer', 600],
      ] as const) {
        const started = performance.now();
        const res = await request(`${gw.url()}${path}`);
        assert.equal(res.statusCode, 200);
        const outcome = await Promise.race([
          res.body.text().then(
            () => 'complete',
            () => 'aborted',
          ),
          sleep(5_000).then(() => 'still waiting'),
        ]);
        const tookMs = performance.now() - started;
        assert.equal(outcome, 'aborted', `${path}: a truncated body must not look complete`);
        assert.ok(tookMs >= idleMs - 20, `${path}: cut off after ${tookMs.toFixed(0)} ms, before its ${idleMs} ms`);
      }
    } finally {
      await gw.close();
      await stalling.close();
    }
  });
});
