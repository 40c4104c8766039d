/**
 * Shadow config through the real CLI (docs/shadow.md): a gateway process with two workers and real
 * upstreams serves a 90/10 split while `meshgate diff --live --config` evaluates a 50/50 candidate on
 * the same requests, then clears it.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Pool, request } from 'undici';
import type { ShadowReport } from '../../src/api/shadow.ts';
import { MeshgateProcess, runMeshgate } from '../helpers/process.ts';
import { startUpstream, type Upstream } from '../helpers/servers.ts';

function config(v1: string, v2: string, v1Weight: number, extra = ''): string {
  return `listeners:
  - { name: public, port: 0, address: 127.0.0.1 }
admin: { port: 0 }
services:
  - name: property-service
    endpoints:
      - { url: "${v1}", labels: { version: v1 } }
      - { url: "${v2}", labels: { version: v2 } }
    subsets:
      v1: { version: v1 }
      v2: { version: v2 }
routes:
  - name: property-api
    match: { path: /api/v1/properties/* }
    destinations:
      - { service: property-service, subset: v1, weight: ${v1Weight} }
      - { service: property-service, subset: v2, weight: ${100 - v1Weight} }
${extra}`;
}

/**
 * A route with the same limit in the live config and in every candidate: if a candidate counted in the
 * live counters (the primary's, with workers), the live route would refuse early.
 */
const SAME_LIMIT = `  - name: same-limit
    match: { path: /same/* }
    service: property-service
    plugins:
      - { name: rate-limit, config: { limits: [{ requests: 25, window: 1m }], by: route } }
`;

/** `count` GETs over 16 keep-alive connections; every answer must be 200. */
async function load(origin: string, path: string, count: number) {
  const pool = new Pool(origin, { connections: 16 });
  let sent = 0;
  let ok = 0;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (sent < count) {
        sent++;
        const res = await pool.request({ method: 'GET', path });
        await res.body.dump();
        if (res.statusCode === 200) ok++;
      }
    }),
  );
  await pool.close();
  return ok;
}

