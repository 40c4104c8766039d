/**
 * The aggregate action over real sockets: real upstreams on 127.0.0.1:0 with delays and failures, a
 * gateway built from a config object, undici as the client.
 */
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { after, describe, it } from 'node:test';
import { Agent, request } from 'undici';
import { parsePrometheusText } from '../../../testing/prometheus.ts';
import { startGateway, startUpstream, type TestGateway, type Upstream } from '../../../testing/servers.ts';

const agent = new Agent({ connections: 16 });
after(() => agent.close());

function json(res: ServerResponse, value: unknown, status = 200): void {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/** Answers `answer(req)` as JSON after `delayMs`. */
function jsonUpstream(answer: (req: IncomingMessage) => unknown, delayMs = 0, name = 'upstream'): Promise<Upstream> {
  return startUpstream((req, res) => {
    const send = () => {
      if (!res.destroyed) json(res, answer(req));
    };
    if (delayMs > 0) setTimeout(send, delayMs);
    else send();
  }, name);
}

async function get(url: string, headers: Record<string, string> = {}) {
  const started = performance.now();
  const res = await request(url, { dispatcher: agent, headers });
  const text = await res.body.text();
  return {
    status: res.statusCode,
    headers: res.headers,
    body: text === '' ? null : (JSON.parse(text) as Record<string, unknown>),
    ms: performance.now() - started,
  };
}

const service = (name: string, ...upstreams: (Upstream | string)[]) => ({
  name,
  endpoints: upstreams.map((u) => ({ url: typeof u === 'string' ? u : u.url })),
});

async function withGateway(
  config: Record<string, unknown>,
  upstreams: Upstream[],
  fn: (gw: TestGateway) => Promise<void>,
): Promise<void> {
  const gw = await startGateway(config);
  try {
    await fn(gw);
  } finally {
    await gw.close();
    for (const u of upstreams) await u.close();
  }
}

describe('aggregate action', () => {
  it('runs independent calls in parallel: the answer takes about as long as the slowest call', async () => {
    const a = await jsonUpstream(() => ({ id: 'a' }), 300);
    const b = await jsonUpstream(() => ({ id: 'b' }), 300);
    const c = await jsonUpstream(() => ({ id: 'c' }), 600);
    const config = {
      services: [service('a', a), service('b', b), service('c', c)],
      routes: [
        {
          name: 'composed',
          match: { path: '/composed' },
          aggregate: {
            calls: [
              { name: 'first', service: 'a', path: '/a' },
              { name: 'second', service: 'b', path: '/b' },
              { name: 'third', service: 'c', path: '/c' },
            ],
          },
        },
      ],
    };
    await withGateway(config, [a, b, c], async (gw) => {
      const r = await get(`${gw.url()}/composed`);
      assert.equal(r.status, 200);
      assert.equal(r.headers['content-type'], 'application/json');
      assert.deepEqual(r.body, { first: { id: 'a' }, second: { id: 'b' }, third: { id: 'c' } });
      assert.ok(r.ms >= 590, `took ${r.ms} ms: at least the slowest call`);
      assert.ok(r.ms < 1000, `took ${r.ms} ms: well under the 1200 ms the calls take one after another`);
      const ended = gw.ended.at(-1)!;
      assert.equal(ended.routeName, 'composed');
      assert.equal(ended.status, 200);
    });
  });

  it('fills a dependent call’s path from an earlier answer and the request, percent-encoded', async () => {
    const property = jsonUpstream((req) => ({ id: req.url!.split('/')[2], postcode: 'SW1A 1AA' }));
    const valuation = jsonUpstream((req) => ({ url: req.url }));
    const [p, v] = await Promise.all([property, valuation]);
    const config = {
      services: [service('property-service', p), service('valuation-service', v)],
      routes: [
        {
          name: 'property-full',
          match: { path: '/api/v2/properties/:id/full', methods: ['GET'] },
          aggregate: {
            calls: [
              { name: 'property', service: 'property-service', path: '/properties/$(params.id)', required: true },
              {
                name: 'valuation',
                service: 'valuation-service',
                path: '/valuations/$(results.property.postcode)?currency=$(query.currency)',
                dependsOn: ['property'],
              },
            ],
          },
        },
      ],
    };
    await withGateway(config, [p, v], async (gw) => {
      const r = await get(`${gw.url()}/api/v2/properties/p-17/full?currency=GBP`);
      assert.equal(r.status, 200);
      assert.deepEqual(r.body, {
        property: { id: 'p-17', postcode: 'SW1A 1AA' },
        valuation: { url: '/valuations/SW1A%201AA?currency=GBP' },
      });
      assert.equal(p.seen[0]!.url, '/properties/p-17');
      assert.equal(v.seen.length, 1);
      const routes = (await (await request(`${gw.adminUrl}/routes`)).body.json()) as {
        routes: { action: { kind: string; calls: { name: string; dependsOn: string[]; timeoutMs: number }[] } }[];
      };
      const action = routes.routes[0]!.action;
      assert.equal(action.kind, 'aggregate');
      assert.deepEqual(
        action.calls.map((c) => [c.name, c.dependsOn, c.timeoutMs]),
        [
          ['property', [], 30_000],
          ['valuation', ['property'], 30_000],
        ],
      );
    });
  });

  it('leaves out an optional call that times out and lists it under errors; the rest is intact', async () => {
    const fast = await jsonUpstream(() => ({ ok: true }));
    const slow = await jsonUpstream(() => ({ late: true }), 3000);
    const config = {
      services: [service('fast', fast), service('slow', slow)],
      routes: [
        {
          name: 'r',
          aggregate: {
            calls: [
              { name: 'main', service: 'fast', path: '/main', required: true },
              { name: 'photos', service: 'slow', path: '/photos', timeout: '200ms' },
              { name: 'thumbnails', service: 'fast', path: '/thumbs', dependsOn: ['photos'] },
            ],
          },
        },
      ],
    };
    await withGateway(config, [fast, slow], async (gw) => {
      const r = await get(`${gw.url()}/x`);
      assert.equal(r.status, 200);
      assert.ok(r.ms < 2000, `answered after the timeout, not the slow call (${r.ms} ms)`);
      assert.deepEqual(r.body!.main, { ok: true });
      assert.equal('photos' in r.body!, false);
      assert.equal('thumbnails' in r.body!, false);
      const errors = r.body!.errors as { call: string; code: string; detail: string }[];
      assert.deepEqual(
        errors.map((e) => [e.call, e.code]),
        [
          ['photos', 'MG_UPSTREAM_TIMEOUT'],
          ['thumbnails', 'MG_AGGREGATE_SKIPPED'],
        ],
      );
      assert.match(errors[0]!.detail, /200 ms/);
      assert.match(errors[1]!.detail, /photos/);
      assert.equal(fast.seen.filter((s) => s.url === '/thumbs').length, 0, 'the skipped call was not sent');
      const metrics = parsePrometheusText(await (await request(`${gw.adminUrl}/metrics`)).body.text());
      assert.equal(metrics.value('gateway_aggregate_calls_total', { service: 'fast', result: 'ok' }), 1);
      assert.equal(metrics.value('gateway_aggregate_calls_total', { service: 'fast', result: 'skipped' }), 1);
      assert.equal(metrics.value('gateway_aggregate_calls_total', { service: 'slow', result: 'failed' }), 1);
    });
  });

  it('fails with 502 problem+json naming a required call that failed, and aborts the others', async () => {
    const failing = await startUpstream((_req, res) => json(res, { message: 'gone' }, 404));
    let closed = 0;
    const hanging = await startUpstream((req) => {
      req.socket.once('close', () => closed++);
    });
    const config = {
      services: [service('property-service', failing), service('photo-service', hanging)],
      routes: [
        {
          name: 'r',
          aggregate: {
            calls: [
              { name: 'photos', service: 'photo-service', path: '/photos' },
              { name: 'property', service: 'property-service', path: '/p', required: true },
            ],
          },
        },
      ],
    };
    await withGateway(config, [failing, hanging], async (gw) => {
      const r = await get(`${gw.url()}/x`);
      assert.equal(r.status, 502);
      assert.equal(r.headers['content-type'], 'application/problem+json');
      assert.equal(r.headers['x-meshgate-code'], 'MG_AGGREGATE_CALL_FAILED');
      assert.equal(r.body!.code, 'MG_AGGREGATE_CALL_FAILED');
      assert.equal(r.body!.call, 'property');
      assert.equal(r.body!.callCode, 'MG_UPSTREAM_STATUS');
      assert.equal(r.body!.callStatus, 404);
      assert.equal(r.body!.requestId, r.headers['x-request-id']);
      assert.match(String(r.body!.detail), /property.*property-service.*404/);
      // The photo call still in flight was aborted: its connection closes.
      const deadline = Date.now() + 5000;
      while (closed === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
      assert.equal(closed, 1);
    });
  });

  it('treats an answer that is not JSON as a failure of the call', async () => {
    const text = await startUpstream((_req, res) => res.end('plain words'));
    const ok = await jsonUpstream(() => [1, 2]);
    const config = {
      services: [service('text', text), service('ok', ok)],
      routes: [
        {
          name: 'r',
          aggregate: {
            calls: [
              { name: 'words', service: 'text', path: '/' },
              { name: 'list', service: 'ok', path: '/' },
            ],
          },
        },
      ],
    };
    await withGateway(config, [text, ok], async (gw) => {
      const r = await get(`${gw.url()}/`);
      assert.equal(r.status, 200);
      assert.deepEqual(r.body!.list, [1, 2]);
      assert.deepEqual(
        (r.body!.errors as { call: string; code: string }[]).map((e) => [e.call, e.code]),
        [['words', 'MG_UPSTREAM_NOT_JSON']],
      );
    });
  });

  it('merges at the top level with merge: top; a later call’s member wins; a list stays under its name', async () => {
    const one = await jsonUpstream(() => ({ a: 1, shared: 'first' }));
    const two = await jsonUpstream(() => ({ b: 2, shared: 'second' }));
    const three = await jsonUpstream(() => ['x']);
    const config = {
      services: [service('one', one), service('two', two), service('three', three)],
      routes: [
        {
          name: 'r',
          aggregate: {
            merge: 'top',
            calls: [
              { name: 'one', service: 'one', path: '/' },
              { name: 'two', service: 'two', path: '/' },
              { name: 'tags', service: 'three', path: '/' },
            ],
          },
        },
      ],
    };
    await withGateway(config, [one, two, three], async (gw) => {
      const r = await get(`${gw.url()}/`);
      assert.equal(r.status, 200);
      assert.deepEqual(r.body, { a: 1, shared: 'second', b: 2, tags: ['x'] });
    });
  });

  it('retries a call by its service’s retry policy: one endpoint resets, the other answers', async () => {
    const resetting = await startUpstream((req) => req.socket.destroy(), 'resetting');
    const answering = await jsonUpstream(() => ({ from: 'b' }), 0, 'b');
    const config = {
      services: [
        {
          ...service('svc', resetting, answering),
          loadBalancer: { policy: 'round-robin' },
          retries: { attempts: 1, on: ['reset'], backoff: { base: '1ms', max: '5ms' }, budget: { minPerSecond: 100 } },
        },
      ],
      routes: [{ name: 'r', aggregate: { calls: [{ name: 'item', service: 'svc', path: '/item', required: true }] } }],
    };
    await withGateway(config, [resetting, answering], async (gw) => {
      for (let i = 0; i < 6; i++) {
        const r = await get(`${gw.url()}/`);
        assert.equal(r.status, 200, JSON.stringify(r.body));
        assert.deepEqual(r.body, { item: { from: 'b' } });
      }
      assert.ok(resetting.seen.length >= 2, 'round robin sent first tries to the resetting endpoint');
      assert.equal(answering.seen.length, 6);
      assert.equal(gw.proxy.snapshot.services.get('svc')!.stats.retries, resetting.seen.length);
    });
  });

  it('fails a required call to a service whose circuit is open at once, with the breaker’s code', async () => {
    const up = await jsonUpstream(() => ({}));
    const config = {
      services: [{ ...service('svc', up), circuitBreaker: { maxRequests: 0 } }],
      routes: [{ name: 'r', aggregate: { calls: [{ name: 'item', service: 'svc', path: '/', required: true }] } }],
    };
    await withGateway(config, [up], async (gw) => {
      const r = await get(`${gw.url()}/`);
      assert.equal(r.status, 502);
      assert.equal(r.body!.code, 'MG_AGGREGATE_CALL_FAILED');
      assert.equal(r.body!.callCode, 'MG_CIRCUIT_OPEN');
      assert.match(String(r.body!.detail), /maxRequests/);
      assert.equal(up.seen.length, 0);
      const service = gw.proxy.snapshot.services.get('svc')!;
      assert.equal(service.stats.breakerOverflows.maxRequests, 1);
      assert.equal(service.stats.refusals.list()[0]!.reason, 'circuit-open:maxRequests');
    });
  });

  it('sends the request id, trace context and allow-listed headers with every call, and no others', async () => {
    const a = await jsonUpstream(() => ({}));
    const b = await jsonUpstream(() => ({}));
    const config = {
      services: [service('a', a), service('b', b)],
      routes: [
        {
          name: 'r',
          aggregate: {
            calls: [
              { name: 'a', service: 'a', path: '/a', headers: ['Accept-Language'] },
              { name: 'b', service: 'b', path: '/b' },
            ],
          },
        },
      ],
    };
    const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    await withGateway(config, [a, b], async (gw) => {
      const r = await get(`${gw.url()}/`, {
        traceparent,
        'x-request-id': 'req-42',
        'accept-language': 'fr',
        authorization: 'Bearer secret',
      });
      assert.equal(r.status, 200);
      assert.equal(r.headers['x-request-id'], 'req-42');
      for (const up of [a, b]) {
        const h = up.seen[0]!.headers;
        assert.equal(h['x-request-id'], 'req-42');
        assert.equal(h.traceparent, traceparent);
        assert.equal(h.accept, 'application/json');
        assert.equal(h.authorization, undefined, 'not on the allow-list');
        assert.equal(h.host, `127.0.0.1:${up.port}`);
        assert.ok(h['x-forwarded-for']);
      }
      assert.equal(a.seen[0]!.headers['accept-language'], 'fr');
      assert.equal(b.seen[0]!.headers['accept-language'], undefined);
    });
  });

  it('runs request filters first (a refused request makes no call) and response filters on the answer', async () => {
    const up = await jsonUpstream((req) => ({ url: req.url }));
    const config = {
      services: [service('svc', up)],
      consumers: [{ name: 'mobile-app', credentials: [{ type: 'api-key', key: 'k-0123456789abcdef' }] }],
      routes: [
        {
          name: 'r',
          aggregate: { calls: [{ name: 'me', service: 'svc', path: '/users/$(consumer.name)' }] },
          plugins: [{ name: 'key-auth' }, { name: 'cors', config: { origins: ['https://app.example.com'] } }],
        },
      ],
    };
    await withGateway(config, [up], async (gw) => {
      const refused = await get(`${gw.url()}/`);
      assert.equal(refused.status, 401);
      assert.equal(up.seen.length, 0);
      const r = await get(`${gw.url()}/`, { 'x-api-key': 'k-0123456789abcdef', origin: 'https://app.example.com' });
      assert.equal(r.status, 200);
      assert.deepEqual(r.body, { me: { url: '/users/mobile-app' } });
      assert.equal(r.headers['access-control-allow-origin'], 'https://app.example.com');
    });
  });

  it('aborts the calls in flight when the client goes away', async () => {
    let closed = 0;
    const hanging = await startUpstream((req) => {
      req.socket.once('close', () => closed++);
    });
    const config = {
      services: [service('svc', hanging)],
      routes: [{ name: 'r', aggregate: { calls: [{ name: 'slow', service: 'svc', path: '/' }] } }],
    };
    await withGateway(config, [hanging], async (gw) => {
      const controller = new AbortController();
      const pending = request(`${gw.url()}/`, { dispatcher: agent, signal: controller.signal }).catch((e) => e);
      const deadline = Date.now() + 5000;
      while (hanging.seen.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      assert.equal(hanging.seen.length, 1);
      controller.abort();
      await pending;
      while (closed === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      assert.equal(closed, 1, 'the upstream call was aborted');
      while (gw.ended.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      assert.equal(gw.ended[0]!.code, 'MG_CLIENT_CLOSED');
      const breaker = gw.proxy.snapshot.services.get('svc')!.breaker;
      assert.equal(breaker.requests, 0, 'the aborted call gave its breaker slot back');
    });
  });

  it('bounds an answer by maxBodyBytes', async () => {
    const big = await startUpstream((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' }); // chunked: no length to refuse early
      res.end(JSON.stringify({ blob: 'x'.repeat(5000) }));
    });
    const config = {
      services: [service('svc', big)],
      routes: [{ name: 'r', aggregate: { calls: [{ name: 'blob', service: 'svc', path: '/', maxBodyBytes: 1000 }] } }],
    };
    await withGateway(config, [big], async (gw) => {
      const r = await get(`${gw.url()}/`);
      assert.equal(r.status, 200);
      assert.deepEqual(
        (r.body!.errors as { call: string; code: string }[]).map((e) => [e.call, e.code]),
        [['blob', 'MG_RESPONSE_TOO_LARGE']],
      );
    });
  });
});
