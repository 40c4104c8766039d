/**
 * Retries, per-try and overall timeouts, X-Request-Timeout and the retry budget, against real
 * upstreams that fail in real ways (reset, refuse, hang, 5xx, Retry-After).
 */
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, Pool, request } from 'undici';
import { upstreamDecisions } from '../../src/proxy/upstream/decisions.ts';
import { rawRequest } from '../helpers/raw.ts';
import { echo, startGateway, startUpstream, type TestGateway, type Upstream } from '../helpers/servers.ts';

const agent = new Agent({ connections: 64 });
after(() => agent.close());

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString()));
    req.on('error', reject);
  });
}

/** Answers 200 with the request body it read. */
const bodyEcho = (name: string) =>
  startUpstream(async (req, res) => {
    const body = await readBody(req);
    res.end(`${name}:${body}`);
  }, name);

/** Resets the connection before answering (after reading the body when asked to). */
const resetting = (readFirst = false) =>
  startUpstream(async (req) => {
    if (readFirst) await readBody(req);
    req.socket.destroy();
  }, 'resetting');

async function deadUrl(): Promise<string> {
  const u = await startUpstream();
  await u.close();
  return u.url;
}

async function call(url: string, options: Parameters<typeof request>[1] = {}) {
  const started = performance.now();
  const res = await request(url, { dispatcher: agent, ...options });
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, text, ms: performance.now() - started };
}

function twoEndpoints(
  a: Upstream | string,
  b: Upstream,
  retries: Record<string, unknown>,
  extra: Record<string, unknown> = {},
) {
  return {
    services: [
      {
        name: 'svc',
        endpoints: [{ url: typeof a === 'string' ? a : a.url }, { url: b.url }],
        // Round robin sends every first try to the failing endpoint: allow the retries that takes.
        retries: { backoff: { base: '1ms', max: '5ms' }, budget: { minPerSecond: 100 }, ...retries },
        ...extra,
      },
    ],
    routes: [{ name: 'r', service: 'svc' }],
  };
}

async function withGateway(
  config: Record<string, unknown>,
  fn: (gw: TestGateway) => Promise<void>,
  ...servers: Upstream[]
) {
  const gw = await startGateway(config);
  try {
    await fn(gw);
  } finally {
    await gw.close();
    for (const s of servers) await s.close();
  }
}

