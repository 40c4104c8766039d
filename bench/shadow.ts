/**
 * Shadow config micro-benchmark: CPU per request of a shadow's own work (docs/shadow.md), on a real
 * request's context. A gateway in this process serves one real request over a socket; its finished
 * StreamContext is then handed to the shadow again and again: `observe` (copy of the head, route
 * match, the candidate's draw and checks) and the live side's log hook (the comparison). What a
 * loaded machine's req/s cannot resolve (a few µs against ~50), this counts directly.
 *
 * Run (no npm needed): node_modules/.bin/node bench/shadow.ts
 *   SHADOW_BENCH_RUNS=7   runs per candidate, the median is reported (default 7)
 *   SHADOW_BENCH_N=200000 requests per run (default 200,000)
 */
import { availableParallelism, cpus } from 'node:os';
import { request } from 'undici';
import { loadConfigObject } from '../src/config/load.ts';
import type { Filter } from '../src/core/plugin.ts';
import { createPluginCatalog } from '../src/plugins/index.ts';
import type { StreamContext } from '../src/proxy/context.ts';
import { startGateway, startUpstream } from '../src/testing/servers.ts';

const RUNS = Number(process.env['SHADOW_BENCH_RUNS'] ?? 7);
const N = Number(process.env['SHADOW_BENCH_N'] ?? 200_000);

const upstream = await startUpstream();
const services = [
  { name: 'upstream', endpoints: [{ url: upstream.url }] },
  { name: 'a', endpoints: [{ url: upstream.url }] },
  { name: 'b', endpoints: [{ url: upstream.url }] },
];
const gw = await startGateway({ services, routes: [{ name: 'all', service: 'upstream' }] });
const catalog = createPluginCatalog();

/** Candidates, from the cheapest to the costliest to evaluate. */
const candidates: Record<string, unknown> = {
  // The live config again: a second match and draw, and a comparison that finds nothing.
  same: { services, routes: [{ name: 'all', service: 'upstream' }] },
  // Every request drawn to another service: each one differs, and is kept as an example.
  split: {
    services,
    routes: [
      {
        name: 'all',
        destinations: [
          { service: 'a', weight: 50 },
          { service: 'b', weight: 50 },
        ],
      },
    ],
  },
  // A dry-run rate limit that never refuses (counted in this process's memory: no workers here).
  'rate-limit': {
    services,
    routes: [
      {
        name: 'all',
        service: 'upstream',
        plugins: [{ name: 'rate-limit', config: { limits: [{ requests: 1_000_000_000, window: '1m' }], by: 'ip' } }],
      },
    ],
  },
};

const res = await request(`${gw.url()}/api/v1/items/42?verbose=1`, {
  headers: { 'user-agent': 'wrk', accept: '*/*' },
});
await res.body.dump();
const ctx = gw.ended.at(-1) as StreamContext;
const outcome = { status: ctx.status, code: ctx.code, durationMs: 1 };

function run(): number {
  const shadow = gw.proxy.runtime.shadow!;
  const start = process.cpuUsage();
  for (let i = 0; i < N; i++) {
    ctx.activeFilters = null;
    shadow.observe(ctx);
    (ctx.activeFilters![0] as Filter).onLog!(ctx, outcome);
  }
  const used = process.cpuUsage(start);
  return ((used.user + used.system) * 1000) / N;
}

console.log(`node ${process.version}, ${availableParallelism()} cores (${cpus()[0]?.model ?? '?'})`);
console.log('| candidate | ns CPU per request (median) | runs |');
console.log('|---|--:|---|');
for (const [name, config] of Object.entries(candidates)) {
  const loaded = await loadConfigObject(config, 'bench', { catalog });
  if (!loaded.ok) throw new Error(JSON.stringify(loaded.issues));
  const runs: number[] = [];
  for (let r = 0; r < RUNS; r++) {
    // A fresh shadow per run: its counters and examples start empty.
    await gw.proxy.setShadow(loaded.value, { id: `bench-${name}-${r}`, samplePercent: 100, maxExamples: 10 });
    runs.push(run());
  }
  const sorted = [...runs].sort((a, b) => a - b);
  console.log(
    `| ${name} | ${Math.round(sorted[Math.floor(sorted.length / 2)]!)} | ${runs.map(Math.round).join(' ')} |`,
  );
}
gw.proxy.clearShadow();
await gw.close();
await upstream.close();
