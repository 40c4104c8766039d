/**
 * Deltas between generated configs, rebuilt as the proxy does (src/proxy/mesh/delta.ts): the rebuilt
 * config has the version announced.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DeltaEvent, Instance } from '../../api/mesh.ts';
import { hashConfig } from '../../config/load.ts';
import { applyDelta } from '../../proxy/mesh/delta.ts';
import { emptyModel } from '../model/model.ts';
import { configDelta } from './delta.ts';
import { MeshContext } from './mesh-context.ts';

const instance = (id: string, service: string, port: number): Instance => ({
  id,
  service,
  address: '10.0.0.1',
  port,
  labels: {},
  health: 'healthy',
  ttlMs: 3000,
  registeredAt: 0,
  lastHeartbeatAt: 0,
});

const event = (base: string, version: string, delta: NonNullable<ReturnType<typeof configDelta>>): DeltaEvent => ({
  version,
  nonce: 'n',
  changes: [],
  base,
  ...delta,
});

describe('configDelta and applyDelta', () => {
  const services = ['a', 'b', 'c', 'd'];
  const proxy = {
    id: 'p',
    kind: 'sidecar' as const,
    service: 'front',
    app: 'http://127.0.0.1:1',
    upstreams: services,
  };

  it('one service changed: the delta carries it alone, and the rebuilt config has the new version', () => {
    const ctx = new MeshContext(emptyModel().config, [
      instance('a-1', 'a', 1),
      instance('b-1', 'b', 2),
      instance('c-1', 'c', 3),
    ]);
    const before = ctx.generate(proxy);
    ctx.apply({ type: 'registered', instance: instance('b-2', 'b', 4) });
    const after = ctx.generate(proxy);
    const delta = configDelta(before.config, after.config);
    assert.deepEqual(
      delta?.services?.map((s) => s.name),
      ['b'],
    );
    assert.equal(delta?.set, undefined);
    assert.equal(delta?.unset, undefined);
    const rebuilt = applyDelta(before.config, event(before.version, after.version, delta!));
    assert.ok('config' in rebuilt);
    assert.equal(hashConfig(rebuilt.config), after.version);
    assert.deepEqual(rebuilt.config, after.config);
  });

  it('a config whose service names changed is sent whole (null)', () => {
    const ctx = new MeshContext(emptyModel().config, [instance('a-1', 'a', 1)]);
    const wholeMesh = { ...proxy, upstreams: undefined };
    const before = ctx.generate(wholeMesh);
    ctx.apply({ type: 'registered', instance: instance('e-1', 'e', 5) });
    assert.equal(configDelta(before.config, ctx.generate(wholeMesh).config), null);
  });

  it('a service the base has not is refused, not guessed', () => {
    const ctx = new MeshContext(emptyModel().config);
    const { config, version } = ctx.generate(proxy);
    const rebuilt = applyDelta(config, {
      version,
      nonce: 'n',
      changes: [],
      base: version,
      services: [{ name: 'zzz', endpoints: [] }],
    });
    assert.ok('error' in rebuilt && /zzz/.test(rebuilt.error));
  });
});
