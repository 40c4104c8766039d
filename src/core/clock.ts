/**
 * Time as a dependency (house rules 7 and 10): code that waits or expires things (health checks,
 * ejections, retry budgets, registry TTLs, push debouncing) takes a Clock, so tests move time by hand
 * instead of sleeping.
 */

/** An opaque handle of a scheduled callback. */
export type TimerHandle = { readonly __timer: unique symbol } | object;

/** Cancels a scheduled callback; calling it after the callback ran does nothing. */
export type CancelTimer = () => void;

export interface Clock {
  /** Milliseconds since the epoch (only differences matter to timing logic). */
  now(): number;
  /** Runs `fn` once after `ms`. Timers never keep the process alive on their own. */
  setTimer(fn: () => void, ms: number): TimerHandle;
  clearTimer(handle: TimerHandle): void;
}

export const systemClock: Clock = Object.freeze({
  now: () => Date.now(),
  setTimer(fn: () => void, ms: number): TimerHandle {
    const timer = setTimeout(fn, ms);
    timer.unref();
    return timer;
  },
  clearTimer(handle: TimerHandle): void {
    clearTimeout(handle as NodeJS.Timeout);
  },
});

/** `setTimer` with its cancel as a function. */
export function schedule(clock: Clock, fn: () => void, ms: number): CancelTimer {
  const handle = clock.setTimer(fn, ms);
  return () => clock.clearTimer(handle);
}

interface Scheduled {
  at: number;
  seq: number;
  fn: () => void;
}

/** A clock that moves only when told: `advance` runs every timer that falls due, in time order. */
export class ManualClock implements Clock {
  private current: number;
  private seq = 0;
  private readonly timers = new Set<Scheduled>();

  constructor(start = 1_700_000_000_000) {
    this.current = start;
  }

  now(): number {
    return this.current;
  }

  setTimer(fn: () => void, ms: number): TimerHandle {
    const timer: Scheduled = { at: this.current + Math.max(0, ms), seq: this.seq++, fn };
    this.timers.add(timer);
    return timer;
  }

  clearTimer(handle: TimerHandle): void {
    this.timers.delete(handle as Scheduled);
  }

  /** Timers still waiting (for tests that check nothing leaks). */
  get pending(): number {
    return this.timers.size;
  }

  /** Moves time forward by `ms`, firing due timers (including ones they set) at their own time. */
  advance(ms: number): void {
    const end = this.current + ms;
    for (;;) {
      let due: Scheduled | undefined;
      for (const t of this.timers)
        if (t.at <= end && (due === undefined || t.at < due.at || (t.at === due.at && t.seq < due.seq))) due = t;
      if (due === undefined) break;
      this.timers.delete(due);
      this.current = Math.max(this.current, due.at);
      due.fn();
    }
    this.current = end;
  }
}
