/**
 * Rate-limit storage. A store counts requests per key and window; the plugin decides what a key is.
 * Implementations: in memory (this process or a gateway's primary), in Redis, each passing
 * store.conformance.ts. Consumers' plans (src/proxy/plans/) count their quotas in the same stores.
 */

/**
 * `sliding`: the sliding-window counter. `fixed`: windows of `windowMs` aligned to the epoch, so a
 * fixed window of 86,400,000 ms is exactly one UTC calendar day (epoch milliseconds have no leap
 * seconds). `calendar-month`: fixed windows that are UTC calendar months (28 to 31 days).
 * `calendar-year`: fixed windows that are UTC calendar years (365 or 366 days), as Kong's `year`.
 */
export type Algorithm = 'sliding' | 'fixed' | 'calendar-month' | 'calendar-year';

export interface Window {
  /** Requests allowed per window. */
  limit: number;
  /**
   * The window's length; for `calendar-month`, MONTH_MS, for `calendar-year`, YEAR_MS (the longest
   * month or year: it sizes expiry only).
   */
  windowMs: number;
  algorithm: Algorithm;
}

/** `windowMs` of a `calendar-month` window: 31 days, the longest month. */
export const MONTH_MS = 31 * 86_400_000;

/** `windowMs` of a `calendar-year` window: 366 days, the longest year. */
export const YEAR_MS = 366 * 86_400_000;

/** Start (ms) of the window `now` falls in. */
export function windowStart(w: Window, now: number): number {
  if (w.algorithm === 'calendar-month') {
    const d = new Date(now);
    return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
  }
  if (w.algorithm === 'calendar-year') return Date.UTC(new Date(now).getUTCFullYear(), 0, 1);
  return now - (now % w.windowMs);
}

/** End (ms, exclusive) of the window that starts at `start`. */
export function windowEnd(w: Window, start: number): number {
  if (w.algorithm === 'calendar-month') {
    const d = new Date(start);
    return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
  }
  if (w.algorithm === 'calendar-year') return Date.UTC(new Date(start).getUTCFullYear() + 1, 0, 1);
  return start + w.windowMs;
}

export interface WindowState {
  limit: number;
  /** Requests still allowed in this window after this decision (never negative). */
  remaining: number;
  /** Milliseconds until the window frees capacity again. */
  resetMs: number;
}

export interface Decision {
  allowed: boolean;
  /** One per window, in the order given. */
  windows: WindowState[];
}

export interface RateLimitStore {
  /**
   * Counts one request for `key` against every window, atomically: if any window is full, no window
   * counts it and `allowed` is false. May answer synchronously (in memory) or not (over the network).
   */
  consume(key: string, windows: readonly Window[], now: number): Decision | Promise<Decision>;
  /**
   * What `consume` would report for `key` now, without counting anything: `allowed` says whether one
   * more request would pass, `remaining` how many still would, `resetMs` the time to each window's end
   * (for the admin API's view of a consumer's quota).
   */
  peek(key: string, windows: readonly Window[], now: number): Decision | Promise<Decision>;
}

/** One key's count in one window (what a store reads to decide; shared stores return the same). */
export interface Counter {
  windowMs: number;
  /** Start of the current fixed window (ms). */
  start: number;
  current: number;
  /** Count of the window before `start`, for the sliding estimate. */
  previous: number;
}

/** How many counters the memory store keeps before it sweeps idle ones. */
const SWEEP_THRESHOLD = 100_000;

/**
 * Counts in this process. `sliding` is the sliding-window counter (as in Cloudflare's and Kong's
 * sliding policy): the previous window's count weighted by how much of it still overlaps, plus the
 * current count. It never lets 2× the limit through at a window edge, as a fixed window does, and
 * costs one counter per key and window.
 */
export class MemoryStore implements RateLimitStore {
  private readonly counters = new Map<string, Counter>();
  /** Sweep when the map grows past this; doubled when a sweep frees little, so sweeps stay rare. */
  private sweepAbove = SWEEP_THRESHOLD;

  get size(): number {
    return this.counters.size;
  }

