/**
 * Active health checks: every endpoint of a service is probed with `GET path` on its own schedule
 * (interval plus random jitter), on a connection of its own, not the traffic pool's. `unhealthyThreshold`
 * consecutive failures take a healthy endpoint out of rotation; `healthyThreshold` consecutive passes
 * bring it back. Until its first check an endpoint counts as unchecked (not available; the panic
 * threshold spreads traffic over all endpoints if too few are known good), and the first check that
 * passes makes it healthy at once, as in Envoy. Checks start and stop with the service.
 */
import type { Client, Dispatcher } from 'undici';
import type { HealthCheckConfig } from '../../api/config.ts';
import type { Clock, TimerHandle } from '../../core/clock.ts';
import {
  DEFAULT_HEALTH_CHECK_EXPECTED_STATUSES,
  DEFAULT_HEALTH_CHECK_HEALTHY_THRESHOLD,
  DEFAULT_HEALTH_CHECK_INTERVAL_MS,
  DEFAULT_HEALTH_CHECK_JITTER_PERCENT,
  DEFAULT_HEALTH_CHECK_TIMEOUT_MS,
  DEFAULT_HEALTH_CHECK_UNHEALTHY_THRESHOLD,
} from '../../core/defaults.ts';
import { parseDuration } from '../../core/duration.ts';
import type { Endpoint, HealthStatus } from './endpoint.ts';
import { UpstreamClient } from './pool.ts';

export interface HealthSettings {
  path: string;
  host: string | undefined;
  intervalMs: number;
  timeoutMs: number;
  jitterMs: number;
  unhealthyThreshold: number;
  healthyThreshold: number;
  /** Inclusive ranges of passing statuses. */
  expected: readonly (readonly [number, number])[];
}

export function healthSettings(config: HealthCheckConfig): HealthSettings {
  const intervalMs = parseDuration(config.interval ?? '') || DEFAULT_HEALTH_CHECK_INTERVAL_MS;
  const timeout = parseDuration(config.timeout ?? '') ?? DEFAULT_HEALTH_CHECK_TIMEOUT_MS;
  return {
    path: config.path,
    host: config.host,
    intervalMs,
    timeoutMs: timeout === 0 ? intervalMs : timeout,
    jitterMs:
      parseDuration(config.jitter ?? '') ?? Math.round((intervalMs * DEFAULT_HEALTH_CHECK_JITTER_PERCENT) / 100),
    unhealthyThreshold: config.unhealthyThreshold ?? DEFAULT_HEALTH_CHECK_UNHEALTHY_THRESHOLD,
    healthyThreshold: config.healthyThreshold ?? DEFAULT_HEALTH_CHECK_HEALTHY_THRESHOLD,
    expected: config.expectedStatuses?.map(statusRange) ?? DEFAULT_HEALTH_CHECK_EXPECTED_STATUSES,
  };
}

function statusRange(entry: number | string): [number, number] {
  if (typeof entry === 'number') return [entry, entry];
  const [from, to] = entry.split('-').map(Number) as [number, number];
  return [from, to];
}

/** What the admin API shows of an endpoint's checks. */
export interface HealthRecord {
  status: HealthStatus;
  consecutiveSuccesses: number;
  consecutiveFailures: number;
  /** Epoch milliseconds of the last finished check (0: none yet). */
  lastCheckAt: number;
  /** `200`, `status 503`, `timeout`, `connect failure: ECONNREFUSED`… */
  lastResult: string;
  checks: number;
  failures: number;
}

export interface HealthEvent {
  endpoint: Endpoint;
  status: HealthStatus;
  result: string;
}

interface Probe {
  record: HealthRecord;
  timer: TimerHandle | null;
  client: Client | null;
}

export class HealthChecker {
  readonly settings: HealthSettings;
  private readonly probes = new Map<Endpoint, Probe>();
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly onChange: (event: HealthEvent) => void;
  private running = false;
  private stopped = false;

  constructor(
    settings: HealthSettings,
    endpoints: readonly Endpoint[],
    clock: Clock,
    onChange: (event: HealthEvent) => void,
    random: () => number = Math.random,
    /** Endpoints taken over from a service with the same checks: their verdict stands until checked again. */
    inherited: ReadonlySet<Endpoint> = new Set(),
  ) {
    this.settings = settings;
    this.clock = clock;
    this.random = random;
    this.onChange = onChange;
    for (const endpoint of endpoints) {
      if (!inherited.has(endpoint)) endpoint.health = 'unchecked';
      this.probes.set(endpoint, {
        record: {
          status: endpoint.health,
          consecutiveSuccesses: 0,
          consecutiveFailures: 0,
          lastCheckAt: 0,
          lastResult: '',
          checks: 0,
          failures: 0,
        },
        timer: null,
        client: null,
      });
    }
  }

