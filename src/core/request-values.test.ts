import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cookieValue, queryValue, withoutCookie, withoutQueryParam } from './request-values.ts';

describe('cookieValue', () => {
  it('finds a cookie by exact name', () => {
    const header = 'session=abc; canary=true;theme="dark" ;  x=1=2';
    assert.equal(cookieValue(header, 'session'), 'abc');
    assert.equal(cookieValue(header, 'canary'), 'true');
    assert.equal(cookieValue(header, 'theme'), 'dark');
    assert.equal(cookieValue(header, 'x'), '1=2');
    assert.equal(cookieValue(header, 'sess'), undefined);
    assert.equal(cookieValue(header, 'ary'), undefined);
    assert.equal(cookieValue(undefined, 'a'), undefined);
    assert.equal(cookieValue('a=', 'a'), '');
  });
});

describe('queryValue', () => {
  it('finds the first value of a parameter, decoded', () => {
    assert.equal(queryValue('a=1&b=x%20y&a=2', 'a'), '1');
    assert.equal(queryValue('a=1&b=x%20y', 'b'), 'x y');
    assert.equal(queryValue('q=a+b', 'q'), 'a b');
    assert.equal(queryValue('flag&x=1', 'flag'), '');
    assert.equal(queryValue('x%20y=1', 'x y'), '1');
    assert.equal(queryValue('a=%zz', 'a'), '%zz');
    assert.equal(queryValue('', 'a'), undefined);
    assert.equal(queryValue('ab=1', 'a'), undefined);
    assert.equal(queryValue('a=1&', 'b'), undefined);
  });
});

describe('withoutQueryParam', () => {
  it('drops every copy of the parameter and keeps the rest as sent', () => {
    assert.equal(withoutQueryParam('a=1&key=x&b=%20+&key=y', 'key'), 'a=1&b=%20+');
    assert.equal(withoutQueryParam('key=x', 'key'), '');
    assert.equal(withoutQueryParam('k%65y=x&a', 'key'), 'a', 'an encoded name is the same name');
    assert.equal(withoutQueryParam('a=1&&b=2', 'key'), 'a=1&b=2');
    assert.equal(withoutQueryParam('keyring=1', 'key'), 'keyring=1');
  });
});

describe('withoutCookie', () => {
  it('drops every cookie of that exact name and keeps the rest as sent', () => {
    assert.equal(withoutCookie('a=1; tok=x; b="2";tok=y', 'tok'), 'a=1; b="2"');
    assert.equal(withoutCookie('tokens=1; tok=x', 'tok'), 'tokens=1');
    assert.equal(withoutCookie('tok=x', 'tok'), '');
    assert.equal(withoutCookie(undefined, 'tok'), undefined);
  });
});
