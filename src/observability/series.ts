/**
 * Counters and histograms for the per-request metrics, registered in a prom-client Registry like any
 * of its own metrics (text format, worker aggregation and the default collectors stay prom-client's).
 *
 * Why not prom-client's Counter and Histogram here: every `inc` and `observe` on them, even through a
 * `labels(...)` child, re-validates and re-hashes the label set and builds closures, and the proxy
 * records four of them per request. Measured in the shared bench (docs/benchmarks.md) that cost a
 * sixth of the gateway's throughput. A series here is resolved once and then costs a few additions;
 * the exposition is built only at scrape time.
 */
import type { Registry } from 'prom-client';

type Labels = Record<string, string>;

interface ExportedValue {
  labels: Record<string, string | number>;
  value: number;
  metricName?: string;
}

/** What prom-client's Registry reads of a metric (`get`, as its own metrics answer it). */
interface RegistryMetric {
  name: string;
  help: string;
  type: 'counter' | 'histogram';
  aggregator: 'sum';
  get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: ExportedValue[] }>;
  reset(): void;
}

export interface CounterSeries {
  readonly labels: Labels;
  value: number;
}

export interface HistogramSeries {
  readonly labels: Labels;
  /** Observations per bucket (not cumulative); the last slot is `+Inf`. */
  readonly counts: Float64Array;
  sum: number;
  count: number;
}

export class SeriesCounter implements RegistryMetric {
  readonly type = 'counter';
  readonly aggregator = 'sum';
  readonly name: string;
  readonly help: string;
  private readonly all: CounterSeries[] = [];

  constructor(name: string, help: string, registry: Registry) {
    this.name = name;
    this.help = help;
    registry.registerMetric(this as never);
  }

  /** A new series; the caller keeps it and increments `value`. */
  series(labels: Labels): CounterSeries {
    const s = { labels, value: 0 };
    this.all.push(s);
    return s;
  }

  async get() {
    const values = this.all.map((s) => ({ labels: s.labels, value: s.value }));
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  reset(): void {
    for (const s of this.all) s.value = 0;
  }
}

export class SeriesHistogram implements RegistryMetric {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly name: string;
  readonly help: string;
  /** Upper bounds, ascending. */
  readonly bounds: readonly number[];
  private readonly all: HistogramSeries[] = [];

  constructor(name: string, help: string, bounds: readonly number[], registry: Registry) {
    this.name = name;
    this.help = help;
    this.bounds = bounds;
    registry.registerMetric(this as never);
  }

  series(labels: Labels): HistogramSeries {
    const s = { labels, counts: new Float64Array(this.bounds.length + 1), sum: 0, count: 0 };
    this.all.push(s);
    return s;
  }

  observe(s: HistogramSeries, value: number): void {
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]!) i++;
    s.counts[i]!++;
    s.sum += value;
    s.count++;
  }

  async get() {
    const values: ExportedValue[] = [];
    for (const s of this.all) {
      let cumulative = 0;
      for (let i = 0; i < this.bounds.length; i++) {
        cumulative += s.counts[i]!;
        values.push({
          labels: { ...s.labels, le: this.bounds[i]! },
          value: cumulative,
          metricName: `${this.name}_bucket`,
        });
      }
      values.push({ labels: { ...s.labels, le: '+Inf' }, value: s.count, metricName: `${this.name}_bucket` });
      values.push({ labels: s.labels, value: s.sum, metricName: `${this.name}_sum` });
      values.push({ labels: s.labels, value: s.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  reset(): void {
    for (const s of this.all) {
      s.counts.fill(0);
      s.sum = 0;
      s.count = 0;
    }
  }
}
