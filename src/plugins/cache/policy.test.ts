import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  freshness,
  keyPrefixOf,
  noneMatch,
  normaliseFieldValue,
  normaliseQuery,
  requestDirectives,
  responseDirectives,
  varyNames,
} from './policy.ts';

const now = 1_800_000_000_000;
const base = { expires: undefined, date: undefined, age: undefined, hasValidator: false, now };
const limits = { defaultTtlMs: 60_000, maxTtlMs: Number.POSITIVE_INFINITY, defaultStaleMs: 0 };

describe('cache policy', () => {
  it('reads response directives, case and quotes aside, s-maxage over max-age', () => {
    assert.deepEqual(responseDirectives('Public, MAX-AGE="30", stale-while-revalidate=5'), {
      noStore: false,
      noCache: false,
      mustRevalidate: false,
      maxAge: 30,
      staleWhileRevalidate: 5,
    });
    const shared = responseDirectives('max-age=300, s-maxage=10');
    assert.equal(shared.maxAge, 10);
    assert.equal(shared.mustRevalidate, true, 's-maxage implies proxy-revalidate');
    assert.equal(responseDirectives('no-cache="set-cookie"').noCache, true);
    assert.equal(responseDirectives('private').noCache, true);
    assert.equal(responseDirectives('max-age=abc').maxAge, -1, 'an invalid delta is ignored');
    assert.deepEqual(requestDirectives('no-cache, max-age=0'), { noStore: false, noCache: true, maxAge: 0 });
  });

  it('works out freshness from max-age, Expires less Date, or the ttl, less the Age it came with', () => {
    const cc = (v?: string) => responseDirectives(v);
    assert.equal(freshness({ ...base, ...limits, cacheControl: cc('max-age=10') })?.expiresAt, now + 10_000);
    assert.equal(freshness({ ...base, ...limits, cacheControl: cc() })?.expiresAt, now + 60_000);
    const expires = freshness({
      ...base,
      ...limits,
      cacheControl: cc(),
      date: new Date(now - 5_000).toUTCString(),
      expires: new Date(now + 15_000).toUTCString(),
    });
    assert.equal(expires?.expiresAt, now + 20_000, 'Expires less Date is the lifetime, counted from now');
    const aged = freshness({ ...base, ...limits, cacheControl: cc('max-age=60'), age: '20' });
    assert.equal(aged?.storedAt, now - 20_000);
    assert.equal(aged?.expiresAt, now + 40_000);
    assert.equal(freshness({ ...base, ...limits, cacheControl: cc('max-age=60'), age: '60' }), null);
    assert.equal(freshness({ ...base, ...limits, cacheControl: cc(), expires: '0' }), null);
    assert.equal(
      freshness({ ...base, ...limits, maxTtlMs: 5_000, cacheControl: cc('max-age=60') })?.expiresAt,
      now + 5_000,
    );
  });

  it('keeps an entry for stale serving and, with a validator, for revalidation', () => {
    const cc = responseDirectives('max-age=10, stale-while-revalidate=30');
    assert.deepEqual(freshness({ ...base, ...limits, cacheControl: cc }), {
      storedAt: now,
      expiresAt: now + 10_000,
      staleUntil: now + 40_000,
      keepUntil: now + 40_000,
    });
    const must = freshness({
      ...base,
      ...limits,
      hasValidator: true,
      cacheControl: responseDirectives('max-age=100, must-revalidate, stale-while-revalidate=30'),
    });
    assert.equal(must?.staleUntil, now + 100_000);
    assert.equal(must?.keepUntil, now + 200_000);
  });

  it('normalises the query, header values and Vary', () => {
    assert.equal(normaliseQuery(''), '');
    assert.equal(normaliseQuery('b=2&a=1&&c'), 'a=1&b=2&c');
    assert.equal(normaliseQuery('x=2&a=1&x=1'), 'a=1&x=2&x=1');
    assert.equal(normaliseFieldValue(' en-GB ,  EN '), 'en-gb,en');
    assert.equal(normaliseFieldValue(undefined), '');
    assert.deepEqual(varyNames('Accept-Language, accept-encoding, ACCEPT-language'), [
      'accept-encoding',
      'accept-language',
    ]);
    assert.equal(varyNames('accept, *'), null);
    assert.equal(keyPrefixOf('/a', 'y=1&x=2', 'Example.COM'), '/a\u0000x=2&y=1\u0000example.com\u0000');
    assert.equal(keyPrefixOf('/a/'), '/a/');
  });

  it('compares entity tags weakly', () => {
    assert.ok(noneMatch('"a"', '"a"'));
    assert.ok(noneMatch('W/"a"', '"a"'));
    assert.ok(noneMatch('"b", W/"a"', 'W/"a"'));
    assert.ok(noneMatch('*', '"z"'));
    assert.ok(!noneMatch('"b"', '"a"'));
    assert.ok(!noneMatch('"a"', '"ab"'));
  });
});
