/**
 * Stable codes for every reply the proxy produces itself (house rule 8). A code is API:
 * add codes freely, never rename or reuse one. docs/errors.md lists them.
 */
export const LocalReplyCodes = {
  MG_BAD_REQUEST: { status: 400, title: 'Bad request' },
  MG_PATH_OUTSIDE_ROOT: { status: 400, title: 'Path climbs above the root' },
  MG_REQUEST_TIMEOUT: { status: 408, title: 'The request was not received in time' },
  MG_BODY_TOO_LARGE: { status: 413, title: 'Request body too large' },
  MG_URL_TOO_LONG: { status: 414, title: 'Request target too long' },
  MG_HEADERS_TOO_LARGE: { status: 431, title: 'Request headers too large' },
  MG_ROUTE_NOT_FOUND: { status: 404, title: 'No route matches this request' },
  MG_UNAUTHORIZED: { status: 401, title: 'Authentication required' },
  MG_FORBIDDEN: { status: 403, title: 'Not allowed' },
  MG_INSUFFICIENT_SCOPE: { status: 403, title: 'Insufficient scope' },
  MG_IP_FORBIDDEN: { status: 403, title: 'Client address not allowed' },
  /** An authorization policy refused the request; the access log and metrics name the policy. */
  MG_RBAC_DENIED: { status: 403, title: 'Denied by an authorization policy' },
  MG_RATE_LIMITED: { status: 429, title: 'Too many requests' },
  /** The consumer's plan's daily or monthly quota is used up; Retry-After is the period's end. */
  MG_QUOTA_EXCEEDED: { status: 429, title: 'Quota exceeded' },
  MG_NO_HEALTHY_UPSTREAM: { status: 503, title: 'No healthy endpoint' },
  MG_UPSTREAM_CONNECT_FAILURE: { status: 502, title: 'Upstream connection failed' },
  MG_UPSTREAM_RESET: { status: 502, title: 'Upstream closed the connection' },
  MG_UPSTREAM_PROTOCOL_ERROR: { status: 502, title: 'Upstream sent an invalid response' },
  MG_UPSTREAM_TIMEOUT: { status: 504, title: 'Upstream timed out' },
  MG_UPSTREAM_TLS_FAILURE: { status: 502, title: 'Mutual TLS with the upstream failed' },
  MG_UPSTREAM_IDENTITY_MISMATCH: { status: 502, title: 'The upstream presented another workload identity' },
  MG_RESPONSE_TOO_LARGE: { status: 502, title: 'Upstream response too large for a filter that buffers it' },
  /** transcode: no gRPC method is mapped to this path (for any HTTP method). */
  MG_TRANSCODE_NOT_FOUND: { status: 404, title: 'No gRPC method is mapped to this path' },
  /** transcode: methods are mapped to this path, but not for this HTTP method; `Allow` lists them. */
  MG_METHOD_NOT_ALLOWED: { status: 405, title: 'No gRPC method is mapped to this HTTP method' },
  /** transcode: the JSON body, a path variable or a query parameter does not fit the request message. */
  MG_TRANSCODE_INVALID_REQUEST: { status: 400, title: 'The request does not fit the gRPC request message' },
  /** transcode: the gRPC service answered with a status other than OK; the HTTP status follows the gRPC one. */
  MG_UPSTREAM_GRPC_STATUS: { status: 500, title: 'The gRPC service answered with an error status' },
  /** A plugin with `failOpen: false` could not reach its shared store (Redis). */
  MG_STORE_UNAVAILABLE: { status: 503, title: 'A shared store the route needs is unavailable' },
  MG_CIRCUIT_OPEN: { status: 503, title: 'Circuit breaker open: the service is at a configured limit' },
  /** The service's adaptive concurrency limit (services[].adaptiveConcurrency) is reached. */
  MG_CONCURRENCY_LIMITED: { status: 503, title: 'The service is at its adaptive concurrency limit' },
  /** The status is the route's `fault.abort.status`; 503 is only the default. */
  MG_FAULT_INJECTED: { status: 503, title: 'Fault injected by the route' },
  MG_SHUTTING_DOWN: { status: 503, title: 'The proxy is shutting down' },
  MG_INTERNAL: { status: 500, title: 'Internal proxy error' },
  /** A required call of an aggregate route failed; the problem names the call and its own code. */
  MG_AGGREGATE_CALL_FAILED: { status: 502, title: 'A required call of the composed answer failed' },
  /** A `graphql` route's variable could not be read from the request or coerced to its declared type. */
  MG_GRAPHQL_VARIABLE: { status: 400, title: 'A GraphQL variable has no valid value' },
  /** graphql-protection: the request is not a GraphQL request the plugin can read (or does not parse). */
  MG_GRAPHQL_INVALID: { status: 400, title: 'Not a valid GraphQL request' },
  MG_GRAPHQL_TOO_DEEP: { status: 400, title: 'GraphQL query nested too deep' },
  MG_GRAPHQL_TOO_MANY_ALIASES: { status: 400, title: 'GraphQL query has too many aliases' },
  MG_GRAPHQL_TOO_COSTLY: { status: 400, title: 'GraphQL query over its cost limit' },
  MG_GRAPHQL_INTROSPECTION: { status: 400, title: 'GraphQL introspection is disabled' },
  /** The hash is not on the allow-list (or the full query is not, with `persistedQueries.only`). */
  MG_GRAPHQL_NOT_PERSISTED: { status: 400, title: 'GraphQL query not on the persisted-query list' },
} as const;

export type LocalReplyCode = keyof typeof LocalReplyCodes;

/** Not a reply: recorded in the access log when the client went away before the response ended. */
export const CLIENT_CLOSED = 'MG_CLIENT_CLOSED';

/**
 * Codes of an aggregate answer's `errors` entries (and of `callCode` when a required call failed),
 * beside the upstream failure codes above (MG_UPSTREAM_TIMEOUT, MG_CIRCUIT_OPEN…). docs/errors.md.
 */
export const AggregateCallCodes = {
  /** The service answered with a status outside 2xx (after any retries); the entry has `status`. */
  MG_UPSTREAM_STATUS: 'the service answered with a status outside 2xx',
  /** The answer's body is not JSON. */
  MG_UPSTREAM_NOT_JSON: 'the answer is not JSON',
  /** Not sent: a call it depends on failed, or a value its path needs is missing. */
  MG_AGGREGATE_SKIPPED: 'the call was not sent',
} as const;

/** What an aggregate call can fail with: an upstream failure (LocalReplyCode) or one of AggregateCallCodes. */
export type AggregateCallCode = LocalReplyCode | keyof typeof AggregateCallCodes;