describe('retries', () => {
  it('retries an idempotent request that was reset, on another endpoint, and records both tries', async () => {
    const a = await resetting();
    const b = await startUpstream(echo, 'b');
    await withGateway(
      twoEndpoints(a, b, { attempts: 1, on: ['reset'] }),
      async (gw) => {
        for (let i = 0; i < 20; i++) {
          const r = await call(`${gw.url()}/item/${i}`);
          assert.equal(r.status, 200);
          assert.equal(r.headers['x-upstream'], 'b');
        }
        assert.equal(b.seen.length, 20);
        assert.ok(a.seen.length >= 5, 'round robin sent some first tries to the resetting endpoint');
        const retried = gw.ended.filter((c) => c.tries === 2);
        assert.equal(retried.length, a.seen.length);
        const d = upstreamDecisions(retried[0]!);
        assert.deepEqual(
          d.tryLog.map((t) => t.outcome),
          ['MG_UPSTREAM_RESET', 'status 200'],
        );
        assert.equal(d.tryLog[0]!.endpoint, `127.0.0.1:${a.port}`);
        assert.equal(d.tryLog[1]!.endpoint, `127.0.0.1:${b.port}`);
      },
      a,
      b,
    );
  });

  it('with consistent hashing, a retry still goes to another endpoint than the one the key maps to', async () => {
    const a = await resetting();
    const b = await startUpstream(echo, 'b');
    await withGateway(
      twoEndpoints(
        a,
        b,
        { attempts: 1, on: ['reset'] },
        { loadBalancer: { policy: 'ring-hash', hashOn: { header: 'x-user' } } },
      ),
      async (gw) => {
        for (let i = 0; i < 30; i++) {
          const r = await call(`${gw.url()}/`, { headers: { 'x-user': `user-${i}` } });
          assert.equal(r.status, 200, `user-${i}`);
        }
        assert.ok(a.seen.length > 0);
      },
      a,
      b,
    );
  });

  it('does not retry a reset POST (non-idempotent) unless told to; then it replays the body', async () => {
    const a = await resetting(true);
    const b = await bodyEcho('b');
    await withGateway(
      { ...twoEndpoints(a, b, { attempts: 1, on: ['reset'] }, { loadBalancer: { policy: 'round-robin' } }) },
      async (gw) => {
        const results = [];
        for (let i = 0; i < 6; i++) results.push(await call(`${gw.url()}/`, { method: 'POST', body: `payload-${i}` }));
        const failed = results.filter((r) => r.status === 502);
        assert.ok(failed.length >= 2, 'the POSTs that hit the resetting endpoint failed');
        assert.equal(failed[0]!.headers['x-meshgate-code'], 'MG_UPSTREAM_RESET');
        assert.equal(gw.ended.find((c) => c.status === 502)!.retryStop, 'non-idempotent');
      },
      a,
      b,
    );
    const a2 = await resetting(true);
    const b2 = await bodyEcho('b');
    await withGateway(
      twoEndpoints(a2, b2, { attempts: 1, on: ['reset'], nonIdempotent: true }),
      async (gw) => {
        for (let i = 0; i < 6; i++) {
          const r = await call(`${gw.url()}/`, { method: 'POST', body: `payload-${i}` });
          assert.equal(r.status, 200);
          assert.equal(r.text, `b:payload-${i}`);
        }
        assert.ok(a2.seen.length > 0);
      },
      a2,
      b2,
    );
  });

  it('retries a POST after a connect failure whatever the method: nothing was sent', async () => {
    const b = await bodyEcho('b');
    await withGateway(
      twoEndpoints(await deadUrl(), b, { attempts: 1, on: ['connect-failure'] }),
      async (gw) => {
        for (let i = 0; i < 6; i++) {
          const r = await call(`${gw.url()}/`, { method: 'POST', body: `p${i}` });
          assert.equal(r.status, 200);
          assert.equal(r.text, `b:p${i}`);
        }
        assert.ok(gw.ended.some((c) => c.tries === 2 && c.tryLog?.[0]?.outcome === 'MG_UPSTREAM_CONNECT_FAILURE'));
      },
      b,
    );
  });

  it('replays a body that streamed while the first try failed, as long as it fits the replay buffer', async () => {
    const a = await startUpstream((req) => {
      // Read the first chunk, then die mid-upload.
      req.once('data', () => req.socket.destroy());
    }, 'a');
    const b = await bodyEcho('b');
    await withGateway(
      twoEndpoints(
        a,
        b,
        { attempts: 1, on: ['reset'], replayBufferBytes: 100_000 },
        { loadBalancer: { policy: 'round-robin' } },
      ),
      async (gw) => {
        for (let i = 0; i < 4; i++) {
          async function* slowBody() {
            for (let c = 0; c < 5; c++) {
              yield Buffer.from(`chunk${c};`);
              await sleep(20);
            }
          }
          const r = await call(`${gw.url()}/upload`, { method: 'PUT', body: Readable.from(slowBody()) });
          assert.equal(r.status, 200);
          assert.equal(r.text, 'b:chunk0;chunk1;chunk2;chunk3;chunk4;');
        }
        assert.ok(a.seen.length >= 1);
      },
      a,
      b,
    );
  });

  it('does not retry a request whose body outgrew the replay buffer', async () => {
    const a = await resetting(true);
    const b = await bodyEcho('b');
    await withGateway(
      twoEndpoints(
        a,
        b,
        { attempts: 1, on: ['reset'], replayBufferBytes: 1024 },
        { loadBalancer: { policy: 'round-robin' } },
      ),
      async (gw) => {
        const big = 'x'.repeat(4096);
        const small = 'y'.repeat(512);
        const bigResults = [
          await call(`${gw.url()}/`, { method: 'PUT', body: big }),
          await call(`${gw.url()}/`, { method: 'PUT', body: big }),
        ];
        const failed = bigResults.find((r) => r.status === 502);
        assert.ok(failed, 'the large body that hit the resetting endpoint was not retried');
        assert.equal(gw.ended.find((c) => c.status === 502)!.retryStop, 'body-not-replayable');
        const smallResults = [
          await call(`${gw.url()}/`, { method: 'PUT', body: small }),
          await call(`${gw.url()}/`, { method: 'PUT', body: small }),
        ];
        for (const r of smallResults) assert.equal(r.text, `b:${small}`);
      },
      a,
      b,
    );
  });

  it('a body nobody reads (the upstream answered early and closed) is drained, so the client connection goes on', async () => {
    const early = await startUpstream((_req, res) => {
      res.setHeader('connection', 'close');
      res.end('early');
    }, 'early');
    await withGateway(
      {
        services: [{ name: 'svc', endpoints: [{ url: early.url }], retries: { attempts: 1 } }],
        routes: [{ name: 'r', service: 'svc' }],
      },
      async (gw) => {
        const port = Number(new URL(gw.url()).port);
        // Far beyond the replay buffer and the socket buffers: the try ends long before the body does.
        const body = 'x'.repeat(2_000_000);
        const res = await rawRequest(
          port,
          `POST /a HTTP/1.1\r\nHost: t\r\nContent-Length: ${body.length}\r\n\r\n${body}GET /b HTTP/1.1\r\nHost: t\r\n\r\n`,
          500,
        );
        const statuses = res.text.match(/HTTP\/1\.1 \d+/g) ?? [];
        assert.equal(statuses.length, 2, `responses: ${statuses.join(', ')}`);
        assert.equal(statuses[1], 'HTTP/1.1 200', 'the next request on the connection is served');
      },
      early,
    );
  });

  it('retries a 5xx response without passing any of it to the client', async () => {
    const a = await startUpstream((_req, res) => {
      res.writeHead(503, { 'content-type': 'text/plain', 'x-from': 'a' });
      res.end('a is overloaded');
    }, 'a');
    const b = await startUpstream(echo, 'b');
    let aConnections = 0;
    a.server.on('connection', () => aConnections++);
    await withGateway(
      twoEndpoints(a, b, { attempts: 1, on: ['gateway-error'] }),
      async (gw) => {
        for (let i = 0; i < 10; i++) {
          const r = await call(`${gw.url()}/`);
          assert.equal(r.status, 200);
          assert.equal(r.headers['x-from'], undefined);
          assert.ok(!r.text.includes('overloaded'));
        }
        assert.ok(a.seen.length >= 3);
        assert.equal(aConnections, 1, 'small error bodies are drained, so the connection is reused');
      },
      a,
      b,
    );
  });

  it('stops after `attempts` retries and answers with the last response', async () => {
    const a = await startUpstream((_req, res) => {
      res.statusCode = 503;
      res.end('no');
    });
    await withGateway(
      {
        services: [
          { name: 'svc', endpoints: [{ url: a.url }], retries: { attempts: 2, on: ['5xx'], backoff: { base: '1ms' } } },
        ],
        routes: [{ name: 'r', service: 'svc' }],
      },
      async (gw) => {
        const r = await call(`${gw.url()}/`);
        assert.equal(r.status, 503);
        assert.equal(r.text, 'no');
        assert.equal(a.seen.length, 3);
        const ctx = gw.ended.at(-1)!;
        assert.equal(ctx.tries, 3);
        assert.equal(ctx.retryStop, 'attempts-exhausted');
      },
      a,
    );
  });

  it('retries configured status codes and gRPC statuses', async () => {
    let n = 0;
    const a = await startUpstream((_req, res) => {
      n++;
      if (n === 1) res.writeHead(409).end('conflict');
      else if (n === 2) res.writeHead(200, { 'content-type': 'application/grpc', 'grpc-status': '14' }).end();
      else res.end('fine');
    });
    await withGateway(
      {
        services: [
          {
            name: 'svc',
            endpoints: [{ url: a.url }],
            retries: {
              attempts: 3,
              on: ['retriable-status-codes', 'unavailable'],
              statusCodes: [409],
              backoff: { base: '1ms' },
            },
          },
        ],
        routes: [{ name: 'r', service: 'svc' }],
      },
      async (gw) => {
        const r = await call(`${gw.url()}/`);
        assert.equal(r.text, 'fine');
        assert.deepEqual(
          gw.ended.at(-1)!.tryLog!.map((t) => t.outcome),
          ['status 409', 'status 200'],
        );
      },
      a,
    );
  });

  it('honours Retry-After, and passes the response on when it asks for longer than maxRetryAfter', async () => {
    let n = 0;
    const a = await startUpstream((_req, res) => {
      if (n++ % 2 === 0) res.writeHead(503, { 'retry-after': '1' }).end('later');
      else res.end('now');
    });
    await withGateway(
      {
        services: [{ name: 'svc', endpoints: [{ url: a.url }], retries: { attempts: 1, on: ['5xx'] } }],
        routes: [
          { name: 'patient', match: { path: '/patient' }, service: 'svc' },
          { name: 'hasty', match: { path: '/hasty' }, service: 'svc', retries: { maxRetryAfter: '500ms' } },
        ],
      },
      async (gw) => {
        const patient = await call(`${gw.url()}/patient`);
        assert.equal(patient.text, 'now');
        assert.ok(patient.ms >= 990, `retried after ${patient.ms.toFixed(0)} ms, before Retry-After`);
        const hasty = await call(`${gw.url()}/hasty`);
        assert.equal(hasty.status, 503);
        assert.equal(hasty.headers['retry-after'], '1');
        assert.ok(hasty.ms < 500);
        assert.equal(gw.ended.at(-1)!.retryStop, 'retry-after-too-long');
      },
      a,
    );
  });

  it('a per-try timeout moves on to another endpoint', async () => {
    const hanging = await startUpstream(() => {}, 'hanging');
    const b = await startUpstream(echo, 'b');
    await withGateway(
      twoEndpoints(hanging, b, { attempts: 1, on: ['reset'], perTryTimeout: '150ms' }),
      async (gw) => {
        for (let i = 0; i < 4; i++) {
          const r = await call(`${gw.url()}/`);
          assert.equal(r.status, 200);
          assert.ok(r.ms < 1000);
        }
        const timedOut = gw.ended.find((c) => c.tries === 2)!;
        assert.equal(timedOut.tryLog![0]!.outcome, 'MG_UPSTREAM_TIMEOUT');
      },
      hanging,
      b,
    );
  });

  it('the request timeout bounds all tries together', async () => {
    const hanging = await startUpstream(() => {});
    await withGateway(
      {
        services: [
          {
            name: 'svc',
            endpoints: [{ url: hanging.url }],
            timeouts: { request: '500ms' },
            retries: { attempts: 5, on: ['reset'], perTryTimeout: '200ms', backoff: { base: '1ms' } },
          },
        ],
        routes: [{ name: 'r', service: 'svc' }],
      },
      async (gw) => {
        const r = await call(`${gw.url()}/`);
        assert.equal(r.status, 504);
        assert.ok(r.ms >= 450 && r.ms < 900, `took ${r.ms.toFixed(0)} ms`);
        // Several tries, all inside the one 500 ms (how many depends on when each timer fires: a per-try
        // timeout moving on is the test above).
        assert.ok(hanging.seen.length >= 2, `${hanging.seen.length} tries: the first was retried`);
      },
      hanging,
    );
  });

  it('maxRetries 0 in the circuit breaker stops retries', async () => {
    const a = await resetting();
    const b = await startUpstream(echo, 'b');
    await withGateway(
      twoEndpoints(a, b, { attempts: 1, on: ['reset'] }, { circuitBreaker: { maxRetries: 0 } }),
      async (gw) => {
        await call(`${gw.url()}/`);
        await call(`${gw.url()}/`);
        const stopped = gw.ended.find((c) => c.status === 502)!;
        assert.equal(stopped.retryStop, 'circuit-open:maxRetries');
      },
      a,
      b,
    );
  });

  it('a client that leaves during the backoff cancels the retry', async () => {
    // Retry-After: 2 makes the wait before the retry at least 2 s (the jittered backoff could be a few
    // ms, shorter than the client's leaving takes to reach the gateway).
    const a = await startUpstream((_req, res) => res.writeHead(503, { 'retry-after': '2' }).end());
    await withGateway(
      {
        services: [
          {
            name: 'svc',
            endpoints: [{ url: a.url }],
            retries: { attempts: 1, on: ['5xx'], backoff: { base: '10ms', max: '10ms' } },
          },
        ],
        routes: [{ name: 'r', service: 'svc' }],
      },
      async (gw) => {
        const breaker = gw.proxy.snapshot.services.get('svc')!.breaker;
        const retries = () => breaker.retries;
        const ended = gw.ended.length;
        const controller = new AbortController();
        const pending = request(`${gw.url()}/`, { dispatcher: agent, signal: controller.signal }).catch(() => null);
        const deadline = performance.now() + 5_000;
        while (retries() === 0 && performance.now() < deadline) await sleep(5);
        assert.equal(a.seen.length, 1);
        assert.equal(retries(), 1, 'a retry waits');
        controller.abort();
        await pending;
        // The request is over (its log phase ran) and holds no retry: a retry sent meanwhile would
        // have reached the upstream before either.
        while (!(gw.ended.length > ended && retries() === 0) && performance.now() < deadline) await sleep(5);
        assert.equal(retries(), 0);
        assert.ok(gw.ended.length > ended, 'the request ended');
        assert.equal(a.seen.length, 1, 'no retry after the client left');
      },
      a,
    );
  });
});

