// Cost of checking one new token: jose's `jwtVerify` (WebCrypto) against the jwt plugin's own path
// (src/plugins/jwt/verify.ts: parse, then node:crypto with a KeyObject made once), in µs per token,
// over COUNT distinct tokens per algorithm (each verified once, as a client with fresh tokens makes
// the gateway do). `node bench/jwt-verify.ts [COUNT]` (default 20000).
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { jwtVerify, SignJWT } from 'jose';
import { decodeToken, verifierFor } from '../src/plugins/jwt/verify.ts';

const count = Number(process.argv[2] ?? 20_000);
const secret = Buffer.from('bench-secret-0123456789abcdef0123456789');
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const cases: [string, KeyObject | Buffer, KeyObject | Buffer][] = [
  ['HS256', secret, secret],
  ['RS256', rsa.privateKey, rsa.publicKey],
  ['ES256', ec.privateKey, ec.publicKey],
];

async function sign(alg: string, key: KeyObject | Buffer): Promise<string[]> {
  const tokens: string[] = [];
  for (let i = 0; i < count; i++)
    tokens.push(
      await new SignJWT({ scope: 'items:read', sub: 'bench' })
        .setProtectedHeader({ alg })
        .setIssuer('bench')
        .setIssuedAt()
        .setJti(String(i))
        .setExpirationTime('1d')
        .sign(key),
    );
  return tokens;
}

const rows: string[] = [];
for (const [alg, privateKey, publicKey] of cases) {
  const tokens = await sign(alg, privateKey);
  let t = performance.now();
  for (const token of tokens) await jwtVerify(token, publicKey, { algorithms: [alg], issuer: 'bench' });
  const jose = ((performance.now() - t) * 1000) / count;
  const verifier = verifierFor(alg, publicKey)!;
  t = performance.now();
  for (const token of tokens) {
    const d = decodeToken(token)!;
    if (d.payload.iss !== 'bench' || !verifier(d.signingInput, d.signature)) throw new Error('did not verify');
  }
  const own = ((performance.now() - t) * 1000) / count;
  rows.push(`| ${alg} | ${jose.toFixed(1)} | ${own.toFixed(1)} | ${(jose / own).toFixed(1)}× |`);
}
console.log(`${count} tokens per algorithm, µs per token\n`);
console.log('| alg | jose jwtVerify | node:crypto (plugin) | faster |\n| --- | ---: | ---: | ---: |');
console.log(rows.join('\n'));
