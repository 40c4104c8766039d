/**
 * Config checks of transcode routes through the config loader: a broken proto, a missing import or a
 * mapping that does not fit is a config error at the route's field, with the proto's file, line and
 * column in the message; and the template compiler on its own.
 */
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { FIXTURES } from '../../../test/helpers/valuation-grpc.ts';
import { formatIssue } from '../issues.ts';
import { loadConfigText } from '../load.ts';
import { protoSetFor } from './protos.ts';
import { compareSpecificity, decodeCapture, matchTemplate, type PathTemplate, parseTemplate } from './template.ts';

/** A config file living beside the fixtures, so `protos` are relative to it. */
const CONFIG_FILE = `${FIXTURES}gateway.yaml`;

function config(route: string[], service = 'protocol: http2'): string {
  return [
    'services:',
    `  - { name: valuation-grpc, ${service}, endpoints: [{ url: "http://127.0.0.1:50051" }] }`,
    'routes:',
    '  - name: valuation-rest',
    '    match: { path: /api/v1/* }',
    '    transcode:',
    '      service: valuation-grpc',
    ...route.map((l) => `      ${l}`),
  ].join('\n');
}

async function issues(text: string): Promise<string[]> {
  const result = await loadConfigText(text, CONFIG_FILE, {});
  return result.ok ? [] : result.issues.map(formatIssue);
}

describe('transcode config checks', () => {
  it('a valid route loads, with its proto paths made absolute', async () => {
    const result = await loadConfigText(
      config(['protos: [./valuation.proto]', 'includeDirs: [./include]', 'headers: [x-tenant]']),
      CONFIG_FILE,
      {},
    );
    assert.ok(result.ok, result.ok ? '' : result.issues.map(formatIssue).join('\n'));
    const spec = result.value.config.routes![0]!.transcode!;
    assert.deepEqual(spec.protos, [`${FIXTURES}valuation.proto`]);
    assert.deepEqual(spec.includeDirs, [`${FIXTURES}include`]);
  });

  it('the compile of a validated config takes the proto set its validation compiled, once', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'meshgate-protos-'));
    try {
      cpSync(FIXTURES, dir, { recursive: true });
      const result = await loadConfigText(
        config(['protos: [./valuation.proto]', 'includeDirs: [./include]']),
        join(dir, 'gateway.yaml'),
        {},
      );
      assert.ok(result.ok, result.ok ? '' : result.issues.map(formatIssue).join('\n'));
      const spec = result.value.config.routes![0]!.transcode!;
      // Gone from the disk: only a set compiled at validation can be had now.
      rmSync(join(dir, 'valuation.proto'));
      const taken = protoSetFor(spec);
      assert.ok(taken.ok, 'the set validation compiled');
      assert.ok(taken.value.bindings.length > 0);
      const again = protoSetFor(spec);
      assert.equal(again.ok, false, 'taken once: a second compile reads the protos again');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a proto syntax error: the route field, and the proto file, line and column', async () => {
    const found = await issues(config(['protos: [./broken/syntax.proto]']));
    assert.equal(found.length, 1, found.join('\n'));
    assert.equal(
      found[0],
      `${CONFIG_FILE}:8:16: routes[0].transcode.protos[0]: ${FIXTURES}broken/syntax.proto:7:3: illegal token 'int32', ';' expected`,
    );
  });

  it('a missing import: where it is imported, and where it was looked for', async () => {
    const found = await issues(config(['protos: [./broken/missing-import.proto]']));
    assert.equal(found.length, 1, found.join('\n'));
    assert.match(
      found[0]!,
      new RegExp(
        `^${CONFIG_FILE}:8:16: routes\\[0\\]\\.transcode\\.protos\\[0\\]: ${FIXTURES}broken/missing-import\\.proto:6:8: import "nowhere/else\\.proto" not found \\(looked in .*includeDirs\\)$`,
      ),
    );
    // Without includeDirs the valuation proto's own import is missing too.
    const withoutInclude = await issues(config(['protos: [./valuation.proto]']));
    assert.match(withoutInclude[0]!, /valuation\.proto:9:8: import "proptech\/common\/money\.proto" not found/);
  });

  it('a proto file that does not exist, and an unknown type', async () => {
    const missing = await issues(config(['protos: [./valuation.proto, ./nope.proto]', 'includeDirs: [./include]']));
    assert.match(missing[0]!, /:8:35: routes\[0\]\.transcode\.protos\[1\]: cannot read .*nope\.proto: no such file/);
    const unknown = await issues(config(['protos: [./broken/unknown-type.proto]']));
    assert.match(unknown[0]!, /unknown-type\.proto:7:3: no such Type or Enum 'Missing' in Type \.broken\.A/);
  });

  it('mappings that do not fit their method, and unknown methods', async () => {
    const bad = await issues(config(['protos: [./broken/bad-mapping.proto]']));
    assert.match(bad[0]!, /bad-mapping\.proto:12:7: broken\.S\/Get: path variable \{nope\}: A has no field "nope"/);
    const found = await issues(
      config([
        'protos: [./valuation.proto]',
        'includeDirs: [./include]',
        'methods:',
        '  - { method: proptech.v1.Valuation/Nope, http: { get: /x } }',
        '  - { method: proptech.v1.Valuation/Upload, http: { post: /y, body: "*" } }',
        '  - { method: proptech.v1.Valuation/Lookup, http: { get: "/z/{missing}" } }',
        '  - { method: proptech.v1.Valuation/Lookup, http: { get: "/valuations/{property_id}", body: nothing } }',
      ]),
    );
    const text = found.join('\n');
    assert.match(
      text,
      /:11:\d+: routes\[0\]\.transcode\.methods\[0\]\.method: service proptech\.v1\.Valuation has no method "Nope"/,
    );
    assert.match(text, /methods\[1\]\.method: proptech\.v1\.Valuation\/Upload is client-streaming/);
    // The last entry for a method wins; it names a body field that does not exist.
    assert.match(text, /methods\[3\]\.http: .*body "nothing": EstimateRequest has no field "nothing"/);
  });

  it('the service must exist and speak HTTP/2; reserved headers and forwarding fields are refused', async () => {
    const found = await issues(
      config(
        ['protos: [./valuation.proto]', 'includeDirs: [./include]', 'headers: [x-tenant, connection, grpc-timeout]'],
        'protocol: http1',
      ),
    );
    const text = found.join('\n');
    assert.match(
      text,
      /transcode\.service: service "valuation-grpc" speaks HTTP\/1\.1; gRPC needs HTTP\/2 \(set protocol: http2/,
    );
    assert.match(text, /transcode\.headers\[1\]: connection cannot be sent as metadata/);
    assert.match(text, /transcode\.headers\[2\]: grpc-timeout cannot be sent as metadata/);
    const unknown = await issues(
      config(['protos: [./valuation.proto]']).replace('service: valuation-grpc', 'service: valuaton-grpc'),
    );
    assert.match(
      unknown.join('\n'),
      /transcode\.service: unknown service "valuaton-grpc" \(did you mean "valuation-grpc"\?\)/,
    );
    const twoActions = await issues(
      `${config(['protos: [./valuation.proto]', 'includeDirs: [./include]'])}\n    service: valuation-grpc`,
    );
    assert.match(twoActions.join('\n'), /a route has one action, but this one has service and transcode/);
  });
});

