/**
 * Config mistakes in the traffic-management fields, as the user sees them (`line:col: path: message
 * (hint)`), and the valid forms being accepted. Loaded from real files the way the CLI loads them.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { withSnapshot } from '../../test/helpers/snapshot.ts';
import { formatIssue } from './issues.ts';
import { loadConfigFile } from './load.ts';

let dir: string;
let written = 0;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'meshgate-resilience-'));
});
after(() => rm(dir, { recursive: true, force: true }));

async function load(lines: string[]) {
  const file = join(dir, `config-${++written}.yaml`);
  await writeFile(file, lines.join('\n') + '\n');
  return { file, result: await loadConfigFile(file, {}) };
}

async function problems(lines: string[]): Promise<string[]> {
  const { file, result } = await load(lines);
  assert.equal(result.ok, false, 'expected the config to be rejected');
  if (result.ok) return [];
  return result.issues.map((issue) => formatIssue(issue).slice(file.length + 1));
}

async function accepted(lines: string[]) {
  const { result } = await load(lines);
  if (!result.ok) assert.fail(`expected a valid config, got:\n${result.issues.map(formatIssue).join('\n')}`);
  return result.value.config;
}

describe('traffic management config', () => {
  test('the full example of docs/resilience.md is accepted', async () => {
    const config = await accepted([
      'services:',
      '  - name: property-service',
      '    endpoints:',
      '      - { url: http://127.0.0.1:8081, labels: { version: v1 } }',
      '      - { url: http://127.0.0.1:8082, labels: { version: v2 } }',
      '    subsets: { v1: { version: v1 }, v2: { version: v2 } }',
      '    timeouts: { connect: 1s, request: 5s }',
      '    loadBalancer: { policy: least-request, panicThreshold: 50 }',
      '    healthCheck: { path: /healthz, interval: 5s, timeout: 1s, unhealthyThreshold: 3, healthyThreshold: 2, expectedStatuses: [200-299, 304] }',
      '    outlierDetection: { consecutiveErrors: 5, baseEjectionTime: 30s, maxEjectionTime: 5m, maxEjectionPercent: 50 }',
      '    circuitBreaker: { maxConnections: 1024, maxPendingRequests: 128, maxRequests: 1024, maxRetries: 3 }',
      '    retries:',
      '      attempts: 3',
      '      on: [connect-failure, reset, gateway-error, retriable-status-codes, unavailable]',
      '      statusCodes: [409]',
      '      perTryTimeout: 1s',
      '      backoff: { base: 25ms, max: 250ms }',
      '      budget: { percent: 20, minPerSecond: 10, window: 10s }',
      '  - name: shadow',
      '    endpoints: [{ url: http://127.0.0.1:8090 }]',
      '    loadBalancer: { policy: ring-hash, hashOn: { cookie: session }, ringPointsPerWeight: 100 }',
      'routes:',
      '  - name: canary',
      '    match: { path: /api/v1/properties/*, cookies: { canary: "true" } }',
      '    destinations: [{ service: property-service, subset: v2 }]',
      '  - name: property-api',
      '    match: { path: /api/v1/properties/* }',
      '    destinations:',
      '      - { service: property-service, subset: v1, weight: 90 }',
      '      - { service: property-service, subset: v2, weight: 10 }',
      '    sticky: { header: x-user-id }',
      '    retries: { attempts: 1, nonIdempotent: true }',
      '    mirror: { service: shadow, percent: 5 }',
      '    fault: { delay: { duration: 100ms, percent: 1 }, abort: { status: 503, percent: 0.5 }, header: x-chaos }',
    ]);
    assert.equal(config.services![0]!.retries!.budget!.percent, 20);
  });

  test('mistakes in service settings are located, with hints', async () => {
    assert.deepEqual(
      await problems([
        'services:',
        '  - name: a',
        '    endpoints: []',
        '    loadBalancer: { policy: ring-hash }',
        '  - name: b',
        '    endpoints: []',
        '    loadBalancer: { policy: round-robn, hashOn: { header: x, cookie: y } }',
        '  - name: c',
        '    endpoints: []',
        '    loadBalancer: { hashOn: { clientIp: true } }',
        '    healthCheck: { path: /h, interval: 1s, timeout: 2s, expectedStatuses: [299-200] }',
        '    outlierDetection: { baseEjectionTime: 1m, maxEjectionTime: 10s }',
        '    retries: { on: [retriable-status-codes], backoff: { base: 1s, max: 10ms } }',
        '    circuitBreaker: { maxPendingRequests: -1 }',
        '    adaptiveConcurrency: { sampleInterval: 0s, minConcurrency: 10, maxConcurrency: 5, smoothing: 0 }',
      ]),
      [
        '4:19: services[0].loadBalancer: ring-hash needs hashOn (e.g. hashOn: { header: x-user-id })',
        '7:29: services[1].loadBalancer.policy: "round-robn" is not one of round-robin, least-request, random, ring-hash, maglev (did you mean "round-robin"?)',
        '7:49: services[1].loadBalancer.hashOn: give exactly one of its fields, not 2 (The hash key of `ring-hash` and `maglev`: one of `{ header }`, `{ cookie }`, `{ query }`, `{ clientIp: true }`. A request without that value gets a random key.)',
        '10:29: services[2].loadBalancer.hashOn: hashOn is only read by ring-hash and maglev, not round-robin (set policy: ring-hash (or maglev), or remove hashOn)',
        '11:53: services[2].healthCheck.timeout: the timeout (2s) is longer than the interval (1s)',
        '11:76: services[2].healthCheck.expectedStatuses[0]: the range 299-200 is empty (write 200-299)',
        '12:64: services[2].outlierDetection.maxEjectionTime: the longest ejection (10s) is shorter than the base ejection time (1m)',
        '13:20: services[2].retries.on: retriable-status-codes needs statusCodes (e.g. statusCodes: [409])',
        '13:72: services[2].retries.backoff.max: the cap (10ms) is below the base (1s)',
        '14:43: services[2].circuitBreaker.maxPendingRequests: -1 is out of range: it must be >= 0',
        '15:44: services[2].adaptiveConcurrency.sampleInterval: the sample interval cannot be 0 (e.g. 100ms)',
        '15:84: services[2].adaptiveConcurrency.maxConcurrency: maxConcurrency (5) is below minConcurrency (10)',
        '15:98: services[2].adaptiveConcurrency.smoothing: must be > 0',
      ],
    );
  });

  test('mistakes in route settings: unknown mirror service or subset, sticky without a split, empty fault', async () => {
    assert.deepEqual(
      await problems([
        'routes:',
        '  - name: a',
        '    service: property',
        '    mirror: { service: propertee-shadow }',
        '    sticky: { cookie: s }',
        '    fault: { header: x-chaos }',
        '  - name: b',
        '    service: property',
        '    mirror: { service: property-shadow, subset: v3 }',
        '    retries: { statusCodes: [409], on: [5xx] }',
        '  - name: c',
        '    directResponse: { status: 200 }',
        '    retries: { attempts: 1 }',
        '  - name: d',
        '    service: property',
        '    retries: { on: [5xxx] }',
        '    match: { cookies: { c: { regex: "(" } } }',
        'services:',
        '  - name: property',
        '    endpoints: []',
        '  - name: property-shadow',
        '    endpoints: []',
        '    subsets: { v1: { version: v1 } }',
      ]),
      [
        '4:24: routes[0].mirror.service: unknown service "propertee-shadow" (did you mean "property-shadow"?)',
        '5:13: routes[0].sticky: sticky keeps a client on one side of a split, and this route has one destination',
        '6:12: routes[0].fault: a fault needs delay or abort (e.g. abort: { status: 503, percent: 10 })',
        '9:49: routes[1].mirror.subset: service "property-shadow" has no subset "v3" (did you mean "v1"?)',
        '10:29: routes[1].retries.statusCodes: statusCodes are only read with retriable-status-codes in on',
        '13:14: routes[2].retries: retries applies to forwarding routes; this one answers with directResponse',
        '16:21: routes[3].retries.on[0]: "5xxx" is not one of connect-failure, refused-stream, reset, gateway-error, 5xx, retriable-status-codes, cancelled, deadline-exceeded, internal, resource-exhausted, unavailable (did you mean "5xx"?)',
        '17:37: routes[3].match.cookies.c.regex: invalid regular expression: /(/: Unterminated group',
      ],
    );
  });

  test('a route may not set the budget: it belongs to the service', async () => {
    assert.deepEqual(
      await problems([
        'routes:',
        '  - name: a',
        '    service: s',
        '    retries: { budget: { percent: 10 } }',
        'services:',
        '  - { name: s, endpoints: [] }',
      ]),
      [
        '4:16: routes[0].retries.budget: unknown field "budget" (expected one of: attempts, on, statusCodes, perTryTimeout, backoff, nonIdempotent, replayBufferBytes, maxRetryAfter)',
      ],
    );
  });
  test('subset policies: each names a declared subset, and its merged policies are checked at the subset', async () => {
    assert.deepEqual(
      await problems([
        'services:',
        '  - name: property',
        '    endpoints: []',
        '    subsets: { v1: { version: v1 }, v2: { version: v2 } }',
        '    loadBalancer: { policy: ring-hash, hashOn: { header: x-user } }',
        '    subsetPolicies:',
        '      v3: { circuitBreaker: { maxRequests: 1 } }',
        '      v2:',
        '        loadBalancer: { ringPointsPerWeight: 10, policy: maglev }',
        '        outlierDetection: { consecutiveErrors: 0 }',
      ]),
      [
        '7:11: services[0].subsetPolicies.v3: service "property" has no subset "v3" (did you mean "v1"?)',
        '9:46: services[0].subsetPolicies.v2.loadBalancer.ringPointsPerWeight: ringPointsPerWeight is only read by ring-hash',
        '10:27: services[0].subsetPolicies.v2.outlierDetection: both triggers are 0: nothing would ever be ejected (remove outlierDetection)',
      ],
    );
    const config = await accepted([
      'services:',
      '  - name: property',
      '    endpoints: []',
      '    subsets: { v1: { version: v1 }, v2: { version: v2 } }',
      '    loadBalancer: { policy: ring-hash, hashOn: { header: x-user } }',
      '    subsetPolicies:',
      '      v2: { loadBalancer: { policy: round-robin }, circuitBreaker: { maxRequests: 1 }, timeouts: { request: 2s } }',
    ]);
    assert.deepEqual(config.services![0]!.subsetPolicies!.v2!.circuitBreaker, { maxRequests: 1 });
  });
});

describe('services[].engine', () => {
  test('engine lean is for plain HTTP/1.1 services: refused with protocol http2 or auto and with https endpoints, at its line', async () => {
    const issues = await problems([
      'services:',
      '  - name: h2',
      '    protocol: http2',
      '    engine: lean',
      '    endpoints: [{ url: http://127.0.0.1:9001 }]',
      '  - name: tls',
      '    engine: lean',
      '    endpoints: [{ url: http://127.0.0.1:9002 }, { url: https://127.0.0.1:9003 }]',
      '  - name: plain',
      '    engine: lean',
      '    endpoints: [{ url: http://127.0.0.1:9004 }]',
    ]);
    assert.equal(issues.length, 2, issues.join('\n'));
    assert.match(
      issues[0]!,
      /^4:\d+: services\[0\]\.engine: engine lean speaks plain HTTP\/1\.1 only; this service sets protocol http2/,
    );
    assert.match(
      issues[1]!,
      /^7:\d+: services\[1\]\.engine: engine lean speaks plain HTTP\/1\.1 only; endpoint 1 of this service is https:\/\//,
    );
    const config = await accepted([
      'services:',
      '  - { name: plain, engine: lean, endpoints: [{ url: http://127.0.0.1:9004 }] }',
      '  - { name: default, endpoints: [{ url: http://127.0.0.1:9005 }] }',
    ]);
    assert.deepEqual(
      config.services?.map((s) => s.engine),
      ['lean', undefined],
    );
  });
});

describe('services[].engine: what each endpoint is called with', () => {
  test('the lean client by default for plain HTTP/1.1; undici when named, for HTTP/2, and for https:// endpoints', async () => {
    const { result } = await load([
      'services:',
      '  - { name: plain, endpoints: [{ url: http://127.0.0.1:9001 }] }',
      '  - { name: named, engine: undici, endpoints: [{ url: http://127.0.0.1:9002 }] }',
      '  - { name: h2, protocol: http2, endpoints: [{ url: http://127.0.0.1:9003 }] }',
      '  - { name: mixed, endpoints: [{ url: http://127.0.0.1:9004 }, { url: https://127.0.0.1:9005 }] }',
    ]);
    assert.ok(result.ok);
    const clients = await withSnapshot(result.value, (snapshot) =>
      Object.fromEntries([...snapshot.services].map(([name, s]) => [name, s.all.endpoints.map((e) => e.pool.engine)])),
    );
    assert.deepEqual(clients, {
      plain: ['lean'],
      named: ['undici'],
      h2: ['undici'],
      mixed: ['lean', 'undici'],
    });
  });
});
