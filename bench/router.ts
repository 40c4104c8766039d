/**
 * Router micro-benchmark: ns per `Router.match` for route tables of 10 to 10,000 routes.
 *
 * Run (no npm needed): node_modules/.bin/node bench/router.ts
 *   ROUTER_BENCH_RUNS=7   runs per cell, the median is reported (default 7)
 *   ROUTER_BENCH_MS=60    time budget of one run in ms (default 60)
 *
 * What it shows: a plain path costs about the same with 1,000 routes as with 10, because exact paths
 * are one Map lookup and params/prefixes one trie walk over the path's segments.
 */
import { availableParallelism, cpus } from 'node:os';
import type { RouteMatchConfig } from '../src/api/config.ts';
import { type MatchInput, type RouteDefinition, Router } from '../src/proxy/router/router.ts';

const SIZES = [10, 100, 1_000, 10_000];
const RUNS = Number(process.env['ROUTER_BENCH_RUNS'] ?? 7);
const RUN_MS = Number(process.env['ROUTER_BENCH_MS'] ?? 60);
/** Bounds one run even on a machine fast enough to never reach the time budget. */
const MAX_ITERATIONS = 5_000_000;
const WARMUP_ITERATIONS = 200_000;
/** Lookups rotate over this many services so no single Map entry or trie branch stays hot. */
const TARGETS = 64;
/** Checked against the clock once per batch, so reading the clock does not dominate. */
const BATCH = 1024;

/** Shapes of one service's routes, as a gateway in front of many services would carry them. */
function serviceRoutes(i: number): RouteMatchConfig[] {
  return [
    { path: `/api/v1/svc${i}/items/:id`, methods: ['GET', 'PUT', 'DELETE'] },
    { path: `/api/v1/svc${i}/items/:id`, headers: { canary: 'true' } },
    { path: `/svc${i}/health` },
    { path: `/svc${i}/*` },
    { path: `/svc${i}/*`, hosts: [`svc${i}.internal`] },
  ];
}

function buildTable(size: number): { router: Router<string>; services: number } {
  const defs: RouteDefinition<string>[] = [];
  let services = 0;
  while (defs.length < size) {
    for (const match of serviceRoutes(services)) {
      if (defs.length < size) defs.push({ match, order: defs.length, value: `r${defs.length}` });
    }
    services++;
  }
  return { router: new Router(defs), services };
}

class Input implements MatchInput {
  readonly method: string;
  readonly host: string;
  readonly path: string;
  readonly query: string;
  private readonly headers: Readonly<Record<string, string>>;
  constructor(path: string, headers: Readonly<Record<string, string>> = {}) {
    this.method = 'GET';
    this.host = 'gateway.example.com';
    this.path = path;
    this.query = '';
    this.headers = headers;
  }
  header(name: string): string | undefined {
    return this.headers[name];
  }
}

const SCENARIOS: { name: string; path: (svc: number) => string; hits: boolean }[] = [
  { name: 'exact', path: (s) => `/svc${s}/health`, hits: true },
  { name: 'param', path: (s) => `/api/v1/svc${s}/items/42`, hits: true },
  { name: 'prefix', path: (s) => `/svc${s}/static/js/app.js`, hits: true },
  { name: 'miss', path: (s) => `/nope/svc${s}/x`, hits: false },
];

function inputsFor(scenario: (typeof SCENARIOS)[number], services: number): Input[] {
  const inputs: Input[] = [];
  for (let t = 0; t < TARGETS; t++) inputs.push(new Input(scenario.path((t * 7919) % services)));
  return inputs;
}

let sink = 0;

function loop(router: Router<string>, inputs: readonly Input[], iterations: number) {
  const mask = inputs.length - 1;
  for (let i = 0; i < iterations; i++) if (router.match(inputs[i & mask]!) !== null) sink++;
}

/** One timed run: ns per lookup. */
function measure(router: Router<string>, inputs: readonly Input[]): number {
  const budget = BigInt(RUN_MS) * 1_000_000n;
  const start = process.hrtime.bigint();
  let elapsed = 0n;
  let done = 0;
  while (elapsed < budget && done < MAX_ITERATIONS) {
    loop(router, inputs, BATCH);
    done += BATCH;
    elapsed = process.hrtime.bigint() - start;
  }
  return Number(elapsed) / done;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

const cells = SIZES.map((size) => {
  const { router, services } = buildTable(size);
  const inputs = SCENARIOS.map((scenario) => {
    const list = inputsFor(scenario, services);
    // A benchmark of the wrong answer is worthless: check every input resolves as intended.
    for (const input of list) {
      if ((router.match(input) !== null) !== scenario.hits) throw new Error(`${scenario.name} ${input.path}`);
    }
    return list;
  });
  return { size, router, inputs, samples: SCENARIOS.map(() => [] as number[]) };
});

for (const cell of cells) for (const inputs of cell.inputs) loop(cell.router, inputs, WARMUP_ITERATIONS);
// Interleave sizes within each round so drift (thermal, GC, JIT) spreads over all cells alike.
for (let run = 0; run < RUNS; run++) {
  for (const cell of cells) {
    cell.inputs.forEach((inputs, s) => {
      cell.samples[s]!.push(measure(cell.router, inputs));
    });
  }
}

const ns = cells.map((c) => c.samples.map(median));
const fmt = (x: number) => x.toFixed(1);
const lines = [
  `| routes | ${SCENARIOS.map((s) => `${s.name} (ns/op)`).join(' | ')} |`,
  `|---:|${SCENARIOS.map(() => '---:').join('|')}|`,
  ...cells.map((c, i) => `| ${c.size.toLocaleString('en-US')} | ${ns[i]!.map(fmt).join(' | ')} |`),
];
const at = (size: number) => ns[SIZES.indexOf(size)]!;
lines.push(
  `| **1,000 / 10** | ${at(1_000)
    .map((x, s) => `${(x / at(10)[s]!).toFixed(2)}×`)
    .join(' | ')} |`,
);

console.log(
  `Node ${process.version}, ${cpus()[0]?.model ?? 'unknown CPU'} (${availableParallelism()} CPUs); ` +
    `median of ${RUNS} runs of ${RUN_MS} ms each, ${TARGETS} rotating targets per cell.\n`,
);
console.log(lines.join('\n'));
if (sink === 0) console.log('(no lookups hit)');
