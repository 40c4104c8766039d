import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  Authenticator,
  mayActAs,
  mayRegister,
  parseJoinTokens,
  parseOperatorTokens,
  TokenFileError,
} from './tokens.ts';

const A = 'a'.repeat(32);
const B = 'b'.repeat(32);
const C = 'c'.repeat(32);
const bearer = (t: string) => ({ headers: { authorization: `Bearer ${t}` } });

describe('control plane tokens', () => {
  it('parses scopes, namespaces and comments, and names the line of a mistake without the token', () => {
    const scopes = parseJoinTokens(`# x\nmesh ${A}\nservice photo ${B} namespace=prod\ngateway edge ${C}\n`, 'join');
    assert.deepEqual(
      [...scopes],
      [
        { kind: 'join', scope: 'mesh', namespace: 'default' },
        { kind: 'join', scope: 'service', name: 'photo', namespace: 'prod' },
        { kind: 'join', scope: 'gateway', name: 'edge', namespace: 'default' },
      ],
    );
    assert.deepEqual(scopes.tokens, [A, B, C]);
    assert.throws(() => parseJoinTokens('service photo short', 'join'), /join:1: a token must have at least 16/);
    assert.throws(
      () => parseJoinTokens(`\nservice ${A}`, 'join'),
      (e: Error) => e instanceof TokenFileError && /join:2/.test(e.message) && !e.message.includes(A),
    );
    assert.deepEqual(parseOperatorTokens(`${A}\n\n# c\n${B}\n`, 'op'), [A, B]);
  });

  it('authenticates by token and scope; no tokens is open', () => {
    const join = parseJoinTokens(`service photo ${A}\n`, 'join');
    const auth = new Authenticator({ join: { scopes: join, tokens: join.tokens }, operator: [B] });
    assert.equal(auth.open, false);
    assert.deepEqual(auth.authenticate(bearer(A)), {
      kind: 'join',
      scope: 'service',
      name: 'photo',
      namespace: 'default',
    });
    assert.deepEqual(auth.authenticate(bearer(B)), { kind: 'operator' });
    assert.equal(auth.authenticate(bearer(C)), undefined);
    assert.equal(auth.authenticate({ headers: {} }), undefined);
    assert.equal(auth.authenticate({ headers: { authorization: `Basic ${A}` } }), undefined);
    assert.deepEqual(new Authenticator({}).authenticate({ headers: {} }), { kind: 'open' });

    const photo = auth.authenticate(bearer(A))!;
    assert.equal(mayActAs(photo, { kind: 'sidecar', service: 'photo' }), true);
    assert.equal(mayActAs(photo, { kind: 'sidecar', service: 'search' }), false);
    assert.equal(mayActAs(photo, { kind: 'gateway' }), false);
    assert.equal(mayRegister(photo, 'photo'), true);
    assert.equal(mayRegister(photo, 'search'), false);
    const svid = { kind: 'svid', namespace: 'default', serviceAccount: 'gateway' } as const;
    assert.equal(mayActAs(svid, { kind: 'gateway' }), true);
    assert.equal(mayRegister(svid, 'gateway'), false);
  });
});
