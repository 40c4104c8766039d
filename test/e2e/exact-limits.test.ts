/**
 * A limit is a limit on one machine, whatever `--workers` is: `meshgate gateway` with the default worker
 * count (one per CPU; `--workers` omitted) and a route limited to 500 requests a minute, 50 concurrent
 * clients sending 700 requests over connections both workers accept: exactly 500 OK, 200 × 429 with
 * Retry-After.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client, request } from 'undici';
import { eventually } from '../helpers/mesh.ts';
import { MeshgateProcess } from '../helpers/process.ts';

interface WorkerStatus {
  pid: number;
  requestsServed: number;
}

describe('gateway with the default worker count: one exact limit', () => {
  let dir: string;
  let gw: MeshgateProcess;
  let base: string;
  let admin: string;

  const workers = async (): Promise<WorkerStatus[]> =>
    (JSON.parse(await (await request(`${admin}/workers`)).body.text()) as { workers: WorkerStatus[] }).workers;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'meshgate-exact-'));
    const file = join(dir, 'gw.yaml');
    writeFileSync(
      file,
      `listeners: [{ name: main, port: 0, address: 127.0.0.1 }]
admin: { port: 0 }
routes:
  - name: limited
    match: { path: /limited }
    directResponse: { status: 200, body: ok }
    plugins: [{ name: rate-limit, config: { by: route, limits: [{ requests: 500, window: 1m }] } }]
`,
    );
    gw = new MeshgateProcess(['gateway', '--config', file]);
    const started = await gw.waitFor('gateway started');
    base = `http://127.0.0.1:${(started.listeners as Record<string, number>).main}`;
    admin = `http://127.0.0.1:${started.admin}`;
    assert.equal((started.workers as number[]).length, availableParallelism(), 'one worker per CPU by default');
  });

  after(async () => {
    await gw.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('admits exactly 500 of 700 requests from 50 concurrent clients; the rest get 429 with Retry-After', async () => {
    const before = await workers();
    assert.ok(before.length >= 2, `the default here is several workers (${before.length})`);
    const statuses: number[] = [];
    const retryAfter: (string | undefined)[] = [];
    // 50 clients, each on its own connection (accepted in turn by the workers), 14 requests each.
    const clients = Array.from({ length: 50 }, () => new Client(base));
    try {
      await Promise.all(
        clients.map(async (client) => {
          for (let i = 0; i < 14; i++) {
            const res = await client.request({ path: '/limited', method: 'GET' });
            await res.body.text();
            statuses.push(res.statusCode);
            if (res.statusCode === 429) retryAfter.push(res.headers['retry-after'] as string | undefined);
          }
        }),
      );
    } finally {
      await Promise.all(clients.map((c) => c.close()));
    }
    assert.equal(statuses.length, 700);
    assert.equal(statuses.filter((s) => s === 200).length, 500, 'exactly the limit is admitted');
    assert.equal(statuses.filter((s) => s === 429).length, 200);
    for (const value of retryAfter) assert.ok(Number(value) >= 1, `Retry-After: ${value}`);

    // Both workers decided part of them: the count is the machine's, not one worker's.
    const served = (ws: WorkerStatus[]) => ws.reduce((sum, w) => sum + w.requestsServed, 0);
    const after = await eventually(async () => {
      const ws = await workers();
      return served(ws) - served(before) >= 700 ? ws : undefined;
    });
    for (const w of after) {
      const was = before.find((x) => x.pid === w.pid)?.requestsServed ?? 0;
      assert.ok(w.requestsServed - was > 0, `worker ${w.pid} served ${w.requestsServed - was} of the 700`);
    }
  });

  it('says nothing about limits counting per worker', () => {
    assert.equal(
      gw.logs.some((l) => l.msg.includes('counted per worker')),
      false,
    );
  });
});
