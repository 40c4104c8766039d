/**
 * The Istio converter: the conversion of a file of every supported resource against its golden file,
 * Istio's first-match order through the real router, the implicit defaults, and the located report
 * of what is not supported (refused by default, left out with warnings when allowed).
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import type { ConfigIssue } from '../../api/issues.ts';
import { formatIssue } from '../../config/issues.ts';
import { type ConfigText, parseTexts, validateParsed } from '../../config/load.ts';
import { createPluginCatalog } from '../../plugins/index.ts';
import { type MatchInput, Router } from '../../proxy/router/router.ts';
import { startGateway, startUpstream } from '../../testing/servers.ts';
import { type CompatOptions, convertTexts, FOREIGN_FORMATS } from '../index.ts';

const catalog = createPluginCatalog();
const fixture = (name: string) => new URL(`../../../test/fixtures/istio/${name}`, import.meta.url);
const golden = (name: string) => new URL(`../../../test/golden/${name}.golden.json`, import.meta.url);

function convert(texts: ConfigText[], options: CompatOptions = {}) {
  const parsed = parseTexts(texts, texts[0]!.file, {});
  const result = convertTexts(parsed, FOREIGN_FORMATS, options);
  return { ...result, checked: validateParsed(result.parsed, { catalog }) };
}

function load(texts: ConfigText[], options: CompatOptions = {}) {
  const { checked } = convert(texts, options);
  if (!checked.ok) throw new Error(checked.issues.map(formatIssue).join('\n'));
  return checked.value.config;
}

const doc = (lines: string[]) => `${lines.join('\n')}\n`;

function request(path: string, headers: Record<string, string> = {}, method = 'GET', host = 'any'): MatchInput {
  return { method, host, path, query: '', header: (name) => headers[name] };
}

describe('Istio conversion: golden file', () => {
  it('converts Gateway, VirtualService, DestinationRule, ServiceEntry and policies as test/golden/istio-reviews.golden.json', () => {
    const file = 'test/fixtures/istio/reviews.yaml';
    const config = load([{ file, text: readFileSync(fixture('reviews.yaml'), 'utf8') }]);
    const text = `${JSON.stringify(config, null, 2)}\n`;
    if (process.env.UPDATE_GOLDEN) writeFileSync(golden('istio-reviews'), text);
    assert.equal(text, readFileSync(golden('istio-reviews'), 'utf8'));
  });
});

describe('Istio conversion: routes', () => {
  const vs = (http: string[]) =>
    doc([
      'apiVersion: networking.istio.io/v1alpha3',
      'kind: VirtualService',
      'metadata: { name: shop }',
      'spec:',
      '  http:',
      ...http,
      '---',
      'apiVersion: networking.istio.io/v1alpha3',
      'kind: ServiceEntry',
      'metadata: { name: shop }',
      'spec:',
      '  hosts: [shop, other]',
      '  ports: [{ number: 80, name: http, protocol: HTTP }]',
      '  resolution: DNS',
    ]);

  it('keeps the first-match order of http[]: a prefix written first beats a later exact path and header', () => {
    const config = load([
      {
        file: 'vs.yaml',
        text: vs([
          '  - match: [{ uri: { prefix: /api } }]',
          '    route: [{ destination: { host: shop } }]',
          '  - match: [{ uri: { exact: /api/items }, headers: { canary: { exact: "true" } } }]',
          '    route: [{ destination: { host: other } }]',
          '  - route: [{ destination: { host: other } }]',
        ]),
      },
    ]);
    const routes = config.routes!;
    const router = new Router(
      routes.map((r, order) => ({ match: r.match, order, priority: r.priority, value: r.name })),
    );
    // meshgate's own precedence would pick the exact path with a header; Istio's order picks http[0].
    assert.equal(router.match(request('/api/items', { canary: 'true' })), 'shop-0');
    // A plain string prefix, as Envoy's: `/api` also covers `/apis`.
    assert.equal(router.match(request('/apis')), 'shop-0');
    assert.equal(router.match(request('/other')), 'shop-2');
    // Without the priority the same routes reorder: the conversion is what keeps Istio's semantics.
    const unprioritised = new Router(routes.map((r, order) => ({ match: r.match, order, value: r.name })));
    assert.equal(unprioritised.match(request('/api/items', { canary: 'true' })), 'shop-1');
  });

  it('converts every header match kind, presence and absence', () => {
    const [route] = load([
      {
        file: 'vs.yaml',
        text: vs([
          '  - match:',
          '    - headers:',
          '        x-exact: { exact: a }',
          '        x-prefix: { prefix: b }',
          '        x-regex: { regex: "c[0-9]+" }',
          '        X-Present: {}',
          '      withoutHeaders:',
          '        x-absent: {}',
          '    route: [{ destination: { host: shop } }]',
        ]),
      },
    ]).routes!;
    assert.deepEqual(route!.match!.headers, {
      'x-exact': { exact: 'a' },
      'x-prefix': { prefix: 'b' },
      'x-regex': { regex: 'c[0-9]+' },
      'x-present': { present: true },
      'x-absent': { present: false },
    });
    const router = new Router([{ match: route!.match, order: 0, priority: 1, value: 'hit' }]);
    const ok = { 'x-exact': 'a', 'x-prefix': 'bz', 'x-regex': 'c12', 'x-present': '' };
    assert.equal(router.match(request('/', ok)), 'hit');
    assert.equal(router.match(request('/', { ...ok, 'x-regex': 'c12x' })), null);
    assert.equal(router.match(request('/', { ...ok, 'x-absent': '1' })), null);
  });

  it('reproduces Istio’s implicit route policy: 2 retries on its default conditions and 503, no timeout', () => {
    const [route] = load([{ file: 'vs.yaml', text: vs(['  - route: [{ destination: { host: shop } }]']) }]).routes!;
    assert.deepEqual(route!.retries, {
      attempts: 2,
      on: ['connect-failure', 'refused-stream', 'unavailable', 'cancelled', 'retriable-status-codes'],
      statusCodes: [503],
      nonIdempotent: true,
    });
    assert.deepEqual(route!.timeouts, { request: '0s' });
  });

  it('reads weights as Istio does: one destination gets everything, other sums are proportions', () => {
    const routes = load([
      {
        file: 'vs.yaml',
        text: vs([
          '  - match: [{ uri: { prefix: /one } }]',
          '    route: [{ destination: { host: shop } }]',
          '  - route:',
          '    - { destination: { host: shop }, weight: 1 }',
          '    - { destination: { host: other }, weight: 3 }',
        ]),
      },
    ]).routes!;
    assert.deepEqual(routes[0]!.destinations, [{ service: 'shop', weight: 100 }]);
    assert.deepEqual(
      routes[1]!.destinations!.map((d) => d.weight),
      [25, 75],
    );
  });

  it('takes the older integer `percent` of a fault, and faults nothing when no percentage is given', () => {
    const routes = load([
      {
        file: 'vs.yaml',
        text: vs([
          '  - match: [{ uri: { prefix: /old } }]',
          '    fault: { delay: { fixedDelay: 2s, percent: 30 }, abort: { httpStatus: 500, percent: 10 } }',
          '    route: [{ destination: { host: shop } }]',
          '  - fault: { abort: { httpStatus: 503 } }',
          '    route: [{ destination: { host: shop } }]',
        ]),
      },
    ]).routes!;
    assert.deepEqual(routes[0]!.fault, {
      delay: { duration: '2s', percent: 30 },
      abort: { status: 500, percent: 10 },
    });
    assert.deepEqual(routes[1]!.fault, { abort: { status: 503, percent: 0 } });
  });
});

describe('Istio conversion: header operations', () => {
  it('sets, adds and removes request and response headers as Envoy does, values taken literally', async () => {
    const upstream = await startUpstream((_req, res) => {
      res.setHeader('cache-control', 'max-age=60');
      res.setHeader('x-internal', 'secret');
      res.setHeader('x-served-by', 'app');
      res.end('ok');
    });
    const text = doc([
      'apiVersion: networking.istio.io/v1beta1',
      'kind: VirtualService',
      'metadata: { name: shop }',
      'spec:',
      '  http:',
      '  - headers:',
      '      request:',
      '        set: { X-Tenant: acme }',
      '        add: { x-via: "istio $(query.a) 100%%" }',
      '        remove: [x-debug]',
      '      response:',
      '        set: { cache-control: no-store }',
      '        add: { x-served-by: meshgate }',
      '        remove: [x-internal]',
      '    route: [{ destination: { host: shop } }]',
      '---',
      'apiVersion: networking.istio.io/v1beta1',
      'kind: ServiceEntry',
      'metadata: { name: shop }',
      'spec:',
      '  hosts: [shop]',
      `  ports: [{ number: ${upstream.port}, name: http, protocol: HTTP }]`,
      '  resolution: STATIC',
      '  endpoints: [{ address: 127.0.0.1 }]',
    ]);
    const config = load([{ file: 'vs.yaml', text }], { listen: { address: '127.0.0.1', port: 0 } });
    assert.deepEqual(config.routes![0]!.plugins, [
      {
        name: 'request-transformer',
        config: {
          remove: { headers: ['x-debug', 'x-tenant'] },
          add: { headers: ['x-tenant:acme'] },
          append: { headers: ['x-via:istio $$(query.a) 100%'] },
        },
      },
      {
        name: 'response-transformer',
        config: {
          remove: { headers: ['x-internal', 'cache-control'] },
          add: { headers: ['cache-control:no-store'] },
          append: { headers: ['x-served-by:meshgate'] },
        },
      },
    ]);
    const gateway = await startGateway(config as unknown as Record<string, unknown>);
    try {
      const res = await fetch(`${gateway.url()}/items?a=1`, {
        headers: { 'x-tenant': 'other', 'x-via': 'client', 'x-debug': '1' },
      });
      assert.equal(res.status, 200);
      await res.text();
      const seen = upstream.seen.at(-1)!.headers;
      assert.equal(seen['x-tenant'], 'acme', 'set replaces the client’s value');
      assert.equal(seen['x-via'], 'client, istio $(query.a) 100%', 'add appends a literal value');
      assert.equal(seen['x-debug'], undefined);
      assert.equal(res.headers.get('cache-control'), 'no-store');
      assert.equal(res.headers.get('x-internal'), null);
      assert.equal(res.headers.get('x-served-by'), 'app, meshgate');
    } finally {
      await gateway.close();
      await upstream.close();
    }
  });
});

describe('Istio conversion: DestinationRule defaults', () => {
  it('fills outlier detection’s defaults when the block is present, turns panic mode off, and leaves pools unlimited', () => {
    const [service] = load([
      {
        file: 'dr.yaml',
        text: doc([
          'apiVersion: networking.istio.io/v1',
          'kind: DestinationRule',
          'metadata: { name: shop }',
          'spec:',
          '  host: shop',
          '  trafficPolicy:',
          '    loadBalancer: { simple: LEAST_REQUEST }',
          '    outlierDetection: {}',
        ]),
      },
    ]).services!;
    assert.deepEqual(service!.outlierDetection, {
      consecutiveErrors: 5,
      interval: '10s',
      baseEjectionTime: '30s',
      maxEjectionPercent: 10,
    });
    assert.deepEqual(service!.loadBalancer, { policy: 'least-request', panicThreshold: 0 });
    assert.deepEqual(service!.circuitBreaker, {
      maxConnections: 1_000_000,
      maxPendingRequests: 1_000_000,
      maxRequests: 1_000_000,
      maxRetries: 1_000_000,
    });
  });

  it('joins a DestinationRule to the service of another file, and names both places when they disagree', () => {
    const native = {
      file: 'services.yaml',
      text: doc([
        'services:',
        '  - name: shop',
        '    endpoints: [{ url: "http://127.0.0.1:1", labels: { version: v1 } }]',
        '    loadBalancer: { policy: random }',
      ]),
    };
    const rule = (policy: string) => ({
      file: 'dr.yaml',
      text: doc([
        'apiVersion: networking.istio.io/v1',
        'kind: DestinationRule',
        'metadata: { name: shop }',
        'spec:',
        '  host: shop.default.svc.cluster.local',
        '  subsets: [{ name: v1, labels: { version: v1 } }]',
        ...policy.split('\n').filter(Boolean),
      ]),
    });
    const joined = load([native, rule('')]).services!;
    assert.equal(joined.length, 1);
    assert.deepEqual(joined[0]!.subsets, { v1: { version: 'v1' } });
    assert.deepEqual(joined[0]!.loadBalancer, { policy: 'random' });
    assert.equal(joined[0]!.origin, 'istio:DestinationRule/default/shop');
    const { checked } = convert([native, rule('  trafficPolicy:\n    loadBalancer: { simple: ROUND_ROBIN }')]);
    assert.equal(checked.ok, false);
    const issues = checked.ok ? [] : checked.issues;
    assert.equal(issues.length, 1);
    assert.deepEqual(
      { file: issues[0]!.file, line: issues[0]!.line },
      { file: 'dr.yaml', line: 8 },
      formatIssue(issues[0]!),
    );
    assert.match(issues[0]!.message, /loadBalancer of service "shop" is also set at services\.yaml:4:/);
  });
});

describe('Istio conversion: a subset’s trafficPolicy', () => {
  const rule = doc([
    'apiVersion: networking.istio.io/v1', // 1
    'kind: DestinationRule', // 2
    'metadata: { name: shop }', // 3
    'spec:', // 4
    '  host: shop', // 5
    '  trafficPolicy:', // 6
    '    loadBalancer: { consistentHash: { httpHeaderName: x-user } }', // 7
    '    connectionPool: { tcp: { maxConnections: 100, connectTimeout: 2s }, http: { http2MaxRequests: 50 } }', // 8
    '    outlierDetection: { consecutive5xxErrors: 7, minHealthPercent: 20 }', // 9
    '  subsets:', // 10
    '  - name: v1', // 11
    '    labels: { version: v1 }', // 12
    '  - name: v2', // 13
    '    labels: { version: v2 }', // 14
    '    trafficPolicy:', // 15
    '      loadBalancer: { simple: ROUND_ROBIN }', // 16
    '      connectionPool: { http: { http2MaxRequests: 1 } }', // 17
    '      outlierDetection: { consecutive5xxErrors: 1, baseEjectionTime: 1m }', // 18
    '  - name: v3', // 19
    '    labels: { version: v3 }', // 20
    '    trafficPolicy:', // 21
    '      tls: { mode: ISTIO_MUTUAL }', // 22
    '      portLevelSettings: [{ port: { number: 80 } }]', // 23
  ]);

  it('maps onto subsetPolicies, each policy block replaced whole as Istio merges a subset’s policy', () => {
    const warnings: ConfigIssue[] = [];
    const [service] = load([{ file: 'dr.yaml', text: rule }], {
      allowUnsupported: true,
      warn: (i) => warnings.push(i),
    }).services!;
    assert.deepEqual(service!.subsetPolicies, {
      v2: {
        // Istio's merged outlier detection is the subset's, so is its panic threshold (minHealthPercent 0).
        loadBalancer: { policy: 'round-robin', panicThreshold: 0 },
        outlierDetection: { consecutiveErrors: 1, interval: '10s', baseEjectionTime: '1m', maxEjectionPercent: 10 },
        // The subset's pool replaces the rule's: what it leaves out is Istio's default, not the rule's.
        circuitBreaker: {
          maxRequests: 1,
          maxConnections: 1_000_000,
          maxPendingRequests: 1_000_000,
          maxRetries: 1_000_000,
        },
        timeouts: { connect: '10s' },
      },
    });
    assert.deepEqual(service!.loadBalancer, { policy: 'ring-hash', hashOn: { header: 'x-user' }, panicThreshold: 20 });
    assert.equal(service!.circuitBreaker!.maxRequests, 50);
    assert.deepEqual(
      warnings.map((i) => [i.line, i.column, i.path]).sort((a, b) => (a[0] as number) - (b[0] as number)),
      [
        [22, 7, 'istio:DestinationRule/default/shop spec.subsets[2].trafficPolicy.tls'],
        [23, 7, 'istio:DestinationRule/default/shop spec.subsets[2].trafficPolicy.portLevelSettings'],
      ],
    );
  });

  it('gives traffic to the subset its own limits through the gateway, and points issues into the subset’s policy', async () => {
    const v1 = await startUpstream(undefined, 'v1');
    const v2 = await startUpstream(undefined, 'v2');
    const config = load(
      [
        { file: 'dr.yaml', text: rule },
        {
          file: 'services.yaml',
          text: doc([
            'services:',
            '  - name: shop',
            `    endpoints: [{ url: "${v1.url}", labels: { version: v1 } }, { url: "${v2.url}", labels: { version: v2 } }]`,
            'routes:',
            '  - { name: v2, match: { path: /v2 }, destinations: [{ service: shop, subset: v2 }] }',
          ]),
        },
      ],
      { allowUnsupported: true, warn: () => {} },
    );
    const gw = await startGateway(config as Record<string, unknown>);
    try {
      const shop = gw.proxy.snapshot.services.get('shop')!;
      assert.equal(shop.breaker.maxRequests, 50);
      const unit = shop.unitFor('v2');
      assert.equal(unit.label, 'shop/v2');
      assert.equal(unit.breaker.maxRequests, 1);
      assert.equal(unit.policy, 'round-robin');
      assert.equal(unit.outlier!.settings.consecutiveErrors, 1);
      assert.deepEqual(
        unit.all.endpoints.map((e) => e.url),
        [v2.url],
      );
      const res = await fetch(`${gw.url()}/v2`);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('x-upstream'), 'v2');
    } finally {
      await gw.close();
      await v1.close();
      await v2.close();
    }
    const { checked } = convert([
      {
        file: 'dr.yaml',
        text: doc([
          'apiVersion: networking.istio.io/v1',
          'kind: DestinationRule',
          'metadata: { name: shop }',
          'spec:',
          '  host: shop',
          '  subsets:',
          '  - name: v2',
          '    labels: { version: v2 }',
          '    trafficPolicy:',
          '      outlierDetection: { consecutive5xxErrors: 0 }',
        ]),
      },
    ]);
    assert.equal(checked.ok, false);
    const issue = (checked.ok ? [] : checked.issues)[0]!;
    assert.deepEqual([issue.file, issue.line], ['dr.yaml', 10], formatIssue(issue));
    assert.match(issue.message, /nothing would ever be ejected/);
  });
});

describe('Istio conversion: what is not supported', () => {
  const file = 'unsupported.yaml';
  const text = doc([
    'apiVersion: networking.istio.io/v1alpha3', // 1
    'kind: VirtualService', // 2
    'metadata: { name: shop }', // 3
    'spec:', // 4
    '  tcp: [{ route: [] }]', // 5
    '  http:', // 6
    '  - corsPolicy: { allowOrigins: [] }', // 7
    '    headers: { request: { set: { x-a: "%START_TIME%" } } }', // 8
    '    match:', // 9
    '    - uri: { prefix: /a }', // 10
    '      sourceLabels: { app: web }', // 11
    '    route:', // 12
    '    - destination: { host: shop }', // 13
    '---', // 14
    'apiVersion: networking.istio.io/v1alpha3', // 15
    'kind: Sidecar', // 16
    'metadata: { name: default }', // 17
    'spec: {}', // 18
    '---', // 19
    'apiVersion: networking.istio.io/v1alpha3', // 20
    'kind: ServiceEntry', // 21
    'metadata: { name: shop }', // 22
    'spec:', // 23
    '  hosts: [shop]', // 24
    '  ports: [{ number: 80, name: http }]', // 25
    '  resolution: DNS', // 26
    '  endpoints:', // 27
    '  - address: 127.0.0.1', // 28
    '    locality: eu/west', // 29
  ]);
  const expected = [
    [5, 3, 'istio:VirtualService/default/shop spec.tcp'],
    [7, 5, 'istio:VirtualService/default/shop spec.http[0].corsPolicy'],
    [8, 34, 'istio:VirtualService/default/shop spec.http[0].headers.request.set.x-a'],
    [11, 7, 'istio:VirtualService/default/shop spec.http[0].match[0].sourceLabels'],
    [16, 1, 'istio:Sidecar/default/default kind'],
    [29, 5, 'istio:ServiceEntry/default/shop spec.endpoints[0].locality'],
  ];
  const located = (issues: readonly ConfigIssue[]) =>
    issues.map((i) => [i.line, i.column, i.path]).sort((a, b) => (a[0] as number) - (b[0] as number));

  it('refuses the file by default, naming each unsupported field with its file, line and column', () => {
    const { checked } = convert([{ file, text }]);
    assert.equal(checked.ok, false);
    const issues = checked.ok ? [] : checked.issues;
    assert.ok(
      issues.every((i) => i.file === file && i.code === 'unsupported'),
      issues.map(formatIssue).join('\n'),
    );
    assert.deepEqual(located(issues), expected);
    assert.ok(issues.every((i) => /--allow-unsupported/.test(i.hint ?? '')));
  });

  it('with allowUnsupported, loads the rest and hands each unsupported field to warn', () => {
    const warnings: ConfigIssue[] = [];
    const config = load([{ file, text }], { allowUnsupported: true, warn: (i) => warnings.push(i) });
    assert.deepEqual(located(warnings), expected);
    assert.deepEqual(
      config.routes!.map((r) => [r.name, r.match?.pathRegex]),
      [['shop-0', '/a.*']],
    );
    assert.deepEqual(
      config.services!.map((s) => s.endpoints),
      [[{ url: 'http://127.0.0.1:80' }]],
    );
  });

  it('points the validator’s issues about converted values into the Istio file', () => {
    const { checked } = convert([
      {
        file: 'vs.yaml',
        text: doc([
          'apiVersion: networking.istio.io/v1',
          'kind: VirtualService',
          'metadata: { name: shop }',
          'spec:',
          '  http:',
          '  - route:',
          '    - destination: { host: nowhere }',
        ]),
      },
    ]);
    assert.equal(checked.ok, false);
    const issue = (checked.ok ? [] : checked.issues).find((i) => i.code === 'unknown-service');
    assert.ok(issue, 'an unknown-service issue');
    assert.deepEqual([issue.file, issue.line, issue.column], ['vs.yaml', 7, 7]);
    assert.match(issue.path, /^istio:VirtualService\/default\/shop spec\.http\[0\]\.route\[0\]/);
  });
});

describe('Istio conversion: listeners', () => {
  const alone = {
    file: 'vs.yaml',
    text: doc([
      'apiVersion: networking.istio.io/v1',
      'kind: VirtualService',
      'metadata: { name: shop }',
      'spec:',
      '  http:',
      '  - directResponse: { status: 204 }',
    ]),
  };

  it('serves a VirtualService alone where Istio’s ingress gateway listens, or where --listen says', () => {
    assert.deepEqual(load([alone]).listeners, [
      { name: 'istio-ingress', port: 8080, address: '0.0.0.0', origin: 'istio: default listener (no file names one)' },
    ]);
    assert.deepEqual(
      load([alone], { listen: { address: '127.0.0.1', port: 18080 } }).listeners!.map((l) => [l.address, l.port]),
      [['127.0.0.1', 18080]],
    );
  });

  it('adds no listener when another file names one', () => {
    const native = { file: 'a.yaml', text: doc(['listeners: [{ name: public, port: 9000 }]']) };
    assert.deepEqual(
      load([native, alone]).listeners!.map((l) => l.name),
      ['public'],
    );
  });
});

describe('Istio conversion: RequestAuthentication', () => {
  const entry = doc([
    'apiVersion: networking.istio.io/v1',
    'kind: ServiceEntry',
    'metadata: { name: reviews }',
    'spec: { hosts: [reviews], ports: [{ number: 80, name: http }], resolution: STATIC, endpoints: [{ address: 127.0.0.1 }] }',
  ]);
  const jwks = JSON.stringify({ keys: [] });

  it('maps jwtRules onto the jwt plugin: mesh-wide as a global entry, a selected workload with the mesh-wide rules too', () => {
    const config = load([
      { file: 'se.yaml', text: entry },
      {
        file: 'ra.yaml',
        text: doc([
          'apiVersion: security.istio.io/v1beta1',
          'kind: RequestAuthentication',
          'metadata: { name: mesh, namespace: istio-system }',
          'spec:',
          '  jwtRules:',
          '  - issuer: https://idp.example',
          '    jwksUri: https://idp.example/jwks.json',
          '---',
          'apiVersion: security.istio.io/v1',
          'kind: RequestAuthentication',
          'metadata: { name: reviews }',
          'spec:',
          '  selector: { matchLabels: { app: reviews } }',
          '  jwtRules:',
          '  - issuer: partner',
          `    jwks: '${jwks}'`,
          '    audiences: [reviews-api]',
          '    timeout: 5s',
          '  - issuer: https://idp.example', // the mesh-wide rule again: one issuer
          '    jwksUri: https://idp.example/jwks.json',
        ]),
      },
    ]);
    const istioDefaults = {
      optional: true,
      requireExpiration: false,
      clockSkew: '60s',
      tokenFrom: [{ header: 'authorization' }, { query: 'access_token' }],
      forwardToken: false,
    };
    assert.deepEqual(config.plugins, [
      {
        name: 'jwt',
        config: {
          ...istioDefaults,
          issuers: [{ issuer: 'https://idp.example', jwksUrl: 'https://idp.example/jwks.json' }],
        },
      },
    ]);
    const reviews = config.services!.find((s) => s.name === 'reviews')!;
    assert.deepEqual(reviews.endpoints, [{ url: 'http://127.0.0.1:80' }], 'joined to the ServiceEntry’s service');
    assert.deepEqual(reviews.plugins, [
      {
        name: 'jwt',
        config: {
          ...istioDefaults,
          issuers: [
            { issuer: 'https://idp.example', jwksUrl: 'https://idp.example/jwks.json' },
            { issuer: 'partner', jwks, audiences: ['reviews-api'] },
          ],
        },
      },
    ]);
  });

  it('maps token places, forwarding and output headers; targetRef of kind Service names the workload', () => {
    const config = load([
      { file: 'se.yaml', text: entry },
      {
        file: 'ra.yaml',
        text: doc([
          'apiVersion: security.istio.io/v1',
          'kind: RequestAuthentication',
          'metadata: { name: reviews }',
          'spec:',
          '  targetRef: { kind: Service, group: "", name: reviews }',
          '  jwtRules:',
          '  - issuer: https://idp.example',
          '    jwksUri: https://idp.example/jwks.json',
          '    fromHeaders: [{ name: Authorization, prefix: "Bearer " }, { name: X-Jwt, prefix: "Token " }, { name: x-raw }]',
          '    fromParams: [token]',
          '    fromCookies: [session]',
          '    forwardOriginalToken: true',
          '    outputPayloadToHeader: X-Jwt-Payload',
          '    outputClaimToHeaders: [{ header: X-Sub, claim: sub }, { header: x-groups, claim: groups }]',
        ]),
      },
    ]);
    assert.equal(config.plugins, undefined);
    assert.deepEqual(config.services!.find((s) => s.name === 'reviews')!.plugins, [
      {
        name: 'jwt',
        config: {
          optional: true,
          requireExpiration: false,
          clockSkew: '60s',
          tokenFrom: [
            { header: 'authorization' },
            { header: 'x-jwt', prefix: 'Token ' },
            { header: 'x-raw' },
            { query: 'token' },
            { cookie: 'session' },
          ],
          payloadToHeader: 'x-jwt-payload',
          claimsToHeaders: { sub: 'x-sub', groups: 'x-groups' },
          issuers: [{ issuer: 'https://idp.example', jwksUrl: 'https://idp.example/jwks.json' }],
        },
      },
    ]);
  });

  it('maps requestPrincipals, notRequestPrincipals and token conditions of an AuthorizationPolicy', () => {
    const config = load([
      { file: 'se.yaml', text: entry },
      {
        file: 'ap.yaml',
        text: doc([
          'apiVersion: security.istio.io/v1',
          'kind: AuthorizationPolicy',
          'metadata: { name: need-jwt }',
          'spec:',
          '  selector: { matchLabels: { app: reviews } }',
          '  rules:',
          '  - from: [{ source: { requestPrincipals: ["*"], notRequestPrincipals: ["https://idp.example/banned"] } }]',
          '    when:',
          '    - { key: "request.auth.claims[groups]", values: [readers] }',
          '    - { key: request.auth.principal, values: ["https://idp.example/*"] }',
          '    - { key: request.auth.audiences, values: [reviews-api] }',
        ]),
      },
    ]);
    assert.deepEqual(config.authorizationPolicies, [
      {
        name: 'need-jwt',
        service: 'reviews',
        action: 'ALLOW',
        rules: [
          {
            from: [{ requestPrincipals: ['*'], notRequestPrincipals: ['https://idp.example/banned'] }],
            when: [
              { key: 'request.auth.claims[groups]', values: ['readers'] },
              { key: 'request.auth.principal', values: ['https://idp.example/*'] },
              { key: 'request.auth.audiences', values: ['reviews-api'] },
            ],
          },
        ],
      },
    ]);
  });

  it('reports what the jwt plugin cannot do at its file, line and column', () => {
    const file = 'ra-unsupported.yaml';
    const text = doc([
      'apiVersion: security.istio.io/v1', // 1
      'kind: RequestAuthentication', // 2
      'metadata: { name: gw }', // 3
      'spec:', // 4
      '  targetRef: { kind: Gateway, group: gateway.networking.k8s.io, name: ingress }', // 5
      '  jwtRules: [{ issuer: a, jwksUri: "https://a/jwks" }]', // 6
      '---', // 7
      'apiVersion: security.istio.io/v1', // 8
      'kind: RequestAuthentication', // 9
      'metadata: { name: reviews }', // 10
      'spec:', // 11
      '  selector: { matchLabels: { app: reviews } }', // 12
      '  jwtRules:', // 13
      '  - issuer: discovered', // 14
      '  - issuer: b', // 15
      '    jwksUri: https://b/jwks', // 16
      '    timeout: 10s', // 17
      '    outputClaimToHeaders: [{ header: x-a, claim: a.b }]', // 18
      '  - issuer: c', // 19
      '    jwksUri: https://c/jwks', // 20
      '    forwardOriginalToken: true', // 21
      '  - issuer: b', // 22
      '    jwksUri: https://b2/jwks', // 23
      '---', // 24
      'apiVersion: security.istio.io/v1', // 25
      'kind: AuthorizationPolicy', // 26
      'metadata: { name: ips }', // 27
      'spec:', // 28
      '  rules: [{ from: [{ source: { ipBlocks: [10.0.0.0/8] } }] }]', // 29
    ]);
    const { checked } = convert([
      { file: 'se.yaml', text: entry },
      { file, text },
    ]);
    assert.equal(checked.ok, false);
    const issues = (checked.ok ? [] : checked.issues).filter((i) => i.file === file);
    assert.ok(
      issues.every((i) => i.code === 'unsupported'),
      issues.map(formatIssue).join('\n'),
    );
    assert.deepEqual(
      issues.map((i) => [i.line, i.column, i.path]).sort((a, b) => (a[0] as number) - (b[0] as number)),
      [
        [5, 3, 'istio:RequestAuthentication/default/gw spec.targetRef'],
        [14, 5, 'istio:RequestAuthentication/default/reviews spec.jwtRules[0]'],
        [17, 5, 'istio:RequestAuthentication/default/reviews spec.jwtRules[1].timeout'],
        [18, 43, 'istio:RequestAuthentication/default/reviews spec.jwtRules[1].outputClaimToHeaders[0].claim'],
        [21, 5, 'istio:RequestAuthentication/default/reviews spec.jwtRules[2].forwardOriginalToken'],
        [22, 5, 'istio:RequestAuthentication/default/reviews spec.jwtRules[3].issuer'],
        [29, 32, 'istio:AuthorizationPolicy/default/ips spec.rules[0].from[0].source.ipBlocks'],
      ],
    );
  });
});
