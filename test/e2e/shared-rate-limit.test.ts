/**
 * One limit across gateways: three `meshgate gateway` processes count in one real Redis. Under
 * concurrent load (64 connections to each) they admit exactly the limit, since each decision is one
 * atomic script. When Redis is killed under load, each route follows its `failOpen` policy (with a
 * log line and a metric); when Redis returns on the same port, the limits count again without a
 * restart or a reload.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Pool, request } from 'undici';
import { parsePrometheusText } from '../../src/testing/prometheus.ts';
import { MeshgateProcess } from '../helpers/process.ts';
import { RedisServer } from '../helpers/redis.ts';

const LIMIT = 1000;
const CONNECTIONS = 64;
/** Limit of the routes Redis is killed under (small, so exhausting them is quick). */
const SMALL = 50;

// Windows of a day, counted per route: a test never straddles a window edge in practice, and if it
// did, the sliding estimate would let through at most a request or two more.
function configYaml(redisUrl: string, prefix: string): string {
  const limited = (name: string, requests: number, failOpen: boolean) => `
  - name: ${name}
    match: { path: /${name} }
    directResponse: { status: 200, body: "ok" }
    plugins:
      - name: rate-limit
        config: { limits: [{ requests: ${requests}, window: 24h }], by: route, store: redis, failOpen: ${failOpen} }`;
  return `listeners:
  - name: main
    port: 0
    address: 127.0.0.1
admin:
  port: 0
redis:
  url: ${redisUrl}
  keyPrefix: "${prefix}"
  timeout: 500ms
routes:${limited('shared', LIMIT, true)}${limited('open', SMALL, true)}${limited('closed', SMALL, false)}
`;
}

interface Tally {
  statuses: Map<number, number>;
  codes: Map<string, number>;
  errors: number;
}

function tally(): Tally {
  return { statuses: new Map(), codes: new Map(), errors: 0 };
}

/** `connections` clients to one gateway, each sending its next request when the last ends. */
async function load(pool: Pool, path: string, connections: number, t: Tally, until: () => boolean): Promise<void> {
  await Promise.all(
    Array.from({ length: connections }, async () => {
      while (!until()) {
        try {
          const res = await pool.request({ method: 'GET', path });
          await res.body.dump();
          t.statuses.set(res.statusCode, (t.statuses.get(res.statusCode) ?? 0) + 1);
          const code = res.headers['x-meshgate-code'];
          if (typeof code === 'string') t.codes.set(code, (t.codes.get(code) ?? 0) + 1);
        } catch {
          t.errors++;
        }
      }
    }),
  );
}

async function status(base: string, path: string): Promise<{ status: number; code: unknown }> {
  const res = await request(`${base}${path}`);
  await res.body.dump();
  return { status: res.statusCode, code: res.headers['x-meshgate-code'] };
}

