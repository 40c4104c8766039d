/**
 * A named upstream at run time: its endpoints and subsets, how an endpoint is chosen, and the state
 * that protects it (circuit breaker, outlier detection, health checks, retry budget). Created from a
 * ServiceConfig; reused across snapshots while that config is unchanged, so all of that state carries
 * over a reload; a changed service starts fresh.
 */
import { createHash } from 'node:crypto';
import type { LbPolicy, ServiceConfig } from '../../api/config.ts';
import { type Clock, systemClock } from '../../core/clock.ts';
import {
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_IDLE_TIMEOUT_MS,
  DEFAULT_LB_POLICY,
  DEFAULT_MAX_CONNECTIONS_PER_ENDPOINT,
  DEFAULT_PANIC_THRESHOLD_PERCENT,
  DEFAULT_REQUEST_TIMEOUT_MS,
  DEFAULT_UPSTREAM_KEEPALIVE_MS,
} from '../../core/defaults.ts';
import { parseDuration } from '../../core/duration.ts';
import { hasSubsetPolicies, subsetServiceConfig } from '../../core/subset-policy.ts';
import type { UpstreamTls } from '../identity/mesh-tls.ts';
import { AdaptiveConcurrency, adaptiveConcurrencySettings } from './adaptive-concurrency.ts';
import { CircuitBreaker } from './circuit-breaker.ts';
import { Endpoint } from './endpoint.ts';
import { EndpointSet } from './endpoint-set.ts';
import { compileHashOn, type HashKeyReader } from './hash.ts';
import { HealthChecker as Checker, type HealthChecker, type HealthEvent, healthSettings } from './health-check.ts';
import { OutlierDetector, type OutlierEvent, outlierSettings } from './outlier.ts';
import { RetryBudget, retryBudgetSettings } from './retry.ts';
import { ServiceStats } from './stats.ts';

export { EndpointSet };

export interface ServiceTimeouts {
  connectMs: number;
  requestMs: number;
  idleMs: number;
}

export interface ServiceOptions {
  /** Time for health-check schedules, ejections and the retry budget. Default: the system clock. */
  clock?: Clock;
  /** The service of the same name being replaced, whose unchanged endpoints are taken over. */
  previous?: UpstreamService;
  /** Mutual TLS towards its endpoints (its effective `mtls.mode` is STRICT or PERMISSIVE). */
  tls?: UpstreamTls;
  /** A subset's own unit: the subset's name; its counters are its service's (`stats`). */
  subset?: string;
  stats?: ServiceStats;
}

export class UpstreamService {
  readonly name: string;
  /** Hash of the definition: equal hashes mean the service can be reused as is. */
  readonly hash: string;
  readonly config: ServiceConfig;
  readonly timeouts: ServiceTimeouts;
  readonly policy: LbPolicy;
  /** Where a request's hash key comes from (`loadBalancer.hashOn`), or null. */
  readonly hashKey: HashKeyReader | null;
  readonly breaker: CircuitBreaker;
  readonly outlier: OutlierDetector | null;
  readonly health: HealthChecker | null;
  readonly all: EndpointSet;
  readonly stats: ServiceStats;
  readonly clock: Clock;
  /** Mutual TLS towards the endpoints, with the SPIFFE IDs they may present; null: plaintext. */
  readonly tls: UpstreamTls | null;
  /** `service/subset` for a subset's own unit (admin views, refusal reasons); else the name. */
  readonly label: string;
  private readonly subsets: ReadonlyMap<string, EndpointSet>;
  /**
   * The subsets with policies of their own (`subsetPolicies`), each compiled into a unit of its own, or
   * null (the common case). Envoy makes such a subset a cluster of its own, and so does this: a unit
   * is an UpstreamService over exactly the subset's endpoints with the merged policies, so the request
   * path, the breaker's exact counts, outlier detection and reuse across reloads work for it unchanged,
   * and a destination naming the subset resolves to the unit once, at compile time. Sharing the
   * service's Endpoint objects instead would mix two breakers' counts in one pool and let two
   * detectors write one ejection state. The unit's endpoints are its own (connections, health,
   * ejections); it keeps the service's name and counters, so metrics and logs stay per service.
   */
  private readonly units: ReadonlyMap<string, UpstreamService> | null;
  private budget: RetryBudget | null = null;
  /** Snapshots holding this service; at 0 it closes (snapshot.ts `releaseSnapshot`). */
  refs = 0;

