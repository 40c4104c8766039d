/**
 * Mistakes in `authorizationPolicies` as the user sees them: `line:col: path: message (hint)`, from a
 * real file loaded the way the CLI loads it. `lines[i]` is line i + 1.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { formatIssue } from './issues.ts';
import { loadConfigFile, parseConfigTexts } from './load.ts';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'meshgate-authz-config-'));
});
after(() => rm(dir, { recursive: true, force: true }));

const SERVICES = [
  'services:',
  '  - name: photo-service',
  '    endpoints: [{ url: "http://127.0.0.1:8081" }]',
  'routes:',
  '  - { name: photos, service: photo-service }',
];

async function problems(lines: string[]): Promise<string[]> {
  const file = join(dir, `config-${Math.random().toString(36).slice(2)}.yaml`);
  await writeFile(file, `${lines.join('\n')}\n`);
  const result = await loadConfigFile(file, {});
  if (result.ok) return [];
  return result.issues.map((i) => formatIssue(i).slice(file.length + 1));
}

test('a valid policy set loads, in both principal forms and with every when key', async () => {
  assert.deepEqual(
    await problems([
      ...SERVICES,
      'authorizationPolicies:',
      '  - name: frontend-only',
      '    service: photo-service',
      '    rules:',
      '      - from: [{ principals: [spiffe://cluster.local/ns/default/sa/frontend, "cluster.local/ns/web/sa/*"] }]',
      '        to: [{ methods: [GET], paths: ["/photos/*"], ports: [8080, "8443"] }]',
      '        when:',
      '          - { key: "request.headers[x-tenant]", values: [acme] }',
      '          - { key: "request.auth.claims[groups]", notValues: [banned] }',
      '          - { key: source.ip, values: [10.0.0.0/8, "::1"] }',
      '          - { key: destination.port, values: ["8080"] }',
      '  - { name: no-admin, action: DENY, rules: [{ to: [{ paths: ["*/admin"] }] }], dryRun: true }',
    ]),
    [],
  );
});

test('unknown service with did-you-mean, bad principals, wildcards, when keys and values, at their positions', async () => {
  const lines = [
    ...SERVICES,
    'authorizationPolicies:',
    '  - name: p1',
    '    service: photo-servise',
    '    rules:',
    '      - from: [{ principals: ["spiffe://Bad_Domain/ns/a/sa/b", "http://x/y", "a*b"] }]',
    '        to: [{ paths: ["photos/*"] }]',
    '        when:',
    '          - { key: "request.header[x]", values: [a] }',
    '          - { key: source.ip, values: [10.0.0.0/33] }',
    '          - { key: "request.headers[x-a]" }',
    '  - name: p1',
    '    action: PERMIT',
    '    rules: [{ from: [{ principals: [] }] }]',
  ];
  const found = await problems(lines);
  assert.deepEqual(found, [
    '8:14: authorizationPolicies[0].service: unknown service "photo-servise" (did you mean "photo-service"?)',
    '10:31: authorizationPolicies[0].rules[0].from[0].principals[0]: "spiffe://Bad_Domain/ns/a/sa/b" is not a SPIFFE ID: trust domain "Bad_Domain" has characters other than a-z 0-9 . - _ (no port, user or upper case) (e.g. spiffe://cluster.local/ns/default/sa/photo-service)',
    '10:64: authorizationPolicies[0].rules[0].from[0].principals[1]: "http://x/y" is not a SPIFFE ID (spiffe://<trust-domain>/ns/<namespace>/sa/<service>) (e.g. spiffe://cluster.local/ns/default/sa/photo-service)',
    '10:78: authorizationPolicies[0].rules[0].from[0].principals[2]: "a*b": `*` may only start or end a value (prefix*, *suffix, or * alone) (e.g. spiffe://cluster.local/ns/default/sa/photo-service)',
    '11:24: authorizationPolicies[0].rules[0].to[0].paths[0]: "photos/*" can never match: request paths start with / (write "/photos/*")',
    '13:20: authorizationPolicies[0].rules[0].when[0].key: unknown key "request.header[x]" (request.headers[<name>], request.auth.claims[<claim>], request.auth.principal, request.auth.audiences, request.auth.presenter, source.principal, source.namespace, source.service, source.ip, remote.ip or destination.port)',
    '14:40: authorizationPolicies[0].rules[0].when[1].values[0]: "/33" is not a prefix length for ipv4 (e.g. 10.0.0.0/8 or 2001:db8::/32)',
    '15:13: authorizationPolicies[0].rules[0].when[2]: a condition needs values or notValues (e.g. values: ["admin"])',
    '16:11: authorizationPolicies[1].name: duplicate authorization policy name "p1" (first at authorizationPolicies[0])',
    '17:13: authorizationPolicies[1].action: "PERMIT" is not one of ALLOW, DENY, AUDIT',
    '18:36: authorizationPolicies[1].rules[0].from[0].principals: the list must not be empty',
  ]);
});

test('policies from several files are merged like routes, and each issue points into its own file', () => {
  const result = parseConfigTexts(
    [
      {
        file: 'a.yaml',
        text: `${SERVICES.join('\n')}\nauthorizationPolicies:\n  - { name: a, service: photo-service }\n`,
      },
      { file: 'b.yaml', text: 'authorizationPolicies:\n  - { name: b, service: nope }\n' },
    ],
    'dir',
    null,
  );
  assert.equal(result.ok, false);
  if (result.ok) return;
  assert.deepEqual(result.issues.map(formatIssue), [
    'b.yaml:2:25: authorizationPolicies[0].service: unknown service "nope" (name a service under services, or drop `service` for a mesh-wide policy)',
  ]);
});
