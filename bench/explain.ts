/**
 * What decision trails (docs/explain.md) cost on the request path: one gateway in this process, on
 * loopback, sent requests by an undici pool, with `observability.explain` absent (off), configured
 * with sampleRate 0 (nothing recorded unless asked), and sampleRate 1 (every request recorded), in
 * alternating rounds on the same warmed-up process (a reload switches the setting).
 *
 * Run (no npm needed): node_modules/.bin/node bench/explain.ts
 *   EXPLAIN_BENCH_ROUNDS=7        rounds per variant, the median is reported (default 7)
 *   EXPLAIN_BENCH_REQUESTS=4000   requests per round (default 4000), CONCURRENCY at once (default 8)
 *
 * Reported per variant: CPU time of this process per request (client, gateway and upstream together,
 * so only the differences between variants are the trails' cost; less disturbed than req/s by other
 * load on the machine) and req/s. Then, alone in a loop (the least disturbed by other load: the best
 * of several runs), what a recorded request adds (the trail, its notes of the route and one try, the
 * log phase's copy, the ring) and what reading one trail back costs (off the request path).
 */
import { availableParallelism, cpus } from 'node:os';
import { Pool } from 'undici';
import { RecentRequests } from '../src/observability/recent-requests.ts';
import type { StreamContext } from '../src/proxy/context.ts';
import { explainTrail } from '../src/proxy/explain/read.ts';
import { finishTrail, Trail } from '../src/proxy/explain/trail.ts';
import { startGateway, startUpstream } from '../src/testing/servers.ts';

const ROUNDS = Number(process.env['EXPLAIN_BENCH_ROUNDS'] ?? 7);
const REQUESTS = Number(process.env['EXPLAIN_BENCH_REQUESTS'] ?? 4000);
const CONCURRENCY = Number(process.env['CONCURRENCY'] ?? 8);
const WARMUP_REQUESTS = 5000;
const BODY = '{"id":42,"name":"item","price":1999,"tags":["a","b"],"verbose":true,"ok":true,"more":"x"}';

const upstream = await startUpstream((_req, res) => {
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(BODY) });
  res.end(BODY);
});
const config = (explain: Record<string, unknown> | undefined) => ({
  ...(explain === undefined ? {} : { observability: { explain } }),
  services: [{ name: 'upstream', endpoints: [{ url: upstream.url }] }],
  routes: [
    { name: 'other', match: { path: '/other/*', headers: { canary: 'true' } }, service: 'upstream' },
    { name: 'all', service: 'upstream' },
  ],
});
const VARIANTS: [string, Record<string, unknown> | undefined][] = [
  ['off', undefined],
  ['sampleRate 0', { size: 128, sampleRate: 0 }],
  ['sampleRate 1', { size: 128, sampleRate: 1 }],
];

const gw = await startGateway(config(undefined));
const pool = new Pool(gw.url(), { connections: CONCURRENCY, pipelining: 1 });

async function send(n: number): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < n) {
      next++;
      const res = await pool.request({ method: 'GET', path: '/api/v1/items/42?verbose=1' });
      await res.body.dump();
      if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}`);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
}

async function round(n: number): Promise<{ cpuUs: number; rps: number }> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await send(n);
  const wall = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  return { cpuUs: (cpu.user + cpu.system) / n, rps: (n / wall) * 1000 };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;
const results = new Map<string, { cpuUs: number[]; rps: number[] }>(VARIANTS.map(([v]) => [v, { cpuUs: [], rps: [] }]));
for (const [, explain] of VARIANTS) {
  await gw.apply(config(explain));
  await send(WARMUP_REQUESTS);
}
for (let r = 0; r < ROUNDS; r++) {
  for (const [name, explain] of VARIANTS) {
    await gw.apply(config(explain));
    const { cpuUs, rps } = await round(REQUESTS);
    results.get(name)!.cpuUs.push(cpuUs);
    results.get(name)!.rps.push(rps);
  }
}

// The recording work alone, on a real finished request's context.
const ctx = gw.ended.at(-1) as StreamContext;
const ring = new RecentRequests(256);
ring.resizeTrails(128);
const endpoint = ctx.endpoint!;
const breaker = ctx.destination!.service.breaker;
const LOOP = 200_000;
const bestNs = (fn: () => void) => {
  let best = Number.POSITIVE_INFINITY;
  for (let run = 0; run < 9; run++) {
    const t0 = process.cpuUsage();
    for (let i = 0; i < LOOP; i++) fn();
    const t = process.cpuUsage(t0);
    best = Math.min(best, ((t.user + t.system) * 1000) / LOOP);
  }
  return best;
};
const record = () => {
  const trail = new Trail(ctx, true);
  trail.route = ctx.route;
  trail.roll = 42;
  trail.drawn = true;
  trail.tryStarted(endpoint, breaker, false);
  ctx.trail = trail;
  finishTrail(ctx, 1, 1);
  ring.add(ctx, 1, 1);
  ctx.trail = null;
};
const recordNs = bestNs(record);
const noTrailNs = bestNs(() => ring.add(ctx, 1, 1));
ctx.trail = new Trail(ctx, true);
ctx.trail.route = ctx.route;
ctx.trail.tryStarted(endpoint, breaker, false);
finishTrail(ctx, 1, 1);
const kept = ctx.trail;
ctx.trail = null;
const readNs = bestNs(() => explainTrail(kept));

await pool.close();
await gw.close();
await upstream.close();

console.log(
  `${cpus()[0]?.model ?? 'cpu'}, ${availableParallelism()} cores; ${ROUNDS} rounds of ${REQUESTS} requests, ${CONCURRENCY} at once\n`,
);
console.log('| explain | CPU µs per request (median) | rounds | req/s (median) | CPU vs off |');
console.log('|---|--:|---|--:|--:|');
const base = median(results.get('off')!.cpuUs);
for (const [name] of VARIANTS) {
  const r = results.get(name)!;
  const cpu = median(r.cpuUs);
  console.log(
    `| ${name} | ${cpu.toFixed(1)} | ${r.cpuUs.map((c) => c.toFixed(0)).join(' ')} | ${Math.round(median(r.rps))} | ${cpu - base >= 0 ? '+' : ''}${(cpu - base).toFixed(1)} µs (${(((cpu - base) / base) * 100).toFixed(1)}%) |`,
  );
}
console.log(
  `\nAlone, best of 9 runs of ${LOOP}: recording one request's trail (trail, route, draw, one try, log phase, ring) ` +
    `${recordNs.toFixed(0)} ns (the ring's record without a trail: ${noTrailNs.toFixed(0)} ns); ` +
    `reading one back as JSON (off the request path) ${(readNs / 1000).toFixed(1)} µs.`,
);
