import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Agent, request } from 'undici';
import { startGateway, startUpstream, type TestGateway, type Upstream } from '../../testing/servers.ts';

const t0 = 1_800_000_000_000 + 1_000; // just after a minute boundary
let now = t0;
const agent = new Agent({ connections: 64 });

describe('rate-limit plugin', () => {
  let upstream: Upstream;
  let gw: TestGateway;
  before(async () => {
    upstream = await startUpstream();
    gw = await startGateway(
      {
        services: [
          { name: 'svc', endpoints: [{ url: upstream.url }] },
          {
            name: 'limited',
            endpoints: [{ url: upstream.url }],
            plugins: [{ name: 'rate-limit', config: { minute: 3, by: 'service' } }],
          },
        ],
        routes: [
          { name: 'limited-a', match: { path: '/la' }, service: 'limited' },
          { name: 'limited-b', match: { path: '/lb' }, service: 'limited' },
          {
            name: 'limited-elsewhere',
            match: { path: '/lo' },
            service: 'svc',
            plugins: [{ name: 'rate-limit', config: { minute: 3, by: 'service' } }],
          },
          {
            name: 'exact',
            match: { path: '/exact' },
            service: 'svc',
            plugins: [{ name: 'rate-limit', config: { minute: 500, by: 'route' } }],
          },
          {
            name: 'two-limits',
            match: { path: '/two' },
            service: 'svc',
            plugins: [
              {
                name: 'rate-limit',
                config: {
                  limits: [
                    { requests: 5, window: '1m' },
                    { requests: 8, window: '1h' },
                  ],
                  by: 'ip',
                },
              },
            ],
          },
          {
            name: 'by-header',
            match: { path: '/h' },
            service: 'svc',
            plugins: [{ name: 'rate-limit', config: { minute: 2, by: 'header', header: 'x-client' } }],
          },
          {
            name: 'dry',
            match: { path: '/dry' },
            service: 'svc',
            plugins: [{ name: 'rate-limit', config: { minute: 2, dryRun: true } }],
          },
          ...['/ga', '/gb'].map((path) => ({
            name: `grouped${path.replace('/', '-')}`,
            match: { path },
            service: 'svc',
            plugins: [
              {
                name: 'rate-limit',
                config: {
                  minute: 2,
                  hour: 5,
                  month: 100,
                  year: 1000,
                  algorithm: 'fixed',
                  group: 'g1',
                  periodHeaders: true,
                },
              },
            ],
          })),
          {
            name: 'fixed',
            match: { path: '/fixed' },
            service: 'svc',
            plugins: [{ name: 'rate-limit', config: { minute: 3, algorithm: 'fixed' } }],
          },
        ],
      },
      { now: () => now },
    );
  });
  after(async () => {
    await gw.close();
    await upstream.close();
    await agent.close();
  });

  const call = async (path: string, headers: Record<string, string> = {}) => {
    const res = await request(`${gw.url()}${path}`, { headers, dispatcher: agent });
    await res.body.dump();
    return res;
  };

  it('50 concurrent clients against 500 per window: exactly 500 pass, and Remaining counts down 499…0', async () => {
    let next = 0;
    const remaining: number[] = [];
    let refused = 0;
    await Promise.all(
      Array.from({ length: 50 }, async () => {
        while (next < 800) {
          next++;
          const res = await call('/exact');
          if (res.statusCode === 200) remaining.push(Number(res.headers['ratelimit-remaining']));
          else {
            assert.equal(res.statusCode, 429);
            refused++;
          }
        }
      }),
    );
    assert.equal(remaining.length, 500);
    assert.equal(refused, 300);
    assert.deepEqual(
      remaining.sort((a, b) => a - b),
      Array.from({ length: 500 }, (_, i) => i),
    );
  });

  it('429 carries Retry-After, the RateLimit headers and a problem body', async () => {
    const res = await request(`${gw.url()}/exact`, { dispatcher: agent });
    const body = (await res.body.json()) as { code: string; detail: string };
    assert.equal(res.statusCode, 429);
    assert.equal(body.code, 'MG_RATE_LIMITED');
    assert.equal(res.headers['ratelimit-limit'], '500');
    assert.equal(res.headers['ratelimit-remaining'], '0');
    const retry = Number(res.headers['retry-after']);
    assert.ok(retry >= 1 && retry <= 120, `retry-after ${retry}`);
    assert.equal(res.headers['ratelimit-reset'], String(retry), 'one window: the reset is when one more fits');
    assert.match(body.detail, /retry in/);
  });

  it('several limits at once: the tighter one decides, and the headers report it', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) statuses.push((await call('/two')).statusCode);
    assert.deepEqual(statuses, [200, 200, 200, 200, 200, 429]);
    now += 60_000 * 3; // the minute window has moved on; the hour still counts 5
    try {
      const more: number[] = [];
      for (let i = 0; i < 4; i++) more.push((await call('/two')).statusCode);
      assert.deepEqual(more, [200, 200, 200, 429], 'the hour allows 8 in all');
      const res = await call('/two');
      assert.equal(res.headers['ratelimit-limit'], '8');
    } finally {
      now -= 60_000 * 3;
    }
  });

  it('keys by header value', async () => {
    assert.equal((await call('/h', { 'x-client': 'a' })).statusCode, 200);
    assert.equal((await call('/h', { 'x-client': 'a' })).statusCode, 200);
    assert.equal((await call('/h', { 'x-client': 'a' })).statusCode, 429);
    assert.equal((await call('/h', { 'x-client': 'b' })).statusCode, 200);
  });

  it('dry run counts and reports but never refuses', async () => {
    const remaining: unknown[] = [];
    for (let i = 0; i < 4; i++) {
      const res = await call('/dry');
      assert.equal(res.statusCode, 200);
      remaining.push(res.headers['ratelimit-remaining']);
    }
    assert.deepEqual(remaining, ['1', '0', '0', '0'], 'each request counted, none refused');
  });

  it('by: service counts every route of the service together, and other services apart', async () => {
    const statuses: number[] = [];
    for (const path of ['/la', '/lb', '/la', '/lb', '/la']) statuses.push((await call(path)).statusCode);
    assert.deepEqual(statuses, [200, 200, 200, 429, 429], '3 a minute across both routes of the service');
    const elsewhere = await call('/lo');
    assert.equal(elsewhere.statusCode, 200, 'a route to another service has its own count');
    assert.equal(elsewhere.headers['ratelimit-remaining'], '2');
  });

  it('group: routes naming one group share a count; periodHeaders adds Kong’s per-window headers', async () => {
    const first = await call('/ga');
    assert.equal(first.statusCode, 200);
    assert.deepEqual(
      ['minute', 'hour', 'month', 'year'].map((p) => [
        first.headers[`x-ratelimit-limit-${p}`],
        first.headers[`x-ratelimit-remaining-${p}`],
      ]),
      [
        ['2', '1'],
        ['5', '4'],
        ['100', '99'],
        ['1000', '999'],
      ],
    );
    assert.equal(first.headers['ratelimit-limit'], '2', 'the tightest window in RateLimit-*');
    const second = await call('/gb');
    assert.equal(second.statusCode, 200);
    assert.equal(second.headers['x-ratelimit-remaining-minute'], '0', 'the other route drew from the same count');
    const refused = await call('/ga');
    assert.equal(refused.statusCode, 429);
    assert.equal(refused.headers['x-ratelimit-remaining-minute'], '0');
    assert.equal(refused.headers['x-ratelimit-remaining-hour'], '3', 'a refused request is not counted');
    assert.ok(Number(refused.headers['retry-after']) >= 1);
    assert.equal((await call('/two')).headers['x-ratelimit-limit-minute'], undefined, 'off by default');
  });

  it('counters survive a config reload', async () => {
    const first = await call('/fixed');
    assert.equal(first.statusCode, 200);
    // A fixed window resets at its end: the seconds left of the current minute on the test's clock.
    assert.equal(first.headers['ratelimit-reset'], String(Math.ceil((60_000 - (now % 60_000)) / 1000)));
    for (let i = 0; i < 2; i++) assert.equal((await call('/fixed')).statusCode, 200);
    assert.equal((await call('/fixed')).statusCode, 429);
    await gw.apply({
      services: [{ name: 'svc', endpoints: [{ url: upstream.url }] }],
      routes: [
        {
          name: 'fixed',
          match: { path: '/fixed' },
          service: 'svc',
          plugins: [{ name: 'rate-limit', config: { minute: 3, algorithm: 'fixed' } }],
        },
        { name: 'extra', match: { path: '/extra' }, directResponse: { status: 200 } },
      ],
    });
    assert.equal((await call('/fixed')).statusCode, 429);
  });
});