describe('path templates', () => {
  const t = (s: string) => parseTemplate(s) as PathTemplate;
  const parts = (path: string) => path.slice(1).split('/');

  it('parses variables, wildcards and verbs, and refuses what the grammar does not allow', () => {
    const a = t('/v1/{name=projects/*/items/**}:undelete');
    assert.equal(a.verb, 'undelete');
    assert.deepEqual(a.variables, [{ fieldPath: ['name'], start: 1, end: -1 }]);
    assert.deepEqual(t('/v1/{a.b}/x').variables, [{ fieldPath: ['a', 'b'], start: 1, end: 2 }]);
    for (const bad of ['v1', '/v1/**/x', '/v1/{a', '/v1/{a}{b}', '/v1/a*', '/v1/{a}/{a}', '/v1/{1a}', '/v1//x'])
      assert.equal(typeof parseTemplate(bad), 'string', bad);
  });

  it('matches segment by segment and captures raw values', () => {
    assert.deepEqual(matchTemplate(t('/v1/items/{id}'), parts('/v1/items/7')), ['7']);
    assert.equal(matchTemplate(t('/v1/items/{id}'), parts('/v1/items/')), null);
    assert.equal(matchTemplate(t('/v1/items/{id}'), parts('/v1/items/7/x')), null);
    assert.deepEqual(matchTemplate(t('/v1/{name=shelves/*/books/**}'), parts('/v1/shelves/s1/books/a/b')), [
      'shelves/s1/books/a/b',
    ]);
    assert.deepEqual(matchTemplate(t('/v1/{name=**}:cancel'), parts('/v1/ops/42:cancel')), ['ops/42']);
    assert.equal(matchTemplate(t('/v1/{name=**}:cancel'), parts('/v1/ops/42')), null);
    assert.deepEqual(matchTemplate(t('/v1/*/x/{id}'), parts('/v1/any/x/9')), ['9']);
  });

  it('decodes one segment fully, several keeping %2F', () => {
    assert.equal(decodeCapture('a%20b%2Fc', false), 'a b/c');
    assert.equal(decodeCapture('a%20b%2Fc/d', true), 'a b%2Fc/d');
    assert.equal(decodeCapture('%E0%A4%A', false), null);
  });

  it('orders literals before variables before the rest, verbs first', () => {
    const list = ['/v1/{name=**}', '/v1/{id}', '/v1/items:search', '/v1/items', '/v1/items/{id}'].map(t);
    list.sort(compareSpecificity);
    assert.deepEqual(
      list.map((x) => x.source),
      ['/v1/items:search', '/v1/items/{id}', '/v1/items', '/v1/{id}', '/v1/{name=**}'],
    );
  });
});
