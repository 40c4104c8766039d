/**
 * An adaptive concurrency limit per service (`services[].adaptiveConcurrency`): the gradient idea of
 * Envoy's adaptive concurrency filter and Netflix's concurrency-limits. The limit on tries in flight
 * follows the service's latency: while sampled latency stays near the unloaded latency (minRTT) the
 * limit grows; when requests start to queue at the service, latency rises and the limit falls, and
 * what is over it is shed at once (503 MG_CONCURRENCY_LIMITED) instead of waiting in that queue.
 *
 *   gradient = clamp(minRTT × (1 + tolerance) / sampleRTT, 0.5, 2)
 *   next     = limit × gradient + headroom          (headroom: √limit unless configured)
 *   limit    = clamp(limit + smoothing × (next − limit), minConcurrency, maxConcurrency)
 *
 * sampleRTT is the median latency of the tries that ended in the last sample interval. minRTT is
 * measured Envoy-style: the limit is pinned to `minConcurrency` until `minRttRequests` tries started in
 * that window have finished, their median is the new minRTT, and the previous limit is put
 * back; again every `minRttInterval` (plus jitter), so a service whose unloaded latency drifts is
 * followed. A window-long baseline (Gradient2) drifts upwards under sustained overload; a measurement
 * at low concurrency does not.
 *
 * Hot path: `tryAcquire` is a comparison and an increment; `release` a decrement, a clock read, a
 * store into a preallocated buffer and a comparison. The recalculation runs from `release` at most once
 * per sample interval (it sorts that buffer in place).
 */
import type { AdaptiveConcurrencyConfig } from '../../api/config.ts';
import type { Clock } from '../../core/clock.ts';
import {
  AC_MAX_GRADIENT,
  AC_MIN_GRADIENT,
  AC_SAMPLE_BUFFER,
  AC_SAMPLE_PERCENTILE,
  DEFAULT_AC_JITTER_PERCENT,
  DEFAULT_AC_MAX_CONCURRENCY,
  DEFAULT_AC_MIN_CONCURRENCY,
  DEFAULT_AC_MIN_RTT_INTERVAL_MS,
  DEFAULT_AC_MIN_RTT_REQUESTS,
  DEFAULT_AC_SAMPLE_INTERVAL_MS,
  DEFAULT_AC_SMOOTHING,
  DEFAULT_AC_TOLERANCE_PERCENT,
} from '../../core/defaults.ts';
import { parseDuration } from '../../core/duration.ts';

/**
 * minRTT is never taken below this (ms): the clock counts whole milliseconds, and a sub-millisecond
 * service measured as 0 would make every later sample look infinitely slow.
 */
const MIN_RTT_FLOOR_MS = 1;

export interface AdaptiveConcurrencySettings {
  readonly sampleIntervalMs: number;
  /** 0: minRTT is measured once, when the service starts. */
  readonly minRttIntervalMs: number;
  readonly minRttRequests: number;
  readonly jitterPercent: number;
  /** A fraction: 0.25 for 25 %. */
  readonly tolerance: number;
  readonly minConcurrency: number;
  readonly maxConcurrency: number;
  /** Added to each new limit; null: √limit. */
  readonly headroom: number | null;
  readonly smoothing: number;
}

/** The settings of a validated `adaptiveConcurrency` block, defaults filled in. */
export function adaptiveConcurrencySettings(config: AdaptiveConcurrencyConfig): AdaptiveConcurrencySettings {
  const minConcurrency = config.minConcurrency ?? DEFAULT_AC_MIN_CONCURRENCY;
  return {
    sampleIntervalMs: parseDuration(config.sampleInterval ?? '') ?? DEFAULT_AC_SAMPLE_INTERVAL_MS,
    minRttIntervalMs: parseDuration(config.minRttInterval ?? '') ?? DEFAULT_AC_MIN_RTT_INTERVAL_MS,
    minRttRequests: config.minRttRequests ?? DEFAULT_AC_MIN_RTT_REQUESTS,
    jitterPercent: config.jitter ?? DEFAULT_AC_JITTER_PERCENT,
    tolerance: (config.tolerance ?? DEFAULT_AC_TOLERANCE_PERCENT) / 100,
    minConcurrency,
    maxConcurrency: Math.max(minConcurrency, config.maxConcurrency ?? DEFAULT_AC_MAX_CONCURRENCY),
    headroom: config.headroom ?? null,
    smoothing: config.smoothing ?? DEFAULT_AC_SMOOTHING,
  };
}

