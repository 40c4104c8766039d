// Prints HS256 tokens for bench/bench-plugins.yaml (secret from BENCH_JWT_SECRET, valid 1 day), one
// per line: `node bench/token.ts [COUNT]` (default 1); each carries its own `jti`, so no two are equal.
import { SignJWT } from 'jose';

const secret = process.env.BENCH_JWT_SECRET;
if (!secret) throw new Error('set BENCH_JWT_SECRET');
const key = new TextEncoder().encode(secret);
const count = Number(process.argv[2] ?? 1);
const lines: string[] = [];
for (let i = 0; i < count; i++) {
  lines.push(
    await new SignJWT({ scope: 'items:read', sub: 'bench' })
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuer('bench')
      .setIssuedAt()
      .setJti(String(i))
      .setExpirationTime('1d')
      .sign(key),
  );
}
console.log(lines.join('\n'));
