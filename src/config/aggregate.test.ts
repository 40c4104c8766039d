/**
 * Config mistakes in aggregate routes as the user sees them (`line:col: path: message (hint)`), from
 * real files loaded the way the CLI loads them, and the valid form being accepted.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { formatIssue } from './issues.ts';
import { loadConfigFile } from './load.ts';

let dir: string;
let written = 0;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'meshgate-aggregate-'));
});
after(() => rm(dir, { recursive: true, force: true }));

const SERVICES = [
  'services:',
  '  - { name: property-service, endpoints: [{ url: http://127.0.0.1:8081 }] }',
  '  - { name: photo-service, endpoints: [{ url: http://127.0.0.1:8082 }], subsets: { v2: { version: v2 } } }',
  '  - { name: valuation-service, endpoints: [{ url: http://127.0.0.1:8083 }] }',
  'routes:',
  '  - name: property-full',
  '    match: { path: /api/v2/properties/:id/full, methods: [GET] }',
  '    aggregate:',
];

async function load(lines: string[]) {
  const file = join(dir, `config-${++written}.yaml`);
  await writeFile(file, `${[...SERVICES, ...lines].join('\n')}\n`);
  return { file, result: await loadConfigFile(file, {}) };
}

async function problems(lines: string[]): Promise<string[]> {
  const { file, result } = await load(lines);
  assert.equal(result.ok, false, 'expected the config to be rejected');
  if (result.ok) return [];
  return result.issues.map((issue) => formatIssue(issue).slice(file.length + 1));
}

describe('aggregate config', () => {
  test('the example of docs/aggregation.md is accepted', async () => {
    const { result } = await load([
      '      calls:',
      '        - { name: property, service: property-service, path: /properties/$(params.id), required: true, timeout: 2s }',
      '        - { name: photos, service: photo-service, subset: v2, path: "/photos?property=$(params.id)", timeout: 1s }',
      '        - name: valuation',
      '          service: valuation-service',
      '          path: /valuations/$(results.property.postcode)',
      '          dependsOn: [property]',
      '          headers: [authorization]',
      '      merge: keyed',
    ]);
    if (!result.ok) assert.fail(result.issues.map(formatIssue).join('\n'));
  });

  test('an unknown service, with where it is and a suggestion', async () => {
    assert.deepEqual(
      await problems(['      calls:', '        - { name: property, service: property-servce, path: /p }']),
      [
        '10:38: routes[0].aggregate.calls[0].service: unknown service "property-servce" (did you mean "property-service"?)',
      ],
    );
  });

  test('an unknown subset', async () => {
    const found = await problems([
      '      calls:',
      '        - { name: photos, service: photo-service, subset: v3, path: /p }',
    ]);
    assert.equal(found.length, 1);
    assert.match(
      found[0]!,
      /^10:\d+: routes\[0\]\.aggregate\.calls\[0\]\.subset: service "photo-service" has no subset "v3"/,
    );
  });

  test('a dependsOn cycle, and dependsOn naming no call', async () => {
    assert.deepEqual(
      await problems([
        '      calls:',
        '        - name: a',
        '          service: property-service',
        '          path: /a',
        '          dependsOn: [b]',
        '        - name: b',
        '          service: photo-service',
        '          path: /b',
        '          dependsOn: [a]',
      ]),
      [
        '13:22: routes[0].aggregate.calls[0].dependsOn: dependsOn makes a cycle: a → b → a (a call can only wait for calls that do not wait for it)',
      ],
    );
    const unknown = await problems([
      '      calls:',
      '        - { name: a, service: property-service, path: /a, dependsOn: [propety] }',
      '        - { name: property, service: property-service, path: /b }',
    ]);
    assert.equal(unknown.length, 1);
    assert.match(
      unknown[0]!,
      /^10:\d+: routes\[0\]\.aggregate\.calls\[0\]\.dependsOn\[0\]: unknown call "propety" \(did you mean "property"\?\)/,
    );
  });

  test('an unknown template root, and reading the answer of a call not depended on', async () => {
    const root = await problems([
      '      calls:',
      '        - { name: a, service: property-service, path: "/p/$(param.id)" }',
    ]);
    assert.equal(root.length, 1);
    assert.match(
      root[0]!,
      /^10:\d+: routes\[0\]\.aggregate\.calls\[0\]\.path: unknown template root "param" in "\$\(param\.id\)"; known roots: params, query, headers, consumer, claims, results/,
    );
    const notDepended = await problems([
      '      calls:',
      '        - { name: property, service: property-service, path: /p }',
      '        - { name: valuation, service: valuation-service, path: "/v/$(results.property.postcode)" }',
    ]);
    assert.deepEqual(notDepended.length, 1);
    assert.match(
      notDepended[0]!,
      /calls\[1\]\.path: .*reads the answer of "property", which this call does not depend on \(add property to dependsOn\)/,
    );
  });

  test('duplicate and reserved call names, headers that cannot be passed, forwarding-only fields', async () => {
    const found = await problems([
      '      calls:',
      '        - { name: errors, service: property-service, path: /a, headers: [Host] }',
      '        - { name: errors, service: property-service, path: /b }',
      '    retries: { attempts: 2 }',
    ]);
    assert.deepEqual(
      found.map((line) => line.replace(/^\d+:\d+: /, '')).sort(),
      [
        "routes[0].retries: retries applies to forwarding routes; this one answers with aggregate (set each call's timeout; calls retry by their service's retries policy)",
        'routes[0].aggregate.calls[0].name: "errors" is the member the proxy lists failed calls under (rename the call)',
        'routes[0].aggregate.calls[1].name: "errors" is the member the proxy lists failed calls under (rename the call)',
        'routes[0].aggregate.calls[1].name: duplicate call name "errors" (first at calls[0])',
        'routes[0].aggregate.calls[0].headers[0]: Host cannot be passed on: each call sets its own',
      ].sort(),
    );
  });

  test('one action per route', async () => {
    const found = await problems([
      '      calls:',
      '        - { name: a, service: property-service, path: /a }',
      '    service: property-service',
    ]);
    assert.ok(
      found.some((line) => /a route has one action, but this one has service and aggregate/.test(line)),
      found.join('\n'),
    );
  });
});
