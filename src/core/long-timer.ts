/**
 * A timer for a point in time that may be weeks away. Node runs a `setTimeout` longer than 2^31 - 1 ms
 * (about 24.8 days) after 1 ms instead, so a root overlap or a certificate lifetime of months would
 * fire at once; this re-arms in steps until the time has come.
 */
import type { CancelTimer, Clock } from './clock.ts';

/** Node's longest timer delay. */
export const LONGEST_TIMER_MS = 2 ** 31 - 1;

/** Runs `fn` once when `clock.now()` reaches `at` (ms since the epoch); at once if it has passed. */
export function scheduleAt(clock: Clock, at: number, fn: () => void): CancelTimer {
  let handle: ReturnType<Clock['setTimer']>;
  const arm = () => {
    const wait = at - clock.now();
    handle = clock.setTimer(wait > LONGEST_TIMER_MS ? arm : fn, Math.min(Math.max(0, wait), LONGEST_TIMER_MS));
  };
  arm();
  return () => clock.clearTimer(handle);
}