describe('timeouts: X-Request-Timeout', () => {
  it('shortens the route timeout but never extends it, and is not forwarded', async () => {
    const hanging = await startUpstream((req, res) => {
      if (req.url === '/fast') res.end(JSON.stringify(req.headers));
    });
    await withGateway(
      {
        services: [{ name: 'svc', endpoints: [{ url: hanging.url }] }],
        routes: [
          { name: 'long', match: { path: '/long' }, service: 'svc', timeouts: { request: '5s' } },
          { name: 'short', match: { path: '/short' }, service: 'svc', timeouts: { request: '200ms' } },
          { name: 'fast', match: { path: '/fast' }, service: 'svc' },
        ],
      },
      async (gw) => {
        const shortened = await call(`${gw.url()}/long`, { headers: { 'x-request-timeout': '200ms' } });
        assert.equal(shortened.status, 504);
        assert.ok(shortened.ms >= 180 && shortened.ms < 1000, `took ${shortened.ms.toFixed(0)} ms`);
        assert.equal(gw.ended.at(-1)!.timeoutMs, 200);

        const notExtended = await call(`${gw.url()}/short`, { headers: { 'x-request-timeout': '5s' } });
        assert.equal(notExtended.status, 504);
        assert.ok(notExtended.ms < 1000);

        const garbage = await call(`${gw.url()}/short`, { headers: { 'x-request-timeout': 'soon' } });
        assert.equal(garbage.status, 504);
        assert.equal(gw.ended.at(-1)!.timeoutMs, 200, 'an unreadable value is ignored');

        const fast = await call(`${gw.url()}/fast`, { headers: { 'x-request-timeout': '2s' } });
        assert.equal(JSON.parse(fast.text)['x-request-timeout'], undefined);
      },
      hanging,
    );
  });
});

