/**
 * How long `npm start` takes to come up, and what it costs in CPU: the demo as a newcomer runs it
 * (test/helpers/demo.ts's `startDemo`, on a free port offset), `--runs` times one after another. Each
 * run reports the time to its ready banner as the demo prints it ("is up in N s", from its own start)
 * and as seen from here (from the spawn, so Node's start is in it), and the CPU its processes had used
 * by then (the demo, the control plane, the gateway and the sidecars, from /proc), which tells a busy
 * machine from a slow start: with the wall time far above CPU ÷ cores, the processes waited for CPU.
 *
 *   npm run build && node_modules/.bin/node bench/demo-start.ts [--runs 5]
 */
import { parseArgs } from 'node:util';
import { startDemo } from '../test/helpers/demo.ts';
import { cpuMs, descendants } from '../test/helpers/process.ts';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '5' } } });
const runs = Number(values.runs);

interface Run {
  bannerMs: number;
  spawnMs: number;
  cpuMs: number;
  processes: number;
}

const results: Run[] = [];
for (let i = 0; i < runs; i++) {
  const started = performance.now();
  const demo = await startDemo([]);
  const spawnMs = performance.now() - started;
  const pids = [demo.process.pid!, ...descendants(demo.process.pid!)];
  const cpu = pids.reduce((sum, pid) => sum + cpuMs(pid), 0);
  const banner = /^meshgate PropTech demo is up in ([\d.]+) s$/m.exec(demo.output());
  await demo.stop();
  const run = { bannerMs: Number(banner![1]) * 1000, spawnMs, cpuMs: cpu, processes: pids.length };
  results.push(run);
  console.log(
    `run ${i + 1}: banner ${(run.bannerMs / 1000).toFixed(1)} s, from spawn ${(spawnMs / 1000).toFixed(2)} s, CPU ${(cpu / 1000).toFixed(2)} s in ${pids.length} processes`,
  );
}

const sorted = (key: keyof Run) => results.map((r) => r[key]).sort((a, b) => a - b);
const median = (xs: number[]) => xs[Math.floor(xs.length / 2)]!;
for (const [label, key] of [
  ['from spawn', 'spawnMs'],
  ['CPU', 'cpuMs'],
] as const) {
  const xs = sorted(key);
  console.log(`${label.padEnd(10)} best ${(xs[0]! / 1000).toFixed(2)} s, median ${(median(xs) / 1000).toFixed(2)} s`);
}
