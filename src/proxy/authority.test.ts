import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isValidAuthority, splitAbsoluteForm } from './authority.ts';

describe('isValidAuthority (RFC 9112 §3.2, RFC 3986 §3.2.2)', () => {
  const valid = [
    '',
    'a.example',
    'A.Example:8080',
    'localhost:',
    '127.0.0.1:80',
    '[::1]',
    '[::1]:8443',
    '[2001:db8::7]',
    '[::ffff:192.0.2.1]:1',
    '[v1.fe80::a+en1]',
    'xn--bcher-kva.example',
    'caf%C3%A9.example',
    "a-b_c~d!$&'()*+,;=",
    'example.com.',
  ];
  const invalid = [
    'a b',
    'a/b',
    'a\\b',
    'user@a.example',
    'a.example:80:80',
    'a.example:8o',
    ':80',
    'a%2',
    'a%zz',
    'a\tb',
    'a"b',
    'a<b>',
    'a{b}',
    'caf\u00e9.example',
    '[::1',
    '::1',
    '[::1]x',
    '[::1]:x',
    '[fe80::1%eth0]',
    '[not-an-ip]',
    '[v.x]',
    '[vz.x]',
    'a.example?x',
    'a.example#x',
  ];
  for (const v of valid) it(`accepts ${JSON.stringify(v)}`, () => assert.equal(isValidAuthority(v), true));
  for (const v of invalid) it(`refuses ${JSON.stringify(v)}`, () => assert.equal(isValidAuthority(v), false));
});

describe('splitAbsoluteForm (RFC 9112 §3.2.2)', () => {
  it('splits http and https URIs, keeping the path as sent', () => {
    assert.deepEqual(splitAbsoluteForm('http://a.example/x//y/%2e?q=1'), {
      authority: 'a.example',
      target: '/x//y/%2e?q=1',
    });
    assert.deepEqual(splitAbsoluteForm('HTTPS://a.example:8443'), { authority: 'a.example:8443', target: '/' });
    assert.deepEqual(splitAbsoluteForm('http://[::1]:80?q'), { authority: '[::1]:80', target: '/?q' });
  });
  it('refuses other schemes, userinfo, an empty or malformed authority', () => {
    for (const t of [
      'ftp://a.example/',
      'ws://a.example/',
      'http:/a.example/',
      'http://user:pw@a.example/',
      'http:///x',
      'http://:80/x',
      'http://a b/x',
      'a.example/x',
      '*',
    ])
      assert.equal(splitAbsoluteForm(t), null, t);
  });
});
