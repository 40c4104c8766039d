/**
 * prom-client's classes, each from its own file, and its default metrics but one, instead of the
 * package's index. The index loads every part of prom-client (push gateway, summaries, cluster), and
 * its process-CPU metric loads @opentelemetry/api's CommonJS build (for exemplars, which meshgate
 * never turns on): about 140 modules and 1 MiB of heap in each sidecar for three counters
 * (bench/sidecar-modules.ts). prom-client 15 has no `exports` map, so its files load by path; the CPU
 * counters are rewritten here with the same names, help and values, so `/metrics` reads as before
 * (prom.test.ts compares the two; promtool checks the format in test/e2e/telemetry.test.ts).
 */
import { createRequire } from 'node:module';
import type * as Prom from 'prom-client';

const load = createRequire(import.meta.url);

export const Registry: typeof Prom.Registry = load('prom-client/lib/registry.js');
export const Counter: typeof Prom.Counter = load('prom-client/lib/counter.js');
export const Gauge: typeof Prom.Gauge = load('prom-client/lib/gauge.js');
export type Registry = Prom.Registry;
export type Counter<T extends string = string> = Prom.Counter<T>;
export type Gauge<T extends string = string> = Prom.Gauge<T>;

/** The primary's view of its workers' registries (admin `/metrics`, telemetry). */
export function aggregatorRegistry(): typeof Prom.AggregatorRegistry {
  return load('prom-client/lib/cluster.js');
}

type DefaultMetric = (registry: Prom.Registry, config: { register: Prom.Registry }) => void;

/** prom-client's default metrics after process CPU, in its order (lib/defaultMetrics.js). */
const DEFAULT_METRICS = [
  'processStartTime',
  'osMemoryHeap',
  'processOpenFileDescriptors',
  'processMaxFileDescriptors',
  'eventLoopLag',
  ...(typeof process.getActiveResourcesInfo === 'function' ? ['processResources'] : []),
  'processHandles',
  'processRequests',
  'heapSizeAndUsed',
  'heapSpacesSizeAndUsed',
  'version',
  'gc',
];

/** What `collectDefaultMetrics({ register })` registers, in the same order and with the same output. */
export function collectDefaultMetrics(register: Prom.Registry): void {
  processCpu(register);
  const config = { register, eventLoopMonitoringPrecision: 10 };
  for (const name of DEFAULT_METRICS) (load(`prom-client/lib/metrics/${name}.js`) as DefaultMetric)(register, config);
}

/** prom-client's lib/metrics/processCpuTotal.js without exemplars: the first counter's collect sets all three. */
function processCpu(register: Prom.Registry): void {
  let last = process.cpuUsage();
  const registers = [register];
  new Counter({
    name: 'process_cpu_user_seconds_total',
    help: 'Total user CPU time spent in seconds.',
    registers,
    collect() {
      const now = process.cpuUsage();
      const user = now.user - last.user;
      const sys = now.system - last.system;
      last = now;
      this.inc(user / 1e6);
      system.inc(sys / 1e6);
      total.inc((user + sys) / 1e6);
    },
  });
  const system = new Counter({
    name: 'process_cpu_system_seconds_total',
    help: 'Total system CPU time spent in seconds.',
    registers,
  });
  const total = new Counter({
    name: 'process_cpu_seconds_total',
    help: 'Total user and system CPU time spent in seconds.',
    registers,
  });
}
