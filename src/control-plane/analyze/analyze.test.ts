/**
 * `analyze` finds each seeded mistake with its code and place. Configs are lists of lines so every
 * expected position can be read off (`at(lines, token)` finds line and column of a token).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { at } from '../../../test/helpers/text.ts';
import type { Instance } from '../../api/mesh.ts';
import { ANALYZER_CODES, analyze, type Finding } from './analyze.ts';

function run(lines: string[], instances?: Instance[]): Finding[] {
  return analyze({ texts: [{ file: 'mesh.yaml', text: lines.join('\n') + '\n' }], instances, env: {} });
}

const brief = (f: Finding) => `${f.code} ${f.severity} ${f.line}:${f.column} ${f.path}`;

/** One of each mistake (test/fixtures/analyze-seeded.yaml, also used by the CLI test). */
const SEEDED = readFileSync(new URL('../../../test/fixtures/analyze-seeded.yaml', import.meta.url), 'utf8')
  .trimEnd()
  .split('\n');

describe('analyze', () => {
  it('finds every seeded mistake, each with its code, severity and place', () => {
    const L = SEEDED;
    const findings = run(L);
    assert.deepEqual(findings.map(brief), [
      `MGA012 warning ${at(L, 'http://127.0.0.1:8081', 2)} services[0].endpoints[2].url`,
      `MGA003 error ${at(L, '{ version: v2 }')} services[0].subsets.v2`,
      `MGA007 warning ${at(L, '{ attempts: 3 }')} services[0].retries`,
      `MGA009 warning ${at(L, '{ consecutiveErrors')} services[1].outlierDetection`,
      `MGA006 warning ${at(L, '{ path: /api/v1/properties/*, headers')} routes[1].match`,
      `MGA004 error ${at(L, '- { service: photo-service, subset: v1')} routes[2].destinations`,
      `MGA005 warning ${at(L, '{ path: /photos/* }', 2)} routes[3].match`,
      `MGA014 error ${at(L, 'pubic')} routes[4].listeners[0]`,
      `MGA001 error ${at(L, 'billing-service')} routes[4].service`,
      `MGA011 warning ${at(L, 'photo-servce')} routes[5].match.hosts[0]`,
    ]);
    const byCode = Object.fromEntries(findings.map((f) => [f.code, f]));
    assert.match(byCode.MGA001!.message, /unknown service "billing-service"/);
    assert.match(
      byCode.MGA003!.message,
      /subset "v2" of "photo-service" \(version=v2\) matches none of its 3 instances, and a route sends traffic to it/,
    );
    assert.match(byCode.MGA003!.fix, /instances have: version=v1/);
    assert.match(byCode.MGA004!.message, /weights sum to 90, not 100/);
    assert.match(byCode.MGA005!.message, /"photos-again" is never matched: "photos" \(mesh\.yaml:24\) comes first/);
    assert.match(byCode.MGA005!.fix, /declare "photos-again" before "photos"/);
    assert.match(
      byCode.MGA006!.message,
      /"property-canary" never sees GET, POST, PUT, DELETE requests: "property-api"/,
    );
    assert.match(byCode.MGA007!.fix, /perTryTimeout, e\.g\. 7\.5s|perTryTimeout, e\.g\. 7500ms/);
    assert.match(byCode.MGA011!.message, /"photo-servce" is not a service/);
    assert.equal(byCode.MGA011!.fix, 'write "photo-service"');
    assert.match(byCode.MGA014!.fix, /did you mean "public"/);
    for (const f of findings) {
      assert.equal(f.file, 'mesh.yaml');
      assert.ok(f.fix.length > 0, `${f.code} has a fix`);
      assert.equal(f.severity === 'error' || f.severity === 'warning' || f.severity === 'info', true);
    }
  });

  it('a clean config has no findings', () => {
    const findings = run([
      'services:',
      '  - name: s',
      '    endpoints: [{ url: http://127.0.0.1:1, labels: { version: v1 } }, { url: http://127.0.0.1:2, labels: { version: v2 } }]',
      '    subsets: { v1: { version: v1 }, v2: { version: v2 } }',
      'routes:',
      '  - { name: canary, match: { path: /a/*, headers: { canary: "true" } }, destinations: [{ service: s, subset: v2 }] }',
      '  - { name: a, match: { path: /a/*, methods: [GET] }, service: s }',
      '  - { name: exact, match: { path: /a/b }, service: s }',
      '  - { name: deeper, match: { path: /a/b/* }, service: s }',
      '  - { name: other-host, match: { hosts: [x.example.com], path: /a/* }, service: s }',
    ]);
    assert.deepEqual(findings.map(brief), []);
  });

  it('precedence: a more specific route winning is not shadowing; a same-weight earlier one is', () => {
    const L = [
      'routes:',
      '  - { name: get-only, match: { path: /x, methods: [GET] }, directResponse: { status: 200 } }',
      '  - { name: any-method, match: { path: /x }, directResponse: { status: 200 } }',
      '  - { name: by-header, match: { path: /y, headers: { v: { prefix: "a" } } }, directResponse: { status: 200 } }',
      '  - { name: by-header-exact, match: { path: /y, headers: { v: "abc" } }, directResponse: { status: 200 } }',
      '  - { name: get-post, match: { path: /z, methods: [GET, POST] }, directResponse: { status: 200 } }',
      '  - { name: post, match: { path: /z, methods: [POST] }, directResponse: { status: 200 } }',
      '  - { name: param-a, match: { path: "/u/:id" }, directResponse: { status: 200 } }',
      '  - { name: param-b, match: { path: "/u/:name" }, directResponse: { status: 200 } }',
      '  - { name: on-public, listeners: [public], match: { path: /p }, directResponse: { status: 200 } }',
      '  - { name: on-all, match: { path: /p }, directResponse: { status: 200 } }',
      'listeners: [{ name: public, port: 1 }]',
    ];
    assert.deepEqual(
      run(L).map((f) => `${f.code} ${f.path}`),
      ['MGA005 routes[3].match', 'MGA005 routes[5].match', 'MGA005 routes[7].match'],
    );
  });

  it('with the registry: subsets and outlier detection are judged against live instances', () => {
    const t = 1_700_000_000_000;
    const inst = (id: string, service: string, labels: Record<string, string>, health = 'healthy') =>
      ({
        id,
        service,
        address: '127.0.0.1',
        port: 1,
        labels,
        health,
        ttlMs: 3000,
        registeredAt: t,
        lastHeartbeatAt: t,
      }) as Instance;
    const L = [
      'services:',
      '  - name: photo-service',
      '    endpoints: []',
      '    subsets: { v1: { version: v1 }, v2: { version: v2 } }',
      '    outlierDetection: { consecutiveErrors: 5 }',
      '  - name: empty-service',
      '    endpoints: []',
      'routes:',
      '  - name: photos',
      '    destinations:',
      '      - { service: photo-service, subset: v1, weight: 50 }',
      '      - { service: photo-service, subset: v2, weight: 50 }',
      '  - { name: empty, match: { path: /e }, service: empty-service }',
    ];
    const registry = [
      inst('p1', 'photo-service', { version: 'v1' }),
      inst('p2', 'photo-service', { version: 'v2' }, 'unhealthy'),
      inst('p3', 'photo-service', { version: 'v3' }),
    ];
    const found = run(L, registry);
    assert.deepEqual(found.map(brief), [
      `MGA013 warning ${at(L, 'photo-service')} services[0].name`,
      `MGA003 error ${at(L, '{ version: v2 }')} services[0].subsets.v2`,
      `MGA010 error ${at(L, 'empty-service', 2)} routes[1].service`,
    ]);
    assert.match(
      found[0]!.message,
      /instance p3 of "photo-service" \(version=v3\) matches none of the subsets routes use \(v1, v2\)/,
    );
    // From the file alone, nothing can be said of instances: a note, not an error.
    assert.deepEqual(
      run(L).map((f) => `${f.code} ${f.severity}`),
      ['MGA010 info', 'MGA010 info', 'MGA010 info'],
    );
    const single = [
      inst('p1', 'photo-service', { version: 'v1' }),
      inst('p2', 'photo-service', { version: 'v2' }),
    ].slice(0, 1);
    assert.ok(
      run(L, single).some((f) => f.code === 'MGA009'),
      'outlier detection with one healthy instance',
    );
  });

  it('retries whose tries cannot fit in the request timeout', () => {
    const L = [
      'services:',
      '  - name: s',
      '    endpoints: [{ url: http://127.0.0.1:1 }, { url: http://127.0.0.1:2 }]',
      '    timeouts: { request: 2s }',
      '    retries: { attempts: 3, perTryTimeout: 1s }',
    ];
    const found = run(L);
    assert.deepEqual(found.map(brief), [`MGA008 warning ${at(L, '1s }')} services[0].retries.perTryTimeout`]);
    assert.match(found[0]!.message, /4 tries of 1s need 4000 ms, more than the request timeout of 2000 ms/);
    assert.match(found[0]!.fix, /500ms/);
  });

  it('a syntax error is one MGA000 at its place; files of a directory are located in their own file', () => {
    const broken = analyze({ texts: [{ file: 'a.yaml', text: 'routes: [\n' }], env: {} });
    assert.equal(broken.length, 1);
    assert.equal(broken[0]!.code, 'MGA000');
    const split = analyze({
      texts: [
        { file: 'services.yaml', text: 'services:\n  - name: s\n    endpoints: [{ url: http://127.0.0.1:1 }]\n' },
        { file: 'routes.yaml', text: 'routes:\n  - name: r\n    service: t\n' },
      ],
      env: {},
    });
    assert.deepEqual(
      split.map((f) => `${f.code} ${f.file}:${f.line}:${f.column} ${f.path}`),
      ['MGA001 routes.yaml:3:14 routes[0].service'],
    );
  });

  it('every code has a severity and a title', () => {
    for (const [code, meta] of Object.entries(ANALYZER_CODES)) {
      assert.match(code, /^MGA\d{3}$/);
      assert.ok(meta.title.length > 10);
    }
  });

  it('a mesh model is held to the mesh naming rules; a gateway file is not', () => {
    const text = [
      'services: [{ name: photo_service, endpoints: [{ url: http://127.0.0.1:9 }] }]',
      'routes: [{ name: r, service: photo_service }]',
      '',
    ].join('\n');
    const texts = [{ file: 'mesh.yaml', text }];
    const asMesh = analyze({ texts, env: {}, mesh: true });
    assert.deepEqual(
      asMesh.map((f) => `${f.code} ${f.line}:${f.column} ${f.path}`),
      ['MGA000 1:20 services[0].name'],
    );
    assert.match(asMesh[0]!.message, /cannot be a host name/);
    assert.deepEqual(analyze({ texts, env: {} }), []);
  });
});
