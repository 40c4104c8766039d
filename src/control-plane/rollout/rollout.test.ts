/**
 * A guarded rollout on the control plane's push loop, on a manual clock (house rule 10): which
 * proxies are pushed what and when, registry changes during the watch, the decision from crafted
 * telemetry reports, and the window's end to the millisecond. The end-to-end test with real proxies
 * and traffic is test/e2e/rollout.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ProxyIdentity, PushEvent, RolloutOptions, TelemetryReport } from '../../api/mesh.ts';
import { adminApiChange } from '../../config/sources/admin-api/admin-api.ts';
import { ManualClock } from '../../core/clock.ts';
import { silentLogger } from '../../observability/logger.ts';
import { parseModel } from '../model/model.ts';
import { MemoryRegistry } from '../registry/memory.ts';
import { ControlPlane, type StreamSink } from '../server/control-plane.ts';
import { modelPipeline } from '../server/model-pipeline.ts';

class RecordingSink implements StreamSink {
  readonly pushes: PushEvent[] = [];
  send(event: string, data: unknown) {
    if (event === 'push') this.pushes.push(data as PushEvent);
  }
  close() {}
}

const text = (timeout: string) => `listeners:
  - { name: public, port: 0, address: 127.0.0.1 }
services:
  - name: api
    timeouts: { request: ${timeout} }
routes:
  - name: api
    match: { path: /api/* }
    service: api
`;

const IDS = ['gw-1', 'gw-2', 'gw-3', 'gw-4'];

async function setup() {
  const clock = new ManualClock();
  const registry = new MemoryRegistry({ clock });
  const parsed = parseModel([{ file: 'mesh.yaml', text: text('5s') }], 'mesh.yaml', null);
  assert.ok(parsed.ok);
  const cp = new ControlPlane({
    registry,
    model: parsed.model,
    log: silentLogger(),
    clock,
    warmupMs: 0,
    debounceMs: 10,
    debounceMaxMs: 50,
    telemetryIntervalMs: 1_000,
  });
  await cp.start();
  const pipeline = modelPipeline(cp, silentLogger());
  const proxies = new Map<string, { sink: RecordingSink; stream: string }>();
  for (const id of IDS) {
    const sink = new RecordingSink();
    const identity: ProxyIdentity = { id, kind: 'gateway' };
    const { stream } = cp.connect({ proxy: identity, version: null }, sink);
    proxies.set(id, { sink, stream });
  }
  const last = (id: string) => proxies.get(id)!.sink.pushes.at(-1)!;
  const ack = (id: string) => {
    const push = last(id);
    const r = cp.acknowledge({
      proxy: id,
      stream: proxies.get(id)!.stream,
      nonce: push.nonce,
      version: push.version,
      status: 'ack',
    });
    assert.ok(r.ok);
  };
  for (const id of IDS) ack(id);
  const timeoutOf = (push: PushEvent) => push.config.services?.find((s) => s.name === 'api')?.timeouts?.request;
  const rollOut = async (timeout: string, rollout: RolloutOptions) => {
    const outcome = await pipeline.submit({ ...adminApiChange(text(timeout)), intent: { rollout } });
    assert.equal(outcome.status, 'applied');
    return outcome.status === 'applied' ? outcome.report.change! : 0;
  };
  let requests = 0;
  let errors = 0;
  /** A canary's cumulative counters, as its telemetry report carries them. */
  const report = (id: string, more: { requests: number; errors: number }): TelemetryReport => {
    requests += more.requests;
    errors += more.errors;
    return {
      proxy: id,
      stream: proxies.get(id)!.stream,
      since: 1,
      latencyBounds: [0.1, 1],
      series: [
        {
          route: 'api',
          service: 'api',
          requests,
          errors,
          clientErrors: 0,
          retries: 0,
          rateLimited: 0,
          latency: [requests, 0, 0],
        },
      ],
      services: [],
      inflight: 0,
    };
  };
  return { clock, registry, cp, proxies, last, ack, timeoutOf, rollOut, report };
}

