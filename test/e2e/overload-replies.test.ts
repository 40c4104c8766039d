/**
 * One overload policy: every place that sheds load answers the same way. A client's own limit (rate
 * limit, plan quota) is 429, the service's protection (breaker limits, an open outlier breaker, the
 * adaptive concurrency limit) 503; both as problem+json with a stable code, the request id and a
 * `Retry-After`; and every one is counted once in `gateway_shed_total{reason, route, service}`. A
 * retry the budget refuses leaves the client with the last try's answer and is counted as well.
 */
import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request } from 'undici';
import { parsePrometheusText } from '../../src/testing/prometheus.ts';
import { startGateway, startUpstream, type TestGateway, type Upstream } from '../helpers/servers.ts';

const agent = new Agent({ connections: 64 });
const KEY = 'overload-e2e-key-0123456789abcdef';

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

async function get(url: string, headers: Record<string, string> = {}): Promise<Reply> {
  const res = await request(url, { dispatcher: agent, headers });
  return { status: res.statusCode, headers: res.headers, text: await res.body.text() };
}

/** An upstream that holds every request until `release()`. */
async function heldUpstream() {
  const held: ServerResponse[] = [];
  const upstream = await startUpstream((_req, res) => {
    held.push(res);
  });
  return {
    upstream,
    held,
    release() {
      for (const res of held.splice(0)) res.end('done');
    },
  };
}

