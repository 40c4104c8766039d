/**
 * Fault injection per route, for chaos testing: hold a share of requests for a fixed delay and/or
 * answer a share with an error status, optionally only for requests that carry a header. Compiled
 * once per snapshot; a route without `fault` never gets here.
 */
import type { FaultConfig } from '../../api/config.ts';
import { parseDuration } from '../../core/duration.ts';

export interface CompiledFault {
  /** 0: no delay. */
  readonly delayMs: number;
  readonly delayPercent: number;
  /** 0: no abort. */
  readonly abortStatus: number;
  readonly abortPercent: number;
  /** Lower-case header name that must be present, or null for every request. */
  readonly header: string | null;
  /** Faults injected so far (for the admin API and metrics). */
  readonly injected: { delays: number; aborts: number };
}

export function compileFault(config: FaultConfig): CompiledFault {
  return Object.freeze({
    delayMs: config.delay ? (parseDuration(config.delay.duration) ?? 0) : 0,
    delayPercent: config.delay?.percent ?? 100,
    abortStatus: config.abort?.status ?? 0,
    abortPercent: config.abort?.percent ?? 100,
    header: config.header?.toLowerCase() ?? null,
    injected: { delays: 0, aborts: 0 },
  });
}

/** True with probability `percent`/100. */
export function roll(percent: number): boolean {
  return percent >= 100 || (percent > 0 && Math.random() * 100 < percent);
}
