/**
 * jwt over real sockets: tokens signed here with jose (RS256 via a real JWKS server, HS*, ES256 and
 * ES384 inline, RS384/RS512, EdDSA from a file, PS256), checked by the gateway, with key rotation at
 * the JWKS and every attack the plugin must refuse.
 */
import assert from 'node:assert/strict';
import { createHmac, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SignJWT } from 'jose';
import { request } from 'undici';
import { DEFAULT_JWKS_UNKNOWN_KID_COOLDOWN_MS } from '../../core/defaults.ts';
import { startGateway, startUpstream, type TestGateway, type Upstream } from '../../testing/servers.ts';

const HS_SECRET = 'partner-mls-shared-secret-0123456789abcdef';
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const ed = generateKeyPairSync('ed25519');
const ps = generateKeyPairSync('rsa', { modulusLength: 2048 });
const rs = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ec384 = generateKeyPairSync('ec', { namedCurve: 'P-384' });
/** The rotating issuer's keys: `rot-1` first, then `rot-2` in its place. */
const rot1 = generateKeyPairSync('rsa', { modulusLength: 2048 });
const rot2 = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const pem = (k: KeyObject) => k.export({ type: 'spki', format: 'pem' }).toString();

const b64url = (v: string | Buffer) => Buffer.from(v).toString('base64url');

interface TokenOptions {
  alg?: string;
  key?: KeyObject | Uint8Array;
  kid?: string;
  iss?: string;
  aud?: string;
  exp?: number | null;
  nbf?: number;
  claims?: Record<string, unknown>;
}

let now = Date.now();

async function token(o: TokenOptions = {}): Promise<string> {
  const seconds = Math.floor(now / 1000);
  const jwt = new SignJWT({ ...(o.claims ?? { scope: 'property:read property:write' }), sub: 'user-42' })
    .setProtectedHeader({
      alg: o.alg ?? 'RS256',
      ...(o.kid === undefined && (o.alg ?? 'RS256') === 'RS256' ? { kid: 'k1' } : o.kid ? { kid: o.kid } : {}),
    })
    .setIssuer(o.iss ?? 'https://auth.example.com/')
    .setIssuedAt(seconds);
  if (o.aud !== undefined) jwt.setAudience(o.aud);
  else if ((o.iss ?? 'https://auth.example.com/') === 'https://auth.example.com/') jwt.setAudience('property-api');
  if (o.exp !== null) jwt.setExpirationTime(o.exp ?? seconds + 3600);
  if (o.nbf !== undefined) jwt.setNotBefore(o.nbf);
  return jwt.sign(o.key ?? rsa.privateKey);
}

