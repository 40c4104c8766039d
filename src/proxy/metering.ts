/**
 * Usage metering in the proxy: every request that identified a consumer (ctx.consumer, set by jwt or
 * key-auth) is counted in the log phase, per hour, consumer, route (with its API and version) and
 * status class: requests and response bytes. Counting is a map increment; writing happens in batches
 * off the request path, every `flushInterval` (an unref'd timer), and on stop.
 *
 * Owned by the ProxyServer beside its Telemetry, and configured the same way (prepare / commit /
 * discard): the recorder, its pending counts and its store outlive snapshots; a reload that keeps the
 * `metering` settings keeps them, one that changes them flushes the old recorder into its store and
 * starts a new one. Not plugin state (PluginDeps.shared): metering is not a plugin and applies to every
 * route, and its last flush must run after the listeners drained, which the proxy's close orders.
 *
 * Durability: a clean stop (SIGTERM, a worker told to drain, the primary gone) flushes what is pending;
 * a crash loses at most the last flush interval. A failed write (Redis down, the SQLite file locked
 * longer than its busy timeout) keeps the counts for the next flush.
 */
import type { Config } from '../api/config.ts';
import type { Logger } from '../observability/logger.ts';
import { type MeteringSettings, meteringSettings, openUsageStore } from '../stores/usage/open.ts';
import {
  HOUR_MS,
  hourOf,
  STATUS_CLASSES,
  statusClassIndex,
  type UsageQuery,
  type UsageRow,
  type UsageStore,
} from '../stores/usage/store.ts';
import type { CompiledRoute } from './compiled.ts';
import type { StreamContext } from './context.ts';

type Warn = Pick<Logger, 'warn' | 'error'> | undefined;

/** Per consumer: requests of each status class (1xx…5xx), then bytes of each. */
type Counts = Float64Array;
type HourCounts = Map<CompiledRoute, Map<string, Counts>>;

/** Counts in memory and writes them to a store in batches. */
export class UsageRecorder {
  readonly store: UsageStore;
  private readonly now: () => number;
  private readonly log: Warn;
  private hour: number;
  private hourEnd: number;
  private counts: HourCounts = new Map();
  /** Hours that ended with counts not yet written. */
  private ended: { hour: number; counts: HourCounts }[] = [];
  /** Rows a failed write kept for the next one. */
  private retry: UsageRow[] = [];
  private flushing: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | null = null;
  private failing = false;

  constructor(store: UsageStore, now: () => number, log: Warn) {
    this.store = store;
    this.now = now;
    this.log = log;
    this.hour = hourOf(now());
    this.hourEnd = this.hour + HOUR_MS;
  }

  /** Starts writing every `intervalMs`. */
  start(intervalMs: number): void {
    this.timer = setInterval(() => void this.flush(), intervalMs);
    this.timer.unref();
  }

  record(route: CompiledRoute, consumer: string, status: number, bytes: number): void {
    const now = this.now();
    if (now >= this.hourEnd) this.nextHour(now);
    let byConsumer = this.counts.get(route);
    if (byConsumer === undefined) {
      byConsumer = new Map();
      this.counts.set(route, byConsumer);
    }
    let counts = byConsumer.get(consumer);
    if (counts === undefined) {
      counts = new Float64Array(10);
      byConsumer.set(consumer, counts);
    }
    const i = statusClassIndex(status);
    counts[i]!++;
    counts[i + 5]! += bytes;
  }

  private nextHour(now: number): void {
    if (this.counts.size > 0) this.ended.push({ hour: this.hour, counts: this.counts });
    this.counts = new Map();
    this.hour = hourOf(now);
    this.hourEnd = this.hour + HOUR_MS;
  }

  /** Takes what is counted so far as rows, leaving the recorder empty. */
  private take(): UsageRow[] {
    const rows = this.retry;
    this.retry = [];
    const hours = this.ended;
    this.ended = [];
    if (this.counts.size > 0) hours.push({ hour: this.hour, counts: this.counts });
    this.counts = new Map();
    for (const { hour, counts } of hours)
      for (const [route, byConsumer] of counts) {
        const api = route.version?.api ?? '';
        const version = route.version?.name ?? '';
        for (const [consumer, c] of byConsumer)
          for (let i = 0; i < 5; i++)
            if (c[i]! > 0)
              rows.push({
                hour,
                consumer,
                route: route.name,
                api,
                version,
                statusClass: STATUS_CLASSES[i]!,
                requests: c[i]!,
                bytes: c[i + 5]!,
              });
      }
    return rows;
  }

