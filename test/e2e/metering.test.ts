/**
 * Usage metering through the real CLI: a scripted run of requests by two consumers on a v1 and a v2
 * route with different statuses; a clean stop (SIGTERM) writes every count (the flush interval is an
 * hour, so only the stop can have written them); `meshgate usage export` in CSV and JSON lists exactly
 * what was sent; a restart on two workers counts on in the same file, exactly, across both workers.
 * With a short flush interval the timer alone writes the counts, so a SIGKILL after it loses none.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { isDeepStrictEqual } from 'node:util';
import { request } from 'undici';
import { SqliteUsageStore } from '../../src/stores/usage/sqlite.ts';
import { MeshgateProcess, runMeshgate } from '../helpers/process.ts';
import { startUpstream, type Upstream } from '../helpers/servers.ts';

const ALICE = 'alice-key-0123456789abcdef';
const BOB = 'bob-key-0123456789abcdef0';

function configYaml(upstreamUrl: string, flushInterval = '1h'): string {
  return `listeners:
  - { name: main, port: 0, address: 127.0.0.1 }
admin: { port: 0 }
services:
  - name: props
    endpoints: [{ url: ${upstreamUrl} }]
consumers:
  - { name: alice, credentials: [{ type: api-key, key: ${ALICE} }] }
  - { name: bob, credentials: [{ type: api-key, key: ${BOB} }] }
plugins:
  - { name: key-auth }
routes:
  - name: props-v1
    match: { path: /api/v1/* }
    service: props
    version: { api: property-api, name: v1, deprecation: 2026-01-01T00:00:00Z, sunset: 2026-12-31T23:59:59Z }
  - name: props-v2
    match: { path: /api/v2/* }
    service: props
    version: { api: property-api, name: v2 }
metering:
  flushInterval: ${flushInterval}
`;
}

/** [consumer key, version, status, times]: the script of one run. */
const SCRIPT: [string | null, 'v1' | 'v2', number, number][] = [
  [ALICE, 'v1', 200, 5],
  [ALICE, 'v1', 404, 2],
  [ALICE, 'v2', 200, 3],
  [BOB, 'v1', 200, 4],
  [BOB, 'v2', 500, 2],
  [BOB, 'v2', 301, 1],
  [null, 'v1', 200, 3], // no key: 401, no consumer, not metered
];

/** What one run of SCRIPT adds, as `consumer,route,api,version,class` → [requests, bytes]. */
function expected(runs: number): Map<string, [number, number]> {
  const out = new Map<string, [number, number]>();
  for (const [key, v, status, times] of SCRIPT) {
    if (key === null) continue;
    const k = `${key === ALICE ? 'alice' : 'bob'},props-${v},property-api,${v},${Math.floor(status / 100)}xx`;
    const [r, b] = out.get(k) ?? [0, 0];
    out.set(k, [r + times * runs, b + times * runs * 5]);
  }
  return out;
}

/** Rows summed over hours (a run may straddle an hour boundary). */
function totals(
  rows: {
    consumer: string;
    route: string;
    api: string;
    version: string;
    statusClass: string;
    requests: number;
    bytes: number;
  }[],
) {
  const out = new Map<string, [number, number]>();
  for (const r of rows) {
    const k = `${r.consumer},${r.route},${r.api},${r.version},${r.statusClass}`;
    const [q, b] = out.get(k) ?? [0, 0];
    out.set(k, [q + r.requests, b + r.bytes]);
  }
  return out;
}

function parseCsv(text: string) {
  const [header, ...lines] = text.trimEnd().split('\n');
  assert.equal(header, 'hour,consumer,route,api,version,status_class,requests,bytes');
  return lines.map((line) => {
    const [hour, consumer, route, api, version, statusClass, requests, bytes] = line.split(',');
    assert.match(hour!, /^\d{4}-\d{2}-\d{2}T\d{2}:00:00Z$/);
    return {
      consumer: consumer!,
      route: route!,
      api: api!,
      version: version!,
      statusClass: statusClass!,
      requests: Number(requests),
      bytes: Number(bytes),
    };
  });
}