  /**
   * `options.previous`: the service of the same name in the snapshot being replaced. Its endpoints that
   * are unchanged are taken over with their connections, health and ejection state, so an instance
   * joining or leaving (the mesh's most common change) does not make every other endpoint reconnect.
   */
  constructor(config: ServiceConfig, options: ServiceOptions = {}) {
    this.name = config.name;
    this.label = options.subset === undefined ? config.name : `${config.name}/${options.subset}`;
    this.config = config;
    this.hash = serviceHash(config);
    this.clock = options.clock ?? systemClock;
    this.tls = options.tls ?? null;
    this.timeouts = {
      connectMs: parseDuration(config.timeouts?.connect ?? '') ?? DEFAULT_CONNECT_TIMEOUT_MS,
      requestMs: parseDuration(config.timeouts?.request ?? '') ?? DEFAULT_REQUEST_TIMEOUT_MS,
      idleMs: parseDuration(config.timeouts?.idle ?? '') ?? DEFAULT_IDLE_TIMEOUT_MS,
    };
    this.stats = options.stats ?? options.previous?.stats ?? new ServiceStats();
    this.breaker = new CircuitBreaker(
      config.circuitBreaker,
      this.stats.breakerOverflows,
      config.adaptiveConcurrency
        ? new AdaptiveConcurrency(adaptiveConcurrencySettings(config.adaptiveConcurrency), this.clock)
        : null,
    );
    const protocol = config.protocol ?? 'http1';
    const poolOptions = {
      connectTimeoutMs: this.timeouts.connectMs,
      maxConnections: DEFAULT_MAX_CONNECTIONS_PER_ENDPOINT,
      keepAliveMs: DEFAULT_UPSTREAM_KEEPALIVE_MS,
      // The lean client unless the service names undici or speaks HTTP/2; an https:// or mesh-TLS
      // endpoint keeps undici (endpoint.ts).
      engine: config.engine ?? (protocol === 'http1' ? 'lean' : 'undici'),
      ...(options.tls !== undefined && { tls: options.tls }),
    };
    const previous = options.previous;
    const reusable = previous?.all.endpoints ?? [];
    // Taken-over endpoints keep the state of checks that stay as they were; a changed or removed check
    // must not leave an endpoint ejected or unhealthy with nothing left to bring it back.
    const sameOutlier = JSON.stringify(previous?.config.outlierDetection) === JSON.stringify(config.outlierDetection);
    const sameHealth = JSON.stringify(previous?.config.healthCheck) === JSON.stringify(config.healthCheck);
    const inherited = new Set<Endpoint>();
    const endpoints = (config.endpoints ?? []).map((e) => {
      const labels = { ...e.labels };
      const weight = e.weight ?? 1;
      const origin = new URL(e.url).origin;
      const old = reusable.find((o) => o.sameAs(origin, labels, weight, poolOptions, protocol));
      // A taken-over endpoint counts against this service's circuit breaker from now on.
      if (old !== undefined) {
        old.pool.useBreaker(this.breaker);
        if (!sameOutlier) old.resetEjection();
        if (!sameHealth) old.health = 'healthy';
        else inherited.add(old);
      }
      const endpoint = old ?? new Endpoint(e.url, labels, weight, poolOptions, protocol, this.breaker);
      endpoint.refs++;
      return endpoint;
    });
    const lb = config.loadBalancer;
    this.policy = lb?.policy ?? (DEFAULT_LB_POLICY as LbPolicy);
    this.hashKey = lb?.hashOn ? compileHashOn(lb.hashOn) : null;
    this.health = config.healthCheck
      ? new Checker(
          healthSettings(config.healthCheck),
          endpoints,
          this.clock,
          (e) => this.onHealthChange(e),
          Math.random,
          inherited,
        )
      : null;
    this.outlier = config.outlierDetection
      ? new OutlierDetector(outlierSettings(config.outlierDetection), endpoints, this.clock, (e) =>
          this.onOutlierEvent(e),
        )
      : null;
    const panic = lb?.panicThreshold ?? DEFAULT_PANIC_THRESHOLD_PERCENT;
    const balancerOptions = { ringPointsPerWeight: lb?.ringPointsPerWeight };
    this.all = new EndpointSet(endpoints, this.policy, panic, balancerOptions);
    this.subsets = new Map(
      Object.entries(config.subsets ?? {}).map(([name, selector]) => [
        name,
        new EndpointSet(
          endpoints.filter((e) => e.matches(selector)),
          this.policy,
          panic,
          balancerOptions,
        ),
      ]),
    );
    this.units = hasSubsetPolicies(config) ? this.compileUnits(config, options) : null;
  }

