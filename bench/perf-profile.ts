/**
 * Summarises `perf script` output of a Node.js proxy (recorded with `perf record -e cpu-clock -g` and
 * node's `--perf-basic-prof-only-functions --interpreted-frames-native-stack`) into the same
 * categories as bench/cpu-profile.ts, from on-CPU samples: unlike V8's own profiler, which samples the
 * main thread by wall clock and so counts time the thread waited for a core, perf counts only CPU
 * actually used, in every thread of the process (GC helpers and the compiler too), kernel included.
 *
 *   perf script -i perf.data | node bench/perf-profile.ts [--requests N] [--top 25]
 *
 * A sample is charged to the innermost JS frame of a known script (node:http's server side, undici,
 * the proxy's own code), so a syscall undici makes counts as undici's; node:http's native parser and a
 * read that reaches `onStreamRead` (only upstream sockets do) are charged to their side too; kernel
 * time is also shown on its own. Samples with no such frame are GC (V8's heap code on the stack), the compiler (a
 * background thread compiling), or the rest of Node and V8.
 */
import { createInterface } from 'node:readline';

const HTTP_SERVER = 'node:http server';
const UNDICI = 'undici client';
const OWN = 'proxy code';
const GC = 'GC';
const COMPILER = 'V8 compiler';
const CORE = 'node core/V8, other';

const args = process.argv.slice(2);
const option = (name: string, fallback: number): number => {
  const i = args.indexOf(name);
  return i === -1 ? fallback : Number(args[i + 1]);
};
const requests = option('--requests', 0);
const top = option('--top', 25);

function categoryOfJs(frame: string): string | null {
  if (!frame.includes('JS:')) return null;
  if (frame.includes('undici/')) return UNDICI;
  if (/ node:_http_| node:http[: ]| node:internal\/http/.test(frame)) return HTTP_SERVER;
  // The lean engines do the work node:http and undici do for the other targets: counted apart from the rest.
  if (frame.includes('/proxy/upstream/lean-client.')) return 'lean upstream client';
  if (frame.includes('/proxy/listener/lean/')) return 'lean listener engine';
  if (/file:\/\//.test(frame) && !frame.includes('node_modules')) return OWN;
  if (frame.includes('node_modules/')) return 'other packages';
  return null;
}

/**
 * Native frames that belong to one side: node:http's parser and its connection list are the server's
 * (it reads client sockets in C++, never through `onStreamRead`), so a socket read that reaches
 * `onStreamRead` is an upstream connection's, undici's.
 */
function categoryOfNative(frame: string): string | null {
  if (/node::http_parser::|llhttp_/.test(frame)) return HTTP_SERVER;
  if (/JS:\S*onStreamRead node:internal\/stream_base_commons/.test(frame)) return UNDICI;
  return null;
}

const byCategory = new Map<string, { all: number; kernel: number }>();
const bySymbol = new Map<string, number>();
let total = 0;
let kernel = 0;

function account(stack: string[]): void {
  if (stack.length === 0) return;
  total++;
  const leaf = stack[0]!;
  const inKernel = leaf.includes('[kernel.kallsyms]');
  if (inKernel) kernel++;
  let category: string | null = null;
  for (const frame of stack) {
    category = categoryOfJs(frame) ?? categoryOfNative(frame);
    if (category !== null) break;
  }
  if (category === null) {
    const all = stack.join('\n');
    if (/Heap::|Scavenge|MarkCompact|GCTracer|ConcurrentMarking|Sweeper|MinorMS/.test(all)) category = GC;
    else if (/compiler::|Compile|Maglev|Turbofan|Pipeline/.test(all)) category = COMPILER;
    else category = CORE;
  }
  const entry = byCategory.get(category) ?? { all: 0, kernel: 0 };
  entry.all++;
  if (inKernel) entry.kernel++;
  byCategory.set(category, entry);
  const symbol = symbolOf(leaf);
  bySymbol.set(symbol, (bySymbol.get(symbol) ?? 0) + 1);
}

/** `ffffffff81 tcp_sendmsg+0x12 ([kernel.kallsyms])` → `tcp_sendmsg [k]`. */
function symbolOf(frame: string): string {
  const m = /^\s*[0-9a-f]+\s+(.*?)(?:\+0x[0-9a-f]+)?\s+\((.*)\)\s*$/.exec(frame);
  if (m === null) return frame.trim();
  const where = m[2]!.includes('kernel') ? ' [k]' : '';
  return `${m[1]!.replace(/^JS:/, '').replace(/:\d+:\d+$/, '')}${where}`;
}

let stack: string[] = [];
let samplePeriodUs = 0;
for await (const line of createInterface({ input: process.stdin })) {
  if (line.trim() === '') {
    account(stack);
    stack = [];
    continue;
  }
  if (line[0] === ' ' || line[0] === '\t') stack.push(line);
  else {
    // Header: `node 1234 [001] 5.678: 1001001 cpu-clock:` (the period, in ns, with -F or -c).
    const m = /:\s+(\d+)\s+cpu-clock/.exec(line);
    if (m !== null && samplePeriodUs === 0) samplePeriodUs = Number(m[1]) / 1000;
  }
}
account(stack);

const pct = (n: number) => ((100 * n) / total).toFixed(1).padStart(5);
const perRequest = (n: number) =>
  requests > 0 && samplePeriodUs > 0 ? `${((n * samplePeriodUs) / requests).toFixed(2).padStart(7)} µs/req` : '';
console.log(
  `${total} on-CPU samples${samplePeriodUs > 0 ? ` of ${samplePeriodUs.toFixed(0)} µs` : ''}, ${pct(kernel)} % in the kernel` +
    (requests > 0 && samplePeriodUs > 0 ? `; ${((total * samplePeriodUs) / requests).toFixed(1)} µs per request` : ''),
);
console.log('\nCPU by category (kernel time charged to the JS that made the call):');
for (const [category, { all, kernel: k }] of [...byCategory].sort((a, b) => b[1].all - a[1].all))
  console.log(`  ${pct(all)} %  ${perRequest(all)}  ${category.padEnd(22)} (kernel ${pct(k)} %)`);
console.log(`\ntop ${top} symbols by self samples:`);
for (const [symbol, n] of [...bySymbol].sort((a, b) => b[1] - a[1]).slice(0, top))
  console.log(`  ${pct(n)} %  ${symbol}`);
