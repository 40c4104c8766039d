/**
 * Guarded rollouts (docs/rollout.md), end to end on real sockets: a control plane, four gateways
 * subscribed to it (real ProxyServers, in this process), an upstream registered in the registry, and
 * traffic through every gateway while changes are rolled out with `POST /rollouts`.
 *
 * Checked: a change that makes the route fail (a fault that aborts with 500) is rolled back by its
 * canary's error rate inside the watch window, and its record says which metric crossed which
 * threshold with what value; the proxies outside the canary never get it. A healthy change is
 * promoted after its window and every proxy ends on it; a registry change during the watch reaches
 * canaries and baseline alike, each on its own model; a second change is refused while one is
 * watched. A change the canary rejects (its listener's port is taken) is rolled back at once, and
 * the record names the proxy and its error. An operator aborts or promotes by API. `meshgate apply
 * --canary-proxies --wait` (the built CLI, as a process) reports a rollback and a promotion, and
 * `meshgate status` lists them.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import type { ChangeRecord, RolloutView } from '../../src/api/mesh.ts';
import {
  eventually,
  model,
  startControlPlane,
  startMeshProxy,
  type TestControlPlane,
  type TestMeshProxy,
} from '../helpers/mesh.ts';
import { runMeshgate } from '../helpers/process.ts';
import { startUpstream, type Upstream } from '../helpers/servers.ts';

const modelText = (extra: { timeouts?: string; fault?: string; port?: number } = {}) => `listeners:
  - { name: public, port: ${extra.port ?? 0}, address: 127.0.0.1 }
services:
  - name: api
    timeouts: { request: ${extra.timeouts ?? '5s'} }
routes:
  - name: api
    match: { path: /api/* }
    service: api
${extra.fault ? `    fault: ${extra.fault}\n` : ''}`;

async function call<T>(url: string, method: string, body?: unknown) {
  const res = await request(url, {
    method: method as 'GET',
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    headers: { 'content-type': 'application/json' },
  });
  return { status: res.statusCode, body: (await res.body.json()) as T };
}

type Rollout = { change: number; rollout: RolloutView };

describe('guarded rollouts', () => {
  let cp: TestControlPlane;
  let upstream: Upstream;
  let extra: Upstream;
  let busy: Server;
  const gateways: TestMeshProxy[] = [];
  const ids = ['gw-1', 'gw-2', 'gw-3', 'gw-4'];
  let stopLoad = false;
  let loadDone: Promise<unknown>;

  const record = async (id: number) => (await call<ChangeRecord>(`${cp.url}/changes/${id}`, 'GET')).body;
  const decided = (id: number, timeoutMs: number) =>
    eventually(
      async () => {
        const r = await record(id);
        return r.rollout?.state !== 'canary' && r.rollout ? r : undefined;
      },
      timeoutMs,
      `change ${id}'s rollout to be decided`,
    );
  const ackedVersions = () => Object.fromEntries(ids.map((id) => [id, cp.cp.proxyStatus(id)?.ackedVersion]));

  before(async () => {
    upstream = await startUpstream(undefined, 'api-1');
    extra = await startUpstream(undefined, 'api-2');
    busy = createServer().listen(0, '127.0.0.1');
    await once(busy, 'listening');
    cp = await startControlPlane({ model: model(modelText()), telemetryIntervalMs: 100 });
    await cp.registry.register({
      id: 'api-1',
      service: 'api',
      address: '127.0.0.1',
      port: upstream.port,
      ttlMs: 300_000,
    });
    for (const id of ids) gateways.push(startMeshProxy(cp.url, { id, kind: 'gateway' }));
    await eventually(
      () =>
        gateways.every((g) => g.plane.ports().public !== undefined) &&
        cp.cp.proxyStatuses().every((p) => p.state === 'SYNCED'),
      10_000,
      'every gateway synced and listening',
    );
    // Traffic through every gateway until the end (bounded in count and time).
    const deadline = Date.now() + 120_000;
    loadDone = Promise.all(
      gateways.map(async (g) => {
        for (let n = 0; n < 200_000 && !stopLoad && Date.now() < deadline; n++) {
          const port = g.plane.ports().public;
          try {
            const res = await request(`http://127.0.0.1:${port}/api/items/${n}`);
            await res.body.dump();
          } catch {
            await new Promise((r) => setTimeout(r, 5));
          }
        }
      }),
    );
  });

  after(async () => {
    stopLoad = true;
    await loadDone;
    for (const g of gateways) await g.close();
    await cp.close();
    await upstream.close();
    await extra.close();
    busy.close();
  });

  it('rolls a change that fails requests back inside its watch window, and says why', async () => {
    const before = cp.cp.currentModel.version;
    const started = await call<{ change: number; rollout: RolloutView }>(`${cp.url}/rollouts`, 'POST', {
      config: modelText({ fault: '{ abort: { status: 500 } }' }),
      rollout: { canaryProxies: '25%', watch: '3s', thresholds: { errorRate: 0.05, minRequests: 10 } },
    });
    assert.equal(started.status, 202, JSON.stringify(started.body));
    const { change } = started.body;
    assert.equal(started.body.rollout.canaries.length, 1);
    const [canary] = started.body.rollout.canaries;
    assert.deepEqual(
      started.body.rollout.baseline,
      ids.filter((id) => id !== canary),
    );

    const r = await decided(change, 15_000);
    const rollout = r.rollout!;
    assert.equal(r.status, 'rolled-back');
    assert.equal(rollout.state, 'rolled-back');
    assert.equal(rollout.decision?.by, 'threshold', JSON.stringify(rollout.decision));
    assert.equal(rollout.decision?.metric, 'errorRate');
    assert.ok(rollout.decision!.value! > 0.05, `measured ${rollout.decision!.value}`);
    assert.equal(rollout.decision?.threshold, 0.05);
    assert.match(
      rollout.decision!.reason,
      /canary error rate \d+\.\d% \(\d+ of \d+ requests\) is above the threshold 5\.0%/,
    );
    assert.ok(rollout.watchEndsAt !== null && Date.parse(rollout.decision!.at) <= Date.parse(rollout.watchEndsAt));
    assert.ok(rollout.signals!.canary.requests >= 10);
    assert.ok((rollout.signals!.baseline.errorRate ?? 0) < 0.05, 'the baseline stayed healthy');
    // Only the canary was pushed the change; it is back on the previous version.
    assert.deepEqual(
      r.results.map((x) => x.proxy),
      [canary],
    );
    assert.equal(typeof rollout.rollbackChange, 'number');
    assert.match(
      (await record(rollout.rollbackChange!)).cause,
      new RegExp(`^rollback of change ${change}: canary error rate`),
    );
    await eventually(
      () => Object.values(ackedVersions()).every((v) => v === cp.cp.expectedVersion('gw-1')),
      5_000,
      'every gateway on the previous version',
    );
    assert.equal(cp.cp.currentModel.version, before);
    const bad = r.results[0]!.version;
    for (const [i, g] of gateways.entries()) if (ids[i] !== canary) assert.ok(!g.applied.includes(bad));
    // Traffic through the canary works again.
    const port = gateways[ids.indexOf(canary!)]!.plane.ports().public;
    await eventually(
      async () => (await request(`http://127.0.0.1:${port}/api/again`)).statusCode === 200,
      5_000,
      'the canary serves again',
    );
  });

  it('promotes a healthy change after its window, keeps discovery flowing meanwhile, and refuses a second change', async () => {
    const started = await call<Rollout>(`${cp.url}/rollouts`, 'POST', {
      config: modelText({ timeouts: '4s' }),
      rollout: { canaryProxies: '50%', watch: '2s', thresholds: { errorRate: 0.05, p99: '2s', minRequests: 10 } },
    });
    assert.equal(started.status, 202, JSON.stringify(started.body));
    const { change } = started.body;
    const canaries = started.body.rollout.canaries;
    assert.equal(canaries.length, 2);

    // One change at a time: another rollout, and a plain PUT /config, are refused while it is watched.
    const second = await call<{ code: string; detail: string }>(`${cp.url}/rollouts`, 'POST', {
      config: modelText({ timeouts: '3s' }),
      rollout: { canaryProxies: 1 },
    });
    assert.equal(second.status, 409);
    assert.equal(second.body.code, 'MG_ROLLOUT_IN_PROGRESS');
    assert.match(second.body.detail, new RegExp(`change ${change} is being rolled out`));
    const put = await call<{ code: string }>(`${cp.url}/config`, 'PUT', modelText({ timeouts: '3s' }));
    assert.equal(put.status, 409);
    assert.equal(put.body.code, 'MG_ROLLOUT_IN_PROGRESS');
    const current = await call<Rollout>(`${cp.url}/rollouts/current`, 'GET');
    assert.equal(current.body.change, change);

    // Discovery does not wait: an instance registered now reaches canaries and baseline, each on its model.
    await cp.registry.register({ id: 'api-2', service: 'api', address: '127.0.0.1', port: extra.port, ttlMs: 300_000 });
    await eventually(
      () =>
        ids.every((id) => {
          const config = cp.cp.proxyStatus(id)?.config;
          const api = config?.services?.find((s) => s.name === 'api');
          const timeout = canaries.includes(id) ? '4s' : '5s';
          return api?.endpoints?.length === 2 && api.timeouts?.request === timeout;
        }),
      5_000,
      'every gateway with both instances, on its own model',
    );
    assert.equal((await record(change)).rollout?.state, 'canary', 'still watched while discovery flowed');

    const r = await decided(change, 15_000);
    assert.equal(r.rollout!.state, 'promoted', JSON.stringify(r.rollout!.decision));
    assert.equal(r.rollout!.decision?.by, 'watch');
    assert.match(r.rollout!.decision!.reason, /the watch window passed with no threshold crossed/);
    assert.ok(Date.parse(r.rollout!.decision!.at) >= Date.parse(r.rollout!.watchEndsAt!));
    assert.ok(r.rollout!.signals!.canary.requests >= 10);
    // The same change reached the rest.
    await eventually(async () => (await record(change)).status === 'applied', 5_000, 'the change applied everywhere');
    assert.deepEqual(
      (await record(change)).results.map((x) => x.proxy),
      ids,
    );
    for (const id of ids) {
      const view = cp.cp.proxyStatus(id)!;
      assert.equal(view.state, 'SYNCED');
      assert.equal(view.config?.services?.find((s) => s.name === 'api')?.timeouts?.request, '4s');
    }
    assert.equal((await call(`${cp.url}/rollouts/current`, 'GET')).status, 404);
  });

  it('rolls a change a canary rejects back at once', async () => {
    const port = (busy.address() as { port: number }).port;
    const started = await call<Rollout>(`${cp.url}/rollouts`, 'POST', {
      config: modelText({ timeouts: '4s', port }),
      rollout: { canaryProxies: '25%', watch: '60s' },
    });
    assert.equal(started.status, 202, JSON.stringify(started.body));
    const { change } = started.body;
    const [canary] = started.body.rollout.canaries;
    // Long before the 60 s window.
    const r = await decided(change, 10_000);
    const decision = r.rollout!.decision!;
    assert.equal(r.status, 'rolled-back');
    assert.equal(decision.by, 'nack');
    assert.equal(decision.proxy, canary);
    assert.match(decision.reason, new RegExp(`canary proxy ${canary} rejected the change: .*${port}`));
    assert.ok(decision.error?.message);
    assert.equal(r.rollout!.watchStartedAt, null);
    assert.deepEqual(
      r.results.map((x) => [x.proxy, x.status]),
      [[canary, 'rejected']],
    );
    await eventually(
      () => ids.every((id) => cp.cp.proxyStatus(id)?.state === 'SYNCED'),
      5_000,
      'every gateway in sync on the model in force',
    );
  });

  it('an operator may abort a rollout or promote it before its window ends', async () => {
    const start = (timeouts: string) =>
      call<Rollout>(`${cp.url}/rollouts`, 'POST', {
        config: modelText({ timeouts }),
        rollout: { canaryProxies: 1, watch: '10m' },
      });
    const first = await start('7s');
    assert.equal(first.status, 202, JSON.stringify(first.body));
    const [canary] = first.body.rollout.canaries;
    const watched = await runMeshgate(['status', '--control-plane', cp.url]);
    assert.equal(watched.code, 0, watched.stderr);
    assert.match(
      watched.stdout,
      new RegExp(`^rollout: change ${first.body.change} on canaries ${canary} \\(1; 3 more affected\\), `, 'm'),
    );
    assert.match(watched.stdout, new RegExp(`^${first.body.change}\\s+\\S+ ago\\s+canary\\s`, 'm'));
    const aborted = await call<{ change: number; rollbackChange: number }>(`${cp.url}/rollouts/current/abort`, 'POST');
    assert.equal(aborted.status, 200);
    assert.equal(aborted.body.change, first.body.change);
    const a = await record(first.body.change);
    assert.equal(a.status, 'rolled-back');
    assert.equal(a.rollout?.decision?.by, 'operator');
    assert.equal(a.rollout?.rollbackChange, aborted.body.rollbackChange);

    const second = await start('8s');
    assert.equal(second.status, 202, JSON.stringify(second.body));
    assert.equal((await call(`${cp.url}/rollouts/current/promote`, 'POST')).status, 202);
    const p = await decided(second.body.change, 5_000);
    assert.equal(p.rollout?.state, 'promoted');
    assert.equal(p.rollout?.decision?.by, 'operator');
    await eventually(
      () =>
        ids.every(
          (id) => cp.cp.proxyStatus(id)?.config?.services?.find((x) => x.name === 'api')?.timeouts?.request === '8s',
        ),
      5_000,
      'every gateway on the promoted model',
    );
    assert.equal((await call(`${cp.url}/rollouts/current/abort`, 'POST')).status, 404);
  });

  it('meshgate apply --canary-proxies rolls out, waits, and reports the outcome; status shows it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'meshgate-rollout-'));
    try {
      const bad = join(dir, 'bad.yaml');
      const good = join(dir, 'good.yaml');
      writeFileSync(bad, modelText({ timeouts: '4s', fault: '{ abort: { status: 503 } }' }));
      writeFileSync(good, modelText({ timeouts: '6s' }));
      const cli = ['--control-plane', cp.url];

      const usage = await runMeshgate(['apply', good, '--watch', '1s', ...cli]);
      assert.equal(usage.code, 2);
      assert.match(usage.stderr, /--watch and the thresholds go with --canary-proxies/);

      const failed = await runMeshgate([
        'apply',
        bad,
        '--canary-proxies',
        '1',
        '--watch',
        '3s',
        '--max-error-rate',
        '0.05',
        '--min-requests',
        '10',
        '--wait',
        '20s',
        ...cli,
      ]);
      assert.equal(failed.code, 1, failed.stdout + failed.stderr);
      assert.match(failed.stdout, /^rollout: rolled-back at \S+ \(threshold\)$/m);
      assert.match(
        failed.stdout,
        /^ {2}why: canary error rate \d+\.\d% \(\d+ of \d+ requests\) is above the threshold 5\.0%/m,
      );
      assert.match(failed.stdout, /^ {2}canaries \(1\): gw-\d; kept on \S+: gw-\d, gw-\d, gw-\d$/m);
      const id = Number(/^change (\d+) \(config\)/m.exec(failed.stdout)?.[1]);

      const summary = await runMeshgate(['status', ...cli]);
      assert.equal(summary.code, 0, summary.stderr);
      assert.match(summary.stdout, new RegExp(`^${id}\\s+\\S+ ago\\s+rolled-back\\s`, 'm'));
      const one = await runMeshgate(['status', String(id), ...cli]);
      assert.equal(one.code, 1);
      assert.match(one.stdout, /why: canary error rate/);

      const promoted = await runMeshgate([
        'apply',
        good,
        '--canary-proxies',
        '50%',
        '--watch',
        '1s',
        '--wait',
        '20s',
        ...cli,
      ]);
      assert.equal(promoted.code, 0, promoted.stdout + promoted.stderr);
      assert.match(promoted.stdout, /^rollout: promoted at \S+ \(watch\)$/m);
      assert.match(promoted.stdout, /: applied$/m);
      for (const gid of ids)
        assert.equal(cp.cp.proxyStatus(gid)?.config?.services?.find((x) => x.name === 'api')?.timeouts?.request, '6s');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
