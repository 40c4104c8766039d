/**
 * The compiled, frozen shapes the request path reads: a Snapshot with its listeners, routes and their
 * actions. Types only: every module of the data plane may import this one without pulling in code,
 * so the request path (context, stream, actions, upstream) has no import cycles through it.
 * snapshot.ts builds these; actions/<kind>/ compile the action of a route.
 */
import type { Config, RouteConfig } from '../api/config.ts';
import type { FilterFactory, PluginPhase } from '../core/plugin.ts';
import type { AggregateAction } from './actions/aggregate/action.ts';
import type { GraphqlAction } from './actions/graphql/action.ts';
import type { TranscodeAction } from './actions/transcode/action.ts';
import type { PlanTable } from './plans/filter.ts';
import type { Router } from './router/router.ts';
import type { EndpointSet } from './upstream/endpoint-set.ts';
import type { CompiledFault } from './upstream/fault.ts';
import type { HashKeyReader } from './upstream/hash.ts';
import type { CompiledMirror } from './upstream/mirror.ts';
import type { RetryPolicy } from './upstream/retry.ts';
import type { UpstreamService } from './upstream/service.ts';
import type { CompiledVersion } from './versioning.ts';

/**
 * What a route does once its filters have let the request through: one tagged union, compiled once per
 * snapshot. A new kind is a folder under actions/ and one member here (actions/index.ts runs it).
 */
export type RouteAction =
  | ForwardAction
  | RedirectAction
  | DirectAction
  | AggregateAction
  | GraphqlAction
  | TranscodeAction;
export type RouteActionKind = RouteAction['kind'];

/** Send the request to one of the route's weighted destinations (actions/forward/). */
export interface ForwardAction {
  readonly kind: 'forward';
  /** Weighted targets, in the order of the config (weight 0 left out). */
  readonly destinations: readonly CompiledDestination[];
  readonly rewrite: CompiledRewrite | null;
  /** Reads the key that keeps a client on one side of the split (`sticky`), or null: destinations drawn at random. */
  readonly sticky: HashKeyReader | null;
  readonly mirror: CompiledMirror | null;
  readonly fault: CompiledFault | null;
}

/** Answer at the proxy with a fixed status and body (actions/direct/). */
export interface DirectAction {
  readonly kind: 'direct';
  readonly status: number;
  readonly body: Buffer;
  readonly contentType: string;
  /** `body.length` as the header value. */
  readonly contentLength: string;
}

/** Answer with a redirect built from the request (actions/redirect/). */
export interface RedirectAction {
  readonly kind: 'redirect';
  readonly status: number;
  /** null: the scheme of the request. */
  readonly scheme: string | null;
  /** null: the request's host. */
  readonly host: string | null;
  /** 0: see `keepAuthority`. */
  readonly port: number;
  /** Neither scheme, host nor port changes: the Location keeps the request's authority (with its port). */
  readonly keepAuthority: boolean;
  /** null: the request's path (after `prefix`). */
  readonly path: string | null;
  /** The prefix replacement, in the form rewrite.prefix uses; null: none. */
  readonly prefix: CompiledRewrite | null;
  readonly stripQuery: boolean;
}

/** One plugin in a route's chain, compiled for the snapshot. */
export interface CompiledFilter {
  readonly name: string;
  readonly phase: PluginPhase;
  /** Index of the phase in PLUGIN_PHASES. */
  readonly phaseRank: number;
  /** Effective sort key (phase base + order); the chain is sorted by it. */
  readonly order: number;
  /**
   * Where the config entry came from: `global`, `service`, `route` or `consumer`; `policy` for the
   * authorization policies' filter, which the snapshot adds to routes of services that have policies;
   * `plan` for the consumers' plans filter (plans/), added to every route when a consumer has a plan.
   */
  readonly scope: 'global' | 'service' | 'route' | 'consumer' | 'policy' | 'plan';
  readonly factory: FilterFactory;
}

export interface CompiledDestination {
  readonly service: UpstreamService;
  readonly subset: string | undefined;
  readonly endpoints: EndpointSet;
  /** Cumulative weight bound (exclusive) in 0..100, for picking. */
  readonly upTo: number;
  /** Overall: from the first try until the response headers, across retries. 0: none. */
  readonly requestTimeoutMs: number;
  readonly idleTimeoutMs: number;
  /** The route's retries over the service's, or null when this destination never retries. */
  readonly retry: RetryPolicy | null;
}