describe('a guarded rollout on the push loop', () => {
  it('pushes the canaries only, lets discovery reach everyone on their own model, and rolls back on a crossing', async () => {
    const { clock, registry, cp, proxies, last, ack, timeoutOf, rollOut, report } = await setup();
    const before = IDS.map((id) => proxies.get(id)!.sink.pushes.length);
    const change = await rollOut('4s', { canaryProxies: '25%', watch: '10s', thresholds: { minRequests: 10 } });
    const record = cp.changes.get(change)!;
    const [canary] = record.rollout!.canaries;
    assert.equal(record.rollout!.canaries.length, 1);
    assert.equal(record.status, 'propagating');
    for (const [i, id] of IDS.entries())
      assert.equal(proxies.get(id)!.sink.pushes.length, before[i]! + (id === canary ? 1 : 0), id);
    assert.equal(timeoutOf(last(canary!)), '4s');
    assert.deepEqual(last(canary!).changes, [change]);
    // The model in force is still the previous one; the canaries' is the change's.
    assert.equal(cp.currentModel.version, record.rollout!.previousVersion);
    assert.equal(cp.canaryModel?.version, record.modelVersion);
    ack(canary!);
    assert.equal(cp.changes.get(change)!.rollout!.watchStartedAt, new Date(clock.now()).toISOString());

    await registry.register({ id: 'api-1', service: 'api', address: '127.0.0.1', port: 9, ttlMs: 300_000 });
    clock.advance(20);
    for (const id of IDS) {
      const push = last(id);
      assert.equal(push.config.services?.find((s) => s.name === 'api')?.endpoints?.length, 1, id);
      assert.equal(timeoutOf(push), id === canary ? '4s' : '5s', id);
      assert.ok(!push.changes.includes(change), 'a registry push does not carry the rollout');
      ack(id);
    }

    cp.rollouts!.observe(canary!, report(canary!, { requests: 5, errors: 0 }));
    cp.rollouts!.observe(canary!, report(canary!, { requests: 9, errors: 1 }));
    assert.equal(cp.changes.get(change)!.rollout!.state, 'canary', 'under minRequests, 1 of 9 is not judged');
    cp.rollouts!.observe(canary!, report(canary!, { requests: 1, errors: 1 }));
    const decided = cp.changes.get(change)!;
    assert.equal(decided.status, 'rolled-back');
    assert.equal(decided.rollout!.decision!.by, 'threshold');
    assert.equal(decided.rollout!.decision!.value, 0.2);
    assert.equal(
      decided.rollout!.decision!.reason,
      'canary error rate 20.0% (2 of 10 requests) is above the threshold 5.0%',
    );
    // The canary is pushed the previous model (with the instance), as the rollback change.
    const back = last(canary!);
    assert.equal(timeoutOf(back), '5s');
    assert.deepEqual(back.changes, [decided.rollout!.rollbackChange]);
    assert.equal(cp.canaryModel, null);
    assert.equal(cp.rollouts!.current(), null);
    assert.match(
      await cp.metrics.registry.getSingleMetricAsString('control_plane_rollouts_total'),
      /control_plane_rollouts_total\{outcome="rolled-back",by="threshold"\} 1/,
    );
  });

  it('promotes when the window ends with no crossing, as the same change, to the millisecond', async () => {
    const { clock, cp, proxies, last, ack, timeoutOf, rollOut, report } = await setup();
    const change = await rollOut('4s', { canaryProxies: 2, watch: '10s' });
    const canaries = cp.changes.get(change)!.rollout!.canaries;
    assert.equal(canaries.length, 2);
    ack(canaries[0]!);
    assert.equal(cp.changes.get(change)!.rollout!.watchStartedAt, null, 'the watch waits for every canary');
    clock.advance(500);
    ack(canaries[1]!);
    const watchStart = clock.now();
    cp.rollouts!.observe(canaries[0]!, report(canaries[0]!, { requests: 0, errors: 0 }));
    cp.rollouts!.observe(canaries[0]!, report(canaries[0]!, { requests: 200, errors: 1 }));
    clock.advance(9_999);
    assert.equal(cp.changes.get(change)!.rollout!.state, 'canary');
    for (const id of IDS.filter((x) => !canaries.includes(x))) assert.equal(timeoutOf(last(id)), '5s');
    clock.advance(1);
    await new Promise((r) => setImmediate(r));
    const record = cp.changes.get(change)!;
    assert.equal(record.rollout!.state, 'promoted');
    assert.equal(record.rollout!.decision!.at, new Date(watchStart + 10_000).toISOString());
    assert.match(record.rollout!.decision!.reason, /no threshold crossed: canary error rate 0\.5% over 200 requests/);
    for (const id of IDS) {
      assert.equal(timeoutOf(last(id)), '4s', id);
      assert.ok(last(id).changes.includes(change), `${id} got it as change ${change}`);
    }
    assert.equal(cp.currentModel.version, record.modelVersion);
    for (const id of IDS.filter((x) => !canaries.includes(x))) ack(id);
    const done = cp.changes.get(change)!;
    assert.equal(done.status, 'applied');
    assert.deepEqual(
      done.results.map((r) => r.proxy),
      IDS,
    );
    assert.equal(proxies.size, 4);
  });

  it('rolls back when a canary does not answer in time', async () => {
    const { clock, cp, rollOut } = await setup();
    const change = await rollOut('4s', { canaryProxies: 1, watch: '10s' });
    clock.advance(29_999);
    assert.equal(cp.changes.get(change)!.rollout!.state, 'canary');
    clock.advance(1);
    const record = cp.changes.get(change)!;
    assert.equal(record.status, 'rolled-back');
    assert.equal(record.rollout!.decision!.by, 'no-answer');
    assert.match(record.rollout!.decision!.reason, /did not answer within 30000ms/);
  });
});