describe('usage metering through the CLI', () => {
  let dir: string;
  let file: string;
  let upstream: Upstream;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'meshgate-metering-e2e-'));
    file = join(dir, 'gateway.yaml');
    // The status asked for in the last path segment, with a 5-byte body.
    upstream = await startUpstream((req, res) => {
      const status = Number(req.url!.split('/').pop()) || 200;
      res.writeHead(status, { 'content-type': 'text/plain', 'content-length': '5' }).end('hello');
    });
    writeFileSync(file, configYaml(upstream.url));
  });
  after(async () => {
    await upstream.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function runScript(base: string) {
    for (const [key, version, status, times] of SCRIPT)
      for (let i = 0; i < times; i++) {
        // A new connection each time, so that with several workers each gets some.
        const res = await request(`${base}/api/${version}/items/${status}`, {
          headers: key === null ? {} : { 'x-api-key': key },
          reset: true,
        });
        await res.body.dump();
        assert.equal(res.statusCode, key === null ? 401 : status);
      }
  }

  async function start(workers: number) {
    const gw = new MeshgateProcess(['gateway', '--config', file, '--workers', String(workers), '--no-watch']);
    const started = await gw.waitFor('gateway started');
    return {
      gw,
      base: `http://127.0.0.1:${(started.listeners as Record<string, number>).main}`,
      admin: `http://127.0.0.1:${started.admin}`,
    };
  }

  async function exportRows(format: 'csv' | 'json') {
    const out = await runMeshgate(['usage', 'export', '--config', file, '--format', format]);
    assert.equal(out.code, 0, out.stderr);
    return format === 'csv' ? parseCsv(out.stdout) : JSON.parse(out.stdout);
  }

  it('a clean stop writes every count; export in CSV and JSON lists exactly what was sent', async () => {
    const { gw, base } = await start(0);
    await runScript(base);
    assert.equal(await gw.stop('SIGTERM'), 0);
    assert.deepEqual(totals(await exportRows('csv')), expected(1));
    const json = (await exportRows('json')) as { hour: string; api: string }[];
    assert.deepEqual(totals(json as never), expected(1));
    assert.ok(json.every((r) => r.api === 'property-api' && /T\d{2}:00:00Z$/.test(r.hour)));
    const alice = await runMeshgate(['usage', 'export', '--config', file, '--format', 'json', '--consumer', 'alice']);
    assert.deepEqual(
      [...totals(JSON.parse(alice.stdout)).keys()],
      [...expected(1).keys()].filter((k) => k.startsWith('alice,')),
    );
  });

  it('after a restart on two workers the counts accumulate, exactly, across both workers', async () => {
    const { gw, base, admin } = await start(2);
    await runScript(base);
    const workers = (await (await request(`${admin}/workers`)).body.json()) as {
      workers: { requestsServed: number }[];
    };
    assert.equal(workers.workers.length, 2);
    for (const w of workers.workers) assert.ok(w.requestsServed > 0, 'each worker served some of the script');
    // The admin API writes every worker's pending counts before it reads: exact while running.
    const live = (await (await request(`${admin}/usage?format=json`)).body.json()) as { rows: never[] };
    assert.deepEqual(totals(live.rows), expected(2));
    await runScript(base);
    assert.equal(await gw.stop('SIGTERM'), 0);
    assert.deepEqual(totals(await exportRows('csv')), expected(3));
  });

  it('usage report totals per API version and per consumer', async () => {
    const text = await runMeshgate(['usage', '--config', file]);
    assert.equal(text.code, 0, text.stderr);
    // v1: alice 5+2, bob 4, three runs; sunset from the config.
    assert.match(
      text.stdout,
      /^property-api\s+v1\s+33\s+165\s+2\s+\S+\s+2026-01-01T00:00:00Z\s+2026-12-31T23:59:59Z$/m,
    );
    assert.match(text.stdout, /^property-api\s+v2\s+18\s+90\s+2\s+\S+\s+-\s+-$/m);
    assert.match(text.stdout, /^alice\s+property-api\s+v1\s+21\s+15\s+0\s+6\s+0\s+105\s/m);
    const json = await runMeshgate(['usage', 'report', '--config', file, '--format', 'json', '--api', 'property-api']);
    const summary = JSON.parse(json.stdout) as { consumers: { consumer: string; version: string; requests: number }[] };
    assert.deepEqual(
      summary.consumers.map((c) => [c.consumer, c.version, c.requests]),
      [
        ['alice', 'v1', 21],
        ['bob', 'v1', 12],
        ['alice', 'v2', 9],
        ['bob', 'v2', 9],
      ],
    );
    const later = await runMeshgate(['usage', 'export', '--config', file, '--from', '2999-01-01']);
    assert.equal(later.stdout, 'hour,consumer,route,api,version,status_class,requests,bytes\n');
    // An hour counts when it starts in [--from, --to): the first hour recorded is in from it, out before it.
    const hours = ((await exportRows('json')) as { hour: string }[]).map((r) => Date.parse(r.hour));
    const first = new Date(Math.min(...hours)).toISOString();
    const end = new Date(Math.max(...hours) + 3_600_000).toISOString();
    const window = await runMeshgate([
      'usage',
      'export',
      '--config',
      file,
      '--format',
      'json',
      '--from',
      first,
      '--to',
      end,
    ]);
    assert.deepEqual(totals(JSON.parse(window.stdout)), expected(3));
    const before = await runMeshgate(['usage', 'export', '--config', file, '--to', first]);
    assert.equal(before.code, 0, before.stderr);
    assert.equal(before.stdout, 'hour,consumer,route,api,version,status_class,requests,bytes\n');
    const bad = await runMeshgate(['usage', 'export', '--config', file, '--from', 'soon']);
    assert.equal(bad.code, 2);
  });
});

