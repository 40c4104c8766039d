/**
 * Consumers' plans in one proxy process, over real sockets, with a manual clock so the calendar
 * boundaries (midnight UTC, the first of the month) are crossed without waiting. The exactness across
 * a gateway's workers and the Redis-shared count are in test/e2e/quotas.test.ts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Agent, request } from 'undici';
import { ManualClock } from '../../../test/helpers/clock.ts';
import { RedisServer } from '../../../test/helpers/redis.ts';
import { startGateway, type TestGateway } from '../../testing/servers.ts';

const KEYS = {
  daily: 'daily-key-0123456789abcdef',
  monthly: 'monthly-key-0123456789abcdef',
  burst: 'burst-key-0123456789abcdef',
  free: 'free-key-0123456789abcdef',
  moved: 'moved-key-0123456789abcdef',
};

// 23:00:00 UTC on 31 January 2027: one hour to midnight and to the first of February.
const clock = new ManualClock(Date.UTC(2027, 0, 31, 23));
const agent = new Agent({ connections: 16 });

function config(overrides: { dailyQuota?: number; movedPlan?: string } = {}): Record<string, unknown> {
  return {
    plans: [
      { name: 'daily', quotas: { day: overrides.dailyQuota ?? 5 } },
      { name: 'monthly', quotas: { day: 100, month: 3 } },
      { name: 'burst', quotas: { day: 10 }, rateLimits: [{ requests: 2, window: '1m' }] },
      { name: 'unlimited' },
    ],
    consumers: [
      { name: 'daily-user', plan: 'daily', credentials: [{ type: 'api-key', key: KEYS.daily }] },
      { name: 'monthly-user', plan: 'monthly', credentials: [{ type: 'api-key', key: KEYS.monthly }] },
      { name: 'burst-user', plan: 'burst', credentials: [{ type: 'api-key', key: KEYS.burst }] },
      { name: 'free-user', credentials: [{ type: 'api-key', key: KEYS.free }] },
      {
        name: 'moved-user',
        plan: overrides.movedPlan ?? 'daily',
        credentials: [{ type: 'api-key', key: KEYS.moved }],
      },
    ],
    routes: [
      {
        name: 'api',
        match: { path: '/api/*' },
        directResponse: { status: 200, body: 'ok' },
        plugins: [{ name: 'key-auth' }],
      },
      {
        name: 'usage',
        match: { path: '/usage' },
        directResponse: { status: 200, body: 'usage' },
        plugins: [{ name: 'key-auth' }],
        applyPlans: false,
      },
      { name: 'health', match: { path: '/health' }, directResponse: { status: 200, body: 'up' } },
    ],
  };
}

describe('plans: quotas and rate limits per consumer', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startGateway(config(), { now: () => clock.now() });
  });
  after(async () => {
    await gw.close();
    await agent.close();
  });

  const call = async (key: string | null, path = '/api/x') => {
    const res = await request(`${gw.url()}${path}`, {
      headers: key === null ? {} : { apikey: key },
      dispatcher: agent,
    });
    const text = await res.body.text();
    return { status: res.statusCode, headers: res.headers, text };
  };

  it('a daily quota of 5 admits 5 with the quota in the headers, then 429 MG_QUOTA_EXCEEDED until midnight UTC', async () => {
    const remaining: unknown[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await call(KEYS.daily);
      assert.equal(res.status, 200);
      assert.equal(res.headers['x-ratelimit-limit-day'], '5');
      assert.equal(res.headers['ratelimit-limit'], '5');
      assert.equal(res.headers['ratelimit-reset'], '3600', 'the day ends in an hour');
      assert.equal(res.headers['x-ratelimit-remaining-day'], res.headers['ratelimit-remaining']);
      remaining.push(res.headers['x-ratelimit-remaining-day']);
    }
    assert.deepEqual(remaining, ['4', '3', '2', '1', '0']);
    const refused = await call(KEYS.daily);
    assert.equal(refused.status, 429);
    assert.equal(refused.headers['content-type'], 'application/problem+json');
    const body = JSON.parse(refused.text) as { code: string; detail: string };
    assert.equal(body.code, 'MG_QUOTA_EXCEEDED');
    assert.match(body.detail, /daily quota of 5 requests/);
    assert.equal(refused.headers['retry-after'], '3600', 'seconds to the next midnight UTC');
    assert.equal(refused.headers['ratelimit-limit'], '5');
    assert.equal(refused.headers['ratelimit-remaining'], '0');
    assert.equal(refused.headers['ratelimit-reset'], '3600');
    assert.equal(refused.headers['x-ratelimit-remaining-day'], '0');
  });

  it('a route with applyPlans: false neither counts nor refuses; a request without a consumer is not limited', async () => {
    const usage = await call(KEYS.daily, '/usage');
    assert.equal(usage.status, 200, 'the usage page is reachable over quota');
    assert.equal(usage.headers['x-ratelimit-limit-day'], undefined);
    const health = await call(null, '/health');
    assert.equal(health.status, 200);
    assert.equal(health.headers['ratelimit-limit'], undefined);
  });

  it('a consumer without a plan is not limited and gets no quota headers', async () => {
    for (let i = 0; i < 20; i++) {
      const res = await call(KEYS.free);
      assert.equal(res.status, 200);
      assert.equal(res.headers['x-ratelimit-limit-day'], undefined);
      assert.equal(res.headers['ratelimit-limit'], undefined);
    }
  });

  it("a plan's rate limit refuses with MG_RATE_LIMITED, and a refused request uses none of the quota", async () => {
    const first = await call(KEYS.burst);
    assert.equal(first.status, 200);
    assert.equal(first.headers['ratelimit-limit'], '2', 'the tighter window reports: the minute');
    assert.equal(first.headers['x-ratelimit-remaining-day'], '9');
    assert.equal((await call(KEYS.burst)).status, 200);
    const refused = await call(KEYS.burst);
    assert.equal(refused.status, 429);
    assert.equal((JSON.parse(refused.text) as { code: string }).code, 'MG_RATE_LIMITED');
    // Sliding: the 2 of this minute must age out far enough for one more (90 s here).
    assert.equal(refused.headers['retry-after'], '90');
    assert.equal(refused.headers['x-ratelimit-remaining-day'], '8', 'the refused request was not counted');
  });

  it('the admin API shows where a consumer stands, counting nothing', async () => {
    const view = async (name: string) => {
      const res = await request(`${gw.adminUrl}/consumers/${name}/quota`);
      return { status: res.statusCode, body: (await res.body.json()) as Record<string, unknown> };
    };
    for (let i = 0; i < 2; i++) {
      const daily = await view('daily-user');
      assert.equal(daily.status, 200);
      assert.deepEqual(daily.body, {
        consumer: 'daily-user',
        plan: 'daily',
        store: 'memory',
        allowed: false,
        quotas: {
          day: { limit: 5, remaining: 0, used: 5, resetSeconds: 3600, resetsAt: '2027-02-01T00:00:00.000Z' },
        },
        rateLimits: [],
      });
    }
    const burst = await view('burst-user');
    assert.deepEqual(burst.body.rateLimits, [
      {
        requests: 2,
        window: '1m',
        limit: 2,
        remaining: 0,
        used: 2,
        resetSeconds: 60,
        resetsAt: '2027-01-31T23:01:00.000Z',
      },
    ]);
    assert.deepEqual((await view('free-user')).body, { consumer: 'free-user', plan: null, quotas: {}, rateLimits: [] });
    assert.equal((await view('nobody')).status, 404);
  });

  it('counts survive a reload, and a raised quota keeps the count so far', async () => {
    assert.equal((await call(KEYS.daily)).status, 429);
    await gw.apply(config({ dailyQuota: 7 }));
    const statuses: number[] = [];
    const remaining: unknown[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await call(KEYS.daily);
      statuses.push(res.status);
      remaining.push(res.headers['x-ratelimit-remaining-day']);
    }
    assert.deepEqual(statuses, [200, 200, 429], '5 used of 7: 2 more');
    assert.deepEqual(remaining, ['1', '0', '0']);
  });

  it("a consumer moved to another plan keeps the period's usage", async () => {
    for (let i = 0; i < 5; i++) assert.equal((await call(KEYS.moved)).status, 200);
    assert.equal((await call(KEYS.moved)).status, 200, 'the daily plan is 7 now');
    await gw.apply(config({ dailyQuota: 7, movedPlan: 'burst' }));
    const res = await call(KEYS.moved);
    assert.equal(res.status, 200);
    assert.equal(res.headers['x-ratelimit-remaining-day'], '3', '6 used + this one of burst’s 10');
  });

  it('a monthly quota refuses until the first of the next month, even with the day quota to spare', async () => {
    for (let i = 0; i < 3; i++) {
      const res = await call(KEYS.monthly);
      assert.equal(res.status, 200);
      assert.equal(res.headers['x-ratelimit-limit-month'], '3');
      assert.equal(res.headers['x-ratelimit-limit-day'], '100');
    }
    const refused = await call(KEYS.monthly);
    assert.equal(refused.status, 429);
    assert.equal((JSON.parse(refused.text) as { code: string; detail: string }).code, 'MG_QUOTA_EXCEEDED');
    assert.match(JSON.parse(refused.text).detail, /monthly quota of 3/);
    assert.equal(refused.headers['ratelimit-limit'], '3', 'the month is the quota that refused');
    assert.equal(refused.headers['x-ratelimit-remaining-month'], '0');
    assert.equal(refused.headers['x-ratelimit-remaining-day'], '97');
    assert.equal(refused.headers['retry-after'], '3600', 'to 1 February 00:00 UTC');
  });

  it('at midnight UTC the day (and here the month) starts over', async () => {
    clock.advance(3_600_000); // 1 February 2027, 00:00:00 UTC
    const daily = await call(KEYS.daily);
    assert.equal(daily.status, 200, daily.text);
    assert.equal(daily.headers['x-ratelimit-remaining-day'], '6');
    assert.equal(daily.headers['ratelimit-reset'], '86400');
    const monthly = await call(KEYS.monthly);
    assert.equal(monthly.status, 200);
    assert.equal(monthly.headers['x-ratelimit-remaining-month'], '2');
    assert.equal(monthly.headers['ratelimit-limit'], '3', 'RateLimit-* report the window closest to refusing');
    assert.equal(monthly.headers['ratelimit-reset'], String(28 * 86_400), 'February 2027 has 28 days');
  });
});

describe('plans: what routes pay', () => {
  it('a config without a consumer on a plan adds no filter to any route; with one, every route but applyPlans: false gets it', async () => {
    const plain = await startGateway({
      plans: [{ name: 'daily', quotas: { day: 5 } }],
      consumers: [{ name: 'c', credentials: [{ type: 'api-key', key: KEYS.free }] }],
      routes: [{ name: 'r', match: { path: '/r' }, directResponse: { status: 200 } }],
    });
    const planned = await startGateway(config());
    try {
      const chains = async (gw: TestGateway) => {
        const body = (await (await request(`${gw.adminUrl}/routes`)).body.json()) as {
          routes: { name: string; plugins: { name: string; scope: string; order: number }[] }[];
        };
        return Object.fromEntries(body.routes.map((r) => [r.name, r.plugins.map((p) => `${p.name}:${p.scope}`)]));
      };
      assert.deepEqual(await chains(plain), { r: [] });
      assert.deepEqual(await chains(planned), {
        api: ['key-auth:route', 'plans:plan'],
        usage: ['key-auth:route'],
        health: ['plans:plan'],
      });
    } finally {
      await plain.close();
      await planned.close();
    }
  });
});

describe('plans: store: redis', () => {
  it('counts in Redis, shows the count in the admin API, and refuses with 503 while Redis is down (failOpen: false)', async () => {
    const redis = await RedisServer.start();
    const gw = await startGateway({
      redis: { url: redis.url, keyPrefix: 'plans-test:', timeout: '500ms' },
      plans: [{ name: 'shared', quotas: { day: 3, month: 10 }, store: 'redis', failOpen: false }],
      consumers: [{ name: 'app', plan: 'shared', credentials: [{ type: 'api-key', key: KEYS.daily }] }],
      routes: [
        { name: 'api', match: { path: '/api/*' }, directResponse: { status: 200 }, plugins: [{ name: 'key-auth' }] },
      ],
    });
    try {
      const call = async () => {
        const res = await request(`${gw.url()}/api/x`, { headers: { apikey: KEYS.daily } });
        await res.body.dump();
        return { status: res.statusCode, code: res.headers['x-meshgate-code'] };
      };
      for (let i = 0; i < 3; i++) assert.equal((await call()).status, 200);
      assert.deepEqual(await call(), { status: 429, code: 'MG_QUOTA_EXCEEDED' });
      const view = await request(`${gw.adminUrl}/consumers/app/quota`);
      const body = (await view.body.json()) as {
        store: string;
        quotas: { day: { used: number }; month: { used: number } };
      };
      assert.equal(body.store, 'redis');
      assert.equal(body.quotas.day.used, 3);
      assert.equal(body.quotas.month.used, 3);
      await redis.kill();
      const deadline = Date.now() + 10_000;
      let outcome = await call();
      while (outcome.status !== 503 && Date.now() < deadline) outcome = await call();
      assert.deepEqual(outcome, { status: 503, code: 'MG_STORE_UNAVAILABLE' });
      assert.equal((await request(`${gw.adminUrl}/consumers/app/quota`)).statusCode, 503);
    } finally {
      await gw.close();
      await redis.close();
    }
  });
});