async function until(condition: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** The shape every shed reply shares; returns its Retry-After in seconds. */
function assertShed(reply: Reply, status: number, code: string): number {
  assert.equal(reply.status, status, reply.text);
  assert.equal(reply.headers['x-meshgate-code'], code);
  assert.equal(reply.headers['content-type'], 'application/problem+json');
  const problem = JSON.parse(reply.text) as Record<string, unknown>;
  assert.equal(problem.type, `urn:meshgate:error:${code}`);
  assert.equal(problem.code, code);
  assert.equal(problem.status, status);
  assert.equal(problem.requestId, reply.headers['x-request-id']);
  assert.ok(typeof problem.detail === 'string' && problem.detail.length > 10, 'a reason a human can act on');
  const retryAfter = reply.headers['retry-after'];
  assert.match(String(retryAfter), /^[1-9][0-9]*$/, `Retry-After in seconds on ${code}`);
  return Number(retryAfter);
}

describe('overload replies', () => {
  let gw: TestGateway;
  let maxRequests: Awaited<ReturnType<typeof heldUpstream>>;
  let maxPending: Awaited<ReturnType<typeof heldUpstream>>;
  let adaptive: Awaited<ReturnType<typeof heldUpstream>>;
  let echo: Upstream;
  let failing: Upstream;
  let broken: Upstream;

  before(async () => {
    maxRequests = await heldUpstream();
    maxPending = await heldUpstream();
    adaptive = await heldUpstream();
    echo = await startUpstream();
    failing = await startUpstream((_req, res) => {
      res.statusCode = 503;
      res.end('busy');
    });
    broken = await startUpstream((_req, res) => {
      res.statusCode = 500;
      res.end('broken');
    });
    gw = await startGateway({
      plans: [{ name: 'tiny', quotas: { day: 1 } }],
      consumers: [{ name: 'app', plan: 'tiny', credentials: [{ type: 'api-key', key: KEY }] }],
      services: [
        { name: 'held', endpoints: [{ url: maxRequests.upstream.url }], circuitBreaker: { maxRequests: 2 } },
        {
          name: 'queued',
          endpoints: [{ url: maxPending.upstream.url }],
          circuitBreaker: { maxConnections: 1, maxPendingRequests: 1 },
        },
        { name: 'adaptive', endpoints: [{ url: adaptive.upstream.url }], adaptiveConcurrency: { minConcurrency: 2 } },
        { name: 'echo', endpoints: [{ url: echo.url }] },
        {
          name: 'failing',
          endpoints: [{ url: failing.url }],
          retries: { attempts: 2, on: ['gateway-error'], budget: { percent: 0, minPerSecond: 0 } },
        },
        {
          name: 'broken',
          endpoints: [{ url: broken.url }],
          outlierDetection: { consecutiveErrors: 1, baseEjectionTime: '30s', maxEjectionPercent: 100 },
          loadBalancer: { panicThreshold: 0 },
        },
      ],
      routes: [
        { name: 'max-requests', match: { path: '/max-requests/*' }, service: 'held' },
        { name: 'max-pending', match: { path: '/max-pending/*' }, service: 'queued' },
        { name: 'adaptive', match: { path: '/adaptive/*' }, service: 'adaptive' },
        {
          name: 'rate-limited',
          match: { path: '/rate/*' },
          service: 'echo',
          plugins: [{ name: 'rate-limit', config: { limits: [{ requests: 1, window: '1m' }] } }],
          applyPlans: false,
        },
        { name: 'quota', match: { path: '/quota/*' }, service: 'echo', plugins: [{ name: 'key-auth' }] },
        { name: 'retry-budget', match: { path: '/retry/*' }, service: 'failing' },
        { name: 'ejected', match: { path: '/ejected/*' }, service: 'broken' },
      ],
    });
  });

  after(async () => {
    maxRequests.release();
    maxPending.release();
    adaptive.release();
    await gw.close();
    for (const u of [maxRequests.upstream, maxPending.upstream, adaptive.upstream, echo, failing, broken])
      await u.close();
  });

  async function scrape() {
    const res = await request(`${gw.adminUrl}/metrics`, { dispatcher: agent });
    return parsePrometheusText(await res.body.text());
  }

  async function shedCount(reason: string, route: string, service: string): Promise<number | undefined> {
    return (await scrape()).value('gateway_shed_total', { route, service, reason });
  }

  it('circuitBreaker.maxRequests: 503 MG_CIRCUIT_OPEN, Retry-After 1, reason max_requests', async () => {
    const inFlight = [get(`${gw.url()}/max-requests/1`), get(`${gw.url()}/max-requests/2`)];
    await until(() => maxRequests.held.length === 2, 'two requests held');
    assert.equal(assertShed(await get(`${gw.url()}/max-requests/3`), 503, 'MG_CIRCUIT_OPEN'), 1);
    maxRequests.release();
    for (const r of await Promise.all(inFlight)) assert.equal(r.status, 200);
    assert.equal(await shedCount('max_requests', 'max-requests', 'held'), 1);
  });

  it('circuitBreaker.maxPendingRequests: 503 MG_CIRCUIT_OPEN, Retry-After 1, reason max_pending', async () => {
    const breaker = gw.proxy.snapshot.services.get('queued')!.breaker;
    const inFlight = [get(`${gw.url()}/max-pending/1`), get(`${gw.url()}/max-pending/2`)];
    await until(() => maxPending.held.length === 1 && breaker.pending === 1, 'one sent and one waiting');
    assert.equal(assertShed(await get(`${gw.url()}/max-pending/3`), 503, 'MG_CIRCUIT_OPEN'), 1);
    maxPending.release();
    await until(() => maxPending.held.length === 1, 'the waiting request sent');
    maxPending.release();
    for (const r of await Promise.all(inFlight)) assert.equal(r.status, 200);
    assert.equal(await shedCount('max_pending', 'max-pending', 'queued'), 1);
  });

  it('adaptiveConcurrency: 503 MG_CONCURRENCY_LIMITED, Retry-After 1, reason adaptive_concurrency', async () => {
    // Until minRTT is measured the limit is minConcurrency (2).
    const inFlight = [get(`${gw.url()}/adaptive/1`), get(`${gw.url()}/adaptive/2`)];
    await until(() => adaptive.held.length === 2, 'two requests held');
    const shed = await get(`${gw.url()}/adaptive/3`);
    assert.equal(assertShed(shed, 503, 'MG_CONCURRENCY_LIMITED'), 1);
    assert.match(JSON.parse(shed.text).detail, /adaptive concurrency limit/);
    assert.equal(adaptive.held.length, 2, 'the shed request never reached the upstream');
    adaptive.release();
    for (const r of await Promise.all(inFlight)) assert.equal(r.status, 200);
    assert.equal(await shedCount('adaptive_concurrency', 'adaptive', 'adaptive'), 1);
    const metrics = await scrape();
    assert.equal(metrics.value('gateway_adaptive_concurrency_limit', { service: 'adaptive' }), 2);
    assert.equal(
      metrics.value('gateway_adaptive_concurrency_limit', { service: 'held' }),
      undefined,
      'only where configured',
    );
    assert.equal(gw.proxy.snapshot.services.get('adaptive')!.breaker.adaptive!.inFlight, 0, 'every slot came back');
  });

  it('rate-limit plugin: 429 MG_RATE_LIMITED, Retry-After until the window has room, reason rate_limit', async () => {
    assert.equal((await get(`${gw.url()}/rate/1`)).status, 200);
    const retryAfter = assertShed(await get(`${gw.url()}/rate/2`), 429, 'MG_RATE_LIMITED');
    // A sliding window: the full current window must age out as the previous one, so up to 2 × 1m.
    assert.ok(retryAfter > 1 && retryAfter <= 120, `Retry-After ${retryAfter} within two 1m windows`);
    assert.equal(await shedCount('rate_limit', 'rate-limited', 'echo'), 1);
  });

  it("a plan's quota: 429 MG_QUOTA_EXCEEDED, Retry-After to the period's end, reason quota", async () => {
    // A day that ends between the two requests would start the count over: keep clear of midnight UTC.
    const left = (86_400_000 - (Date.now() % 86_400_000)) / 1000;
    if (left < 30) await sleep(left * 1000 + 1_000);
    assert.equal((await get(`${gw.url()}/quota/1`, { apikey: KEY })).status, 200);
    const before = Date.now();
    const retryAfter = assertShed(await get(`${gw.url()}/quota/2`, { apikey: KEY }), 429, 'MG_QUOTA_EXCEEDED');
    const toMidnight = (86_400_000 - (before % 86_400_000)) / 1000;
    assert.ok(Math.abs(retryAfter - toMidnight) <= 5, `Retry-After ${retryAfter} ≈ ${toMidnight} s to midnight UTC`);
    assert.equal(await shedCount('quota', 'quota', 'echo'), 1);
  });

  it('outlier detection ejected every endpoint: 503 MG_NO_HEALTHY_UPSTREAM, Retry-After to its return, reason circuit_open', async () => {
    assert.equal((await get(`${gw.url()}/ejected/1`)).status, 500);
    const reply = await get(`${gw.url()}/ejected/2`);
    const retryAfter = assertShed(reply, 503, 'MG_NO_HEALTHY_UPSTREAM');
    assert.ok(retryAfter >= 25 && retryAfter <= 30, `Retry-After ${retryAfter}: the 30 s ejection's end`);
    assert.match(JSON.parse(reply.text).detail, /outlier detection ejected 1 of 1/);
    assert.equal(gw.ended.at(-1)!.refusal, 'outlier-ejected');
    assert.equal(await shedCount('circuit_open', 'ejected', 'broken'), 1);
  });

  it('retry budget spent: the last answer stands (503 from the upstream), and the retry not made is counted as retry_budget', async () => {
    const reply = await get(`${gw.url()}/retry/1`);
    assert.equal(reply.status, 503);
    assert.equal(reply.text, 'busy', "the upstream's own answer");
    assert.equal(gw.ended.at(-1)!.retryStop, 'retry-budget-exhausted');
    assert.equal(await shedCount('retry_budget', 'retry-budget', 'failing'), 1);
  });
});
