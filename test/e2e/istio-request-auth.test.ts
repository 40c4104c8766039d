/**
 * Istio's RequestAuthentication and an AuthorizationPolicy that requires a token, loaded as they are
 * and served by a proxy over real sockets: tokens signed here (RS256) and checked against a JWKS a real
 * local server publishes. No token passes; a valid one passes and is not forwarded; an expired, forged
 * or foreign one gets 401; the workload whose policy needs `requestPrincipals: ["*"]` answers 403
 * without a token.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SignJWT } from 'jose';
import { request } from 'undici';
import { compatConverters } from '../../src/compat/index.ts';
import { formatIssue } from '../../src/config/issues.ts';
import { checkConfig } from '../../src/config/pipeline.ts';
import { DirectorySource } from '../../src/config/sources/directory/directory.ts';
import { createPluginCatalog } from '../../src/plugins/index.ts';
import { ProxyServer } from '../../src/proxy/proxy.ts';
import { startUpstream, type Upstream } from '../helpers/servers.ts';

const ISSUER = 'https://idp.example.test';
const idp = generateKeyPairSync('rsa', { modulusLength: 2048 });
const stranger = generateKeyPairSync('rsa', { modulusLength: 2048 });

async function token(o: { iss?: string; exp?: number; key?: typeof idp; aud?: string } = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ groups: ['readers'] })
    .setProtectedHeader({ alg: 'RS256', kid: 'idp-1' })
    .setIssuer(o.iss ?? ISSUER)
    .setSubject('alice')
    .setAudience(o.aud ?? 'bookinfo')
    .setIssuedAt(now - 10)
    .setExpirationTime(o.exp ?? now + 600)
    .sign((o.key ?? idp).privateKey);
}

describe('Istio RequestAuthentication: the jwt plugin with Istio’s semantics, over real sockets', () => {
  let dir: string;
  let reviews: Upstream;
  let ratings: Upstream;
  let jwks: Server;
  let jwksFetches = 0;
  let proxy: ProxyServer;
  let base: string;

  before(async () => {
    reviews = await startUpstream(undefined, 'reviews');
    ratings = await startUpstream(undefined, 'ratings');
    jwks = createServer((_req, res) => {
      jwksFetches++;
      const jwk = { ...idp.publicKey.export({ format: 'jwk' }), kid: 'idp-1', alg: 'RS256', use: 'sig' };
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((r) => jwks.listen(0, '127.0.0.1', r));
    const jwksUri = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/jwks.json`;
    dir = await mkdtemp(join(tmpdir(), 'mg-istio-reqauth-'));
    await writeFile(
      join(dir, 'bookinfo.yaml'),
      [
        'apiVersion: networking.istio.io/v1',
        'kind: VirtualService',
        'metadata: { name: bookinfo }',
        'spec:',
        '  hosts: ["*"]',
        '  http:',
        '  - match: [{ uri: { prefix: /ratings } }]',
        '    route: [{ destination: { host: ratings } }]',
        '  - route: [{ destination: { host: reviews } }]',
        '---',
        'apiVersion: security.istio.io/v1',
        'kind: RequestAuthentication',
        'metadata: { name: idp, namespace: istio-system }',
        'spec:',
        '  jwtRules:',
        `  - issuer: ${ISSUER}`,
        `    jwksUri: ${jwksUri}`,
        '    audiences: [bookinfo]',
        '    outputClaimToHeaders: [{ header: x-user, claim: sub }]',
        '---',
        'apiVersion: security.istio.io/v1',
        'kind: AuthorizationPolicy',
        'metadata: { name: ratings-need-jwt }',
        'spec:',
        '  selector: { matchLabels: { app: ratings } }',
        '  rules:',
        '  - from: [{ source: { requestPrincipals: ["*"] } }]',
        '',
      ].join('\n'),
    );
    await writeFile(
      join(dir, 'services.yaml'),
      [
        'services:',
        `  - { name: reviews, endpoints: [{ url: "${reviews.url}" }] }`,
        `  - { name: ratings, endpoints: [{ url: "${ratings.url}" }] }`,
        '',
      ].join('\n'),
    );
    const catalog = createPluginCatalog();
    const checked = await checkConfig(await new DirectorySource(dir, {}).read(), 'start', {
      load: { catalog },
      converters: compatConverters({ listen: { address: '127.0.0.1', port: 0 } }),
    });
    if (!checked.ok) throw new Error(checked.issues.map(formatIssue).join('\n'));
    proxy = await ProxyServer.start(checked.value.loaded, { catalog });
    base = `http://127.0.0.1:${Object.values(proxy.ports())[0]}`;
  });

  after(async () => {
    await proxy?.close(1000);
    await reviews?.close();
    await ratings?.close();
    if (jwks) await new Promise<void>((r) => jwks.close(() => r()));
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  async function call(path: string, headers: Record<string, string> = {}) {
    const res = await request(`${base}${path}`, { headers });
    const text = await res.body.text();
    return { status: res.statusCode, headers: res.headers, text };
  }

  it('lets a request without a token through (RequestAuthentication alone requires none)', async () => {
    const r = await call('/reviews/1');
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers['x-upstream'], 'reviews');
  });

  it('accepts a valid token, takes it out before forwarding, and sends the claim header', async () => {
    const t = await token();
    const seen = reviews.seen.length;
    const r = await call('/reviews/1', { authorization: `Bearer ${t}`, 'x-user': 'mallory' });
    assert.equal(r.status, 200, r.text);
    const upstream = reviews.seen[seen]!;
    assert.equal(upstream.headers.authorization, undefined, 'forwardOriginalToken defaults to false');
    assert.equal(upstream.headers['x-user'], 'alice', 'the claim, not the client’s copy');
    // Istio's second default place: the access_token query parameter, removed from the query too.
    const q = await call(`/reviews/2?access_token=${t}&page=3`);
    assert.equal(q.status, 200, q.text);
    assert.equal(reviews.seen.at(-1)!.url, '/reviews/2?page=3');
    assert.ok(jwksFetches >= 1, 'the keys came from the JWKS server');
  });

  it('refuses an expired, forged, foreign-issuer or wrong-audience token with 401 problem+json', async () => {
    const now = Math.floor(Date.now() / 1000);
    const cases: [string, string, RegExp][] = [
      ['expired', await token({ exp: now - 3600 }), /expired/],
      ['signed by another key', await token({ key: stranger }), /signature|no key/],
      ['another issuer', await token({ iss: 'https://elsewhere.test', key: stranger }), /issuer/],
      ['another audience', await token({ aud: 'other' }), /aud/],
      ['malformed', 'not.a.token', /malformed/],
    ];
    for (const [what, t, why] of cases) {
      const seen = reviews.seen.length;
      const r = await call('/reviews/1', { authorization: `Bearer ${t}` });
      assert.equal(r.status, 401, `${what}: ${r.text}`);
      assert.equal(r.headers['content-type'], 'application/problem+json', what);
      const problem = JSON.parse(r.text) as { code: string; detail: string };
      assert.equal(problem.code, 'MG_UNAUTHORIZED', what);
      assert.match(problem.detail, why, what);
      assert.equal(reviews.seen.length, seen, `${what}: never reaches the upstream`);
    }
  });

  it('answers 403 without a token where an AuthorizationPolicy requires requestPrincipals ["*"], 200 with one', async () => {
    const seen = ratings.seen.length;
    const anonymous = await call('/ratings/1');
    assert.equal(anonymous.status, 403, anonymous.text);
    assert.equal(JSON.parse(anonymous.text).code, 'MG_RBAC_DENIED');
    assert.equal(ratings.seen.length, seen);
    const r = await call('/ratings/1', { authorization: `Bearer ${await token()}` });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers['x-upstream'], 'ratings');
    const bad = await call('/ratings/1', { authorization: `Bearer ${await token({ key: stranger })}` });
    assert.equal(bad.status, 401, 'an invalid token is refused by authentication before authorization');
  });
});
