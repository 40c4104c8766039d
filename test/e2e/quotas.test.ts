/**
 * Plans' quotas through the real `meshgate` command. A daily quota is one count per machine whatever
 * `--workers` is (both workers ask the primary), and one count across gateways with `store: redis`
 * (a real redis-server). The calendar rollover and the rest of the behaviour, with a manual clock,
 * are in src/proxy/plans/plans.test.ts.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client, request } from 'undici';
import { eventually } from '../helpers/mesh.ts';
import { type LogLine, MeshgateProcess, runMeshgate } from '../helpers/process.ts';
import { RedisServer } from '../helpers/redis.ts';

const QUOTA = 300;
const KEY = 'quota-e2e-key-0123456789abcdef';
const FREE_KEY = 'quota-e2e-free-0123456789abcdef';

/** Seconds from `ms` to the next midnight UTC. */
function toMidnight(ms: number): number {
  return (86_400_000 - (ms % 86_400_000)) / 1000;
}

/**
 * A daily count straddling midnight UTC would start over halfway through: a run that starts in the
 * last minute of a day waits for the next one.
 */
async function awayFromMidnight(): Promise<void> {
  const left = toMidnight(Date.now());
  if (left < 60) await sleep(left * 1000 + 1_000);
}

function configYaml(quota: number, extra = ''): string {
  return `listeners: [{ name: main, port: 0, address: 127.0.0.1 }]
admin: { port: 0 }
${extra}plans:
  - { name: metered, quotas: { day: ${quota} }${extra === '' ? '' : ', store: redis, failOpen: false'} }
consumers:
  - { name: metered-app, plan: metered, credentials: [{ type: api-key, key: ${KEY} }] }
  - { name: free-app, credentials: [{ type: api-key, key: ${FREE_KEY} }] }
routes:
  - name: api
    match: { path: /api/* }
    directResponse: { status: 200, body: ok }
    plugins: [{ name: key-auth }]
`;
}

interface Outcome {
  status: number;
  headers: Record<string, string | string[] | undefined>;
}

/** `total` requests with `key`, sent by `clients` connections at once, each sending its next when the last ends. */
async function send(bases: string[], key: string, total: number, clients: number): Promise<Outcome[]> {
  const outcomes: Outcome[] = [];
  let next = 0;
  const pool = Array.from({ length: clients }, (_, i) => new Client(bases[i % bases.length]!));
  try {
    await Promise.all(
      pool.map(async (client) => {
        while (next < total) {
          next++;
          const res = await client.request({ path: '/api/items', method: 'GET', headers: { apikey: key } });
          await res.body.dump();
          outcomes.push({ status: res.statusCode, headers: res.headers });
        }
      }),
    );
  } finally {
    await Promise.all(pool.map((c) => c.close()));
  }
  return outcomes;
}

async function oneRequest(base: string, key: string) {
  const res = await request(`${base}/api/items`, { headers: { apikey: key } });
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, text };
}

function listenerUrl(started: LogLine): string {
  return `http://127.0.0.1:${(started.listeners as Record<string, number>).main}`;
}