async function poll(what: string, check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${what}`);
    await sleep(25);
  }
}

describe('rate limits shared through Redis by three gateway processes', () => {
  let redis: RedisServer;
  let dir: string;
  const gateways: MeshgateProcess[] = [];
  const bases: string[] = [];
  const admins: string[] = [];
  const pools: Pool[] = [];

  before(async () => {
    redis = await RedisServer.start();
    dir = mkdtempSync(join(tmpdir(), 'meshgate-shared-'));
    const file = join(dir, 'gateway.yaml');
    writeFileSync(file, configYaml(redis.url, `e2e-${process.pid}:`));
    for (let i = 0; i < 3; i++) gateways.push(new MeshgateProcess(['gateway', '--config', file]));
    for (const gw of gateways) {
      const started = await gw.waitFor('gateway started');
      const base = `http://127.0.0.1:${(started.listeners as Record<string, number>).main}`;
      bases.push(base);
      admins.push(`http://127.0.0.1:${started.admin}`);
      pools.push(new Pool(base, { connections: CONNECTIONS, pipelining: 1 }));
    }
  });

  after(async () => {
    await Promise.all(pools.map((p) => p.close()));
    await Promise.all(gateways.map((g) => g.stop()));
    await redis.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it(`admit exactly ${LIMIT} requests against a limit of ${LIMIT} under load from ${CONNECTIONS} connections each`, async () => {
    const t = tally();
    let sent = 0;
    // Twice the limit in all: about 667 per gateway, so every gateway runs into the shared limit.
    const total = 2 * LIMIT;
    const until = () => sent++ >= total;
    await Promise.all(pools.map((pool) => load(pool, '/shared', CONNECTIONS, t, until)));
    assert.equal(t.errors, 0);
    assert.equal(t.statuses.get(200), LIMIT, `statuses: ${JSON.stringify([...t.statuses])}`);
    assert.equal(t.statuses.get(429), total - LIMIT);
    assert.equal(t.codes.get('MG_RATE_LIMITED'), total - LIMIT);
  });

  it('follow failOpen while Redis is down, and count again once it is back, with no restart', async () => {
    // Use up both small limits, so a 200 on `open` afterwards can only mean "passed uncounted".
    for (const path of ['/open', '/closed']) {
      const seen: number[] = [];
      for (let i = 0; i < SMALL + 6; i++) seen.push((await status(bases[i % 3]!, path)).status);
      assert.equal(seen.filter((s) => s === 200).length, SMALL);
      assert.equal(seen.filter((s) => s === 429).length, 6);
    }

    // Load on both routes through every gateway while Redis is killed.
    const open = tally();
    const closed = tally();
    let stop = false;
    const running = Promise.all(
      pools.flatMap((pool) => [load(pool, '/open', 8, open, () => stop), load(pool, '/closed', 8, closed, () => stop)]),
    );
    await sleep(100);
    await redis.kill();
    const policiesSeen = () => (open.statuses.get(200) ?? 0) > 0 && (closed.codes.get('MG_STORE_UNAVAILABLE') ?? 0) > 0;
    await poll('both policies answer under load', async () => policiesSeen());
    // Every gateway, not just one, follows the policy.
    for (const base of bases) {
      assert.equal((await status(base, '/open')).status, 200);
      assert.deepEqual(await status(base, '/closed'), { status: 503, code: 'MG_STORE_UNAVAILABLE' });
    }
    stop = true;
    await running;
    assert.equal(open.errors + closed.errors, 0);
    assert.equal(closed.statuses.get(200) ?? 0, 0, 'failOpen: false never lets a request through uncounted');

    for (const gw of gateways) {
      await gw.waitFor((l) => l.msg.startsWith('redis unavailable'));
      await gw.waitFor('rate-limit store unavailable: requests pass (failOpen)');
      await gw.waitFor('rate-limit store unavailable: requests are refused with 503 (failOpen: false)');
    }
    const metrics = parsePrometheusText(await (await request(`${admins[0]}/metrics`)).body.text());
    const family = metrics.families.get('gateway_store_unavailable_total');
    assert.ok(family, 'gateway_store_unavailable_total is exported');
    const value = (route: string, outcome: string) =>
      family.samples.find((s) => s.labels.route === route && s.labels.outcome === outcome)?.value ?? 0;
    assert.ok(value('open', 'passed') > 0);
    assert.ok(value('closed', 'refused') > 0);

    // Redis returns on the same port, empty (no persistence): every gateway reconnects by itself.
    await redis.start();
    for (const base of bases)
      await poll(`${base} counts again`, async () => (await status(base, '/closed')).status !== 503);
    for (const gw of gateways) await gw.waitFor('redis available again');

    // The fresh counters limit again: exactly SMALL of these pass, through all three gateways.
    const seen: number[] = [];
    for (let i = 0; i < SMALL + 10; i++) seen.push((await status(bases[i % 3]!, '/open')).status);
    assert.equal(seen.filter((s) => s === 200).length, SMALL);
    assert.equal(seen.filter((s) => s === 429).length, 10);
  });
});
