/**
 * Acceptance: the seed's gateway from one config file. /api/v1/properties/* needs a JWT with
 * property:read (RS256 via JWKS, HS256 with a secret from the environment), limited to 1,000 requests
 * per hour per consumer; /api/v1/search/* needs no authentication.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SignJWT } from 'jose';
import { Agent, request } from 'undici';
import { MeshgateProcess } from '../helpers/process.ts';
import { startUpstream, testEngineYaml, type Upstream } from '../helpers/servers.ts';

const MLS_SECRET = 'partner-mls-secret-0123456789abcdef-xyz';
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });

function sign(alg: 'RS256' | 'HS256', scope = 'property:read'): Promise<string> {
  const jwt = new SignJWT({ scope, sub: 'u1' })
    .setIssuedAt()
    .setExpirationTime('1h')
    .setIssuer(alg === 'RS256' ? 'https://auth.example.com/' : 'partner-mls');
  if (alg === 'RS256')
    return jwt.setProtectedHeader({ alg, kid: 'seed' }).setAudience('property-api').sign(rsa.privateKey);
  return jwt.setProtectedHeader({ alg }).sign(new TextEncoder().encode(MLS_SECRET));
}

describe('the seed gateway, from one config', () => {
  let dir: string;
  let jwks: Server;
  let property: Upstream;
  let search: Upstream;
  let gw: MeshgateProcess;
  let base: string;
  const agent = new Agent({ connections: 32 });

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'meshgate-seed-'));
    jwks = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ keys: [{ ...rsa.publicKey.export({ format: 'jwk' }), kid: 'seed', alg: 'RS256' }] }));
    });
    await new Promise<void>((r) => jwks.listen(0, '127.0.0.1', r));
    property = await startUpstream(undefined, 'property');
    search = await startUpstream(undefined, 'search');
    writeFileSync(
      join(dir, 'gateway.yaml'),
      `listeners: [{ name: public, port: 0, address: 127.0.0.1${testEngineYaml()} }]
admin: { port: 0 }
services:
  - name: property-service
    endpoints: [{ url: ${property.url} }]
  - name: search-service
    endpoints: [{ url: ${search.url} }]
consumers:
  - name: mobile-app
    credentials:
      - type: jwt
        issuer: https://auth.example.com/
        jwksUrl: http://127.0.0.1:${(jwks.address() as AddressInfo).port}/.well-known/jwks.json
        audiences: [property-api]
  - name: partner-mls
    credentials:
      - { type: jwt, issuer: partner-mls, algorithm: HS256, secret: "\${MLS_SECRET}" }
routes:
  - name: property-api
    match: { path: /api/v1/properties/*, methods: [GET, POST, PUT, DELETE] }
    service: property-service
    plugins:
      - { name: jwt, config: { scopes: ["property:read"] } }
      - { name: rate-limit, config: { limits: [{ requests: 1000, window: 1h }] } }
  - name: search
    match: { path: /api/v1/search/*, methods: [GET] }
    service: search-service
`,
    );
    gw = new MeshgateProcess(['gateway', '--config', join(dir, 'gateway.yaml'), '--workers', '1'], { MLS_SECRET });
    const started = await gw.waitFor('gateway started');
    base = `http://127.0.0.1:${(started.listeners as Record<string, number>).public}`;
  });

  after(async () => {
    await gw.stop();
    await agent.close();
    await property.close();
    await search.close();
    await new Promise<void>((r) => jwks.close(() => r()));
    rmSync(dir, { recursive: true, force: true });
  });

  const get = async (path: string, token?: string) => {
    const res = await request(`${base}${path}`, {
      headers: token ? { authorization: `Bearer ${token}` } : {},
      dispatcher: agent,
    });
    await res.body.dump();
    return res;
  };

  it('search needs no authentication', async () => {
    const res = await get('/api/v1/search/homes?city=Oslo');
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['x-upstream'], 'search');
  });

  it('properties need a token with property:read: RS256 via JWKS and HS256 both work', async () => {
    assert.equal((await get('/api/v1/properties/42')).statusCode, 401);
    assert.equal((await get('/api/v1/properties/42', await sign('RS256', 'profile'))).statusCode, 403);
    const viaJwks = await get('/api/v1/properties/42', await sign('RS256'));
    assert.equal(viaJwks.statusCode, 200);
    assert.equal(viaJwks.headers['x-upstream'], 'property');
    assert.equal((await get('/api/v1/properties/42', await sign('HS256'))).statusCode, 200);
  });

  it('limits each consumer to 1,000 requests per hour, separately', async () => {
    const mobile = await sign('RS256');
    const partner = await sign('HS256');
    let ok = 0;
    let limited = 0;
    let next = 0;
    // The earlier test used one request for each consumer.
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next < 1_010) {
          next++;
          const res = await get('/api/v1/properties/7', mobile);
          if (res.statusCode === 200) ok++;
          else if (res.statusCode === 429) limited++;
        }
      }),
    );
    assert.equal(ok, 999);
    assert.equal(limited, 11);
    const partnerRes = await get('/api/v1/properties/7', partner);
    assert.equal(partnerRes.statusCode, 200);
    assert.equal(partnerRes.headers['ratelimit-remaining'], '998');
  });
});
