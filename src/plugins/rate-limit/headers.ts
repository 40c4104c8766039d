/**
 * How a rate decision shows in a response, the same for the rate-limit plugin and consumers' plans
 * (src/proxy/plans/): the IETF draft's `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset`
 * (seconds) for the window closest to refusing, and `Retry-After` (seconds) on a refusal.
 */
import type { Decision, WindowState } from './store.ts';

/** The window closest to refusing: its state is what the headers report. */
export function tightest(decision: Decision): WindowState {
  let best = decision.windows[0]!;
  for (const w of decision.windows) if (w.remaining < best.remaining) best = w;
  return best;
}

/** `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` for one window. */
export function rateLimitHeaders(w: WindowState): [string, string][] {
  return [
    ['ratelimit-limit', String(w.limit)],
    ['ratelimit-remaining', String(w.remaining)],
    ['ratelimit-reset', String(Math.ceil(w.resetMs / 1000))],
  ];
}

/** Of a refused decision, the full windows (`remaining` 0: each of them refused the request). */
export function fullWindows(decision: Decision): WindowState[] {
  return decision.windows.filter((w) => w.remaining === 0);
}

/** Seconds until every full window has room again (at least 1). */
export function retryAfterSeconds(full: readonly WindowState[]): number {
  let ms = 0;
  for (const w of full) if (w.resetMs > ms) ms = w.resetMs;
  return Math.max(1, Math.ceil(ms / 1000));
}
