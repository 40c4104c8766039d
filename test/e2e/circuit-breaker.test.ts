/**
 * Circuit breaking with Envoy's semantics: over a limit, a request is refused at once with 503
 * MG_CIRCUIT_OPEN, never queued; the breaker closes as soon as load drops. Shown in /services.
 */
import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request } from 'undici';
import { startGateway, startUpstream } from '../helpers/servers.ts';

const agent = new Agent({ connections: 128 });

async function until(condition: () => boolean, what: string, timeoutMs = 5000) {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** An upstream that holds every request until `release()`. */
async function slowUpstream() {
  const held: ServerResponse[] = [];
  const connections = new Set<unknown>();
  const upstream = await startUpstream((_req, res) => {
    held.push(res);
  });
  upstream.server.on('connection', (s) => connections.add(s));
  return {
    upstream,
    held,
    connections,
    release() {
      for (const res of held.splice(0)) res.end('done');
    },
  };
}

async function get(url: string) {
  const res = await request(url, { dispatcher: agent });
  const text = await res.body.text();
  return { status: res.statusCode, code: res.headers['x-meshgate-code'], text };
}

async function breakerView(adminUrl: string) {
  const res = await request(`${adminUrl}/services`, { dispatcher: agent });
  const body = (await res.body.json()) as {
    services: {
      name: string;
      circuitBreaker: {
        open: Record<string, boolean>;
        current: Record<string, number>;
        overflows: Record<string, number>;
      };
    }[];
  };
  return body.services[0]!.circuitBreaker;
}

describe('circuit breaker', () => {
  it('max pending requests 10: with the connection busy, the 11th waiting request is refused at once, and the breaker closes when load drops', async () => {
    const slow = await slowUpstream();
    const gw = await startGateway({
      services: [
        {
          name: 'svc',
          endpoints: [{ url: slow.upstream.url }],
          circuitBreaker: { maxConnections: 1, maxPendingRequests: 10 },
        },
      ],
      routes: [{ name: 'r', service: 'svc' }],
    });
    const breaker = gw.proxy.snapshot.services.get('svc')!.breaker;
    try {
      const inFlight = Array.from({ length: 11 }, (_, i) => get(`${gw.url()}/held/${i}`));
      await until(() => slow.held.length === 1 && breaker.pending === 10, 'one request sent and ten pending');
      const refused = await get(`${gw.url()}/one-too-many`);
      assert.equal(refused.status, 503);
      assert.equal(refused.code, 'MG_CIRCUIT_OPEN');
      assert.match(JSON.parse(refused.text).detail, /maxPendingRequests/);
      // At once: answered while the upstream still holds its one request and nothing has moved, so it
      // never waited for a slot (one would only free when the test releases the upstream).
      assert.equal(slow.held.length, 1);
      assert.equal(breaker.pending, 10);
      assert.equal(slow.connections.size, 1, 'the service never opened a second connection');

      const open = await breakerView(gw.adminUrl);
      assert.equal(open.open.maxPendingRequests, true);
      assert.equal(open.open.maxConnections, true);
      assert.equal(open.current.pendingRequests, 10);
      assert.equal(open.overflows.maxPendingRequests, 1);

      // Load drops: every held and queued request completes; the breaker is closed again.
      while ((await Promise.race([Promise.all(inFlight).then(() => true), sleep(20).then(() => false)])) === false)
        slow.release();
      for (const r of await Promise.all(inFlight)) assert.equal(r.status, 200);
      const closed = await breakerView(gw.adminUrl);
      assert.equal(closed.open.maxPendingRequests, false);
      assert.equal(closed.current.pendingRequests, 0);
      assert.equal(closed.current.requests, 0);
      const after = get(`${gw.url()}/after`);
      await until(() => slow.held.length === 1, 'the next request to reach the upstream');
      slow.release();
      assert.equal((await after).status, 200);
    } finally {
      slow.release();
      await gw.close();
      await slow.upstream.close();
    }
  });

  it('max requests 10: the 11th concurrent request is refused at once', async () => {
    const slow = await slowUpstream();
    const gw = await startGateway({
      services: [{ name: 'svc', endpoints: [{ url: slow.upstream.url }], circuitBreaker: { maxRequests: 10 } }],
      routes: [{ name: 'r', service: 'svc' }],
    });
    try {
      const inFlight = Array.from({ length: 10 }, (_, i) => get(`${gw.url()}/held/${i}`));
      await until(() => slow.held.length === 10, 'ten requests at the upstream');
      const started = performance.now();
      const refused = await get(`${gw.url()}/eleventh`);
      assert.ok(performance.now() - started < 200);
      assert.equal(refused.status, 503);
      assert.equal(refused.code, 'MG_CIRCUIT_OPEN');
      assert.match(JSON.parse(refused.text).detail, /maxRequests/);
      const ended = gw.ended.at(-1)!;
      assert.equal(ended.refusal, 'circuit-open:maxRequests');
      slow.release();
      for (const r of await Promise.all(inFlight)) assert.equal(r.status, 200);
      const next = get(`${gw.url()}/next`);
      await until(() => slow.held.length === 1, 'the next request to reach the upstream');
      slow.release();
      assert.equal((await next).status, 200);
    } finally {
      slow.release();
      await gw.close();
      await slow.upstream.close();
    }
  });

  it('max connections bounds the service’s connections; requests beyond wait for one', async () => {
    const slow = await slowUpstream();
    const gw = await startGateway({
      services: [{ name: 'svc', endpoints: [{ url: slow.upstream.url }], circuitBreaker: { maxConnections: 2 } }],
      routes: [{ name: 'r', service: 'svc' }],
    });
    try {
      const inFlight = Array.from({ length: 5 }, (_, i) => get(`${gw.url()}/w/${i}`));
      await until(() => slow.held.length === 2, 'two requests at the upstream');
      // The other three are in the service's queue, waiting for a connection.
      const breaker = gw.proxy.snapshot.services.get('svc')!.breaker;
      await until(() => breaker.pending === 3, 'three requests waiting');
      assert.equal(slow.held.length, 2, 'the other three wait for a connection');
      assert.equal(slow.connections.size, 2);
      while ((await Promise.race([Promise.all(inFlight).then(() => true), sleep(20).then(() => false)])) === false)
        slow.release();
      for (const r of await Promise.all(inFlight)) assert.equal(r.status, 200);
      assert.equal(slow.connections.size, 2);
    } finally {
      slow.release();
      await gw.close();
      await slow.upstream.close();
    }
  });
});