  consume(key: string, windows: readonly Window[], now: number): Decision {
    if (this.counters.size > this.sweepAbove) this.sweep(now);
    const counters: Counter[] = [];
    const used: number[] = [];
    const times: number[] = [];
    let allowed = true;
    for (const w of windows) {
      const id = `${key}\u0000${w.windowMs}\u0000${w.algorithm}`;
      let c = this.counters.get(id);
      const start = windowStart(w, now);
      if (c === undefined) {
        c = { windowMs: w.windowMs, start, current: 0, previous: 0 };
        this.counters.set(id, c);
      } else if (start > c.start) {
        c.previous = start - c.start === w.windowMs ? c.current : 0;
        c.current = 0;
        c.start = start;
      }
      // Stamped before this counter's window began: decisions from several workers reach the primary
      // a little out of order, so one read the clock before another's rolled the window. It counts in
      // the window in force, as if made at its start; rolling back would forget that window's count.
      const at = Math.max(now, c.start);
      const count = estimate(c, w, at);
      counters.push(c);
      times.push(at);
      used.push(count);
      if (count + 1 > w.limit) allowed = false;
    }
    const states: WindowState[] = [];
    for (let i = 0; i < windows.length; i++) {
      const w = windows[i]!;
      const c = counters[i]!;
      if (allowed) c.current++;
      const count = allowed ? used[i]! + 1 : used[i]!;
      states.push({
        limit: w.limit,
        remaining: Math.max(0, Math.floor(w.limit - count)),
        resetMs: resetIn(c, w, times[i]!, allowed),
      });
    }
    return { allowed, windows: states };
  }

  peek(key: string, windows: readonly Window[], now: number): Decision {
    let allowed = true;
    const states: WindowState[] = [];
    for (const w of windows) {
      const start = windowStart(w, now);
      const c = this.counters.get(`${key}\u0000${w.windowMs}\u0000${w.algorithm}`);
      // A counter of an earlier window reads as that window's successor would (consume rolls it first).
      const rolled: Counter =
        c === undefined || start > c.start
          ? {
              windowMs: w.windowMs,
              start,
              current: 0,
              previous: c !== undefined && start - c.start === w.windowMs ? c.current : 0,
            }
          : c;
      const at = Math.max(now, rolled.start);
      const count = estimate(rolled, w, at);
      if (count + 1 > w.limit) allowed = false;
      states.push({
        limit: w.limit,
        remaining: Math.max(0, Math.floor(w.limit - count)),
        resetMs: windowEnd(w, rolled.start) - at,
      });
    }
    return { allowed, windows: states };
  }

  /** Drops counters idle for two windows (they would read as zero anyway). */
  private sweep(now: number) {
    for (const [id, c] of this.counters) if (now - c.start >= 2 * c.windowMs) this.counters.delete(id);
    this.sweepAbove = Math.max(SWEEP_THRESHOLD, 2 * this.counters.size);
  }
}

export function estimate(c: Counter, w: Window, now: number): number {
  if (w.algorithm !== 'sliding') return c.current;
  const overlap = 1 - (now - c.start) / w.windowMs;
  return c.previous * overlap + c.current;
}

/**
 * `resetMs`: for an allowed request, the time to the end of the current window (when its count starts
 * to age out); for a denied one, the time until one more request fits (Retry-After). For a sliding
 * window that is when the weighted estimate drops below `limit - 1`:
 *   previous · (1 − (t − start)/W) + current + 1 ≤ limit  ⇔  t ≥ start + W · (1 − (limit − current − 1)/previous)
 */
export function resetIn(c: Counter, w: Window, now: number, allowed: boolean): number {
  const toEnd = windowEnd(w, c.start) - now;
  if (allowed || w.algorithm !== 'sliding') return toEnd;
  const free = w.limit - c.current - 1;
  if (free >= 0 && c.previous > 0) return Math.max(1, Math.ceil(c.start + w.windowMs * (1 - free / c.previous) - now));
  // The current window alone is full: it becomes the previous one and must age out far enough.
  return Math.max(1, Math.ceil(toEnd + w.windowMs * (1 - (w.limit - 1) / c.current)));
}