  /** Each subset with policies of its own, as its own unit; taken over from the replaced service's. */
  private compileUnits(config: ServiceConfig, options: ServiceOptions): Map<string, UpstreamService> {
    const units = new Map<string, UpstreamService>();
    for (const subset of Object.keys(config.subsetPolicies ?? {})) {
      if (config.subsets?.[subset] === undefined) continue;
      const previous = options.previous?.units?.get(subset);
      units.set(
        subset,
        new UpstreamService(subsetServiceConfig(config, subset), {
          clock: this.clock,
          subset,
          stats: this.stats,
          ...(previous !== undefined && { previous }),
          ...(options.tls !== undefined && { tls: options.tls }),
        }),
      );
    }
    return units;
  }

  /** What a destination to `subset` (or to the whole service) sends to: the subset's own unit, or this. */
  unitFor(subset: string | undefined): UpstreamService {
    return (subset !== undefined && this.units?.get(subset)) || this;
  }

  /** The subsets' own units by subset name (empty when the service has no subset policies). */
  subsetUnits(): ReadonlyMap<string, UpstreamService> {
    return this.units ?? new Map();
  }

  /** The endpoint set of a subset (the config checker guarantees it exists), or of the whole service. */
  endpointSet(subset: string | undefined): EndpointSet {
    return subset === undefined ? this.all : (this.subsets.get(subset) ?? this.all);
  }

  subsetNames(): string[] {
    return [...this.subsets.keys()];
  }

  subsetSets(): ReadonlyMap<string, EndpointSet> {
    return this.subsets;
  }

  /** The retry budget every route retrying to this service shares (`retries.budget`, or the defaults). */
  retryBudget(): RetryBudget {
    this.budget ??= new RetryBudget(retryBudgetSettings(this.config.retries?.budget), this.clock.now());
    return this.budget;
  }

  get hasRetryBudget(): boolean {
    return this.budget !== null;
  }

  private started = false;

  /** Starts health checking; called once the service is in a snapshot in force. Idempotent. */
  start(): void {
    if (this.started || this.closing !== undefined) return;
    this.started = true;
    this.health?.start();
    if (this.units !== null) for (const unit of this.units.values()) unit.start();
  }

  private closing: Promise<void> | undefined;

  /**
   * Stops health checks and outlier detection, lets in-flight requests finish, then closes the
   * connections of every endpoint no other service holds. Idempotent.
   */
  close(): Promise<void> {
    if (this.closing === undefined) {
      this.health?.stop();
      this.outlier?.stop();
      const closing: Promise<void>[] = [];
      for (const e of this.all.endpoints) if (--e.refs === 0) closing.push(e.close());
      if (this.units !== null) for (const unit of this.units.values()) closing.push(unit.close());
      this.closing = Promise.all(closing).then(() => undefined);
    }
    return this.closing;
  }

  /** Health or ejection changed: every set recomputes what its balancer may choose. */
  private refreshSets(): void {
    this.all.refresh();
    for (const set of this.subsets.values()) set.refresh();
  }

  private onHealthChange(event: HealthEvent): void {
    this.stats.events.add({
      at: this.clock.now(),
      kind: event.status,
      endpoint: event.endpoint.url,
      detail: event.result,
    });
    this.refreshSets();
  }

  private onOutlierEvent(event: OutlierEvent): void {
    if (event.kind === 'ejected') this.stats.ejections++;
    const detail = event.kind === 'ejected' ? `${event.reason}; ejected for ${event.durationMs} ms` : event.reason;
    this.stats.events.add({ at: this.clock.now(), kind: event.kind, endpoint: event.endpoint.url, detail });
    if (event.kind !== 'not-ejected') this.refreshSets();
  }
}

export function serviceHash(config: ServiceConfig): string {
  return createHash('sha256').update(JSON.stringify(config)).digest('hex').slice(0, 16);
}
