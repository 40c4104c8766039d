/**
 * Summarises a V8 CPU profile (`node --cpu-prof`) of a proxy under load: busy time split into who
 * spent it (node:http's server side, undici's client side, the proxy's own code, GC, the rest of
 * Node's core) and the top frames by self time, as text small enough to commit.
 *
 *   node bench/cpu-profile.ts PROFILE.cpuprofile [--top 25] [--requests N] [--last SECONDS] [--category NAME]
 *
 * A frame is charged by its script: `node:_http_*` is the HTTP server, `undici/` the client, the
 * proxy's `dist/`/`src/` its own work. Node's shared machinery (net, streams, events, timers, buffers,
 * wasm and native frames) is charged to the nearest caller that is one of those, so a socket write
 * undici starts counts as undici's and one `res.end()` starts counts as the server's; what no such
 * caller started (the event loop reading a socket) stays "node core, other". With `--requests N` every
 * share is also given in µs per request; `--last S` counts only the samples of the profile's last S
 * seconds (the measured load and the exit, not the start and the warm-up).
 */
import { readFileSync } from 'node:fs';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

const HTTP_SERVER = 'node:http server';
const UNDICI = 'undici client';
const OWN = 'proxy code';
const GC = 'GC';
const CORE = 'node core, other';
const PROGRAM = 'V8/native, unattributed';

const args = process.argv.slice(2);
const file = args.find((a) => !a.startsWith('--'));
if (file === undefined) {
  console.error('usage: node bench/cpu-profile.ts PROFILE.cpuprofile [--top N] [--requests N]');
  process.exit(2);
}
const option = (name: string, fallback: number): number => {
  const i = args.indexOf(name);
  return i === -1 ? fallback : Number(args[i + 1]);
};
const top = option('--top', 25);
const requests = option('--requests', 0);
const lastSeconds = option('--last', 0);
const onlyCategory = args.includes('--category') ? args[args.indexOf('--category') + 1] : undefined;

const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const byId = new Map<number, ProfileNode>();
const parent = new Map<number, number>();
for (const n of profile.nodes) {
  byId.set(n.id, n);
  for (const c of n.children ?? []) parent.set(c, n.id);
}

/** The category a frame's own script gives it, or null when it is shared machinery. */
function ownCategory(frame: CallFrame): string | null {
  const { url, functionName } = frame;
  if (functionName === '(garbage collector)') return GC;
  if (functionName === '(program)') return PROGRAM;
  if (/undici\//.test(url)) return UNDICI;
  if (/^node:_http_|^node:http$|^node:internal\/http/.test(url)) return HTTP_SERVER;
  if (url.startsWith('file:') && !/node_modules/.test(url)) return OWN;
  if (url.startsWith('file:') && /node_modules/.test(url)) return `package ${packageOf(url)}`;
  return null;
}

function packageOf(url: string): string {
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  return m === null ? '?' : m[1]!;
}

const categoryCache = new Map<number, string>();
function categoryOf(id: number): string {
  const cached = categoryCache.get(id);
  if (cached !== undefined) return cached;
  const node = byId.get(id)!;
  let category = ownCategory(node.callFrame);
  if (category === null) {
    const p = parent.get(id);
    category = p === undefined || byId.get(p)!.callFrame.functionName === '(root)' ? CORE : categoryOf(p);
  }
  categoryCache.set(id, category);
  return category;
}

// Self time per node: each sample's delta belongs to the node sampled.
const selfUs = new Map<number, number>();
const from = lastSeconds > 0 ? profile.endTime - lastSeconds * 1e6 : profile.startTime;
let t = profile.startTime;
for (let i = 0; i < profile.samples.length; i++) {
  const id = profile.samples[i]!;
  const delta = profile.timeDeltas[i] ?? 0;
  t += delta;
  if (t < from) continue;
  selfUs.set(id, (selfUs.get(id) ?? 0) + delta);
}

let idleUs = 0;
let busyUs = 0;
const byCategory = new Map<string, number>();
const byFrame = new Map<string, { us: number; category: string }>();
for (const [id, us] of selfUs) {
  const frame = byId.get(id)!.callFrame;
  if (frame.functionName === '(idle)' || frame.functionName === '(root)') {
    idleUs += us;
    continue;
  }
  busyUs += us;
  const category = categoryOf(id);
  byCategory.set(category, (byCategory.get(category) ?? 0) + us);
  const where = frame.url === '' ? '' : ` ${shortUrl(frame.url)}:${frame.lineNumber + 1}`;
  const key = `${frame.functionName || '(anonymous)'}${where}`;
  const entry = byFrame.get(key);
  if (entry === undefined) byFrame.set(key, { us, category });
  else entry.us += us;
}

function shortUrl(url: string): string {
  const nm = url.lastIndexOf('node_modules/');
  if (nm !== -1) return url.slice(nm + 'node_modules/'.length);
  const dist = url.search(/\/(dist|src)\//);
  if (dist !== -1) return url.slice(dist + 1);
  return url.replace(/^file:\/\/.*\//, '');
}

const pct = (us: number) => ((100 * us) / busyUs).toFixed(1).padStart(5);
const perRequest = (us: number) => (requests > 0 ? `${(us / requests).toFixed(2).padStart(7)} µs/req` : '');
const wall = profile.endTime - from;
console.log(`profile: ${file}`);
console.log(
  `wall ${(wall / 1e6).toFixed(2)} s, busy ${(busyUs / 1e6).toFixed(2)} s, idle ${(idleUs / 1e6).toFixed(2)} s` +
    (requests > 0 ? `, ${requests} requests, ${(busyUs / requests).toFixed(1)} µs busy per request` : ''),
);
console.log('\nbusy time by category (self time; shared core charged to its caller):');
for (const [category, us] of [...byCategory].sort((a, b) => b[1] - a[1]))
  console.log(`  ${pct(us)} %  ${perRequest(us)}  ${category}`);
console.log(`\ntop ${top} frames by self time${onlyCategory === undefined ? '' : ` in ${onlyCategory}`}:`);
const frames = [...byFrame].filter(([, f]) => onlyCategory === undefined || f.category === onlyCategory);
for (const [key, { us, category }] of frames.sort((a, b) => b[1].us - a[1].us).slice(0, top))
  console.log(`  ${pct(us)} %  ${key}  [${category}]`);