export interface CompiledRewrite {
  /** Path segments of the route pattern that `prefix` replaces (all of them for an exact pattern). */
  readonly prefixSegments: number;
  readonly prefix: string | undefined;
  readonly regex: RegExp | undefined;
  readonly substitution: string;
  readonly host: string | undefined;
  readonly autoHost: boolean;
}

export interface CompiledRoute {
  readonly name: string;
  readonly config: RouteConfig;
  /** The path pattern the route matches (`match.grpc` as its path), for `http.route` in spans. */
  readonly pathPattern: string | undefined;
  readonly action: RouteAction;
  /**
   * The services this route may send to (its forward destinations; empty for local answers), for the
   * service label of metrics and logs before a destination is chosen.
   */
  readonly services: readonly UpstreamService[];
  /** The plugin chain, in the order it runs (global, service and route entries merged). */
  readonly filters: readonly CompiledFilter[];
  /** Chains for consumers with plugins of their own, taking over after authentication (null: none). */
  readonly consumerChains: ReadonlyMap<string, readonly CompiledFilter[]> | null;
  /** Request body limit in bytes; 0: none; -1: the listener's. */
  readonly maxBodyBytes: number;
  readonly redirectToHttps: boolean;
  /** The API version this route serves (`version`), with its response headers; null: none (no cost). */
  readonly version: CompiledVersion | null;
}

export interface CompiledCertificate {
  /** Absolute paths. */
  readonly cert: string;
  readonly key: string;
  /** Empty: the names in the certificate's subjectAltName. */
  readonly serverNames: readonly string[];
}

export interface CompiledTls {
  readonly certificates: readonly CompiledCertificate[];
  readonly clientCa: string | null;
  readonly requireClientCert: boolean;
  readonly minVersion: 'TLSv1.2' | 'TLSv1.3';
}

/** A listener's settings with defaults applied, durations in ms and paths absolute. */
export interface CompiledListener {
  readonly name: string;
  readonly port: number;
  readonly address: string;
  readonly trustedHops: number;
  readonly tls: CompiledTls | null;
  /**
   * Mutual TLS with the proxy's workload identity (`mtls.mode`); null: not a mesh listener. Any mode,
   * DISABLE included, removes a client-sent X-Forwarded-Client-Cert.
   */
  readonly mtls: 'STRICT' | 'PERMISSIVE' | 'DISABLE' | null;
  readonly http2: boolean;
  /** What serves plain HTTP/1.1: node:http, or the lean engine (listener/lean/). */
  readonly engine: 'node' | 'lean';
  readonly redirectToHttps: boolean;
  readonly httpsPort: number;
  /** The 308 to https that `redirectToHttps` (this listener's or a route's) answers with, on `httpsPort`. */
  readonly httpsRedirect: RedirectAction;
  readonly encodedSlashes: 'keep' | 'decode' | 'reject';
  readonly limits: {
    readonly maxHeaderBytes: number;
    readonly maxUrlBytes: number;
    readonly maxBodyBytes: number;
    readonly maxConnections: number;
    readonly maxConcurrentStreams: number;
    readonly headersTimeoutMs: number;
    readonly requestTimeoutMs: number;
    readonly keepAliveTimeoutMs: number;
    readonly websocketIdleTimeoutMs: number;
    readonly bodyIdleTimeoutMs: number;
    readonly bodyMinBytesPerSecond: number;
    readonly bodyMinRateGraceMs: number;
  };
}

export interface Snapshot {
  readonly version: number;
  readonly hash: string;
  readonly source: string;
  readonly loadedAt: Date;
  readonly config: Config;
  readonly listeners: readonly CompiledListener[];
  readonly routes: readonly CompiledRoute[];
  /** Routes served on every listener (those without `listeners`). */
  readonly router: Router<CompiledRoute>;
  /**
   * Per listener name, its router when some route is limited to certain listeners; a listener not in
   * the map uses `router`. Empty (no cost) unless a route sets `listeners`.
   */
  readonly listenerRouters: ReadonlyMap<string, Router<CompiledRoute>>;
  readonly services: ReadonlyMap<string, UpstreamService>;
  /** Requests started on this snapshot and not yet ended: the one mutable part, for retiring it. */
  readonly inflight: { count: number };
  /** The consumers' plans (quotas), or null when no consumer has one (optional: snapshots built by hand). */
  readonly plans?: PlanTable | null;
}
