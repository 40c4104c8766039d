/**
 * `analyze` on authorization policies: callers that match no service (with registered instances
 * counting as services), an ALLOW that allows everything, a DENY that matches nothing.
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { at } from '../../../test/helpers/text.ts';
import type { Instance } from '../../api/mesh.ts';
import { analyze, type Finding } from './analyze.ts';

const brief = (f: Finding) => `${f.code} ${f.severity} ${f.line}:${f.column} ${f.path}`;

const L = [
  'services:',
  '  - name: photo-service',
  '    endpoints: [{ url: "http://127.0.0.1:8081" }]',
  '  - name: frontend',
  '    endpoints: [{ url: "http://127.0.0.1:8082" }]',
  'routes:',
  '  - { name: photos, service: photo-service }',
  'authorizationPolicies:',
  '  - name: photos-callers',
  '    service: photo-service',
  '    rules:',
  '      - from:',
  '          - principals:',
  '              - spiffe://cluster.local/ns/default/sa/frontend',
  '              - cluster.local/ns/default/sa/fronted',
  '              - "cluster.local/ns/default/sa/front*"',
  '              - "*/sa/search-service"',
  '              - "*"',
  '          - services: [photo-servce, "photo-*", search-service]',
  '  - { name: open-all, rules: [{}] }',
  '  - { name: deny-nothing, service: photo-service, action: DENY }',
  '  - { name: deny-nothing-either, action: DENY, rules: [] }',
  '  - { name: deny-all, action: DENY, rules: [{}] }',
  '  - { name: allow-nothing, service: frontend, rules: [] }',
];

const SEARCH: Instance = {
  id: 'search-1',
  service: 'search-service',
  address: '127.0.0.1',
  port: 23001,
  labels: {},
  health: 'healthy',
  ttlMs: 3000,
  registeredAt: 0,
  lastHeartbeatAt: 0,
} as Instance;

it('warns on callers no service answers to, an ALLOW that allows all, a DENY that denies nothing', () => {
  const findings = analyze({ texts: [{ file: 'mesh.yaml', text: `${L.join('\n')}\n` }], env: {} });
  assert.deepEqual(findings.map(brief), [
    `MGA015 warning ${at(L, 'cluster.local/ns/default/sa/fronted')} authorizationPolicies[0].rules[0].from[0].principals[1]`,
    `MGA015 warning ${at(L, '"*/sa/search-service"')} authorizationPolicies[0].rules[0].from[0].principals[3]`,
    `MGA015 warning ${at(L, 'photo-servce')} authorizationPolicies[0].rules[0].from[1].services[0]`,
    `MGA015 warning ${at(L, 'search-service]')} authorizationPolicies[0].rules[0].from[1].services[2]`,
    `MGA016 warning ${at(L, '{}] }')} authorizationPolicies[1].rules[0]`,
    `MGA017 warning ${at(L, 'deny-nothing,')} authorizationPolicies[2].name`,
    `MGA017 warning ${at(L, '[] }', 1)} authorizationPolicies[3].rules`,
  ]);
  const [fronted, , typo] = findings;
  assert.match(fronted!.message, /principal "cluster\.local\/ns\/default\/sa\/fronted" matches no service/);
  assert.equal(fronted!.fix, 'did you mean the service "frontend"?');
  assert.equal(typo!.fix, 'did you mean "photo-service"?');
  assert.match(findings[4]!.message, /"open-all" .* allows everything to every service/);
  // A registered service is a service: with the registry, search-service callers are fine.
  const live = analyze({ texts: [{ file: 'mesh.yaml', text: `${L.join('\n')}\n` }], env: {}, instances: [SEARCH] });
  assert.equal(live.filter((f) => f.code === 'MGA015').length, 2);
});
