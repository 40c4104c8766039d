/**
 * A named upstream at run time: its endpoints, its subsets and how to pick an endpoint.
 * Created from a ServiceConfig; reused across snapshots while that config is unchanged.
 */
import { createHash } from 'node:crypto';
import type { ServiceConfig } from '../../api/config.ts';
import {
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_IDLE_TIMEOUT_MS,
  DEFAULT_MAX_CONNECTIONS_PER_ENDPOINT,
  DEFAULT_REQUEST_TIMEOUT_MS,
  DEFAULT_UPSTREAM_KEEPALIVE_MS,
} from '../../core/defaults.ts';
import { parseDuration } from '../../core/duration.ts';
import { Endpoint } from './endpoint.ts';

/** The endpoints a destination may use, with the balancer's state for that set. */
export class EndpointSet {
  readonly endpoints: readonly Endpoint[];
  /** Weighted round robin: each endpoint appears `weight` times, interleaved. */
  private readonly schedule: readonly Endpoint[];
  private cursor = 0;

  constructor(endpoints: readonly Endpoint[]) {
    this.endpoints = endpoints;
    this.schedule = interleave(endpoints);
    // Start at a random place so many proxies do not all hit the first endpoint together.
    this.cursor = this.schedule.length > 0 ? Math.floor(Math.random() * this.schedule.length) : 0;
  }

  pick(): Endpoint | null {
    const schedule = this.schedule;
    if (schedule.length === 0) return null;
    const endpoint = schedule[this.cursor]!;
    this.cursor = this.cursor + 1 === schedule.length ? 0 : this.cursor + 1;
    return endpoint;
  }
}

function interleave(endpoints: readonly Endpoint[]): Endpoint[] {
  const out: Endpoint[] = [];
  const max = Math.max(0, ...endpoints.map((e) => e.weight));
  for (let round = 0; round < max; round++) for (const e of endpoints) if (e.weight > round) out.push(e);
  return out;
}

export interface ServiceTimeouts {
  connectMs: number;
  requestMs: number;
  idleMs: number;
}

export class UpstreamService {
  readonly name: string;
  /** Hash of the definition: equal hashes mean the service can be reused as is. */
  readonly hash: string;
  readonly config: ServiceConfig;
  readonly timeouts: ServiceTimeouts;
  readonly all: EndpointSet;
  private readonly subsets: ReadonlyMap<string, EndpointSet>;
  /** Snapshots holding this service; at 0 it closes (snapshot.ts `releaseSnapshot`). */
  refs = 0;

  /**
   * `previous`: the service of the same name in the snapshot being replaced. Its endpoints that are
   * unchanged are taken over with their connections and counters, so an instance joining or leaving
   * (the mesh's most common change) does not make every other endpoint reconnect.
   */
  constructor(config: ServiceConfig, previous?: UpstreamService) {
    this.name = config.name;
    this.config = config;
    this.hash = serviceHash(config);
    this.timeouts = {
      connectMs: parseDuration(config.timeouts?.connect ?? '') ?? DEFAULT_CONNECT_TIMEOUT_MS,
      requestMs: parseDuration(config.timeouts?.request ?? '') ?? DEFAULT_REQUEST_TIMEOUT_MS,
      idleMs: parseDuration(config.timeouts?.idle ?? '') ?? DEFAULT_IDLE_TIMEOUT_MS,
    };
    const options = {
      connectTimeoutMs: this.timeouts.connectMs,
      maxConnections: DEFAULT_MAX_CONNECTIONS_PER_ENDPOINT,
      keepAliveMs: DEFAULT_UPSTREAM_KEEPALIVE_MS,
    };
    const reusable = previous?.all.endpoints ?? [];
    const endpoints = config.endpoints.map((e) => {
      const labels = { ...e.labels };
      const weight = e.weight ?? 1;
      const origin = new URL(e.url).origin;
      const endpoint =
        reusable.find((old) => old.sameAs(origin, labels, weight, options)) ??
        new Endpoint(e.url, labels, weight, options);
      endpoint.refs++;
      return endpoint;
    });
    this.all = new EndpointSet(endpoints);
    this.subsets = new Map(
      Object.entries(config.subsets ?? {}).map(([name, selector]) => [
        name,
        new EndpointSet(endpoints.filter((e) => e.matches(selector))),
      ]),
    );
  }

  /** The endpoint set of a subset (the config checker guarantees it exists), or of the whole service. */
  endpointSet(subset: string | undefined): EndpointSet {
    return subset === undefined ? this.all : (this.subsets.get(subset) ?? this.all);
  }

  subsetNames(): string[] {
    return [...this.subsets.keys()];
  }

  private closing: Promise<void> | undefined;

  /**
   * Lets in-flight requests finish, then closes the connections of every endpoint no other service
   * holds. Idempotent.
   */
  close(): Promise<void> {
    this.closing ??= Promise.all(this.all.endpoints.map((e) => (--e.refs === 0 ? e.close() : undefined))).then(
      () => undefined,
    );
    return this.closing;
  }
}

export function serviceHash(config: ServiceConfig): string {
  return createHash('sha256').update(JSON.stringify(config)).digest('hex').slice(0, 16);
}
