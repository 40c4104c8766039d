/**
 * `meshgate gateway --workers 2` as a real process tree: both workers serve, a reload reaches every
 * worker (admin /workers shows each on the new version), and a worker killed with SIGKILL is replaced
 * by a new process that serves.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { eventually } from '../helpers/mesh.ts';
import { MeshgateProcess } from '../helpers/process.ts';

function configYaml(body: string): string {
  return `listeners: [{ name: main, port: 0, address: 127.0.0.1 }]
admin: { port: 0 }
routes:
  - { name: hello, match: { path: /hello }, directResponse: { status: 200, body: "${body}" } }
`;
}

interface WorkerStatus {
  pid: number;
  version: number;
  hash: string;
  requestsServed: number;
}

describe('gateway with 2 workers', () => {
  let dir: string;
  let file: string;
  let gw: MeshgateProcess;
  let base: string;
  let admin: string;

  const workers = async (): Promise<WorkerStatus[]> =>
    (JSON.parse(await (await request(`${admin}/workers`)).body.text()) as { workers: WorkerStatus[] }).workers;

  /** Responses over fresh connections, so the round-robin accept spreads them over the workers. */
  async function bodies(n: number): Promise<string[]> {
    const out: string[] = [];
    for (let i = 0; i < n; i++) {
      const res = await request(`${base}/hello`, { reset: true });
      out.push(await res.body.text());
    }
    return out;
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'meshgate-workers-'));
    file = join(dir, 'gateway.yaml');
    writeFileSync(file, configYaml('one'));
    gw = new MeshgateProcess(['gateway', '--config', file, '--workers', '2']);
    const started = await gw.waitFor('gateway started');
    base = `http://127.0.0.1:${(started.listeners as Record<string, number>).main}`;
    admin = `http://127.0.0.1:${started.admin}`;
    assert.equal((started.workers as number[]).length, 2);
  });

  after(async () => {
    await gw.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('runs two worker processes that share the port; admin /workers reports each', async () => {
    const list = await workers();
    assert.equal(list.length, 2);
    assert.notEqual(list[0]!.pid, list[1]!.pid);
    for (const w of list) assert.notEqual(w.pid, gw.child.pid, 'workers are separate processes');
    const served = (ws: WorkerStatus[]) => ws.reduce((sum, w) => sum + w.requestsServed, 0);
    const before = served(list);
    assert.deepEqual(new Set(await bodies(10)), new Set(['one']));
    // Each worker's own count: the 10 (over fresh connections, accepted in turn) were served by both.
    const after = await eventually(async () => {
      const ws = await workers();
      return served(ws) - before === 10 ? ws : undefined;
    });
    for (const w of after) {
      const was = list.find((x) => x.pid === w.pid)!.requestsServed;
      assert.ok(w.requestsServed - was > 0, `worker ${w.pid} served ${w.requestsServed - was} of the 10`);
    }
  });

  it('a reload reaches every worker', async () => {
    const applied = gw.waitForNext('config applied');
    writeFileSync(file, configYaml('two'));
    const line = await applied;
    assert.equal(line.applied, 2);
    const list = await workers();
    assert.equal(list.length, 2);
    for (const w of list) {
      assert.equal(w.version, line.version, `worker ${w.pid} is on the new version`);
      assert.equal(w.hash, line.hash);
    }
    assert.deepEqual(new Set(await bodies(20)), new Set(['two']));
  });

  it('a killed worker is replaced by a new process that serves the config in force', async () => {
    const [victim, survivor] = await workers();
    const replaced = gw.waitForNext('worker replaced');
    process.kill(victim!.pid, 'SIGKILL');
    const line = await replaced;
    const pids = line.workers as number[];
    assert.equal(pids.length, 2);
    assert.ok(!pids.includes(victim!.pid), 'the dead worker is gone');
    assert.ok(pids.includes(survivor!.pid));
    const list = await workers();
    assert.equal(list.length, 2);
    const fresh = list.find((w) => w.pid !== survivor!.pid)!;
    assert.equal(fresh.hash, list.find((w) => w.pid === survivor!.pid)!.hash, 'the new worker has the config in force');
    // Requests keep being served while and after the worker is replaced.
    let served = 0;
    for (let i = 0; i < 20; i++) {
      const res = await request(`${base}/hello`, { reset: true });
      if ((await res.body.text()) === 'two') served++;
      await sleep(5);
    }
    assert.equal(served, 20);
  });
});
