/**
 * Passive outlier detection: real traffic's failures eject an endpoint for a while. N consecutive
 * 5xx responses or gateway failures (connect failure, reset, timeout) eject it for the base ejection
 * time times the number of its recent ejections (capped); each `interval` it then spends in rotation
 * forgives one past ejection. Never more than `maxEjectionPercent` of the service is ejected at once
 * (one endpoint always may be). An ejected endpoint returns when its time is up, by timer: nothing is
 * checked per request.
 */
import type { OutlierDetectionConfig } from '../../api/config.ts';
import type { Clock, TimerHandle } from '../../core/clock.ts';
import {
  DEFAULT_OUTLIER_BASE_EJECTION_MS,
  DEFAULT_OUTLIER_CONSECUTIVE_ERRORS,
  DEFAULT_OUTLIER_CONSECUTIVE_GATEWAY_ERRORS,
  DEFAULT_OUTLIER_INTERVAL_MS,
  DEFAULT_OUTLIER_MAX_EJECTION_MS,
  DEFAULT_OUTLIER_MAX_EJECTION_PERCENT,
} from '../../core/defaults.ts';
import { parseDuration } from '../../core/duration.ts';
import type { Endpoint } from './endpoint.ts';

export interface OutlierSettings {
  consecutiveErrors: number;
  consecutiveGatewayErrors: number;
  baseEjectionMs: number;
  maxEjectionMs: number;
  maxEjectionPercent: number;
  intervalMs: number;
}

export function outlierSettings(config: OutlierDetectionConfig): OutlierSettings {
  const base = parseDuration(config.baseEjectionTime ?? '') || DEFAULT_OUTLIER_BASE_EJECTION_MS;
  return {
    consecutiveErrors: config.consecutiveErrors ?? DEFAULT_OUTLIER_CONSECUTIVE_ERRORS,
    consecutiveGatewayErrors: config.consecutiveGatewayErrors ?? DEFAULT_OUTLIER_CONSECUTIVE_GATEWAY_ERRORS,
    baseEjectionMs: base,
    maxEjectionMs: Math.max(base, parseDuration(config.maxEjectionTime ?? '') ?? DEFAULT_OUTLIER_MAX_EJECTION_MS),
    maxEjectionPercent: config.maxEjectionPercent ?? DEFAULT_OUTLIER_MAX_EJECTION_PERCENT,
    intervalMs: parseDuration(config.interval ?? '') ?? DEFAULT_OUTLIER_INTERVAL_MS,
  };
}

export interface OutlierEvent {
  endpoint: Endpoint;
  /** `ejected`, `returned`, or `not-ejected` (the max ejection percent held it back). */
  kind: 'ejected' | 'returned' | 'not-ejected';
  durationMs: number;
  reason: string;
}

export class OutlierDetector {
  readonly settings: OutlierSettings;
  /** Endpoints ejected right now. */
  ejectedCount = 0;
  /** Ejections so far, and ejections the max ejection percent prevented. */
  ejectionsTotal = 0;
  ejectionsPrevented = 0;
  private readonly endpoints: readonly Endpoint[];
  private readonly clock: Clock;
  private readonly onChange: (event: OutlierEvent) => void;
  private readonly timers = new Map<Endpoint, TimerHandle>();
  private stopped = false;

  constructor(
    settings: OutlierSettings,
    endpoints: readonly Endpoint[],
    clock: Clock,
    onChange: (e: OutlierEvent) => void,
  ) {
    this.settings = settings;
    this.endpoints = endpoints;
    this.clock = clock;
    this.onChange = onChange;
    // Endpoints taken over while ejected (service.ts) return on this detector's timer: the one that
    // ejected them stops with its service.
    for (const endpoint of endpoints) {
      if (!endpoint.ejected) continue;
      this.ejectedCount++;
      this.timers.set(
        endpoint,
        this.clock.setTimer(() => this.bringBack(endpoint), Math.max(0, endpoint.ejectedUntil - clock.now())),
      );
    }
  }

  /** A response from `endpoint`: 5xx counts against it, anything else clears its record. Per request. */
  observe(endpoint: Endpoint, status: number): void {
    if (status >= 500) this.failure(endpoint, status >= 502 && status <= 504);
    else if (endpoint.consecutiveErrors !== 0 || endpoint.consecutiveGatewayErrors !== 0) {
      endpoint.consecutiveErrors = 0;
      endpoint.consecutiveGatewayErrors = 0;
    }
  }

  /** A failure: a 5xx response, or (`gateway`) a 502/503/504 or a connect failure, reset or timeout. */
  failure(endpoint: Endpoint, gateway: boolean): void {
    if (endpoint.ejected || this.stopped) return; // panic-mode traffic to an ejected endpoint proves nothing new
    const s = this.settings;
    endpoint.consecutiveErrors++;
    if (gateway) endpoint.consecutiveGatewayErrors++;
    else endpoint.consecutiveGatewayErrors = 0;
    if (s.consecutiveErrors > 0 && endpoint.consecutiveErrors >= s.consecutiveErrors)
      this.eject(endpoint, `${endpoint.consecutiveErrors} consecutive errors`);
    else if (s.consecutiveGatewayErrors > 0 && endpoint.consecutiveGatewayErrors >= s.consecutiveGatewayErrors)
      this.eject(endpoint, `${endpoint.consecutiveGatewayErrors} consecutive gateway errors`);
  }

  private mayEject(): boolean {
    const percent = this.settings.maxEjectionPercent;
    if (percent <= 0) return false;
    return this.ejectedCount === 0 || (this.ejectedCount + 1) * 100 <= percent * this.endpoints.length;
  }

  private eject(endpoint: Endpoint, reason: string): void {
    endpoint.consecutiveErrors = 0;
    endpoint.consecutiveGatewayErrors = 0;
    if (!this.mayEject()) {
      this.ejectionsPrevented++;
      this.onChange({ endpoint, kind: 'not-ejected', durationMs: 0, reason });
      return;
    }
    const s = this.settings;
    const now = this.clock.now();
    if (endpoint.returnedAt >= 0 && s.intervalMs > 0)
      endpoint.ejections = Math.max(0, endpoint.ejections - Math.floor((now - endpoint.returnedAt) / s.intervalMs));
    endpoint.ejections++;
    const durationMs = Math.min(s.baseEjectionMs * endpoint.ejections, s.maxEjectionMs);
    endpoint.ejected = true;
    endpoint.ejectedUntil = now + durationMs;
    this.ejectedCount++;
    this.ejectionsTotal++;
    this.timers.set(
      endpoint,
      this.clock.setTimer(() => this.bringBack(endpoint), durationMs),
    );
    this.onChange({ endpoint, kind: 'ejected', durationMs, reason });
  }

  private bringBack(endpoint: Endpoint): void {
    this.timers.delete(endpoint);
    if (!endpoint.ejected) return;
    endpoint.ejected = false;
    endpoint.ejectedUntil = 0;
    this.ejectedCount--;
    endpoint.returnedAt = this.clock.now();
    this.onChange({ endpoint, kind: 'returned', durationMs: 0, reason: 'ejection time over' });
  }

  /** Stops every timer (the service is closing). Ejected endpoints stay as they are. */
  stop(): void {
    this.stopped = true;
    for (const timer of this.timers.values()) this.clock.clearTimer(timer);
    this.timers.clear();
  }
}
