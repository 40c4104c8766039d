import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CompiledRewrite } from './compiled.ts';
import { type EncodedSlashPolicy, needsNormalising, normalisePath, upstreamPath } from './path.ts';

function target(rawPath: string, query = '', encodedSlashes: EncodedSlashPolicy = 'keep') {
  const path = needsNormalising(rawPath) ? normalisePath(rawPath, encodedSlashes) : rawPath;
  assert.equal(typeof path, 'string', rawPath);
  return { path: path as string, rawPath, query, listener: { encodedSlashes } };
}

function prefix(routePath: string, to: string): CompiledRewrite {
  const literal = routePath.endsWith('/*') ? routePath.slice(0, -2) : routePath;
  return {
    prefixSegments: literal.split('/').length - 1,
    prefix: to,
    regex: undefined,
    substitution: '',
    host: undefined,
    autoHost: false,
  };
}

describe('upstreamPath', () => {
  it('without a rewrite: the path and query exactly as sent', () => {
    assert.equal(upstreamPath(null, target('/a//b/./c/%7Ex', 'q=%2F')), '/a//b/./c/%7Ex?q=%2F');
    assert.equal(upstreamPath(null, target('/x/%2E%2E/y')), '/x/%2E%2E/y');
    assert.equal(upstreamPath(null, target('/files/a%2Fb', '', 'decode')), '/files/a%2Fb');
    assert.equal(upstreamPath(null, target('/plain')), '/plain');
  });

  it('a prefix rewrite keeps the rest of the path as sent when the matched segments were sent as matched', () => {
    const strip = prefix('/strip/*', '/');
    assert.equal(upstreamPath(strip, target('/strip/a//b', 'q=1')), '/a//b?q=1');
    assert.equal(upstreamPath(strip, target('/strip/a/%2e/b')), '/a/%2e/b');
    assert.equal(upstreamPath(prefix('/v1/*', '/api/v2/'), target('/v1/items//7')), '/api/v2/items//7');
    assert.equal(upstreamPath(prefix('/v1/*', '/api/v2'), target('/v1//items')), '/api/v2//items');
    assert.equal(upstreamPath(prefix('/*', '/base'), target('/a//b')), '/base/a//b');
  });

  it('falls back to the normalised path when the prefix was not sent as matched or the rest climbs into it', () => {
    const strip = prefix('/strip/*', '/');
    assert.equal(upstreamPath(strip, target('//strip/a//b')), '/a/b', 'the prefix was sent as //strip');
    assert.equal(upstreamPath(strip, target('/%73trip/a//b')), '/a/b', 'the prefix was sent encoded');
    assert.equal(upstreamPath(strip, target('/strip/x/../../strip/a')), '/a', 'the rest climbs above the prefix');
    assert.equal(upstreamPath(strip, target('/other/../strip/a')), '/a');
  });

  it('a regex rewrite applies to the normalised path', () => {
    const rw: CompiledRewrite = {
      prefixSegments: 0,
      prefix: undefined,
      regex: /^\/users\/([^/]+)\/profile$/,
      substitution: '/profiles/$1',
      host: undefined,
      autoHost: false,
    };
    assert.equal(upstreamPath(rw, target('/users//ann/./profile', 'x=1')), '/profiles/ann?x=1');
  });
});
