import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { SqliteUsageStore } from '../stores/usage/sqlite.ts';
import { startGateway, startUpstream, type TestGateway, type Upstream } from '../testing/servers.ts';

const ALICE = 'alice-key-0123456789abcdef';
const BOB = 'bob-key-0123456789abcdef0';
const HOUR = 3_600_000;
const T0 = 1_800_000_000_000 - (1_800_000_000_000 % HOUR);

const dir = mkdtempSync(join(tmpdir(), 'meshgate-metering-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function config(upstreamUrl: string, metering: Record<string, unknown> | undefined) {
  return {
    services: [{ name: 'svc', endpoints: [{ url: upstreamUrl }] }],
    consumers: [
      { name: 'alice', credentials: [{ type: 'api-key', key: ALICE }] },
      { name: 'bob', credentials: [{ type: 'api-key', key: BOB }] },
    ],
    routes: [
      {
        name: 'props-v1',
        match: { path: '/api/v1/*' },
        service: 'svc',
        plugins: [{ name: 'key-auth' }],
        version: { api: 'property-api', name: 'v1' },
      },
      { name: 'open', match: { path: '/open/*' }, service: 'svc' },
    ],
    ...(metering === undefined ? {} : { metering }),
  };
}

async function rowsIn(file: string) {
  const store = new SqliteUsageStore(file, { readOnly: true });
  const rows = await store.query({});
  await store.close();
  return rows.map((r) => [
    (r.hour - T0) / HOUR,
    r.consumer,
    r.route,
    r.api,
    r.version,
    r.statusClass,
    r.requests,
    r.bytes,
  ]);
}

describe('usage metering in the proxy', () => {
  let upstream: Upstream;
  let gw: TestGateway;
  let now = T0 + 10;
  const file = join(dir, 'usage.db');

  before(async () => {
    // Answers the status asked for in the path's last segment, with a body of 5 bytes.
    upstream = await startUpstream((req, res) => {
      const status = Number(req.url!.split('/').pop()) || 200;
      res.writeHead(status, { 'content-type': 'text/plain' }).end('hello');
    });
    gw = await startGateway(config(upstream.url, { path: file, flushInterval: '1h' }), { now: () => now });
  });
  after(async () => {
    await gw.close();
    await upstream.close();
  });

  async function call(path: string, key?: string) {
    const res = await request(`${gw.url()}${path}`, { headers: key === undefined ? {} : { 'x-api-key': key } });
    await res.body.dump();
    return res.statusCode;
  }

  it('counts each consumer’s requests and bytes per route, version and status class; GET /usage flushes first', async () => {
    for (let i = 0; i < 3; i++) assert.equal(await call('/api/v1/items/200', ALICE), 200);
    assert.equal(await call('/api/v1/items/404', ALICE), 404);
    assert.equal(await call('/api/v1/items/503', BOB), 503);
    assert.equal(await call('/api/v1/items/200'), 401); // no consumer: not metered
    assert.equal(await call('/open/200'), 200); // no consumer: not metered
    const res = await request(`${gw.adminUrl}/usage`);
    assert.equal(res.statusCode, 200);
    const body = (await res.body.json()) as { rows: Record<string, unknown>[] };
    assert.deepEqual(body.rows, [
      {
        hour: '2027-01-15T08:00:00Z',
        consumer: 'alice',
        route: 'props-v1',
        api: 'property-api',
        version: 'v1',
        statusClass: '2xx',
        requests: 3,
        bytes: 15,
      },
      { ...body.rows[0], statusClass: '4xx', requests: 1, bytes: 5 },
      { ...body.rows[0], consumer: 'bob', statusClass: '5xx', requests: 1, bytes: 5 },
    ]);
    assert.equal(new Date(T0).toISOString(), '2027-01-15T08:00:00.000Z');
  });

  it('starts a new hour when the clock passes it; CSV and filters on the admin API', async () => {
    now = T0 + HOUR + 5;
    assert.equal(await call('/api/v1/items/200', BOB), 200);
    const res = await request(`${gw.adminUrl}/usage?format=csv&consumer=bob&from=2027-01-15T09:00:00Z`);
    assert.equal(res.headers['content-type'], 'text/csv; charset=utf-8');
    assert.equal(
      await res.body.text(),
      'hour,consumer,route,api,version,status_class,requests,bytes\n2027-01-15T09:00:00Z,bob,props-v1,property-api,v1,2xx,1,5\n',
    );
    const bad = await request(`${gw.adminUrl}/usage?from=yesterday`);
    assert.equal(bad.statusCode, 400);
    await bad.body.dump();
  });

  it('a reload to another file writes the old counts to the old file and counts on in the new one', async () => {
    assert.equal(await call('/api/v1/items/302', ALICE), 302);
    const other = join(dir, 'other.db');
    await gw.apply(config(upstream.url, { path: other, flushInterval: '1h' }));
    assert.equal(await call('/api/v1/items/200', ALICE), 200);
    // The old recorder flushes on commit, in the background: poll the file.
    const deadline = Date.now() + 10_000;
    while (!(await rowsIn(file)).some((r) => r[5] === '3xx')) {
      assert.ok(Date.now() < deadline, 'the 3xx count never reached the old file');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.deepEqual(
      (await rowsIn(file)).filter((r) => r[0] === 1),
      [
        [1, 'alice', 'props-v1', 'property-api', 'v1', '3xx', 1, 5],
        [1, 'bob', 'props-v1', 'property-api', 'v1', '2xx', 1, 5],
      ],
    );
    // Nothing metered yet in the new file until a flush: closing the proxy is one.
    await gw.close();
    assert.deepEqual(await rowsIn(other), [[1, 'alice', 'props-v1', 'property-api', 'v1', '2xx', 1, 5]]);
    gw = await startGateway(config(upstream.url, undefined));
  });

  it('a config without metering answers 404 on GET /usage', async () => {
    const res = await request(`${gw.adminUrl}/usage`);
    assert.equal(res.statusCode, 404);
    assert.match(((await res.body.json()) as { error: string }).error, /does not meter/);
  });
});

describe('usage metering: loading', () => {
  it('a proxy whose config does not meter never loads node:sqlite', async () => {
    const script = `
      const { startGateway } = await import(${JSON.stringify(new URL('../testing/servers.ts', import.meta.url).href)});
      const gw = await startGateway({ routes: [{ name: 'r', directResponse: { status: 200 } }], consumers: [{ name: 'c', credentials: [{ type: 'api-key', key: 'k-0123456789abcdef' }] }] });
      await fetch(gw.url() + '/');
      await gw.close();
      console.log(JSON.stringify(process.moduleLoadList.filter((m) => m.includes('sqlite'))));`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    const [code] = await once(child, 'exit');
    assert.equal(code, 0);
    assert.deepEqual(JSON.parse(out.trim().split('\n').pop()!), []);
  });
});

describe('usage metering with store: redis', () => {
  it('counts into Redis; the admin API and a reader of the same settings see the same rows', async () => {
    const { RedisServer } = await import('../../test/helpers/redis.ts');
    const { meteringSettings, openUsageStore } = await import('../stores/usage/open.ts');
    const redis = await RedisServer.start();
    const upstream = await startUpstream((_req, res) => res.writeHead(200).end('hello'));
    const cfg = {
      ...config(upstream.url, { store: 'redis', flushInterval: '1h' }),
      redis: { url: redis.url, keyPrefix: 'gw-a:' },
    };
    const gw = await startGateway(cfg);
    let closed = false;
    try {
      for (let i = 0; i < 4; i++) {
        const res = await request(`${gw.url()}/api/v1/items/1`, { headers: { 'x-api-key': BOB } });
        await res.body.dump();
      }
      const res = await request(`${gw.adminUrl}/usage?consumer=bob`);
      const { rows } = (await res.body.json()) as { rows: { requests: number; bytes: number; version: string }[] };
      assert.deepEqual(
        rows.map((r) => [r.version, r.requests, r.bytes]),
        [['v1', 4, 20]],
      );
      await gw.close();
      closed = true;
      const reader = await openUsageStore(meteringSettings(gw.proxy.snapshot.config)!, { readOnly: true });
      const stored = await reader.query({});
      await reader.close();
      assert.deepEqual(
        stored.map((r) => [r.consumer, r.route, r.requests, r.bytes]),
        [['bob', 'props-v1', 4, 20]],
      );
    } finally {
      if (!closed) await gw.close();
      await upstream.close();
      await redis.close();
    }
  });
});

describe('usage metering: config checks', () => {
  it('store: redis needs the redis block; the SQLite file’s directory must exist; the default path is beside the file', async () => {
    const { parseConfig } = await import('../config/load.ts');
    const bad = parseConfig('metering: { store: redis }\n', 'gw.yaml', {});
    assert.equal(bad.ok, false);
    const issue = bad.ok ? undefined : bad.issues[0];
    assert.equal(issue?.path, 'metering.store');
    assert.equal(issue?.line, 1);
    const missing = parseConfig(`metering: { path: ${join(dir, 'nope', 'usage.db')} }\n`, 'gw.yaml', {});
    assert.match(missing.ok ? '' : missing.issues[0]!.message, /directory of the usage database does not exist/);
    const ok = parseConfig('metering: {}\n', join(dir, 'gw.yaml'), {});
    assert.equal(ok.ok, true);
    assert.equal(ok.ok ? ok.value.config.metering?.path : '', join(dir, 'meshgate-usage.db'));
    const off = parseConfig('metering: { enabled: false, path: /nowhere/at/all.db }\n', 'gw.yaml', {});
    assert.equal(off.ok, true);
  });
});