describe('retry budget', () => {
  it('with a 20% budget and an upstream failing every request, upstream load stays within 1.2× the client load plus the minimum rate', async () => {
    const failing = await startUpstream((_req, res) => {
      res.statusCode = 503;
      res.end();
    });
    const minPerSecond = 10;
    await withGateway(
      {
        services: [
          {
            name: 'svc',
            endpoints: [{ url: failing.url }],
            retries: {
              attempts: 3,
              on: ['5xx'],
              backoff: { base: '1ms', max: '2ms' },
              budget: { percent: 20, minPerSecond, window: '10s' },
            },
          },
        ],
        routes: [{ name: 'r', service: 'svc' }],
      },
      async (gw) => {
        const pool = new Pool(gw.url(), { connections: 16 });
        const started = performance.now();
        let clientRequests = 0;
        await Promise.all(
          Array.from({ length: 16 }, async () => {
            while (performance.now() - started < 3000 && clientRequests < 50_000) {
              clientRequests++;
              const res = await pool.request({ method: 'GET', path: '/' });
              await res.body.dump();
              assert.equal(res.statusCode, 503);
            }
          }),
        );
        const seconds = (performance.now() - started) / 1000;
        await pool.close();
        const upstreamLoad = failing.seen.length;
        const bound = clientRequests * 1.2 + minPerSecond * Math.max(1, seconds);
        console.log(
          `# client ${clientRequests}, upstream ${upstreamLoad} (${(upstreamLoad / clientRequests).toFixed(3)}×), bound ${bound.toFixed(0)}`,
        );
        assert.ok(upstreamLoad <= bound, `upstream saw ${upstreamLoad} requests, more than ${bound.toFixed(0)}`);
        assert.ok(upstreamLoad > clientRequests * 1.1, 'the budget was used (retries did happen)');
        const budget = gw.proxy.snapshot.services.get('svc')!.retryBudget();
        assert.ok(budget.exhausted > 0);
        assert.ok(gw.ended.some((c) => c.retryStop === 'retry-budget-exhausted'));
      },
      failing,
    );
  });
});