export class AdaptiveConcurrency {
  readonly settings: AdaptiveConcurrencySettings;
  /** Tries in flight now. */
  inFlight = 0;
  /** The whole-number limit the hot path compares with. */
  limit: number;
  /** Tries refused over the limit (the admin API's count; the metric counts requests). */
  shed = 0;
  /** The unloaded latency, ms; 0 until the first measurement ends. */
  minRttMs = 0;
  /** Median latency of the last sample interval, ms (0: none yet). */
  lastSampleMs = 0;
  lastGradient = 1;
  private exact: number;
  private readonly clock: Clock;
  private readonly random: () => number;
  private measuring = true;
  /** Tries started before this time are not sampled (they were admitted under another limit). */
  private sampleFrom: number;
  /** The limit to put back when a minRTT measurement ends. */
  private deferred: number;
  /** Latencies (ms) of the first tries ended since the last recalculation; `count` may exceed its length. */
  private readonly samples: Float64Array;
  private count = 0;
  /** Most tries in flight at once since the last recalculation. */
  private peak = 0;
  private nextUpdateAt = 0;
  private nextMinRttAt = 0;

  constructor(settings: AdaptiveConcurrencySettings, clock: Clock, random: () => number = Math.random) {
    this.settings = settings;
    this.clock = clock;
    this.random = random;
    this.exact = settings.minConcurrency;
    this.limit = settings.minConcurrency;
    this.deferred = settings.minConcurrency;
    this.sampleFrom = clock.now();
    this.samples = new Float64Array(Math.max(AC_SAMPLE_BUFFER, settings.minRttRequests));
  }

  /** Clock time, for a try's `release`. */
  now(): number {
    return this.clock.now();
  }

  /** Counts a try in, or refuses it (false) when the limit is reached. */
  tryAcquire(): boolean {
    if (this.inFlight >= this.limit) {
      this.shed++;
      return false;
    }
    if (++this.inFlight > this.peak) this.peak = this.inFlight;
    return true;
  }

  /** The try admitted at `startedAt` (clock time) is over: its latency is a sample. */
  release(startedAt: number): void {
    this.inFlight--;
    const now = this.clock.now();
    if (startedAt >= this.sampleFrom) {
      const i = this.count++;
      if (i < this.samples.length) this.samples[i] = now - startedAt;
    }
    if (now >= this.nextUpdateAt) this.update(now);
  }

  /** A try counted in but never sent (the pool refused it): its slot comes back, with no sample. */
  cancel(): void {
    this.inFlight--;
  }

  private update(now: number): void {
    const s = this.settings;
    if (this.measuring) {
      if (this.count < s.minRttRequests) return;
      this.minRttMs = Math.max(MIN_RTT_FLOOR_MS, this.aggregate());
      this.measuring = false;
      this.setLimit(this.deferred);
      this.nextMinRttAt =
        s.minRttIntervalMs === 0
          ? Number.POSITIVE_INFINITY
          : now + s.minRttIntervalMs * (1 + (this.random() * s.jitterPercent) / 100);
      this.resetSamples(now);
      return;
    }
    if (now >= this.nextMinRttAt) {
      this.deferred = this.exact;
      this.measuring = true;
      this.sampleFrom = now;
      this.count = 0;
      this.setLimit(s.minConcurrency);
      // Every release checks whether the measurement is complete.
      this.nextUpdateAt = 0;
      return;
    }
    if (this.count === 0) {
      this.nextUpdateAt = now + s.sampleIntervalMs;
      return;
    }
    const sample = this.aggregate();
    const peak = this.peak;
    this.resetSamples(now);
    this.lastSampleMs = sample;
    let gradient = sample > 0 ? (this.minRttMs * (1 + s.tolerance)) / sample : AC_MAX_GRADIENT;
    if (gradient < AC_MIN_GRADIENT) gradient = AC_MIN_GRADIENT;
    else if (gradient > AC_MAX_GRADIENT) gradient = AC_MAX_GRADIENT;
    this.lastGradient = gradient;
    const limit = this.exact;
    let next = limit * gradient + (s.headroom ?? Math.sqrt(limit));
    // Demand never came near the limit: low latency says nothing about a higher one (Gradient2's
    // app-limited check), and a limit grown while idle would let a burst through unchecked.
    if (next > limit && peak * 2 < limit) next = limit;
    this.setLimit(limit + s.smoothing * (next - limit));
  }

  /** The AC_SAMPLE_PERCENTILE of the latencies kept since the last recalculation (count > 0). */
  private aggregate(): number {
    const kept = this.samples.subarray(0, Math.min(this.count, this.samples.length)).sort();
    return kept[Math.floor(((kept.length - 1) * AC_SAMPLE_PERCENTILE) / 100)]!;
  }

  private resetSamples(now: number): void {
    this.count = 0;
    this.peak = this.inFlight;
    this.nextUpdateAt = now + this.settings.sampleIntervalMs;
  }

  private setLimit(value: number): void {
    const s = this.settings;
    this.exact = Math.min(s.maxConcurrency, Math.max(s.minConcurrency, value));
    this.limit = Math.floor(this.exact);
  }

  describe() {
    return {
      limit: this.limit,
      inFlight: this.inFlight,
      measuringMinRtt: this.measuring,
      minRttMs: round(this.minRttMs),
      lastSampleMs: round(this.lastSampleMs),
      lastGradient: round(this.lastGradient),
      shed: this.shed,
      settings: { ...this.settings, tolerance: this.settings.tolerance * 100 },
    };
  }
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}