  /** Writes what is counted; one write at a time, in order. Never rejects: a failed write is kept for the next. */
  flush(): Promise<void> {
    const next = this.flushing.then(() => this.write());
    this.flushing = next;
    return next;
  }

  private async write(): Promise<void> {
    const rows = this.take();
    if (rows.length === 0) return;
    try {
      await this.store.add(rows);
      if (this.failing) this.log?.warn({ rows: rows.length }, 'usage store written again');
      this.failing = false;
    } catch (e) {
      this.retry = rows.concat(this.retry);
      if (!this.failing)
        this.log?.warn(
          { err: (e as Error)?.message ?? String(e), rows: rows.length },
          'usage store cannot be written; counts are kept and written at the next flush',
        );
      this.failing = true;
    }
  }

  /** Stops the timer, writes what is pending (the last flush) and closes the store. */
  async close(): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    await this.flush();
    if (this.retry.length > 0) {
      // One more try: a store that was briefly away on the last tick.
      await this.flush();
      if (this.retry.length > 0)
        this.log?.error(
          { rows: this.retry.length, requests: this.retry.reduce((n, r) => n + r.requests, 0) },
          'usage counts lost: the store could not be written before stopping',
        );
    }
    await this.store.close();
  }
}

/** Metering settings built for a config not yet in force; `undefined`: unchanged, `null`: off. */
export interface PreparedMetering {
  readonly recorder: UsageRecorder | null | undefined;
  readonly settings: MeteringSettings | null;
  readonly key: string;
}

export class Metering {
  recorder: UsageRecorder | null = null;
  private settings: MeteringSettings | null = null;
  private key = '';
  private readonly now: () => number;
  private readonly log: Warn;

  constructor(now: () => number, log: Warn) {
    this.now = now;
    this.log = log;
  }

  /** Opens the store a new config asks for, touching nothing in force; unchanged settings keep their recorder. */
  async prepare(config: Config): Promise<PreparedMetering> {
    const settings = meteringSettings(config);
    const key = settings === null ? '' : JSON.stringify(settings);
    if (key === this.key) return { recorder: undefined, settings, key };
    if (settings === null) return { recorder: null, settings, key };
    const store = await openUsageStore(settings, {
      warn: (message, fields) => this.log?.warn(fields ?? {}, message),
    });
    return { recorder: new UsageRecorder(store, this.now, this.log), settings, key };
  }

  commit(next: PreparedMetering): void {
    if (next.recorder === undefined) return;
    const previous = this.recorder;
    this.recorder = next.recorder;
    this.settings = next.settings;
    this.key = next.key;
    if (next.recorder !== null) next.recorder.start(next.settings!.flushIntervalMs);
    void previous?.close();
  }

  discard(next: PreparedMetering): void {
    void next.recorder?.store.close();
  }

  /** The log phase: one count for a request that identified a consumer. */
  record(ctx: StreamContext): void {
    const recorder = this.recorder;
    if (recorder === null) return;
    const consumer = ctx.consumer;
    const route = ctx.route;
    if (consumer === null || route === null) return;
    recorder.record(route, consumer.name, ctx.status, ctx.bytesOut);
  }

  /** Writes pending counts now (the admin API does, before it reads). False when nothing is metered. */
  async flush(): Promise<boolean> {
    const recorder = this.recorder;
    if (recorder === null) return false;
    await recorder.flush();
    return true;
  }

  /** Reads the store in force; null when nothing is metered. */
  async query(query: UsageQuery): Promise<UsageRow[] | null> {
    return (await this.recorder?.store.query(query)) ?? null;
  }

  get enabled(): MeteringSettings | null {
    return this.settings;
  }

  async close(): Promise<void> {
    const recorder = this.recorder;
    this.recorder = null;
    await recorder?.close();
  }
}
