/**
 * A request's decision trail as one proxy tells it (admin `GET /requests/{id}/explain`, the control
 * plane's gathering of every hop, `meshgate explain --json`). A proxy records compact facts while the
 * request runs and builds this shape only when someone asks (docs/explain.md). Types only.
 */
import type { AuthzDecision } from './authorization.ts';

/** Why the proxy recorded this request's trail. */
export type TrailReason = 'sampled' | 'asked' | 'propagated';

/** One route of the listener, as the request met it. */
export interface RouteVerdict {
  name: string;
  /** `chosen`; `no-match` (reasons say which condition failed); `outranked` (it matches too, the chosen one takes precedence). */
  verdict: 'chosen' | 'no-match' | 'outranked';
  /** Each condition that failed, in words: `method GET is not one of POST, PUT`, `header canary is absent (wants "true")`. */
  reasons: string[];
}

/** One plugin of the route's chain, as it ran for this request. */
export interface PluginVerdict {
  name: string;
  phase: string;
  /** Where the entry came from: global, service, route, consumer, policy, plan. */
  scope: string;
  /** `continue`; `reply` (it answered: status, code, detail); `error` (it threw); `pending` (the request ended while it worked). */
  outcome: 'continue' | 'reply' | 'error' | 'pending';
  status?: number;
  code?: string;
  detail?: string;
  /** The consumer this plugin identified, when it is the one that did. */
  consumer?: string;
  /** What the plugin reports of its decision (rate-limit windows and remaining, cache status, required scopes…). */
  facts?: Record<string, unknown>;
}

export interface DrawDestination {
  service: string;
  subset: string | null;
  weight: number;
}

/** The weighted draw between a route's destinations. */
export interface DrawVerdict {
  destinations: DrawDestination[];
  /** Index of the destination drawn. */
  chosen: number;
  /** The roll in [0, 100) that picked it; null when there was only one destination. */
  roll: number | null;
  /** Rolled from the request's sticky key rather than at random. */
  sticky: boolean;
}

/** One try upstream. */
export interface TryVerdict {
  n: number;
  endpoint: string;
  /** Since the request arrived, ms. */
  atMs: number;
  /** ms until its outcome (the response head, or the failure); null when unknown. */
  durationMs: number | null;
  /** `status 200`, or the failure's code (`MG_UPSTREAM_RESET`…). */
  outcome: string;
  /** A retry followed, after `retryDelayMs`. */
  retried: boolean;
  retryDelayMs: number | null;
  /** Why no retry followed (`attempts-exhausted`, `not-retriable`…), on the last try; null otherwise. */
  noRetry: string | null;
  /** The service's circuit breaker as the try found it. */
  breaker: {
    requests: number;
    maxRequests: number;
    pending: number;
    maxPendingRequests: number;
    retries: number;
    maxRetries: number;
  };
  /** The endpoint as the try found it: outlier detection's count and ejections, requests in flight. */
  endpointState: { consecutiveErrors: number; ejections: number; active: number };
  /** Sent while the endpoint set was in panic (too few healthy endpoints). */
  panic: boolean;
}

/** A call the request's action made to another service (aggregate's), with its tries. */
export interface SubRequestVerdict {
  call: string;
  service: string;
  tries: TryVerdict[];
  /** Why no (further) try was made: the retry stop, or the refusal before any try; null otherwise. */
  stop: string | null;
}

export interface ExplainedTrail {
  requestId: string;
  traceId: string | null;
  /** Arrival, ms since the epoch. */
  start: number;
  reason: TrailReason;
  /** The config (snapshot) the request ran on. */
  config: { version: number; hash: string };
  /** The request head as routed; `query` names the parameters only (values may carry secrets). */
  request: { listener: string; method: string; host: string; path: string; query: string[] };
  routes: RouteVerdict[];
  /** The route chosen; null when none matched. */
  route: string | null;
  plugins: PluginVerdict[];
  consumer: { name: string; groups: string[]; credential: string | null; scopes: string[] | null } | null;
  /** The caller's verified workload identity (mutual TLS), when it had one. */
  peer: string | null;
  authz: AuthzDecision[] | null;
  draw: DrawVerdict | null;
  tries: TryVerdict[];
  /** The action's calls to other services (aggregate's), in the order they were made. */
  subRequests: SubRequestVerdict[];
  /** The retry policy of the destination: retries after the first try and the conditions; null: none. */
  retries: { attempts: number; on: string[] } | null;
  /** Why the request got no upstream answer (`no-healthy-endpoint`, `circuit-open:maxRequests`…). */
  refusal: string | null;
  outcome: { status: number; code: string | null; durationMs: number; upstreamMs: number | null };
}

/** A trail with the proxy that recorded it (a hop). */
export interface TrailHop {
  proxy: string;
  kind: string;
  proxyService: string | null;
  trail: ExplainedTrail;
}

/** `GET /requests/{id}/explain` (a proxy's admin API, or the control plane for every proxy). */
export interface ExplainResult {
  id: string;
  hops: TrailHop[];
  /** Proxies asked and those that answered (a gateway on its own: itself). */
  asked: number;
  answered: number;
}
