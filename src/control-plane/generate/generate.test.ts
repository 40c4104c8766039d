/**
 * The per-proxy generator against golden files (test/golden/*.golden.json): the exact config each
 * kind of proxy receives. `UPDATE_GOLDEN=1` rewrites them; review the diff like code.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import type { Config } from '../../api/config.ts';
import type { Instance, ProxyIdentity } from '../../api/mesh.ts';
import { formatIssue } from '../../config/issues.ts';
import { deepFreeze, validateConfigObject } from '../../config/load.ts';
import { createPluginCatalog } from '../../plugins/index.ts';
import { parseModel } from '../model/model.ts';
import { generateProxyConfig } from './generate.ts';

const MODEL_YAML = `
listeners:
  - { name: public, port: 8080 }
services:
  - name: photo-service
    endpoints: []
    subsets:
      v1: { version: v1 }
      v2: { version: v2 }
    timeouts: { connect: 1s, request: 5s }
  - name: property-service
    endpoints: []
    timeouts: { request: 2s }
  - name: legacy-billing
    endpoints:
      - url: http://10.1.0.9:9000
routes:
  - name: photo-canary
    match: { hosts: [photo-service], headers: { canary: "true" } }
    destinations: [{ service: photo-service, subset: v2 }]
  - name: properties
    listeners: [public]
    match: { path: /api/v1/properties/* }
    service: property-service
  - name: photos
    match: { path: /api/v1/photos/* }
    destinations:
      - { service: photo-service, subset: v1, weight: 90 }
      - { service: photo-service, subset: v2, weight: 10 }
`;

function model(): Config {
  const result = parseModel([{ file: 'mesh.yaml', text: MODEL_YAML }], 'mesh.yaml', null);
  if (!result.ok) throw new Error(result.issues.map(formatIssue).join('\n'));
  return result.model.config;
}

const at = 1_700_000_000_000;
function instance(id: string, service: string, port: number, labels: Record<string, string> = {}, health = 'healthy') {
  return {
    id,
    service,
    address: '127.0.0.1',
    port,
    labels,
    health,
    ttlMs: 3000,
    registeredAt: at,
    lastHeartbeatAt: at,
  } as Instance;
}

const INSTANCES: Instance[] = deepFreeze([
  instance('photo-1', 'photo-service', 21001, { version: 'v1' }),
  instance('photo-2', 'photo-service', 21002, { version: 'v2' }),
  instance('photo-3', 'photo-service', 21003, { version: 'v1' }, 'unhealthy'),
  instance('property-1', 'property-service', 22001, { version: 'v1', zone: 'eu-1' }),
  // Registered, never declared: reachable with default policies.
  instance('search-1', 'search-service', 23001),
]);

const SIDECAR: ProxyIdentity = {
  id: 'property-service-127.0.0.1-22001',
  kind: 'sidecar',
  service: 'property-service',
  instance: 'property-1',
  address: '127.0.0.1',
  inboundPort: 22001,
  outboundPort: 15001,
  app: 'http://127.0.0.1:8081',
};

const cases: Record<string, ProxyIdentity> = {
  'sidecar-all-services': SIDECAR,
  'sidecar-upstreams': { ...SIDECAR, upstreams: ['photo-service', 'search-service'] },
  'sidecar-default-ports': { id: 'search-1', kind: 'sidecar', service: 'search-service', app: 'http://127.0.0.1:7000' },
  gateway: { id: 'gateway-1', kind: 'gateway' },
};

const golden = (name: string) => new URL(`../../../test/golden/${name}.golden.json`, import.meta.url);

describe('generateProxyConfig', () => {
  for (const [name, identity] of Object.entries(cases)) {
    it(`${name} matches test/golden/${name}.golden.json and is a valid config`, () => {
      const { config, version } = generateProxyConfig(model(), INSTANCES, identity);
      const text = JSON.stringify(config, null, 2) + '\n';
      if (process.env.UPDATE_GOLDEN) writeFileSync(golden(name), text);
      assert.equal(text, readFileSync(golden(name), 'utf8'));
      const loaded = validateConfigObject(config, name);
      if (!loaded.ok) assert.fail(loaded.issues.map(formatIssue).join('\n'));
      assert.equal(loaded.value.hash, version, 'the version is the hash the proxy computes');
    });
  }

  it('is pure: equal inputs give the same version; inputs are not changed', () => {
    const m = deepFreeze(model());
    const a = generateProxyConfig(m, INSTANCES, SIDECAR);
    const b = generateProxyConfig(m, [...INSTANCES], { ...SIDECAR });
    assert.equal(a.version, b.version);
    assert.deepEqual(a.config, b.config);
  });

  it('an instance of an uncalled service changes only the proxies that may call it', () => {
    const m = model();
    const scoped = { ...SIDECAR, upstreams: ['photo-service'] };
    const more = [...INSTANCES, instance('search-2', 'search-service', 23002)];
    assert.equal(generateProxyConfig(m, INSTANCES, scoped).version, generateProxyConfig(m, more, scoped).version);
    assert.notEqual(generateProxyConfig(m, INSTANCES, SIDECAR).version, generateProxyConfig(m, more, SIDECAR).version);
    // The gateway routes to photo-service and property-service only.
    const gw = cases.gateway!;
    assert.equal(generateProxyConfig(m, INSTANCES, gw).version, generateProxyConfig(m, more, gw).version);
  });

  it("the gateway gets the services of an aggregate route's calls", () => {
    const m: Config = {
      ...model(),
      routes: [
        { name: 'composed', aggregate: { calls: [{ name: 'search', service: 'search-service', path: '/search' }] } },
      ],
    };
    const { config } = generateProxyConfig(m, INSTANCES, cases.gateway!);
    assert.deepEqual(
      config.services!.map((s) => s.name),
      ['search-service'],
    );
    const loaded = validateConfigObject(config, 'gateway');
    if (!loaded.ok) assert.fail(loaded.issues.map(formatIssue).join('\n'));
  });

  it('a heartbeat (only lastHeartbeatAt moves) changes no version', () => {
    const later = INSTANCES.map((i) => ({ ...i, lastHeartbeatAt: i.lastHeartbeatAt + 1000 }));
    assert.equal(
      generateProxyConfig(model(), INSTANCES, SIDECAR).version,
      generateProxyConfig(model(), later, SIDECAR).version,
    );
  });

  it('an unhealthy instance is no endpoint; it comes back when healthy', () => {
    const urls = (list: Instance[]) =>
      generateProxyConfig(model(), list, SIDECAR)
        .config.services!.find((s) => s.name === 'photo-service')!
        .endpoints!.map((e) => e.url);
    assert.deepEqual(urls(INSTANCES), ['http://127.0.0.1:21001', 'http://127.0.0.1:21002']);
    const healed = INSTANCES.map((i) => (i.id === 'photo-3' ? { ...i, health: 'healthy' as const } : i));
    assert.deepEqual(urls(healed), ['http://127.0.0.1:21001', 'http://127.0.0.1:21002', 'http://127.0.0.1:21003']);
  });

  it('the gateway gets the consumers, global plugins and observability; a sidecar observability only', () => {
    const extra = [
      'consumers:',
      '  - name: app',
      '    credentials: [{ type: jwt, issuer: app, secret: "0123456789abcdef0123456789abcdef" }]',
      'plugins:',
      '  - { name: request-id, config: { header: x-trace-me } }',
      'observability:',
      '  tracing: { endpoint: "http://127.0.0.1:4318/v1/traces", samplingRatio: 1 }',
      '  accessLog: { output: stdout }',
    ].join('\n');
    const parsed = parseModel([{ file: 'mesh.yaml', text: `${MODEL_YAML}${extra}\n` }], 'mesh.yaml', null, {
      catalog: createPluginCatalog(),
    });
    if (!parsed.ok) assert.fail(parsed.issues.map(formatIssue).join('\n'));
    const m = parsed.model.config;
    const gateway = generateProxyConfig(m, INSTANCES, cases.gateway!).config;
    assert.deepEqual(gateway.consumers, m.consumers);
    assert.deepEqual(gateway.plugins, m.plugins);
    assert.deepEqual(gateway.observability, m.observability);
    const sidecar = generateProxyConfig(m, INSTANCES, SIDECAR).config;
    assert.deepEqual(sidecar.observability, m.observability);
    assert.equal(sidecar.consumers, undefined);
    assert.equal(sidecar.plugins, undefined);
    for (const [name, config] of [
      ['gateway', gateway],
      ['sidecar', sidecar],
    ] as const) {
      const loaded = validateConfigObject(config, name, { catalog: createPluginCatalog() });
      if (!loaded.ok) assert.fail(loaded.issues.map(formatIssue).join('\n'));
    }
  });

  it('a sidecar enforces its own service’s and the mesh-wide policies, on its inbound service only', () => {
    const extra = [
      'authorizationPolicies:',
      '  - { name: mesh-deny-debug, action: DENY, rules: [{ to: [{ paths: ["/debug/*"] }] }] }',
      '  - name: property-from-photos',
      '    service: property-service',
      '    rules: [{ from: [{ services: [photo-service] }] }]',
      '  - { name: photo-nobody, service: photo-service, rules: [] }',
    ].join('\n');
    const parsed = parseModel([{ file: 'mesh.yaml', text: `${MODEL_YAML}${extra}\n` }], 'mesh.yaml', null);
    if (!parsed.ok) assert.fail(parsed.issues.map(formatIssue).join('\n'));
    const m = parsed.model.config;
    const sidecar = generateProxyConfig(m, INSTANCES, SIDECAR).config;
    assert.deepEqual(
      sidecar.authorizationPolicies?.map((p) => [p.name, p.service]),
      [
        ['mesh-deny-debug', 'inbound.property-service'],
        ['property-from-photos', 'inbound.property-service'],
      ],
    );
    assert.deepEqual(sidecar.authorizationPolicies?.[1]?.rules, m.authorizationPolicies?.[1]?.rules);
    const loaded = validateConfigObject(sidecar, 'sidecar');
    if (!loaded.ok) assert.fail(loaded.issues.map(formatIssue).join('\n'));
    assert.equal(generateProxyConfig(m, INSTANCES, cases.gateway!).config.authorizationPolicies, undefined);
    // A model without policies generates exactly what it did before (the golden files).
    assert.equal(generateProxyConfig(model(), INSTANCES, SIDECAR).config.authorizationPolicies, undefined);
  });

  describe('with a mesh section: mutual TLS spelled out per service and on the inbound listener', () => {
    // legacy-billing has no sidecar (DISABLE); photo-service accepts mutual TLS only.
    const meshModel = () => {
      const text = MODEL_YAML.replace(
        '    timeouts: { connect: 1s, request: 5s }',
        '    timeouts: { connect: 1s, request: 5s }\n    mtls: { mode: STRICT }',
      ).replace('      - url: http://10.1.0.9:9000', '      - url: http://10.1.0.9:9000\n    mtls: { mode: DISABLE }');
      const parsed = parseModel(
        [{ file: 'mesh.yaml', text: `${text}mesh: { trustDomain: example.org, mtls: { mode: PERMISSIVE } }\n` }],
        'mesh.yaml',
        null,
      );
      if (!parsed.ok) assert.fail(parsed.issues.map(formatIssue).join('\n'));
      return parsed.model.config;
    };
    for (const [name, identity] of [
      ['sidecar-mtls', SIDECAR],
      ['gateway-mtls', cases.gateway!],
    ] as const) {
      it(`${name} matches test/golden/${name}.golden.json and is a valid config`, () => {
        const { config, version } = generateProxyConfig(meshModel(), INSTANCES, identity);
        const text = JSON.stringify(config, null, 2) + '\n';
        if (process.env.UPDATE_GOLDEN) writeFileSync(golden(name), text);
        assert.equal(text, readFileSync(golden(name), 'utf8'));
        const loaded = validateConfigObject(config, name);
        if (!loaded.ok) assert.fail(loaded.issues.map(formatIssue).join('\n'));
        assert.equal(loaded.value.hash, version);
      });
    }

    it('each service gets its effective mode and the identity its sidecars hold', () => {
      const config = generateProxyConfig(meshModel(), INSTANCES, SIDECAR).config;
      const mtls = Object.fromEntries(config.services!.map((s) => [s.name, s.mtls]));
      assert.deepEqual(mtls['photo-service'], {
        mode: 'STRICT',
        identities: ['spiffe://example.org/ns/default/sa/photo-service'],
      });
      assert.deepEqual(mtls['search-service'], {
        mode: 'PERMISSIVE',
        identities: ['spiffe://example.org/ns/default/sa/search-service'],
      });
      assert.deepEqual(mtls['legacy-billing'], { mode: 'DISABLE' });
      assert.equal(mtls['inbound.property-service'], undefined, 'the app beside the sidecar is plaintext');
      assert.deepEqual(config.listeners![0]!.mtls, { mode: 'PERMISSIVE' });
      assert.equal(config.listeners![1]!.mtls, undefined, 'the outbound listener is the app’s, on loopback');
      assert.equal(config.mesh, undefined, 'the proxy needs no mesh section: everything is spelled out');
    });

    it('a model without a mesh section generates what it always did', () => {
      const config = generateProxyConfig(model(), INSTANCES, SIDECAR).config;
      assert.ok(config.services!.every((s) => s.mtls === undefined));
      assert.ok(config.listeners!.every((l) => l.mtls === undefined));
    });
  });

  it('an IPv6 instance address is bracketed in its URL', () => {
    const v6 = [{ ...instance('photo-9', 'photo-service', 21009), address: '::1' }];
    const svc = generateProxyConfig(model(), v6, SIDECAR).config.services!.find((s) => s.name === 'photo-service')!;
    assert.deepEqual(
      svc.endpoints!.map((e) => e.url),
      ['http://[::1]:21009'],
    );
  });
});