describe('meshgate diff --live against a gateway process', () => {
  let dir: string;
  let v1: Upstream;
  let v2: Upstream;
  let gw: MeshgateProcess;
  let base: string;
  let adminUrl: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'meshgate-shadow-'));
    v1 = await startUpstream(undefined, 'v1');
    v2 = await startUpstream(undefined, 'v2');
    const file = join(dir, 'live.yaml');
    writeFileSync(file, config(v1.url, v2.url, 90, SAME_LIMIT));
    gw = new MeshgateProcess(['gateway', '--config', file, '--workers', '2', '--no-watch']);
    const started = await gw.waitFor('gateway started', 30_000);
    base = `http://127.0.0.1:${(started.listeners as Record<string, number>).public}`;
    adminUrl = `http://127.0.0.1:${started.admin as number}`;
  });
  after(async () => {
    await gw?.stop();
    await v1.close();
    await v2.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Waits until the gateway reports a shadow set (the CLI set it), or fails at the deadline. */
  async function shadowSet(timeoutMs = 15_000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const res = await request(`${adminUrl}/shadow/report`);
      await res.body.dump();
      if (res.statusCode === 200) return;
      if (Date.now() > deadline) assert.fail('the shadow config was never set');
      await sleep(50);
    }
  }

  it('a candidate moving half the traffic to v2: 50% ± 3 points differ; live stays 90/10; the shadow is cleared', async () => {
    // Independent draws (the candidate draws its own destination): P(differ) = 0.9·0.5 + 0.1·0.5 = 0.5,
    // σ = sqrt(0.25/n) = 0.71 points for n = 5000, so ±3 points is > 4σ. Live v2 (p = 0.1): σ = 0.42
    // points, ±2 points > 4σ.
    const n = 5000;
    const candidate = join(dir, 'candidate.yaml');
    writeFileSync(candidate, config(v1.url, v2.url, 50));
    const diff = runMeshgate([
      'diff',
      '--live',
      '--admin',
      adminUrl,
      '--config',
      candidate,
      '--for',
      '180s',
      '--requests',
      String(n),
      '--json',
    ]);
    await shadowSet();
    assert.equal(await load(base, '/api/v1/properties/7', n), n);
    const { code, stdout, stderr } = await diff;
    assert.equal(code, 1, stderr);
    assert.match(stderr, /shadow config [0-9a-f]{8} set on .* \(2 process\(es\), sampling 100%\)/);
    assert.match(stderr, /shadow config cleared/);
    const report = JSON.parse(stdout) as ShadowReport;
    assert.equal(report.processes, 2);
    assert.equal(report.totals.compared, n);
    const d = report.differences.destination;
    assert.equal(d.compared, n);
    assert.ok(Math.abs(d.differ / n - 0.5) < 0.03, `${d.differ} of ${n} differ`);
    assert.equal(v1.seen.length + v2.seen.length, n, 'the shadow sent nothing upstream');
    assert.ok(Math.abs(v2.seen.length / n - 0.1) < 0.02, `live v2 got ${v2.seen.length} of ${n}`);
    assert.equal(report.destinations.live['property-service/v2'], v2.seen.length);
    const gone = await request(`${adminUrl}/shadow/report`);
    await gone.body.dump();
    assert.equal(gone.statusCode, 404);
  });

  it('a stricter rate limit in the candidate: counted in the text report, nothing live refused', async () => {
    const candidate = join(dir, 'limited.yaml');
    writeFileSync(
      candidate,
      config(v1.url, v2.url, 90, SAME_LIMIT).replace(
        '    destinations:',
        '    plugins:\n      - { name: rate-limit, config: { limits: [{ requests: 6, window: 1m }], by: route } }\n    destinations:',
      ),
    );
    const diff = runMeshgate([
      'diff',
      '--live',
      '--admin',
      adminUrl,
      '-c',
      candidate,
      '--for',
      '120s',
      '--requests',
      '41',
    ]);
    await shadowSet();
    assert.equal(await load(base, '/api/v1/properties/8', 20), 20);
    // The same limit on both sides: live counts 21 of its 25, whatever the candidate counted.
    assert.equal(await load(base, '/same/x', 20), 20);
    const last = await request(`${base}/same/x`);
    await last.body.dump();
    assert.equal(last.statusCode, 200);
    assert.equal(last.headers['ratelimit-remaining'], '4');
    const { code, stdout, stderr } = await diff;
    assert.equal(code, 1, stderr);
    // The candidate counts in the primary as the live config would (under keys of its own): one limit
    // for the machine, whichever worker each request reached.
    assert.match(stdout, /\b14 would be refused by the new rate limit; 0 refused now would be let through/);
    assert.match(stdout, /rate-limit: GET \/api\/v1\/properties\/8/);
    assert.match(stdout, /candidate: route property-api → property-service\/v[12] refused MG_RATE_LIMITED/);
  });

  it('a bad candidate is refused with the issues validate gives; the live config keeps serving', async () => {
    const candidate = join(dir, 'bad.yaml');
    writeFileSync(candidate, config(v1.url, v2.url, 90).replace('subset: v2', 'subset: v3'));
    const diff = await runMeshgate(['diff', '--live', '--admin', adminUrl, '--config', candidate, '--for', '5s']);
    const validate = await runMeshgate(['validate', candidate]);
    assert.equal(diff.code, 2);
    assert.equal(validate.code, 1);
    const located = validate.stderr.split('\n')[0]!;
    assert.match(located, /bad\.yaml:\d+:\d+: routes\[0\]\.destinations\[1\]\.subset/);
    assert.equal(diff.stderr.split('\n')[0], located);
    assert.match(diff.stderr, /the live config is unchanged/);
    const res = await request(`${base}/api/v1/properties/9`);
    await res.body.dump();
    assert.equal(res.statusCode, 200);
    const none = await request(`${adminUrl}/shadow/report`);
    await none.body.dump();
    assert.equal(none.statusCode, 404);
  });
});
