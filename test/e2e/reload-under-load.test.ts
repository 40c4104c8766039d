/**
 * Acceptance: during a 10-second load of 64 connections, 20 config reloads lose no request.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { closedLoopLoad } from '../helpers/load.ts';
import { MeshgateProcess } from '../helpers/process.ts';
import { startUpstream } from '../helpers/servers.ts';

function config(a: string, b: string, generation: number): string {
  // Each generation moves the weights and renames a header condition, so every reload is a real change.
  return `listeners: [{ name: main, port: 0, address: 127.0.0.1 }]
admin: { port: 0 }
services:
  - name: svc
    endpoints:
      - { url: ${a}, labels: { version: a } }
      - { url: ${b}, labels: { version: b } }
    subsets: { a: { version: a }, b: { version: b } }
routes:
  - name: canary-${generation}
    match: { path: /api/*, headers: { x-generation-${generation}: "yes" } }
    destinations: [{ service: svc, subset: b }]
  - name: api
    match: { path: /api/* }
    destinations:
      - { service: svc, subset: a, weight: ${50 + (generation % 2) * 10} }
      - { service: svc, subset: b, weight: ${50 - (generation % 2) * 10} }
`;
}

it('20 reloads during 10 s of load on 64 connections: zero failed requests', { timeout: 60_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'meshgate-'));
  const file = join(dir, 'gateway.yaml');
  const a = await startUpstream();
  const b = await startUpstream();
  writeFileSync(file, config(a.url, b.url, 0));
  const gw = new MeshgateProcess(['gateway', '--config', file]);
  try {
    const started = await gw.waitFor('gateway started');
    const origin = `http://127.0.0.1:${(started.listeners as Record<string, number>).main}`;
    const load = closedLoopLoad(origin, { connections: 64, durationMs: 10_000, path: '/api/items/1' });
    for (let generation = 1; generation <= 20; generation++) {
      await sleep(450);
      const applied = gw.waitForNext('config applied');
      writeFileSync(file, config(a.url, b.url, generation));
      await applied;
    }
    const result = await load;
    const reloads = gw.logs.filter((l) => l.msg === 'config applied').length;
    assert.equal(reloads, 20);
    assert.equal(result.failed, 0, `failures: ${result.failures.join('; ')}`);
    assert.ok(result.ok > 1000, `only ${result.ok} requests completed`);
  } finally {
    await gw.stop();
    await a.close();
    await b.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
