/**
 * What each part of a sidecar's code costs in memory: a fresh Node process per row, with the
 * sidecar's settings (`--max-semi-space-size`, `--expose-gc`, MALLOC_ARENA_MAX=1, as
 * src/cli/node-flags.ts gives them), a bare `node:http` server listening, then the row's modules
 * imported one after another; after each import three full GCs, then RSS and V8 heap used. A row
 * reports what its last module added to the ones before it (so shared dependencies count once, in the
 * first row that loads them) and the process's total.
 *
 *   npm run build && node_modules/.bin/node bench/sidecar-modules.ts [--runs 3]
 *
 * RSS moves in steps of a few MiB when V8 or the allocator grows a space, wherever the threshold
 * falls, so one module's RSS delta can hold another's step; the heap delta has no such steps. The
 * totals (every module loaded) are what to compare between builds.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { DEFAULT_SIDECAR_SEMI_SPACE_MIB } from '../src/core/defaults.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const dist = (path: string) => `${root}dist/${path}`;

/** In the order a sidecar loads them: third-party first, then its own layers. */
const CHAIN: { label: string; specifier: string }[] = [
  { label: 'pino (logging)', specifier: 'pino' },
  { label: 'undici Client (lib/dispatcher/client.js only)', specifier: 'undici/lib/dispatcher/client.js' },
  { label: 'prom-client classes by file (observability/prom.ts)', specifier: dist('observability/prom.js') },
  { label: 'config validator (precompiled) and pipeline', specifier: dist('config/pipeline.js') },
  { label: 'data plane (proxy, router, upstream, actions)', specifier: dist('proxy/data-plane.js') },
  { label: 'admin API and metrics', specifier: dist('admin/server.js') },
  { label: 'mesh client (subscription, identity)', specifier: dist('cli/mesh-proxy.js') },
  { label: 'sidecar command', specifier: dist('cli/sidecar.js') },
  { label: 'for scale: the built-in plugins (not loaded unless named)', specifier: dist('plugins/index.js') },
  { label: 'for scale: the config schema in TypeBox (not loaded)', specifier: dist('api/mesh.js') },
  { label: 'for scale: prom-client index, with @opentelemetry/api (not loaded)', specifier: 'prom-client' },
];

const CHILD = `
import { createServer } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
const server = createServer((_q, r) => r.end('x'));
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const mib = (n) => n / 1048576;
async function measure() {
  for (let i = 0; i < 3; i++) { globalThis.gc(); await sleep(50); }
  const m = process.memoryUsage();
  return [mib(m.rss), mib(m.heapUsed)];
}
const rows = [await measure()];
for (const specifier of JSON.parse(process.env.CHAIN)) { await import(specifier); rows.push(await measure()); }
server.close();
console.log(JSON.stringify(rows));
`;

function run(): number[][] {
  const out = execFileSync(
    process.execPath,
    [`--max-semi-space-size=${DEFAULT_SIDECAR_SEMI_SPACE_MIB}`, '--expose-gc', '--input-type=module', '-e', CHILD],
    {
      cwd: root,
      env: { ...process.env, MALLOC_ARENA_MAX: '1', CHAIN: JSON.stringify(CHAIN.map((c) => c.specifier)) },
      encoding: 'utf8',
      timeout: 60_000,
    },
  );
  return JSON.parse(out) as number[][];
}

const { values } = parseArgs({ options: { runs: { type: 'string', default: '3' } } });
const runs = Array.from({ length: Number(values.runs) }, run);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const at = (row: number, col: number) => median(runs.map((r) => r[row]![col]!));
const fmt = (n: number) => n.toFixed(1).padStart(6);
console.log(`medians of ${runs.length} fresh processes; MiB`);
console.log(`${'what'.padEnd(60)}   +RSS  +heap    RSS   heap`);
console.log(`${'bare node:http server'.padEnd(60)} ${fmt(0)} ${fmt(0)} ${fmt(at(0, 0))} ${fmt(at(0, 1))}`);
CHAIN.forEach((c, i) => {
  const d = (col: number) => median(runs.map((r) => r[i + 1]![col]! - r[i]![col]!));
  console.log(`${c.label.padEnd(60)} ${fmt(d(0))} ${fmt(d(1))} ${fmt(at(i + 1, 0))} ${fmt(at(i + 1, 1))}`);
});
