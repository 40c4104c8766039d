/**
 * Config checks for listener settings: TLS files (read, paired, located), contradictions between
 * settings, `match.grpc`, and the compiled defaults; and the other key files a config names (JWT).
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { TestPki } from '../../test/helpers/certs.ts';
import { withSnapshot } from '../../test/helpers/snapshot.ts';
import { DEFAULT_HEADERS_TIMEOUT_MS, DEFAULT_MAX_HEADER_BYTES } from '../core/defaults.ts';
import { formatIssue } from './issues.ts';
import { loadConfigFile } from './load.ts';

let dir: string;
let pki: TestPki;
let n = 0;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'meshgate-listeners-'));
  pki = new TestPki();
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
  pki.remove();
});

async function load(text: string) {
  const file = join(dir, `c${++n}.yaml`);
  await writeFile(file, text);
  const result = await loadConfigFile(file, {});
  return { file, result, issues: result.ok ? [] : result.issues.map((i) => formatIssue(i).slice(file.length + 1)) };
}

describe('listener config', () => {
  test('certificate paths resolve from the config file; a missing file is reported at its line', async () => {
    const leaf = pki.leaf('l1', ['a.test']);
    await writeFile(join(dir, 'relative.pem'), await readFile(leaf.cert));
    const { issues } = await load(
      [
        'listeners:',
        '  - name: tls',
        '    port: 8443',
        '    tls:',
        '      certificates:',
        `        - { cert: relative.pem, key: ${leaf.key} }`,
        '        - { cert: missing.pem, key: missing.key }',
      ].join('\n'),
    );
    assert.equal(issues.length, 2, issues.join('\n'));
    assert.match(
      issues[0]!,
      /^7:\d+: listeners\[0\]\.tls\.certificates\[1\]\.cert: cannot read .*missing\.pem: no such file/,
    );
    assert.match(issues[1]!, /^7:\d+: listeners\[0\]\.tls\.certificates\[1\]\.key: cannot read/);
  });

  test('a key that does not belong to its certificate is an error', async () => {
    const a = pki.leaf('pair-a', ['a.test']);
    const b = pki.leaf('pair-b', ['b.test']);
    const { issues } = await load(
      `listeners:\n  - name: tls\n    port: 8443\n    tls: { certificates: [{ cert: ${a.cert}, key: ${b.key} }] }\n`,
    );
    assert.equal(issues.length, 1);
    assert.match(issues[0]!, /listeners\[0\]\.tls\.certificates\[0\]: the certificate and key cannot be used/);
  });

  test('contradictions: redirect on a TLS listener, headersTimeout over requestTimeout, requireClientCert without clientCa', async () => {
    const a = pki.leaf('contra', ['a.test']);
    const { issues } = await load(
      [
        'listeners:',
        '  - name: tls',
        '    port: 8443',
        `    tls: { certificates: [{ cert: ${a.cert}, key: ${a.key} }], requireClientCert: true }`,
        '    redirectToHttps: true',
        '    limits: { headersTimeout: 10s, requestTimeout: 5s }',
      ].join('\n'),
    );
    assert.equal(issues.length, 3, issues.join('\n'));
    assert.ok(
      issues.some((i) => /tls\.requireClientCert: client certificates are verified against tls\.clientCa/.test(i)),
    );
    assert.ok(issues.some((i) => /redirectToHttps: a TLS listener would redirect to itself/.test(i)));
    assert.ok(
      issues.some((i) => /limits\.headersTimeout: headersTimeout \(10s\) is longer than requestTimeout \(5s\)/.test(i)),
    );
  });

  test('engine lean is for plain HTTP/1.1 listeners, and their default: refused with tls, http2 or mtls, at its line', async () => {
    const a = pki.leaf('lean', ['a.test']);
    const { issues } = await load(
      [
        'listeners:',
        '  - name: tls',
        '    port: 8443',
        `    tls: { certificates: [{ cert: ${a.cert}, key: ${a.key} }] }`,
        '    engine: lean',
        '  - name: h2c',
        '    port: 8081',
        '    http2: true',
        '    engine: lean',
        '  - name: plain',
        '    port: 8080',
        '    engine: lean',
        '  - name: mesh-off',
        '    port: 8082',
        '    mtls: { mode: DISABLE }',
        '    engine: lean',
      ].join('\n'),
    );
    assert.equal(issues.length, 2, issues.join('\n'));
    assert.match(
      issues[0]!,
      /^5:\d+: listeners\[0\]\.engine: engine lean serves plain HTTP\/1\.1 only; this listener sets tls/,
    );
    assert.match(
      issues[1]!,
      /^9:\d+: listeners\[1\]\.engine: engine lean serves plain HTTP\/1\.1 only; this listener sets http2/,
    );
    const ok = await load(
      [
        'listeners:',
        '  - { name: plain, port: 8080, engine: lean }',
        '  - { name: other, port: 8081 }',
        '  - { name: chosen, port: 8082, engine: node }',
        '  - { name: h2c, port: 8083, http2: true }',
        '  - { name: mesh-off, port: 8084, mtls: { mode: DISABLE } }',
      ].join('\n'),
    );
    assert.ok(ok.result.ok, ok.issues.join('\n'));
    await withSnapshot(ok.result.value, (snapshot) =>
      assert.deepEqual(
        snapshot.listeners.map((l) => l.engine),
        // Lean unless the listener names node or serves what only node:tls and node:http2 serve.
        ['lean', 'lean', 'node', 'node', 'lean'],
      ),
    );
  });

  test('unknown limit names get a did-you-mean; bad enum values list the choices', async () => {
    const { issues } = await load(
      'listeners:\n  - name: a\n    port: 80\n    encodedSlashes: decoded\n    limits: { maxHeaderByte: 100 }\n',
    );
    assert.ok(
      issues.some((i) => /limits\.maxHeaderByte: unknown field .*did you mean "maxHeaderBytes"/.test(i)),
      issues.join('\n'),
    );
    assert.ok(
      issues.some((i) => /encodedSlashes: "decoded" is not one of keep, decode, reject/.test(i)),
      issues.join('\n'),
    );
  });

  test('match.grpc is a path: not together with path', async () => {
    const { issues } = await load(
      'routes:\n  - name: r\n    match: { path: /x, grpc: { service: a.B } }\n    directResponse: { status: 200 }\n',
    );
    assert.equal(issues.length, 1);
    assert.match(issues[0]!, /routes\[0\]\.match\.grpc: match\.grpc sets the path/);
  });

  test('defaults are applied when compiling; match.grpc compiles to /service/method and /service/*', async () => {
    const { result } = await load(
      [
        'listeners: [{ name: plain, port: 0 }]',
        'routes:',
        '  - { name: one, match: { grpc: { service: shop.v1.Catalog, method: Get } }, directResponse: { status: 200 } }',
        '  - { name: all, match: { grpc: { service: shop.v1.Catalog } }, directResponse: { status: 204 } }',
      ].join('\n'),
    );
    assert.ok(result.ok);
    await withSnapshot(result.value, (snapshot) => {
      const l = snapshot.listeners[0]!;
      assert.equal(l.http2, false, 'plain listeners do not sniff for h2c unless asked');
      assert.equal(l.tls, null);
      assert.equal(l.encodedSlashes, 'keep');
      assert.equal(l.limits.maxHeaderBytes, DEFAULT_MAX_HEADER_BYTES);
      assert.equal(l.limits.headersTimeoutMs, DEFAULT_HEADERS_TIMEOUT_MS);
      const match = (path: string) =>
        snapshot.router.match({ method: 'POST', host: 'h', path, query: '', header: () => undefined })?.name;
      assert.equal(match('/shop.v1.Catalog/Get'), 'one');
      assert.equal(match('/shop.v1.Catalog/List'), 'all');
      assert.equal(match('/shop.v1.Other/Get'), undefined);
    });
  });
});

describe('jwt public keys', () => {
  test('a missing file, a PEM that is no key and a key that cannot verify the algorithm are located errors', async () => {
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' });
    await writeFile(join(dir, 'ec.pem'), ec);
    await writeFile(
      join(dir, 'garbage.pem'),
      '-----BEGIN PUBLIC KEY-----\nnot base64 at all\n-----END PUBLIC KEY-----\n',
    );
    const { issues } = await load(
      [
        'consumers:',
        '  - name: a',
        '    credentials:',
        '      - { type: jwt, issuer: a, publicKey: missing.pem }',
        '      - { type: jwt, issuer: b, publicKey: garbage.pem }',
        '      - { type: jwt, issuer: c, publicKey: ec.pem, algorithm: RS256 }',
        '      - { type: jwt, issuer: d, publicKey: ec.pem, algorithm: ES256 }',
        'routes: [{ name: r, directResponse: { status: 200 } }]',
      ].join('\n'),
    );
    assert.equal(issues.length, 3, issues.join('\n'));
    assert.match(
      issues[0]!,
      /^4:\d+: consumers\[0\]\.credentials\[0\]\.publicKey: cannot read .*missing\.pem: no such file/,
    );
    assert.match(issues[1]!, /^5:\d+: consumers\[0\]\.credentials\[1\]\.publicKey: not a usable public key/);
    assert.match(
      issues[2]!,
      /^6:\d+: consumers\[0\]\.credentials\[2\]\.algorithm: this public key cannot verify RS256 \(it verifies ES256\)/,
    );
  });
});
