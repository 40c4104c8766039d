/**
 * The compiled `meshgate gateway` with two workers: each keeps its own breaker, health and ejection
 * state; /services sums the counters and shows each endpoint's worst state.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { request } from 'undici';
import { MeshgateProcess } from '../helpers/process.ts';
import { startUpstream } from '../helpers/servers.ts';

describe('resilience state with several workers', () => {
  const dir = mkdtempSync(join(tmpdir(), 'meshgate-workers-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('/services merges the workers’ views', async () => {
    const failing = await startUpstream((_req, res) => res.writeHead(500).end('no'), 'failing');
    const file = join(dir, 'gateway.yaml');
    writeFileSync(
      file,
      `listeners: [{ name: main, port: 0, address: 127.0.0.1 }]
admin: { port: 0 }
services:
  - name: svc
    endpoints: [{ url: ${failing.url} }]
    outlierDetection: { consecutiveErrors: 1, baseEjectionTime: 1m, maxEjectionPercent: 100 }
    circuitBreaker: { maxRequests: 100 }
    adaptiveConcurrency: { minConcurrency: 5 }
    retries: { attempts: 1, on: [5xx], backoff: { base: 1ms } }
routes: [{ name: r, service: svc }]
`,
    );
    const gw = new MeshgateProcess(['gateway', '--config', file, '--workers', '2']);
    try {
      const started = await gw.waitFor('gateway started');
      const base = `http://127.0.0.1:${(started.listeners as Record<string, number>).main}`;
      const admin = `http://127.0.0.1:${started.admin}`;
      for (let i = 0; i < 8; i++) {
        // A new connection each time, so both workers get requests.
        const res = await request(`${base}/x`, { headers: { connection: 'close' } });
        await res.body.dump();
        assert.ok(res.statusCode === 500 || res.statusCode === 503);
      }
      const view = (await (await request(`${admin}/services`)).body.json()) as {
        services: {
          circuitBreaker: {
            thresholds: { maxRequests: number };
            current: { requests: number };
            open: Record<string, boolean>;
          };
          endpoints: { outlier: { ejected: boolean }; available: boolean; health: { status: string } }[];
          stats: { retries: number };
          adaptiveConcurrency: { limit: number; inFlight: number; measuringMinRtt: boolean };
        }[];
      };
      const svc = view.services[0]!;
      assert.equal(svc.circuitBreaker.thresholds.maxRequests, 100);
      assert.equal(svc.circuitBreaker.current.requests, 0);
      assert.equal(svc.circuitBreaker.open.maxRequests, false);
      assert.equal(svc.endpoints[0]!.outlier.ejected, true, 'ejected in at least one worker');
      assert.equal(svc.endpoints[0]!.available, false);
      assert.equal(svc.endpoints[0]!.health.status, 'healthy', 'no health checks configured');
      // Each worker holds its own adaptive limit (minConcurrency until minRTT is measured): the sum.
      assert.deepEqual(
        { ...svc.adaptiveConcurrency, rest: undefined },
        { ...svc.adaptiveConcurrency, limit: 10, inFlight: 0, measuringMinRtt: true, rest: undefined },
      );
    } finally {
      await gw.stop();
      await failing.close();
    }
  });
});
