import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  addressIn,
  compileAddresses,
  compileStringMatch,
  matchString,
  normalizePrincipal,
  parseWhenKey,
  principalProblem,
  workloadOf,
} from './authz-match.ts';

test('Istio string match: exact, prefix*, *suffix, * (present only)', () => {
  const m = compileStringMatch(['/exact', '/api/*', '*/healthz']);
  assert.equal(matchString(m, '/exact'), true);
  assert.equal(matchString(m, '/exact/more'), false);
  assert.equal(matchString(m, '/api/v1/x'), true);
  assert.equal(matchString(m, '/svc/healthz'), true);
  assert.equal(matchString(m, '/other'), false);
  const any = compileStringMatch(['*']);
  assert.equal(matchString(any, ''), true);
  assert.equal(matchString(any, undefined), false);
  const hosts = compileStringMatch(['*.Example.com'], (s) => s.toLowerCase());
  assert.equal(matchString(hosts, 'a.example.com'), true);
});

test('principals: SPIFFE IDs, Istio form without the scheme, wildcards', () => {
  assert.equal(normalizePrincipal('cluster.local/ns/default/sa/web'), 'spiffe://cluster.local/ns/default/sa/web');
  assert.equal(normalizePrincipal('*/sa/web'), '*/sa/web');
  assert.equal(normalizePrincipal('spiffe://td/ns/a/sa/b'), 'spiffe://td/ns/a/sa/b');
  for (const ok of ['*', 'spiffe://td/ns/a/sa/b', 'td/ns/a/sa/*', '*/sa/web', 'spiffe://td/*'])
    assert.equal(principalProblem(ok), undefined, ok);
  for (const bad of ['a*b', 'spiffe://TD/ns/a/sa/b', 'http://x', 'td/ns//sa/b', 'td/ns/a sa'])
    assert.notEqual(principalProblem(bad), undefined, bad);
});

test('workloadOf reads namespace and service of mesh IDs only', () => {
  assert.deepEqual(workloadOf('spiffe://td/ns/shop/sa/cart'), { namespace: 'shop', service: 'cart' });
  assert.equal(workloadOf('spiffe://td/other/path'), undefined);
  assert.equal(workloadOf('spiffe://td'), undefined);
});

test('when keys', () => {
  assert.deepEqual(parseWhenKey('request.headers[X-Tenant]'), { kind: 'header', name: 'x-tenant' });
  assert.deepEqual(parseWhenKey('request.auth.claims[realm][roles]'), { kind: 'claim', path: ['realm', 'roles'] });
  assert.deepEqual(parseWhenKey('source.ip'), { kind: 'source.ip' });
  assert.ok('problem' in parseWhenKey('request.auth.claims'));
  assert.ok('problem' in parseWhenKey('request.auth.claims[a]x'));
  assert.ok('problem' in parseWhenKey('request.headers[bad header]'));
  assert.ok('problem' in parseWhenKey('connection.sni'));
});

test('addresses and CIDR blocks, IPv4-mapped IPv6 as IPv4', () => {
  const { list, problems } = compileAddresses(['10.0.0.0/8', '2001:db8::/32', '192.168.1.1']);
  assert.deepEqual(problems, []);
  assert.equal(addressIn(list, '10.1.2.3'), true);
  assert.equal(addressIn(list, '::ffff:10.1.2.3'), true);
  assert.equal(addressIn(list, '2001:db8::1'), true);
  assert.equal(addressIn(list, '192.168.1.2'), false);
  assert.equal(addressIn(list, undefined), false);
  assert.equal(compileAddresses(['nope', '10.0.0.0/40']).problems.length, 2);
});
