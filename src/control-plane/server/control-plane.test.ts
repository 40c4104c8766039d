/**
 * The control plane's push loop on a manual clock (house rule 10): warm-up, debounce, propagation
 * times, TTL expiry, superseded pushes and disconnects, all to the millisecond. The streams are
 * `StreamSink`s that record what would be written; the HTTP side is covered in server.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DeltaEvent, ProxyIdentity, PushEvent } from '../../api/mesh.ts';
import { ManualClock } from '../../core/clock.ts';
import { silentLogger } from '../../observability/logger.ts';
import { emptyModel, type MeshModel, parseModel } from '../model/model.ts';
import { MemoryRegistry } from '../registry/memory.ts';
import { ControlPlane, type StreamSink } from './control-plane.ts';

class RecordingSink implements StreamSink {
  readonly pushes: PushEvent[] = [];
  closed = false;
  send(event: string, data: unknown) {
    if (event === 'push') this.pushes.push(data as PushEvent);
  }
  close() {
    this.closed = true;
  }
}

const sidecar = (id: string): ProxyIdentity => ({ id, kind: 'sidecar', service: 'front', app: 'http://127.0.0.1:1' });
const photo = (n: number) => ({ id: `photo-${n}`, service: 'photo-service', address: '127.0.0.1', port: 20_000 + n });

async function setup(warmupMs = 0) {
  const clock = new ManualClock();
  const registry = new MemoryRegistry({ clock });
  const cp = new ControlPlane({
    registry,
    model: emptyModel(),
    log: silentLogger(),
    clock,
    warmupMs,
    debounceMs: 10,
    debounceMaxMs: 50,
  });
  await cp.start();
  const connect = (id: string) => {
    const sink = new RecordingSink();
    const { stream, close } = cp.connect({ proxy: sidecar(id), version: null }, sink);
    return { sink, stream, close };
  };
  const ack = (id: string, stream: string, push: PushEvent) =>
    cp.acknowledge({ proxy: id, stream, nonce: push.nonce, version: push.version, status: 'ack' });
  return { clock, registry, cp, connect, ack };
}

describe('control plane push loop (manual clock)', () => {
  it('pushes nothing during the warm-up, then everything at once, as one startup change', async () => {
    const { clock, registry, cp, connect } = await setup(3_000);
    const a = connect('a');
    await registry.register(photo(1));
    clock.advance(2_999);
    assert.equal(a.sink.pushes.length, 0);
    assert.equal(cp.proxyStatuses()[0]!.state, 'NOT_SENT');
    clock.advance(1);
    assert.equal(a.sink.pushes.length, 1);
    const ids = a.sink.pushes[0]!.changes;
    assert.deepEqual(
      ids.map((id) => cp.changes.get(id)!.kind),
      ['registry', 'startup'],
    );
  });

  it('a change after a quiet spell is pushed at once; a burst waits for a pause; a storm at most 50 ms', async () => {
    const { clock, registry, connect } = await setup();
    const a = connect('a');
    clock.advance(0);
    assert.equal(a.sink.pushes.length, 1, 'the first config on connect');
    clock.advance(100);

    await registry.register(photo(1));
    clock.advance(0);
    assert.equal(a.sink.pushes.length, 2, 'leading edge: no wait');

    await registry.register(photo(2));
    clock.advance(5);
    await registry.register(photo(3));
    clock.advance(9);
    assert.equal(a.sink.pushes.length, 2, 'still inside the burst');
    clock.advance(1);
    assert.equal(a.sink.pushes.length, 3);
    assert.equal(a.sink.pushes[2]!.changes.length, 2, 'both changes in one push');

    // A change every 8 ms never leaves a 10 ms pause: pushed when the 50 ms ceiling is reached.
    clock.advance(100);
    await registry.register(photo(10));
    clock.advance(0);
    const before = a.sink.pushes.length;
    for (let n = 11; n < 20; n++) {
      clock.advance(8);
      await registry.register(photo(n));
    }
    assert.ok(a.sink.pushes.length > before, 'pushed during the storm');
    const waited = a.sink.pushes.slice(before).map((p) => p.changes.length);
    assert.ok(
      waited.every((n) => n <= 7),
      `no push held more than 50 ms of changes: ${waited}`,
    );
  });

  it('the change record measures propagation from the change to each ACK', async () => {
    const { clock, registry, cp, connect, ack } = await setup();
    const a = connect('a');
    const b = connect('b');
    clock.advance(0);
    ack('a', a.stream, a.sink.pushes[0]!);
    ack('b', b.stream, b.sink.pushes[0]!);
    clock.advance(100);

    await registry.register(photo(1));
    clock.advance(0);
    const id = a.sink.pushes[1]!.changes[0]!;
    clock.advance(7);
    ack('a', a.stream, a.sink.pushes[1]!);
    assert.equal(cp.changes.get(id)!.status, 'propagating');
    clock.advance(13);
    ack('b', b.stream, b.sink.pushes[1]!);
    const record = cp.changes.get(id)!;
    assert.equal(record.status, 'applied');
    assert.deepEqual(
      record.results.map((r) => [r.proxy, r.status, r.propagationMs]),
      [
        ['a', 'applied', 7],
        ['b', 'applied', 20],
      ],
    );
    assert.deepEqual(record.propagation, { applied: 2, p50Ms: 7, p99Ms: 20, maxMs: 20 });
    assert.ok(cp.proxyStatuses().every((p) => p.state === 'SYNCED'));
  });

  it('an ACK of a later push settles the earlier ones it supersedes; a NACK rejects them with the reason', async () => {
    const { clock, registry, cp, connect, ack } = await setup();
    const a = connect('a');
    clock.advance(0);
    ack('a', a.stream, a.sink.pushes[0]!);
    clock.advance(100);
    await registry.register(photo(1));
    clock.advance(100);
    await registry.register(photo(2));
    clock.advance(100);
    const [first, second] = [a.sink.pushes[1]!, a.sink.pushes[2]!];
    assert.equal(cp.proxyStatuses()[0]!.state, 'PENDING');
    ack('a', a.stream, second);
    assert.equal(cp.changes.get(first.changes[0]!)!.status, 'applied');
    assert.equal(cp.changes.get(first.changes[0]!)!.results[0]!.propagationMs, 200);
    assert.equal(
      cp.acknowledge({ proxy: 'a', stream: a.stream, nonce: first.nonce, version: first.version, status: 'ack' }).ok,
      false,
      'an answered nonce is not awaited any more',
    );

    await registry.register(photo(3));
    clock.advance(0);
    const third = a.sink.pushes[3]!;
    cp.acknowledge({
      proxy: 'a',
      stream: a.stream,
      nonce: third.nonce,
      version: third.version,
      status: 'nack',
      error: { message: 'invalid config: 1 problem', issues: [] },
    });
    const rejected = cp.changes.get(third.changes[0]!)!;
    assert.equal(rejected.status, 'rejected');
    assert.equal(rejected.results[0]!.error?.message, 'invalid config: 1 problem');
    const status = cp.proxyStatuses()[0]!;
    assert.equal(status.state, 'NACKED');
    assert.equal(status.ackedVersion, second.version, 'it serves the version before');
  });

  it('a missed TTL is a change pushed at expiry; a proxy gone before answering makes the change incomplete', async () => {
    const { clock, registry, cp, connect, ack } = await setup();
    const a = connect('a');
    const b = connect('b');
    clock.advance(0);
    ack('a', a.stream, a.sink.pushes[0]!);
    ack('b', b.stream, b.sink.pushes[0]!);
    await registry.register({ ...photo(1), ttlMs: 3_000 });
    clock.advance(0);
    ack('a', a.stream, a.sink.pushes[1]!);
    ack('b', b.stream, b.sink.pushes[1]!);

    clock.advance(2_999);
    assert.equal(a.sink.pushes.length, 2);
    clock.advance(1);
    assert.equal(a.sink.pushes.length, 3, 'pushed at the TTL');
    const id = a.sink.pushes[2]!.changes[0]!;
    assert.match(cp.changes.get(id)!.cause, /photo-1 .* expired/);
    ack('a', a.stream, a.sink.pushes[2]!);
    b.close();
    const record = cp.changes.get(id)!;
    assert.equal(record.status, 'incomplete');
    assert.deepEqual(
      record.results.map((r) => [r.proxy, r.status]),
      [
        ['a', 'applied'],
        ['b', 'disconnected'],
      ],
    );
    assert.equal(cp.proxyStatuses().find((p) => p.id === 'b')!.state, 'DISCONNECTED');
  });

  it('a proxy reconnecting during the warm-up with the right version is sent nothing, and its config is known', async () => {
    const first = await setup();
    const a = first.connect('a');
    first.clock.advance(0);
    const version = a.sink.pushes[0]!.version;
    const restarted = await setup(3_000);
    const sink = new RecordingSink();
    restarted.cp.connect({ proxy: sidecar('a'), version }, sink);
    restarted.clock.advance(3_000);
    assert.equal(sink.pushes.length, 0);
    const status = restarted.cp.proxyStatus('a')!;
    assert.equal(status.state, 'SYNCED');
    assert.deepEqual(status.config, a.sink.pushes[0]!.config);
  });

  it('a second stream for the same proxy replaces the first; a stale stream’s ACK is refused', async () => {
    const { clock, cp, connect, ack } = await setup();
    const first = connect('a');
    clock.advance(0);
    const second = connect('a');
    assert.equal(first.sink.closed, true);
    clock.advance(0);
    assert.equal(ack('a', first.stream, first.sink.pushes[0]!).ok, false);
    assert.equal(ack('a', second.stream, second.sink.pushes[0]!).ok, true);
    assert.equal(cp.proxyIds().length, 1);
  });
});

describe('scoped proxies and deltas (manual clock)', () => {
  /** Records every event, pushes and deltas alike. */
  class EventSink implements StreamSink {
    readonly events: { event: string; data: PushEvent & DeltaEvent }[] = [];
    send(event: string, data: unknown) {
      if (event !== 'welcome') this.events.push({ event, data: data as PushEvent & DeltaEvent });
    }
    close() {}
  }

  async function mesh(model = emptyModel()) {
    const clock = new ManualClock();
    const registry = new MemoryRegistry({ clock });
    const cp = new ControlPlane({ registry, model, log: silentLogger(), clock, warmupMs: 0 });
    await cp.start();
    const connect = (id: string, upstreams?: string[], delta = true, service = 'front') => {
      const sink = new EventSink();
      const proxy: ProxyIdentity = { ...sidecar(id), service, ...(upstreams ? { upstreams } : {}) };
      const { stream } = cp.connect({ proxy, version: null, ...(delta ? { delta } : {}) }, sink);
      return { sink, stream };
    };
    const instance = (id: string, service: string, port: number) =>
      registry.register({ id, service, address: '127.0.0.1', port, ttlMs: 300_000 });
    return { clock, registry, cp, connect, instance };
  }

  it('a registry change to service A pushes nothing to a proxy that depends only on service B', async () => {
    const { clock, cp, connect, instance } = await mesh();
    await instance('b-1', 'service-b', 20_001);
    const onlyB = connect('only-b', ['service-b']);
    const onA = connect('on-a', ['service-a']);
    clock.advance(0);
    assert.equal(onlyB.sink.events.length, 1, 'its first config');
    assert.equal(onA.sink.events.length, 1);

    // Instances of A join, change health and leave: every kind of registry change, each its own flush.
    for (let n = 0; n < 5; n++) {
      await instance(`a-${n}`, 'service-a', 21_000 + n);
      clock.advance(1_000);
    }
    await cp.registry.heartbeat('a-0', { health: 'unhealthy' });
    clock.advance(1_000);
    await cp.registry.deregister('a-1');
    clock.advance(1_000);

    assert.equal(onlyB.sink.events.length, 1, 'nothing after its first config');
    assert.equal(onA.sink.events.length, 8, 'the proxy that calls A heard of each change');
    const last = cp.changes.recent(1)[0]!;
    assert.deepEqual(
      last.results.map((r) => r.proxy),
      ['on-a'],
    );
    assert.equal(last.unaffected, 1);
    assert.equal(
      cp.proxyStatus('only-b')!.state,
      'PENDING',
      'its first push is still unanswered: nothing else was sent',
    );
  });

  const modelOf = (yaml: string): MeshModel => {
    const parsed = parseModel([{ file: 'mesh.yaml', text: yaml }], 'mesh.yaml', null);
    assert.ok(parsed.ok, JSON.stringify(parsed));
    return parsed.model;
  };

  it('the same with the model’s dependsOn in place of the sidecar’s list; a sidecar’s list adds to it', async () => {
    const model = modelOf(
      [
        'services:',
        '  - { name: service-a }',
        '  - { name: service-b }',
        '  - { name: service-c }',
        '  - { name: calls-b, dependsOn: [service-b] }',
        '  - { name: calls-nothing, dependsOn: [] }',
      ].join('\n'),
    );
    const { clock, cp, connect, instance } = await mesh(model);
    await instance('b-1', 'service-b', 20_001);
    const onlyB = connect('only-b', undefined, true, 'calls-b');
    const none = connect('none', undefined, true, 'calls-nothing');
    // Its flag names A as well: the union of the two lists.
    const bAndA = connect('b-and-a', ['service-a'], true, 'calls-b');
    const whole = connect('whole', undefined, true, 'undeclared');
    clock.advance(0);
    // Every service of its first config but its app's (`inbound.…`, first).
    const servicesOf = (p: { sink: EventSink }) => p.sink.events[0]!.data.config.services!.map((s) => s.name).slice(1);
    assert.deepEqual(servicesOf(onlyB), ['service-b']);
    assert.deepEqual(servicesOf(none), []);
    assert.deepEqual(servicesOf(bAndA), ['service-a', 'service-b']);
    assert.deepEqual(servicesOf(whole), ['calls-b', 'calls-nothing', 'service-a', 'service-b', 'service-c']);

    for (let n = 0; n < 3; n++) {
      await instance(`a-${n}`, 'service-a', 21_000 + n);
      clock.advance(1_000);
    }
    await cp.registry.deregister('a-1');
    clock.advance(1_000);

    assert.equal(onlyB.sink.events.length, 1, 'nothing after its first config');
    assert.equal(none.sink.events.length, 1, 'nothing after its first config');
    assert.equal(bAndA.sink.events.length, 5, 'its flag added A: it heard of each change');
    assert.equal(whole.sink.events.length, 5, 'no dependsOn, no flag: the whole mesh');
    const last = cp.changes.recent(1)[0]!;
    assert.deepEqual(last.results.map((r) => r.proxy).sort(), ['b-and-a', 'whole']);
    assert.equal(last.unaffected, 2);

    // A change to B reaches the proxy whose model entry names B.
    await instance('b-2', 'service-b', 20_002);
    clock.advance(1_000);
    assert.equal(onlyB.sink.events.length, 2);
    assert.deepEqual(
      onlyB.sink.events[1]!.data.services!.map((s) => [s.name, s.endpoints!.length]),
      [['service-b', 2]],
    );
    assert.equal(none.sink.events.length, 1);
  });

  it('after the first config, a change reaches a delta-capable proxy as the one service that changed', async () => {
    const { clock, connect, instance } = await mesh();
    await instance('a-1', 'service-a', 20_001);
    await instance('b-1', 'service-b', 20_002);
    const scoped = connect('scoped', ['service-a', 'service-b']);
    const whole = connect('whole');
    const legacy = connect('legacy', ['service-a', 'service-b'], false);
    clock.advance(0);
    await instance('a-2', 'service-a', 20_003);
    clock.advance(1_000);
    for (const p of [scoped, whole]) {
      assert.deepEqual(
        p.sink.events.map((e) => e.event),
        ['push', 'delta'],
      );
      const [first, delta] = p.sink.events.map((e) => e.data);
      assert.equal(delta!.base, first!.version);
      assert.deepEqual(
        delta!.services!.map((s) => [s.name, s.endpoints!.length]),
        [['service-a', 2]],
      );
      assert.equal(delta!.set, undefined);
    }
    assert.deepEqual(
      legacy.sink.events.map((e) => e.event),
      ['push', 'push'],
      'a proxy that did not ask for deltas gets whole configs',
    );
    // A new service changes the whole-mesh proxy's list of services: that is pushed whole.
    await instance('c-1', 'service-c', 20_004);
    clock.advance(1_000);
    assert.equal(whole.sink.events.at(-1)!.event, 'push');
    assert.equal(scoped.sink.events.length, 2, 'service-c is none of its business');
  });
});
