// Prints an HS256 token for bench/bench-plugins.yaml (secret from BENCH_JWT_SECRET, valid 1 day).
import { SignJWT } from 'jose';

const secret = process.env.BENCH_JWT_SECRET;
if (!secret) throw new Error('set BENCH_JWT_SECRET');
const token = await new SignJWT({ scope: 'items:read', sub: 'bench' })
  .setProtectedHeader({ alg: 'HS256' })
  .setIssuer('bench')
  .setIssuedAt()
  .setExpirationTime('1d')
  .sign(new TextEncoder().encode(secret));
console.log(token);
