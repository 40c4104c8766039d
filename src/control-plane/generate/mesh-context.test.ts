/**
 * The incremental generator against the pure one: after every registry event of a long random series,
 * each kind of proxy gets exactly what generateProxyConfig makes from scratch, and a config that
 * changed names the changed service among what it depends on (so the control plane, which looks only
 * at dependents, misses no proxy).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Instance, ProxyIdentity } from '../../api/mesh.ts';
import { formatIssue } from '../../config/issues.ts';
import { parseModel } from '../model/model.ts';
import { byServiceThenId } from '../registry/registry.ts';
import { generateProxyConfig } from './generate.ts';
import { MeshContext } from './mesh-context.ts';

const MODEL = `
listeners:
  - { name: public, port: 8080 }
services:
  - { name: photo, subsets: { v2: { version: v2 } }, timeouts: { request: 5s } }
  - { name: property, endpoints: [{ url: http://10.1.0.9:9000 }], dependsOn: [photo] }
  - { name: front }
routes:
  - name: photo-canary
    match: { hosts: [photo], headers: { canary: "true" } }
    destinations: [{ service: photo, subset: v2 }]
  - { name: api, listeners: [public], match: { path: /api/* }, service: front }
  - { name: props, match: { path: /props/* }, service: property }
mesh: { trustDomain: example.org, mtls: { mode: PERMISSIVE } }
`;

function model() {
  const parsed = parseModel([{ file: 'mesh.yaml', text: MODEL }], 'mesh.yaml', null);
  if (!parsed.ok) throw new Error(parsed.issues.map(formatIssue).join('\n'));
  return parsed.model.config;
}

const sidecar = (id: string, service: string, upstreams?: string[]): ProxyIdentity => ({
  id,
  kind: 'sidecar',
  service,
  address: '127.0.0.1',
  inboundPort: 15006,
  outboundPort: 15001,
  app: 'http://127.0.0.1:8080',
  ...(upstreams ? { upstreams } : {}),
});

const PROXIES: ProxyIdentity[] = [
  sidecar('whole-mesh', 'front'),
  sidecar('calls-photo', 'front', ['photo']),
  sidecar('calls-search', 'photo', ['search', 'property']),
  sidecar('calls-new', 'property', ['late-service']),
  sidecar('model-scoped', 'property'),
  { id: 'gateway', kind: 'gateway' },
];

/** A deterministic pseudo-random series (no flaky seeds). */
function random(seed: number) {
  let x = seed;
  return () => {
    x = (x * 1_103_515_245 + 12_345) % 2_147_483_648;
    return x / 2_147_483_648;
  };
}

describe('MeshContext (incremental generation)', () => {
  it('after each of 400 random registry events and model changes, gives every proxy what the pure generator gives', () => {
    // The second model drops photo's policies and declares a service that never registers.
    const models = [model(), { ...model(), services: [...model().services!.slice(1), { name: 'declared-only' }] }];
    let m = models[0]!;
    const ctx = new MeshContext(m);
    const live = new Map<string, Instance>();
    const next = random(7);
    const services = ['photo', 'property', 'front', 'search', 'late-service'];
    let previous = new Map(PROXIES.map((p) => [p.id, ctx.generate(p)]));
    for (let n = 0; n < 400; n++) {
      const service = services[Math.floor(next() * services.length)]!;
      const id = `${service}-${Math.floor(next() * 4)}`;
      const old = live.get(id);
      let event: { type: 'registered' | 'updated' | 'deregistered'; instance: Instance };
      if (old && next() < 0.4) {
        live.delete(id);
        event = { type: 'deregistered', instance: old };
      } else {
        const instance: Instance = {
          id,
          // Now and then an id moves to another service.
          service: old && next() < 0.8 ? old.service : service,
          address: `10.0.0.${1 + Math.floor(next() * 9)}`,
          port: 8000 + Math.floor(next() * 3),
          labels: next() < 0.5 ? { version: next() < 0.5 ? 'v1' : 'v2' } : {},
          health: next() < 0.8 ? 'healthy' : 'unhealthy',
          ttlMs: 3000,
          registeredAt: 0,
          lastHeartbeatAt: n,
        };
        live.set(id, instance);
        event = { type: old ? 'updated' : 'registered', instance };
      }
      let touched = ctx.apply(event);
      // Now and then the other model: every proxy may change.
      if (n % 50 === 49) {
        m = models[(n + 1) % 100 === 0 ? 0 : 1]!;
        ctx.setModel(m);
        touched = services;
      }
      const instances = [...live.values()].sort(byServiceThenId);
      assert.deepEqual(ctx.instances(), instances);
      for (const proxy of PROXIES) {
        const incremental = ctx.generate(proxy);
        const pure = generateProxyConfig(m, instances, proxy);
        assert.equal(incremental.version, pure.version, `event ${n}, proxy ${proxy.id}`);
        assert.deepEqual(incremental.config, pure.config);
        const before = previous.get(proxy.id)!;
        const depends = before.dependsOn === null || touched.some((s) => before.dependsOn!.includes(s));
        if (before.version !== incremental.version)
          assert.ok(depends, `event ${n} changed ${proxy.id}, which does not depend on ${touched}`);
        if (!depends)
          assert.equal(incremental, before, 'a proxy that does not depend on the change is not regenerated');
      }
      previous = new Map(PROXIES.map((p) => [p.id, ctx.generate(p)]));
    }
  });

  it('proxies with equal inputs share one config; configs share unchanged services', () => {
    const ctx = new MeshContext(model());
    ctx.apply({
      type: 'registered',
      instance: {
        id: 'photo-1',
        service: 'photo',
        address: '10.0.0.1',
        port: 80,
        labels: {},
        health: 'healthy',
        ttlMs: 3000,
        registeredAt: 0,
        lastHeartbeatAt: 0,
      },
    });
    const a = ctx.generate(sidecar('front-1', 'front', ['photo', 'property']));
    const b = ctx.generate(sidecar('front-2', 'front', ['property', 'photo']));
    assert.equal(a, b, 'the id is not an input; the order of upstreams is not either');
    assert.deepEqual(a.dependsOn, ['photo', 'property']);
    const c = ctx.generate(sidecar('photo-1', 'photo', ['photo']));
    const photoOf = (config: typeof a.config) => config.services!.find((s) => s.name === 'photo');
    assert.equal(photoOf(a.config), photoOf(c.config));
    assert.ok(Object.isFrozen(a.config) && Object.isFrozen(photoOf(a.config)!.endpoints));
    assert.equal(ctx.generate(sidecar('any', 'front')).dependsOn, null, 'no upstreams: the whole mesh');
    const modelScoped = ctx.generate(sidecar('property-1', 'property'));
    assert.deepEqual(modelScoped.dependsOn, ['photo'], 'the model’s dependsOn scopes it');
    assert.deepEqual(ctx.generate(sidecar('property-2', 'property', ['late'])).dependsOn, ['late', 'photo']);
    const propertyOf = ctx.generate(sidecar('any', 'front')).config.services!.find((s) => s.name === 'property')!;
    assert.equal(propertyOf.dependsOn, undefined, 'what a service calls is none of its callers’ business');
  });
});