describe('a daily quota across a gateway’s 2 workers', () => {
  let dir: string;
  let gw: MeshgateProcess;
  let base: string;
  let admin: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'meshgate-quota-'));
    const file = join(dir, 'gw.yaml');
    writeFileSync(file, configYaml(QUOTA));
    gw = new MeshgateProcess(['gateway', '--config', file, '--workers', '2']);
    const started = await gw.waitFor('gateway started');
    assert.equal((started.workers as number[]).length, 2);
    base = listenerUrl(started);
    admin = `http://127.0.0.1:${started.admin}`;
  });

  after(async () => {
    await gw.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it(`admits exactly ${QUOTA} of ${QUOTA} concurrent requests; the next gets 429 MG_QUOTA_EXCEEDED with Retry-After to midnight UTC`, async () => {
    await awayFromMidnight();
    const before = await workers(admin);
    const outcomes = await send([base], KEY, QUOTA, 40);
    assert.equal(outcomes.filter((o) => o.status === 200).length, QUOTA, 'every request within the quota passes');
    const remaining = outcomes.map((o) => Number(o.headers['ratelimit-remaining'])).sort((a, b) => a - b);
    assert.deepEqual(
      remaining,
      Array.from({ length: QUOTA }, (_, i) => i),
      'each admitted request saw its own place in the one count: Remaining 299…0',
    );
    for (const o of outcomes) {
      assert.equal(o.headers['ratelimit-limit'], String(QUOTA));
      assert.equal(o.headers['x-ratelimit-limit-day'], String(QUOTA));
      assert.equal(o.headers['x-ratelimit-remaining-day'], o.headers['ratelimit-remaining']);
    }

    const asked = Date.now();
    const refused = await oneRequest(base, KEY);
    assert.equal(refused.status, 429);
    const body = JSON.parse(refused.text) as { code: string; requestId?: string };
    assert.equal(body.code, 'MG_QUOTA_EXCEEDED');
    assert.equal(refused.headers['x-meshgate-code'], 'MG_QUOTA_EXCEEDED');
    const retryAfter = Number(refused.headers['retry-after']);
    assert.ok(
      Math.abs(retryAfter - toMidnight(asked)) <= 2,
      `Retry-After ${retryAfter} s, ${toMidnight(asked)} s to midnight UTC`,
    );
    assert.equal(refused.headers['ratelimit-limit'], String(QUOTA));
    assert.equal(refused.headers['ratelimit-remaining'], '0');
    assert.equal(refused.headers['ratelimit-reset'], String(retryAfter));
    assert.equal(refused.headers['x-ratelimit-remaining-day'], '0');

    // Both workers served part of them: the count is the machine's, not one worker's.
    const served = (ws: WorkerStatus[]) => ws.reduce((sum, w) => sum + w.requestsServed, 0);
    const after = await eventually(async () => {
      const ws = await workers(admin);
      return served(ws) - served(before) >= QUOTA + 1 ? ws : undefined;
    });
    for (const w of after) {
      const was = before.find((x) => x.pid === w.pid)?.requestsServed ?? 0;
      assert.ok(w.requestsServed - was > 0, `worker ${w.pid} served ${w.requestsServed - was}`);
    }
  });

  it('the admin API reads the same count from the primary', async () => {
    const res = await request(`${admin}/consumers/metered-app/quota`);
    const view = (await res.body.json()) as { plan: string; quotas: { day: { used: number; remaining: number } } };
    assert.equal(res.statusCode, 200);
    assert.equal(view.plan, 'metered');
    assert.equal(view.quotas.day.used, QUOTA);
    assert.equal(view.quotas.day.remaining, 0);
  });

  it('a consumer without a plan is not limited by it', async () => {
    const outcomes = await send([base], FREE_KEY, QUOTA + 50, 20);
    assert.equal(outcomes.filter((o) => o.status === 200).length, QUOTA + 50);
    assert.equal(outcomes[0]!.headers['ratelimit-limit'], undefined);
  });
});

interface WorkerStatus {
  pid: number;
  requestsServed: number;
}

async function workers(admin: string): Promise<WorkerStatus[]> {
  return ((await (await request(`${admin}/workers`)).body.json()) as { workers: WorkerStatus[] }).workers;
}

describe('a daily quota in Redis, shared by two gateway processes', () => {
  const SHARED = 200;
  let redis: RedisServer;
  let dir: string;
  const gateways: MeshgateProcess[] = [];
  const bases: string[] = [];

  before(async () => {
    redis = await RedisServer.start();
    dir = mkdtempSync(join(tmpdir(), 'meshgate-quota-redis-'));
    const file = join(dir, 'gw.yaml');
    writeFileSync(
      file,
      configYaml(SHARED, `redis: { url: "${redis.url}", keyPrefix: "quota-e2e:", timeout: 500ms }\n`),
    );
    for (let i = 0; i < 2; i++) {
      const gw = new MeshgateProcess(['gateway', '--config', file, '--workers', '1']);
      gateways.push(gw);
      bases.push(listenerUrl(await gw.waitFor('gateway started')));
    }
  });

  after(async () => {
    await Promise.all(gateways.map((g) => g.stop()));
    await redis.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it(`admits exactly ${SHARED} of ${SHARED + 100} requests split over both gateways, then both refuse`, async () => {
    await awayFromMidnight();
    const outcomes = await send(bases, KEY, SHARED + 100, 32);
    assert.equal(outcomes.filter((o) => o.status === 200).length, SHARED);
    assert.equal(outcomes.filter((o) => o.status === 429).length, 100);
    for (const base of bases) {
      const refused = await oneRequest(base, KEY);
      assert.equal(refused.status, 429);
      assert.equal((JSON.parse(refused.text) as { code: string }).code, 'MG_QUOTA_EXCEEDED');
    }
  });
});

describe('a consumer on an unknown plan', () => {
  it('is a config error with its file, line and column, and a did-you-mean hint', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'meshgate-quota-bad-'));
    try {
      const file = join(dir, 'gw.yaml');
      writeFileSync(file, configYaml(10).replace('plan: metered', 'plan: metred'));
      const run = await runMeshgate(['validate', file]);
      assert.equal(run.code, 1);
      assert.match(
        run.stderr,
        new RegExp(`${file}:6:32: consumers\\[0\\]\\.plan: unknown plan "metred" \\(did you mean "metered"\\?\\)`),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
