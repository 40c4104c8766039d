/**
 * The evaluation order and its corners, on request attributes given directly (the e2e test covers
 * the same engine over real mutual TLS): empty rules, `rules: [{}]`, negations without an identity,
 * routes over several services, dry-run shadows.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { AuthorizationPolicyConfig } from '../../api/authorization.ts';
import type { StreamContext } from '../context.ts';
import { compilePolicy, evaluate, routeAuthz } from './engine.ts';

function request(
  o: { principal?: string; method?: string; path?: string; claims?: Record<string, unknown> } = {},
): StreamContext {
  return {
    peerPrincipal: o.principal,
    method: o.method ?? 'GET',
    path: o.path ?? '/',
    host: 'svc',
    clientAddress: '127.0.0.1',
    claims: o.claims ?? null,
    req: { socket: { localPort: 8080, remoteAddress: '127.0.0.1' } },
    header: () => undefined,
  } as unknown as StreamContext;
}

const WEB = 'spiffe://td/ns/default/sa/web';
const JOBS = 'spiffe://td/ns/batch/sa/jobs';

function decide(policies: AuthorizationPolicyConfig[], services: string[], req: StreamContext) {
  const authz = routeAuthz(policies.map(compilePolicy), services);
  if (authz === null) return { denied: false, decisions: [] as string[], filter: false };
  const out = evaluate(authz, req);
  return { denied: out.denied, decisions: out.decisions.map((d) => `${d.policy}:${d.result}`), filter: true };
}

test('no policy for the route: no filter at all', () => {
  assert.equal(decide([{ name: 'p', service: 'a', rules: [{}] }], ['b'], request()).filter, false);
  assert.equal(decide([], [], request()).filter, false);
});

test('ALLOW with no rules refuses everything; rules: [{}] allows everything', () => {
  assert.deepEqual(decide([{ name: 'nothing', service: 'a' }], ['a'], request({ principal: WEB })), {
    denied: true,
    decisions: ['nothing:deny'],
    filter: true,
  });
  assert.equal(decide([{ name: 'all', service: 'a', rules: [{}] }], ['a'], request()).denied, false);
  // A DENY without rules denies nothing.
  assert.equal(decide([{ name: 'd', action: 'DENY' }], ['a'], request()).denied, false);
});

test('DENY wins over ALLOW; one matching ALLOW of several is enough', () => {
  const policies: AuthorizationPolicyConfig[] = [
    { name: 'web', service: 'a', rules: [{ from: [{ services: ['web'] }] }] },
    { name: 'batch', service: 'a', rules: [{ from: [{ namespaces: ['batch'] }] }] },
    { name: 'no-posts', service: 'a', action: 'DENY', rules: [{ to: [{ methods: ['POST'] }] }] },
  ];
  assert.deepEqual(decide(policies, ['a'], request({ principal: JOBS })).decisions, ['batch:allow']);
  assert.deepEqual(decide(policies, ['a'], request({ principal: WEB, method: 'POST' })), {
    denied: true,
    decisions: ['no-posts:deny'],
    filter: true,
  });
  assert.deepEqual(decide(policies, ['a'], request()).decisions, ['web:deny', 'batch:deny']);
});

test('an anonymous caller is none of the notPrincipals (as in Istio): a DENY on them refuses it', () => {
  const deny: AuthorizationPolicyConfig[] = [
    { name: 'not-web', service: 'a', action: 'DENY', rules: [{ from: [{ notPrincipals: [WEB] }] }] },
  ];
  assert.equal(decide(deny, ['a'], request({ principal: JOBS })).denied, true);
  assert.equal(decide(deny, ['a'], request({ principal: WEB })).denied, false);
  assert.equal(decide(deny, ['a'], request()).denied, true);
});

test('a route over two services must satisfy the ALLOW policies of each; mesh-wide ones count for both', () => {
  const policies: AuthorizationPolicyConfig[] = [
    { name: 'a-web', service: 'a', rules: [{ from: [{ services: ['web'] }] }] },
    { name: 'b-jobs', service: 'b', rules: [{ from: [{ services: ['jobs'] }] }] },
  ];
  assert.equal(decide(policies, ['a', 'b'], request({ principal: WEB })).denied, true);
  assert.equal(decide(policies, ['a'], request({ principal: WEB })).denied, false);
  const meshWide: AuthorizationPolicyConfig[] = [
    ...policies,
    { name: 'ops', rules: [{ from: [{ principals: ['td/ns/ops/sa/*'] }] }] },
  ];
  const ops = request({ principal: 'spiffe://td/ns/ops/sa/admin' });
  assert.deepEqual(decide(meshWide, ['a', 'b'], ops), { denied: false, decisions: ['ops:allow'], filter: true });
});

test('dry run: never enforced; would-be denials and allows recorded; AUDIT only recorded', () => {
  const policies: AuthorizationPolicyConfig[] = [
    { name: 'web-only', service: 'a', dryRun: true, rules: [{ from: [{ services: ['web'] }] }] },
    { name: 'no-delete', service: 'a', action: 'DENY', dryRun: true, rules: [{ to: [{ methods: ['DELETE'] }] }] },
    { name: 'audit-admin', action: 'AUDIT', rules: [{ to: [{ paths: ['/admin/*'] }] }] },
  ];
  assert.deepEqual(decide(policies, ['a'], request({ principal: JOBS, method: 'DELETE', path: '/admin/x' })), {
    denied: false,
    decisions: ['web-only:dry-run-deny', 'no-delete:dry-run-deny', 'audit-admin:audit'],
    filter: true,
  });
  assert.deepEqual(decide(policies, ['a'], request({ principal: WEB })).decisions, ['web-only:dry-run-allow']);
  // An enforced ALLOW beside a dry-run one: the dry-run one would refuse only what neither allows.
  const both: AuthorizationPolicyConfig[] = [
    { name: 'jobs', service: 'a', rules: [{ from: [{ services: ['jobs'] }] }] },
    { name: 'web-soon', service: 'a', dryRun: true, rules: [{ from: [{ services: ['web'] }] }] },
  ];
  assert.deepEqual(decide(both, ['a'], request({ principal: JOBS })), {
    denied: false,
    decisions: ['jobs:allow'],
    filter: true,
  });
  assert.deepEqual(decide(both, ['a'], request({ principal: WEB })), {
    denied: true,
    decisions: ['jobs:deny', 'web-soon:dry-run-allow'],
    filter: true,
  });
  assert.deepEqual(decide(both, ['a'], request()).decisions, ['jobs:deny', 'web-soon:dry-run-deny']);
});

test('requestPrincipals match iss/sub of the verified token; * needs a token; notRequestPrincipals hold without one', () => {
  const token = { claims: { iss: 'https://idp.example', sub: 'alice' } };
  const anyToken: AuthorizationPolicyConfig[] = [{ name: 'jwt', rules: [{ from: [{ requestPrincipals: ['*'] }] }] }];
  assert.equal(decide(anyToken, ['a'], request()).denied, true, 'no token: no request principal');
  assert.equal(decide(anyToken, ['a'], request(token)).denied, false);
  assert.equal(
    decide(anyToken, ['a'], request({ claims: { iss: 'https://idp.example' } })).denied,
    true,
    'a token without sub has no principal',
  );
  const alice: AuthorizationPolicyConfig[] = [
    { name: 'alice', rules: [{ from: [{ requestPrincipals: ['https://idp.example/alice'] }] }] },
  ];
  assert.equal(decide(alice, ['a'], request(token)).denied, false);
  assert.equal(decide(alice, ['a'], request({ claims: { iss: 'https://idp.example', sub: 'bob' } })).denied, true);
  const issuer: AuthorizationPolicyConfig[] = [
    { name: 'idp', rules: [{ from: [{ requestPrincipals: ['https://idp.example/*'] }] }] },
  ];
  assert.equal(decide(issuer, ['a'], request(token)).denied, false);
  // Istio's "require a token": DENY notRequestPrincipals ["*"].
  const requireToken: AuthorizationPolicyConfig[] = [
    { name: 'need-jwt', action: 'DENY', rules: [{ from: [{ notRequestPrincipals: ['*'] }] }] },
  ];
  assert.equal(decide(requireToken, ['a'], request()).denied, true);
  assert.equal(decide(requireToken, ['a'], request(token)).denied, false);
  // The same through when keys.
  const when: AuthorizationPolicyConfig[] = [
    {
      name: 'when',
      rules: [
        {
          when: [
            { key: 'request.auth.principal', values: ['https://idp.example/alice'] },
            { key: 'request.auth.audiences', values: ['api'] },
            { key: 'request.auth.presenter', values: ['web'] },
          ],
        },
      ],
    },
  ];
  const full = { claims: { ...token.claims, aud: ['other', 'api'], azp: 'web' } };
  assert.equal(decide(when, ['a'], request(full)).denied, false);
  assert.equal(decide(when, ['a'], request({ claims: { ...full.claims, azp: 'cli' } })).denied, true);
  assert.equal(decide(when, ['a'], request()).denied, true);
});