  record(endpoint: Endpoint): HealthRecord | undefined {
    return this.probes.get(endpoint)?.record;
  }

  /** Checks every endpoint now, then each on its own schedule. Idempotent. */
  start(): void {
    if (this.running || this.stopped) return;
    this.running = true;
    for (const endpoint of this.probes.keys()) this.schedule(endpoint, 0);
  }

  /** Stops every schedule and closes the checks' connections. Results of checks in flight are dropped. */
  stop(): void {
    this.running = false;
    this.stopped = true;
    for (const probe of this.probes.values()) {
      if (probe.timer !== null) this.clock.clearTimer(probe.timer);
      probe.timer = null;
      void probe.client?.destroy().catch(() => {});
      probe.client = null;
    }
  }

  private schedule(endpoint: Endpoint, delayMs: number): void {
    const probe = this.probes.get(endpoint)!;
    probe.timer = this.clock.setTimer(() => {
      probe.timer = null;
      void this.check(endpoint).then(() => {
        if (this.running) this.schedule(endpoint, this.settings.intervalMs + this.random() * this.settings.jitterMs);
      });
    }, delayMs);
  }

  /** One check of `endpoint`, applied to its state. Resolves with whether it passed. */
  async check(endpoint: Endpoint): Promise<boolean> {
    const probe = this.probes.get(endpoint);
    if (probe === undefined) return false;
    if (this.stopped) return false;
    const result = await this.probe(endpoint, probe);
    if (this.stopped) return result.ok; // the service closed meanwhile: its endpoints' state no longer matters
    this.apply(endpoint, probe.record, result.ok, result.detail);
    return result.ok;
  }

  private probe(endpoint: Endpoint, probe: Probe): Promise<{ ok: boolean; detail: string }> {
    const s = this.settings;
    // Probes go the way requests do: with mutual TLS when the service has it.
    const tls = endpoint.options.tls;
    probe.client ??= new UpstreamClient(endpoint.origin, {
      pipelining: 1,
      connectTimeout: s.timeoutMs,
      headersTimeout: 0,
      bodyTimeout: 0,
      keepAliveTimeout: s.intervalMs + s.jitterMs + 1000,
      ...(tls !== undefined && { connect: tls.connector(s.timeoutMs, false) }),
    });
    return new Promise((resolve) => {
      const handler = new ProbeHandler(s.expected, resolve);
      probe.client!.dispatch(
        {
          method: 'GET',
          path: s.path,
          headers: ['host', s.host ?? endpoint.authority, 'user-agent', 'meshgate-health-check'],
          headersTimeout: s.timeoutMs,
          bodyTimeout: s.timeoutMs,
        },
        handler,
      );
    });
  }

  private apply(endpoint: Endpoint, record: HealthRecord, ok: boolean, detail: string): void {
    const s = this.settings;
    record.checks++;
    record.lastCheckAt = this.clock.now();
    record.lastResult = detail;
    const before = endpoint.health;
    if (ok) {
      record.consecutiveFailures = 0;
      record.consecutiveSuccesses++;
      if (before === 'unchecked' || (before === 'unhealthy' && record.consecutiveSuccesses >= s.healthyThreshold))
        endpoint.health = 'healthy';
    } else {
      record.failures++;
      record.consecutiveSuccesses = 0;
      record.consecutiveFailures++;
      if (before === 'unchecked' || (before === 'healthy' && record.consecutiveFailures >= s.unhealthyThreshold))
        endpoint.health = 'unhealthy';
    }
    record.status = endpoint.health;
    if (endpoint.health !== before) this.onChange({ endpoint, status: endpoint.health, result: detail });
  }
}

/** Reads a check's response: the status decides, the body is discarded. */
class ProbeHandler implements Dispatcher.DispatchHandler {
  private readonly expected: HealthSettings['expected'];
  private readonly done: (result: { ok: boolean; detail: string }) => void;
  private status = 0;
  private settled = false;

  constructor(expected: HealthSettings['expected'], done: (result: { ok: boolean; detail: string }) => void) {
    this.expected = expected;
    this.done = done;
  }

  onRequestStart(): void {}

  onResponseStart(_controller: Dispatcher.DispatchController, statusCode: number): void {
    this.status = statusCode;
  }

  onResponseData(): void {}

  onResponseEnd(): void {
    if (this.status < 200) return;
    const ok = this.expected.some(([from, to]) => this.status >= from && this.status <= to);
    this.settle(ok, ok ? String(this.status) : `status ${this.status}`);
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    const code = (error as NodeJS.ErrnoException).code ?? '';
    const detail =
      code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT'
        ? 'timeout'
        : code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EHOSTUNREACH'
          ? `connect failure: ${code}`
          : `error: ${code || error.message}`;
    this.settle(false, detail);
  }

  private settle(ok: boolean, detail: string) {
    if (this.settled) return;
    this.settled = true;
    this.done({ ok, detail });
  }
}
