/**
 * Acceptance: under a 64-connection load of idempotent GETs against 3 endpoint processes, killing one
 * mid-run fails no client request (retries on another endpoint and outlier ejection cover it), and
 * once the process is back the endpoint returns to rotation within its ejection time.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Pool } from 'undici';
import { startGateway, type TestGateway } from '../helpers/servers.ts';
import { UpstreamProcess } from '../helpers/upstream-process.ts';

const MAX_EJECTION_MS = 2000;

describe('failover', () => {
  const processes: UpstreamProcess[] = [];
  let gw: TestGateway | undefined;
  after(async () => {
    await gw?.close();
    for (const p of processes) await p.kill();
  });

  it('a killed endpoint fails no request under 64 connections, and is back within its ejection time after it returns', async () => {
    for (const name of ['a', 'b', 'c']) processes.push(await UpstreamProcess.start(name));
    gw = await startGateway({
      services: [
        {
          name: 'svc',
          endpoints: processes.map((p) => ({ url: p.url })),
          loadBalancer: { policy: 'round-robin' },
          retries: {
            attempts: 2,
            on: ['connect-failure', 'reset', 'gateway-error'],
            backoff: { base: '2ms', max: '10ms' },
          },
          outlierDetection: {
            consecutiveErrors: 3,
            baseEjectionTime: '1s',
            maxEjectionTime: `${MAX_EJECTION_MS}ms`,
            maxEjectionPercent: 34,
          },
        },
      ],
      routes: [{ name: 'r', service: 'svc' }],
    });
    const victim = processes[2]!;
    const pool = new Pool(gw.url(), { connections: 64, pipelining: 1 });
    const started = performance.now();
    const durationMs = 6500;
    let ok = 0;
    let failed = 0;
    const failures: string[] = [];
    const lastSeen: Record<string, number> = {};
    let restartedAt = 0;
    let returnedAt = 0;
    let sent = 0;
    const load = Promise.all(
      Array.from({ length: 64 }, async () => {
        while (performance.now() - started < durationMs && sent < 400_000) {
          sent++;
          try {
            const res = await pool.request({ method: 'GET', path: '/item' });
            const body = await res.body.text();
            if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}: ${body.slice(0, 200)}`);
            ok++;
            const now = performance.now();
            lastSeen[body] = now;
            if (body === 'c' && restartedAt > 0 && returnedAt === 0) returnedAt = now;
          } catch (e) {
            failed++;
            if (failures.length < 5) failures.push((e as Error).message);
          }
        }
      }),
    );
    await sleep(1500);
    assert.ok(lastSeen.c !== undefined, 'c served before it was killed');
    await victim.kill('SIGKILL');
    await sleep(2000);
    const ejections = gw.proxy.snapshot.services.get('svc')!.outlier!.ejectionsTotal;
    assert.ok(ejections >= 1, 'the dead endpoint was ejected');
    processes[2] = await victim.restart();
    restartedAt = performance.now();
    await load;
    await pool.close();

    assert.equal(failed, 0, `failed requests: ${failures.join('; ')}`);
    assert.ok(ok > 1000, `only ${ok} requests completed`);
    assert.ok(returnedAt > 0, 'c got traffic again after it came back');
    const backAfter = returnedAt - restartedAt;
    assert.ok(backAfter <= MAX_EJECTION_MS + 300, `c was back ${backAfter.toFixed(0)} ms after it returned`);
    const stats = gw.proxy.snapshot.services.get('svc')!.stats;
    console.log(
      `# ${ok} requests, ${stats.retries} retries, ${ejections}+ ejections; c back in rotation ${backAfter.toFixed(0)} ms after restart`,
    );
  });
});
