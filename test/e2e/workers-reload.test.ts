/**
 * A reload is all-or-nothing across real worker processes: `meshgate gateway --workers 2` is given a
 * config that one worker refuses (a user plugin, loaded by path, whose compile fails in that worker's
 * process only) and every worker stays on the old config, with its old access log; the next good
 * config reaches both.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { eventually } from '../helpers/mesh.ts';
import { MeshgateProcess } from '../helpers/process.ts';

/** A user plugin that refuses to compile in one process: a stand-in for a per-process resource that fails. */
const PICKY_PLUGIN = `export default {
  name: 'picky',
  phase: 'transform',
  order: 100,
  description: 'Refuses to compile in the process whose pid is refuseInPid.',
  configSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['refuseInPid'],
    properties: { refuseInPid: { type: 'integer' } },
  },
  compile(config) {
    if (config.refuseInPid === process.pid) throw new Error('picky refuses to compile in process ' + process.pid);
    const filter = { onResponseHeaders(_ctx, response) { response.setHeader('x-picky', String(process.pid)); } };
    return () => filter;
  },
};
`;

function configYaml(body: string, accessLog: string, refuseInPid?: number): string {
  const plugins =
    refuseInPid === undefined ? '' : `, plugins: [{ path: ./picky.mjs, config: { refuseInPid: ${refuseInPid} } }]`;
  return `listeners: [{ name: main, port: 0, address: 127.0.0.1 }]
admin: { port: 0 }
observability: { accessLog: { output: ${accessLog} } }
routes:
  - { name: hello, match: { path: /hello }, directResponse: { status: 200, body: "${body}" }${plugins} }
`;
}

interface WorkerStatus {
  pid: number;
  version: number;
  hash: string;
}

describe('gateway with 2 workers: a reload one worker refuses', () => {
  let dir: string;
  let file: string;
  let gw: MeshgateProcess;
  let base: string;
  let admin: string;
  let logOne: string;

  const workers = async (): Promise<WorkerStatus[]> =>
    (JSON.parse(await (await request(`${admin}/workers`)).body.text()) as { workers: WorkerStatus[] }).workers;

  /** Over fresh connections, so the round-robin accept spreads them over both workers. */
  async function hellos(n: number): Promise<{ bodies: Set<string>; ids: string[] }> {
    const bodies = new Set<string>();
    const ids: string[] = [];
    for (let i = 0; i < n; i++) {
      const res = await request(`${base}/hello`, { reset: true });
      bodies.add(await res.body.text());
      ids.push(res.headers['x-request-id'] as string);
    }
    return { bodies, ids };
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'meshgate-workers-reload-'));
    file = join(dir, 'gateway.yaml');
    logOne = join(dir, 'one.log');
    writeFileSync(join(dir, 'picky.mjs'), PICKY_PLUGIN);
    writeFileSync(file, configYaml('one', logOne));
    gw = new MeshgateProcess(['gateway', '--config', file, '--workers', '2']);
    const started = await gw.waitFor('gateway started');
    base = `http://127.0.0.1:${(started.listeners as Record<string, number>).main}`;
    admin = `http://127.0.0.1:${started.admin}`;
  });

  after(async () => {
    await gw.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('leaves every worker on the old config and the old access log, then takes the next good one', async () => {
    const before = await workers();
    assert.equal(before.length, 2);
    const [refuser, other] = before;
    const logTwo = join(dir, 'two.log');

    const refused = gw.waitForNext('config could not be applied; the running config is kept');
    writeFileSync(file, configYaml('two', logTwo, refuser!.pid));
    const line = await refused;
    assert.match(line.err as string, new RegExp(`picky refuses to compile in process ${refuser!.pid}`));

    // Both workers, including the one that prepared it, are on the old version and hash.
    const after = await workers();
    assert.deepEqual(
      after.map((w) => [w.pid, w.version, w.hash]).sort(),
      before.map((w) => [w.pid, w.version, w.hash]).sort(),
    );
    const { bodies, ids } = await hellos(20);
    assert.deepEqual(bodies, new Set(['one']));
    // Requests served by either worker go to the old access log; the new file gets none.
    await eventually(
      () => {
        const text = readFileSync(logOne, 'utf8');
        return ids.every((id) => text.includes(id));
      },
      5_000,
      'every request in the old access log',
    );
    assert.equal(existsSync(logTwo) && readFileSync(logTwo, 'utf8').length > 0, false);

    const status = JSON.parse(await (await request(`${admin}/config/pipeline`)).body.text());
    assert.equal(status.lastRefusal.status, 'failed');
    assert.equal(status.current.hash, before[0]!.hash);

    // The same plugin refusing in no worker: the change reaches both.
    const applied = gw.waitForNext('config applied');
    writeFileSync(file, configYaml('two', logTwo, 0));
    const ok = await applied;
    assert.equal(ok.applied, 2);
    const list = await workers();
    for (const w of list) assert.equal(w.hash, ok.hash, `worker ${w.pid} is on the new config`);
    assert.ok(list.some((w) => w.pid === other!.pid));
    const next = await hellos(20);
    assert.deepEqual(next.bodies, new Set(['two']));
    await eventually(
      () => {
        const text = existsSync(logTwo) ? readFileSync(logTwo, 'utf8') : '';
        return next.ids.every((id) => text.includes(id));
      },
      5_000,
      'every request in the new access log',
    );
  });
});