describe('jwt plugin', () => {
  let upstream: Upstream;
  let gw: TestGateway;
  let jwks: Server;
  let jwksHits = 0;
  let rotHits = 0;
  /** What the rotating issuer's JWKS serves now. */
  let rotKeys: Record<string, unknown>[] = [];
  let dir: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'meshgate-jwt-'));
    writeFileSync(join(dir, 'ed.pem'), pem(ed.publicKey));
    rotKeys = [{ ...rot1.publicKey.export({ format: 'jwk' }), kid: 'rot-1', alg: 'RS256', use: 'sig' }];
    jwks = createServer((req, res) => {
      if (req.url === '/rot/jwks.json') {
        rotHits++;
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ keys: rotKeys }));
        return;
      }
      jwksHits++;
      const jwk = { ...rsa.publicKey.export({ format: 'jwk' }), kid: 'k1', alg: 'RS256', use: 'sig' };
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((r) => jwks.listen(0, '127.0.0.1', r));
    const jwksUrl = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/.well-known/jwks.json`;
    upstream = await startUpstream();
    const svc = { name: 'svc', endpoints: [{ url: upstream.url }] };
    gw = await startGateway(
      {
        services: [svc],
        consumers: [
          {
            name: 'mobile-app',
            groups: ['mobile'],
            credentials: [{ type: 'jwt', issuer: 'https://auth.example.com/', jwksUrl, audiences: ['property-api'] }],
          },
          { name: 'partner-mls', credentials: [{ type: 'jwt', issuer: 'partner-mls', secret: HS_SECRET }] },
          { name: 'ec-client', credentials: [{ type: 'jwt', issuer: 'ec', publicKey: pem(ec.publicKey) }] },
          { name: 'ed-client', credentials: [{ type: 'jwt', issuer: 'ed', publicKey: join(dir, 'ed.pem') }] },
          {
            name: 'ps-client',
            credentials: [{ type: 'jwt', issuer: 'ps', publicKey: pem(ps.publicKey), algorithm: 'PS256' }],
          },
          { name: 'rs-client', credentials: [{ type: 'jwt', issuer: 'rs', publicKey: pem(rs.publicKey) }] },
          { name: 'ec384-client', credentials: [{ type: 'jwt', issuer: 'ec384', publicKey: pem(ec384.publicKey) }] },
          {
            name: 'rotating',
            credentials: [{ type: 'jwt', issuer: 'rot', jwksUrl: jwksUrl.replace('/.well-known/', '/rot/') }],
          },
        ],
        routes: [
          {
            name: 'props',
            match: { path: '/props/*' },
            service: 'svc',
            plugins: [{ name: 'jwt', config: { scopes: ['property:read'], claimsToHeaders: { sub: 'x-user-id' } } }],
          },
          {
            name: 'any-scope',
            match: { path: '/any/*' },
            service: 'svc',
            plugins: [{ name: 'jwt', config: { scopes: ['admin', 'property:write'], scopesMatch: 'any' } }],
          },
          {
            name: 'cookie',
            match: { path: '/cookie/*' },
            service: 'svc',
            plugins: [{ name: 'jwt', config: { tokenFrom: [{ cookie: 'session' }, { query: 'access_token' }] } }],
          },
          {
            name: 'no-exp',
            match: { path: '/no-exp/*' },
            service: 'svc',
            plugins: [{ name: 'jwt', config: { requireExpiration: false } }],
          },
          {
            name: 'custom-header',
            match: { path: '/custom/*' },
            service: 'svc',
            plugins: [{ name: 'jwt', config: { tokenFrom: [{ header: 'X-Token' }] } }],
          },
          { name: 'open', match: { path: '/open/*' }, service: 'svc' },
          {
            // Istio's RequestAuthentication: only these issuers, no token passes, token not forwarded.
            name: 'own-issuers',
            match: { path: '/own/*' },
            service: 'svc',
            plugins: [
              {
                name: 'jwt',
                config: {
                  optional: true,
                  forwardToken: false,
                  payloadToHeader: 'x-jwt-payload',
                  claimsToHeaders: { sub: 'x-sub' },
                  tokenFrom: [{ header: 'x-jwt', prefix: 'Token ' }, { query: 'access_token' }, { cookie: 'tok' }],
                  issuers: [
                    { issuer: 'https://auth.example.com/', jwksUrl, audiences: ['property-api'] },
                    {
                      issuer: 'inline',
                      jwks: JSON.stringify({ keys: [{ ...ec.publicKey.export({ format: 'jwk' }), kid: 'e1' }] }),
                    },
                  ],
                },
              },
            ],
          },
        ],
      },
      { now: () => now },
    );
  });

  after(async () => {
    await gw.close();
    await upstream.close();
    await new Promise<void>((r) => jwks.close(() => r()));
    rmSync(dir, { recursive: true, force: true });
  });

  async function call(path: string, auth?: string, headers: Record<string, string> = {}) {
    const res = await request(`${gw.url()}${path}`, {
      headers: { ...(auth === undefined ? {} : { authorization: `Bearer ${auth}` }), ...headers },
    });
    const text = await res.body.text();
    return { status: res.statusCode, headers: res.headers, text, json: JSON.parse(text) };
  }

  async function refused(path: string, auth: string | undefined, status = 401, why?: RegExp) {
    const before = upstream.seen.length;
    const r = await call(path, auth);
    assert.equal(r.status, status, r.text);
    assert.equal(upstream.seen.length, before, 'a refused request never reaches the upstream');
    assert.equal(r.headers['content-type'], 'application/problem+json');
    if (why) assert.match(r.json.detail, why);
    assert.ok(!r.text.includes(HS_SECRET), 'no secret in the reply');
    return r;
  }

  it('with its own issuers and optional: no token passes, a valid one is taken out, a bad or foreign one is refused', async () => {
    const open = await call('/own/1');
    assert.equal(open.status, 200, open.text);
    assert.equal(open.json.headers['x-consumer-username'], undefined);

    const before = upstream.seen.length;
    const t = await token();
    const forged = `${b64url('{}')}.x`;
    const r = await call('/own/2?a=1&access_token=x', undefined, {
      'x-jwt': `Token ${t}`,
      'x-jwt-payload': forged,
      'x-sub': 'someone-else',
      cookie: 'a=1; tok=zzz',
    });
    assert.equal(r.status, 200, r.text);
    const seen = upstream.seen[before]!;
    assert.equal(seen.headers['x-jwt'], undefined, 'the token is not forwarded');
    assert.equal(seen.headers['x-sub'], 'user-42');
    assert.equal(seen.headers['x-jwt-payload'], t.split('.')[1], 'the payload as the token carries it');
    assert.equal(seen.headers['x-consumer-username'], undefined, 'an entry issuer authenticates no consumer');
    assert.equal(seen.url, '/own/2?a=1&access_token=x', 'only the place the token was found changes');

    const q = await call(`/own/3?a=1&access_token=${t}&b=2`);
    assert.equal(q.status, 200, q.text);
    assert.equal(q.json.url, '/own/3?a=1&b=2', 'a token from the query is removed from it');
    const c = await call('/own/4', undefined, { cookie: `a=1; tok=${t}; b=2` });
    assert.equal(c.status, 200, c.text);
    assert.equal(c.json.headers.cookie, 'a=1; b=2', 'a token from a cookie is removed from the Cookie header');

    // The inline key set.
    const e = await token({ alg: 'ES256', key: ec.privateKey, kid: 'e1', iss: 'inline', aud: 'x' });
    assert.equal((await call('/own/5', undefined, { 'x-jwt': `Token ${e}` })).status, 200);

    // A consumer's issuer (partner-mls) is not trusted by this entry; a wrong prefix is no token at all.
    const hs = await token({ alg: 'HS256', key: new TextEncoder().encode(HS_SECRET), iss: 'partner-mls', aud: 'x' });
    for (const [headers, why] of [
      [{ 'x-jwt': `Token ${hs}` }, /issuer is not known/],
      [{ 'x-jwt': `Token ${await token({ aud: 'other' })}` }, /aud/],
      [{ 'x-jwt': `Token ${await token({ exp: Math.floor(now / 1000) - 3600 })}` }, /expired/],
      [{ 'x-jwt': `Token ${t.slice(0, -4)}AAAA` }, /signature/],
    ] as const) {
      const n = upstream.seen.length;
      const bad = await call('/own/6', undefined, headers);
      assert.equal(bad.status, 401, bad.text);
      assert.match(bad.json.detail, why);
      assert.equal(bad.headers['content-type'], 'application/problem+json');
      assert.equal(upstream.seen.length, n);
    }
    const wrongPrefix = await call('/own/7', undefined, { 'x-jwt': `Bearer ${t}` });
    assert.equal(wrongPrefix.status, 200, 'a value without the prefix holds no token: optional lets it pass');
    assert.equal(wrongPrefix.json.headers['x-sub'], undefined);
  });

  it('an entry with its own issuers never admits a token another entry verified on the consumers’ trust', async () => {
    const hs = await token({ alg: 'HS384', key: new TextEncoder().encode(HS_SECRET), iss: 'partner-mls', aud: 'y' });
    assert.equal((await call('/props/1', hs)).status, 200, 'verified and remembered on the consumers’ trust');
    const r = await call('/own/1', undefined, { 'x-jwt': `Token ${hs}` });
    assert.equal(r.status, 401, r.text);
    assert.match(r.json.detail, /issuer is not known/);
  });

  it('accepts RS256 via JWKS, identifies the consumer and forwards the identity', async () => {
    const r = await call('/props/1', await token());
    assert.equal(r.status, 200, r.text);
    const h = r.json.headers;
    assert.equal(h['x-consumer-username'], 'mobile-app');
    assert.equal(h['x-consumer-id'], 'mobile-app');
    assert.equal(h['x-consumer-groups'], 'mobile');
    assert.equal(h['x-credential-identifier'], 'https://auth.example.com/');
    assert.equal(h['x-user-id'], 'user-42');
  });

  it('accepts HS256, HS384 and HS512 with the shared secret', async () => {
    for (const alg of ['HS256', 'HS384', 'HS512']) {
      const t = await token({ alg, key: new TextEncoder().encode(HS_SECRET), iss: 'partner-mls', aud: 'x' });
      const r = await call('/props/1', t);
      assert.equal(r.status, 200, `${alg}: ${r.text}`);
      assert.equal(r.json.headers['x-consumer-username'], 'partner-mls');
    }
  });

  it('accepts ES256 (inline PEM), EdDSA (key file) and PS256', async () => {
    const cases: [string, KeyObject, string, string][] = [
      ['ES256', ec.privateKey, 'ec', 'ec-client'],
      ['EdDSA', ed.privateKey, 'ed', 'ed-client'],
      ['PS256', ps.privateKey, 'ps', 'ps-client'],
    ];
    for (const [alg, key, iss, consumer] of cases) {
      const r = await call('/props/1', await token({ alg, key, iss, aud: 'x' }));
      assert.equal(r.status, 200, `${alg}: ${r.text}`);
      assert.equal(r.json.headers['x-consumer-username'], consumer);
    }
  });

  it('accepts RS384 and RS512 (PEM), and ES384 from a P-384 key but not ES256 from it', async () => {
    const cases: [string, KeyObject, string, string][] = [
      ['RS384', rs.privateKey, 'rs', 'rs-client'],
      ['RS512', rs.privateKey, 'rs', 'rs-client'],
      ['PS512', rs.privateKey, 'rs', 'rs-client'],
      ['ES384', ec384.privateKey, 'ec384', 'ec384-client'],
    ];
    for (const [alg, key, iss, consumer] of cases) {
      const r = await call('/props/1', await token({ alg, key, iss, aud: 'x' }));
      assert.equal(r.status, 200, `${alg}: ${r.text}`);
      assert.equal(r.json.headers['x-consumer-username'], consumer);
    }
    // The P-384 issuer's key verifies only ES384: an ES256 token (even one really signed, by a P-256
    // key) names an algorithm its issuer does not accept.
    await refused(
      '/props/1',
      await token({ alg: 'ES256', key: ec.privateKey, iss: 'ec384', aud: 'x' }),
      401,
      /algorithm/,
    );
    // An RS512 token whose signature was made by another key does not pass for the RSA issuer.
    await refused('/props/1', await token({ alg: 'RS512', key: ps.privateKey, iss: 'rs', aud: 'x' }), 401, /signature/);
  });

  it('key rotation: a token signed with a key the JWKS starts serving is accepted after one refresh per cooldown', async () => {
    const rotToken = (alg: string, key: KeyObject, kid: string) => token({ alg, key, kid, iss: 'rot', aud: 'x' });
    const started = now;
    try {
      assert.equal((await call('/props/1', await rotToken('RS256', rot1.privateKey, 'rot-1'))).status, 200);
      assert.equal(rotHits, 1, 'the set is fetched on first use');
      // The issuer rotates: rot-2 (an EC key) replaces rot-1.
      rotKeys = [{ ...rot2.publicKey.export({ format: 'jwk' }), kid: 'rot-2', use: 'sig' }];
      const fresh = await rotToken('ES256', rot2.privateKey, 'rot-2');
      // Within the cooldown of the first fetch the new kid is unknown, and nothing is fetched.
      now = started + DEFAULT_JWKS_UNKNOWN_KID_COOLDOWN_MS - 1;
      await refused('/props/1', fresh, 401, /kid/);
      assert.equal(rotHits, 1, 'no fetch within the cooldown');
      // Once it has passed, a burst of tokens with unknown kids (the new one among them) shares one fetch.
      now = started + DEFAULT_JWKS_UNKNOWN_KID_COOLDOWN_MS;
      const forged = await Promise.all(
        Array.from({ length: 5 }, (_, i) => rotToken('RS256', rot1.privateKey, `forged-${i}`)),
      );
      const results = await Promise.all([fresh, ...forged].map((t) => call('/props/1', t)));
      assert.deepEqual(
        results.map((r) => r.status),
        [200, 401, 401, 401, 401, 401],
      );
      assert.equal(results[0]!.json.headers['x-consumer-username'], 'rotating');
      assert.equal(rotHits, 2, 'one fetch for the whole burst');
      // The retired key's tokens no longer verify; asking for its kid again waits for the next cooldown.
      await refused('/props/1', await rotToken('RS256', rot1.privateKey, 'rot-1'), 401, /kid/);
      assert.equal(rotHits, 2);
    } finally {
      now = started;
    }
  });

  it('without a token: 401 with a bare Bearer challenge (RFC 6750 §3.1)', async () => {
    const r = await refused('/props/1', undefined);
    assert.equal(r.headers['www-authenticate'], 'Bearer realm="meshgate"');
    assert.equal(r.json.code, 'MG_UNAUTHORIZED');
  });

  it('expired, not yet valid, or without exp: 401 invalid_token', async () => {
    const s = Math.floor(now / 1000);
    const expired = await refused('/props/1', await token({ exp: s - 120 }), 401, /expired/);
    assert.match(String(expired.headers['www-authenticate']), /error="invalid_token"/);
    await refused('/props/1', await token({ nbf: s + 600 }), 401, /not valid yet/);
    await refused('/props/1', await token({ exp: null }), 401, /expiry/);
    assert.equal((await call('/props/1', await token({ exp: s - 10 }))).status, 200, 'within the 30 s clock skew');
  });

  it('a token without exp accepted where requireExpiration is false is still refused where it is required', async () => {
    const t = await token({ exp: null });
    assert.equal((await call('/no-exp/1', t)).status, 200);
    await refused('/props/1', t, 401, /expiry/);
  });

  it('reads the token from a configured header whatever the case of its name', async () => {
    const t = await token();
    assert.equal((await call('/custom/1', undefined, { 'x-token': t })).status, 200);
    assert.equal((await call('/custom/1', t)).status, 401, 'the Authorization header is not a configured source');
  });

  it('a remembered token is still refused once it expires', async () => {
    const t = await token({ exp: Math.floor(now / 1000) + 60 });
    assert.equal((await call('/props/1', t)).status, 200);
    now += 120_000;
    try {
      await refused('/props/1', t, 401, /expired/);
    } finally {
      now -= 120_000;
    }
  });

  it('wrong audience: 401', async () => {
    await refused('/props/1', await token({ aud: 'billing-api' }), 401, /aud/);
  });

  it('missing scope: 403 insufficient_scope naming the scope; scp arrays and any-of work', async () => {
    const r = await refused('/props/1', await token({ claims: { scope: 'property:write' } }), 403);
    assert.equal(r.json.code, 'MG_INSUFFICIENT_SCOPE');
    assert.equal(
      r.headers['www-authenticate'],
      'Bearer realm="meshgate", error="insufficient_scope", scope="property:read"',
    );
    assert.equal((await call('/props/1', await token({ claims: { scp: ['property:read'] } }))).status, 200);
    assert.equal((await call('/any/1', await token({ claims: { scope: 'property:write' } }))).status, 200);
    await refused('/any/1', await token({ claims: { scope: 'property:read' } }), 403);
  });

  describe('attacks', () => {
    it('alg none is refused', async () => {
      const header = b64url(JSON.stringify({ alg: 'none', typ: 'JWT' }));
      const payload = b64url(
        JSON.stringify({
          iss: 'https://auth.example.com/',
          aud: 'property-api',
          scope: 'property:read',
          exp: Math.floor(now / 1000) + 600,
        }),
      );
      await refused('/props/1', `${header}.${payload}.`, 401, /alg none/);
    });

    it('algorithm confusion: an HS256 token keyed with the RSA public key is refused (JWKS and PEM issuers)', async () => {
      for (const [iss, publicKey, aud] of [
        ['https://auth.example.com/', rsa.publicKey, 'property-api'],
        ['ps', ps.publicKey, 'x'],
        ['ec', ec.publicKey, 'x'],
      ] as const) {
        const forged = await token({ alg: 'HS256', key: Buffer.from(pem(publicKey)), iss, aud, kid: 'k1' });
        await refused('/props/1', forged, 401, /algorithm|signature/);
      }
    });

    it('an unknown kid is refused, and does not hammer the JWKS endpoint', async () => {
      const before = jwksHits;
      for (let i = 0; i < 10; i++) await refused('/props/1', await token({ kid: `forged-${i}` }), 401, /kid/);
      assert.ok(jwksHits - before <= 1, `JWKS fetched ${jwksHits - before} times for 10 unknown kids`);
    });

    it('a tampered payload is refused', async () => {
      const [h, , sig] = (await token({ claims: { scope: 'property:write' } })).split('.');
      const upgraded = b64url(
        JSON.stringify({
          scope: 'property:read property:write',
          sub: 'admin',
          iss: 'https://auth.example.com/',
          aud: 'property-api',
          exp: Math.floor(now / 1000) + 600,
        }),
      );
      await refused('/props/1', `${h}.${upgraded}.${sig}`, 401, /signature/);
    });

    it('a token signed with another secret, or by another key, is refused', async () => {
      await refused(
        '/props/1',
        await token({ alg: 'HS256', key: new TextEncoder().encode('x'.repeat(40)), iss: 'partner-mls' }),
        401,
        /signature/,
      );
      const other = generateKeyPairSync('rsa', { modulusLength: 2048 });
      await refused('/props/1', await token({ key: other.privateKey }), 401, /signature/);
    });

    it('an oversize token is refused before parsing; garbage and unknown issuers too', async () => {
      await refused('/props/1', 'a'.repeat(9000), 401, /longer than 8192/);
      await refused('/props/1', 'not.a.jwt', 401, /malformed/);
      await refused('/props/1', await token({ iss: 'https://evil.example/' }), 401, /issuer/);
    });

    it('the HMAC verification is what refuses a forged HS256 token for a secret issuer', async () => {
      const header = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
      const payload = b64url(
        JSON.stringify({ iss: 'partner-mls', scope: 'property:read', exp: Math.floor(now / 1000) + 600 }),
      );
      const sig = createHmac('sha256', 'guessed-secret').update(`${header}.${payload}`).digest('base64url');
      await refused('/props/1', `${header}.${payload}.${sig}`, 401, /signature/);
    });
  });

  it('identity headers from the client never reach the upstream', async () => {
    const spoof = {
      'x-consumer-username': 'admin',
      'x-consumer-id': 'admin',
      'x-consumer-groups': 'admins',
      'x-user-id': 'root',
    };
    const open = await call('/open/1', undefined, spoof);
    for (const h of ['x-consumer-username', 'x-consumer-id', 'x-consumer-groups'])
      assert.equal(open.json.headers[h], undefined);
    const authed = await call('/props/1', await token(), spoof);
    assert.equal(authed.json.headers['x-consumer-username'], 'mobile-app');
    assert.equal(authed.json.headers['x-user-id'], 'user-42');
  });

  it('takes the token from a cookie or a query parameter when configured', async () => {
    const t = await token();
    assert.equal((await call('/cookie/1', undefined, { cookie: `a=b; session=${t}` })).status, 200);
    assert.equal((await call(`/cookie/1?access_token=${t}`)).status, 200);
    assert.equal((await call('/cookie/1', t)).status, 401, 'the Authorization header is not a configured source');
  });

  it('a malformed escape in a cookie or query token is an invalid token (401), not a plugin failure', async () => {
    const fromCookie = await call('/cookie/1', undefined, { cookie: 'session=%E0%A4%A' });
    assert.equal(fromCookie.status, 401);
    assert.match(String(fromCookie.headers['www-authenticate']), /invalid_token/);
    const fromQuery = await call('/cookie/1?access_token=%E0%A4%A');
    assert.equal(fromQuery.status, 401);
    assert.match(String(fromQuery.headers['www-authenticate']), /invalid_token/);
  });
});