describe('usage metering: a crash', () => {
  let dir: string;
  let file: string;
  let upstream: Upstream;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'meshgate-metering-crash-'));
    file = join(dir, 'gateway.yaml');
    upstream = await startUpstream((req, res) => {
      const status = Number(req.url!.split('/').pop()) || 200;
      res.writeHead(status, { 'content-type': 'text/plain', 'content-length': '5' }).end('hello');
    });
    writeFileSync(file, configYaml(upstream.url, '300ms'));
  });
  after(async () => {
    await upstream.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** What the SQLite file holds now, read beside the running gateway. */
  async function stored() {
    const db = join(dir, 'meshgate-usage.db');
    if (!existsSync(db)) return new Map<string, [number, number]>();
    const store = new SqliteUsageStore(db, { readOnly: true });
    try {
      return totals(await store.query({}));
    } finally {
      await store.close();
    }
  }

  it('the counts written every flushInterval, with no stop and no admin call, survive a SIGKILL', async () => {
    const gw = new MeshgateProcess(['gateway', '--config', file, '--workers', '0', '--no-watch']);
    try {
      const started = await gw.waitFor('gateway started');
      const base = `http://127.0.0.1:${(started.listeners as Record<string, number>).main}`;
      for (const [key, version, status, times] of SCRIPT)
        for (let i = 0; i < times; i++) {
          const res = await request(`${base}/api/${version}/items/${status}`, {
            headers: key === null ? {} : { 'x-api-key': key },
          });
          await res.body.dump();
        }
      // The timer writes them while the gateway runs: poll the file, bounded.
      const deadline = Date.now() + 20_000;
      let rows = await stored();
      while (!isDeepStrictEqual(rows, expected(1))) {
        assert.ok(Date.now() < deadline, `not written within 20 s: ${JSON.stringify([...rows])}`);
        await sleep(100);
        rows = await stored();
      }
    } finally {
      await gw.stop('SIGKILL');
    }
    const out = await runMeshgate(['usage', 'export', '--config', file, '--format', 'json']);
    assert.equal(out.code, 0, out.stderr);
    assert.deepEqual(totals(JSON.parse(out.stdout)), expected(1));
  });
});
