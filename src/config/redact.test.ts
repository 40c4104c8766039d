import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { redact, redactText } from './redact.ts';

describe('redactText', () => {
  const text = [
    'consumers:',
    '  - name: partner',
    '    credentials:',
    '      - { type: jwt, issuer: mls, secret: "hs-secret-123", algorithm: HS256 }',
    '      - { type: api-key, key: plain-key-456 }',
    '      - { type: api-key, key: "${FROM_ENV}" }',
    '  - name: block',
    '    credentials:',
    '      - type: jwt',
    '        issuer: b',
    '        secret: |',
    '          multi-line-secret',
    'routes: [{ name: r, directResponse: { status: 200, body: ok } }]',
    '',
  ].join('\n');

  it('hides every secret value and keeps lines, columns and the rest of the text', () => {
    const out = redactText(text);
    for (const secret of ['hs-secret-123', 'plain-key-456', 'multi-line-secret'])
      assert.ok(!out.includes(secret), secret);
    assert.equal(out.length, text.length);
    assert.deepEqual(
      out.split('\n').map((l) => l.length),
      text.split('\n').map((l) => l.length),
    );
    assert.ok(out.includes('${FROM_ENV}'), 'a variable reference is not a secret');
    const doc = parse(out) as { consumers: { credentials: { secret?: string; key?: string; issuer?: string }[] }[] };
    assert.equal(doc.consumers[0]!.credentials[0]!.secret, 'xxxxxxxxxxxxx');
    assert.equal(doc.consumers[0]!.credentials[0]!.issuer, 'mls');
    assert.equal(doc.consumers[1]!.credentials[0]!.secret, 'xxxxxxxxxxxxxxxxx\n');
  });
});

describe('redact', () => {
  it('hides the password of a URL, and keeps the rest of it', () => {
    const out = redact({ redis: { url: 'redis://default:s3cret@redis.internal:6379/0' }, other: 'http://a:b' }) as {
      redis: { url: string };
      other: string;
    };
    assert.equal(out.redis.url, 'redis://default:<redacted>@redis.internal:6379/0');
    assert.equal(out.other, 'http://a:b');
  });
});
