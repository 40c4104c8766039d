/**
 * The config contract: what a user writes, as JSON Schema (TypeBox) with its static type.
 * `schema/meshgate.schema.json` is generated from `ConfigSchema` (`npm run schema`).
 * Every field says its meaning, unit, default and what 0 means; defaults live in src/core/defaults.ts.
 * No logic here: loading, validation and compilation live in src/config.
 */
import { type Static, type TSchema, Type } from '@sinclair/typebox';
import { DURATION_PATTERN } from '../core/duration.ts';
import { JWT_ALGORITHMS } from '../core/jwt-keys.ts';
import { AuthorizationPolicySchema } from './authorization.ts';
import { GraphqlActionSchema } from './graphql.ts';
import { TranscodeSchema } from './transcode.ts';
import { ACCESS_LOG_FIELD_NAMES, LB_POLICIES } from './values.ts';

// Defined where code that runs in a proxy can import them without TypeBox.
export { ACCESS_LOG_FIELD_NAMES, LB_POLICIES };

/** A duration with units, e.g. `250ms`, `5s`, `1m30s`, `1h`. `0` disables the timeout it sets. */
export const Duration = (description: string) =>
  Type.String({ pattern: DURATION_PATTERN, description, examples: ['250ms', '5s', '1h'] });

const Name = (description: string) =>
  Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$', description });

const Port = (description: string) => Type.Integer({ minimum: 0, maximum: 65535, description });

export const HTTP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'CONNECT', 'TRACE'] as const;
export type HttpMethod = (typeof HTTP_METHODS)[number];

const Labels = Type.Record(Type.String({ minLength: 1 }), Type.String(), {
  description: 'Free-form key/value labels, e.g. `{ version: v2, zone: eu-1 }`.',
});

const ServerName = Type.String({
  minLength: 1,
  pattern: '^(\\*\\.)?[A-Za-z0-9.-]+$',
  description: 'A host name, or `*.example.com` for any name one label deep under example.com.',
});

export const ListenerCertificateSchema = Type.Object(
  {
    cert: Type.String({
      minLength: 1,
      description: 'PEM file with the certificate (then its intermediates). Relative to the config file.',
    }),
    key: Type.String({ minLength: 1, description: 'PEM file with the private key. Relative to the config file.' }),
    serverNames: Type.Optional(
      Type.Array(ServerName, {
        minItems: 1,
        description:
          'SNI names this certificate answers. Default: the DNS names of its subjectAltName. Exact names win over ' +
          'wildcards; a client sending no name, or an unknown one, gets the first certificate.',
      }),
    ),
  },
  { additionalProperties: false },
);

export const ListenerTlsSchema = Type.Object(
  {
    certificates: Type.Array(ListenerCertificateSchema, {
      minItems: 1,
      description: 'Server certificates chosen by SNI; the first is the default. Files are re-read on every reload.',
    }),
    clientCa: Type.Optional(
      Type.String({
        minLength: 1,
        description: 'PEM file of the CAs that sign client certificates: enables mutual TLS on this listener.',
      }),
    ),
    requireClientCert: Type.Optional(
      Type.Boolean({
        description:
          'With `clientCa`: true (default) refuses a handshake without a valid client certificate; false accepts ' +
          'clients without one (a certificate that is presented must still be valid).',
      }),
    ),
    minVersion: Type.Optional(
      Type.Unsafe<'TLSv1.2' | 'TLSv1.3'>({
        type: 'string',
        enum: ['TLSv1.2', 'TLSv1.3'],
        description: 'Oldest TLS version accepted. Default `TLSv1.2`.',
      }),
    ),
  },
  { additionalProperties: false, description: 'Terminates TLS on this listener.' },
);

const Bytes = (description: string) => Type.Integer({ minimum: 0, description });
const Count = (description: string) => Type.Integer({ minimum: 0, description });

export const ListenerLimitsSchema = Type.Object(
  {
    maxHeaderBytes: Type.Optional(
      Type.Integer({
        minimum: 1024,
        maximum: 1024 * 1024,
        description: 'Largest request head (request line and headers), in bytes; larger gets 431. Default 16384.',
      }),
    ),
    maxUrlBytes: Type.Optional(
      Type.Integer({
        minimum: 256,
        maximum: 1024 * 1024,
        description: 'Longest request target (path and query), in bytes; longer gets 414. Default 8192.',
      }),
    ),
    maxBodyBytes: Type.Optional(
      Bytes(
        'Largest request body, in bytes, for routes that set none; larger gets 413 (checked against Content-Length ' +
          'before forwarding, and while a chunked body streams). Default 0: no limit.',
      ),
    ),
    maxConnections: Type.Optional(
      Count(
        'Most client connections open at once, per proxy process; further connections are closed on arrival. ' +
          'Default 10000; 0: no limit.',
      ),
    ),
    maxConcurrentStreams: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 2 ** 31 - 1,
        description: 'HTTP/2: most streams a client may have open on one connection. Default 100.',
      }),
    ),
    headersTimeout: Type.Optional(
      Duration(
        'Time allowed to receive a request head, from the connection’s first byte or the end of the previous ' +
          'request; then 408 and the connection closes (slowloris). Default 10s; 0 disables it.',
      ),
    ),
    requestTimeout: Type.Optional(
      Duration(
        'Time allowed to receive a whole request, body included; then 408 (or the connection closes if the ' +
          'response has started). Bounds slow bodies. Default 5m; 0 disables it.',
      ),
    ),
    keepAliveTimeout: Type.Optional(
      Duration(
        'How long an idle keep-alive connection (or HTTP/2 connection without streams) stays open. Default 65s; ' +
          '0 keeps it open until the client closes it.',
      ),
    ),
    websocketIdleTimeout: Type.Optional(
      Duration(
        'Longest silence, either way, on a WebSocket connection before both sides are closed. Default 5m; 0 disables it.',
      ),
    ),
    bodyIdleTimeout: Type.Optional(
      Duration(
        'Longest wait for the next byte of a request body while the proxy is ready to read it (time the proxy ' +
          'spends waiting for a slow upstream does not count); then 408, the upstream call is aborted and the ' +
          'connection closes (HTTP/2: the stream is reset). Default 10s; 0 disables it.',
      ),
    ),
    bodyMinBytesPerSecond: Type.Optional(
      Count(
        'Slowest request body accepted, in bytes per second, once `bodyMinRateGrace` has passed (time the proxy ' +
          'spends waiting for a slow upstream does not count); a body that trickles slower gets 408, as with ' +
          '`bodyIdleTimeout`. Default 500; 0 disables it.',
      ),
    ),
    bodyMinRateGrace: Type.Optional(
      Duration(
        'How long after a body starts `bodyMinBytesPerSecond` is first enforced; also the most credit a fast start ' +
          'earns against a later slowdown, so a body that falls below the rate is cut at most this long after. ' +
          'Default 10s; 0 counts as 1s.',
      ),
    ),
  },
  { additionalProperties: false, description: 'What one client may make this listener hold or wait for.' },
);

/** Mutual TLS between proxies, with Istio's names (see docs/security.md). */
const MtlsMode = (description: string) =>
  Type.Unsafe<'STRICT' | 'PERMISSIVE' | 'DISABLE'>({
    type: 'string',
    enum: ['STRICT', 'PERMISSIVE', 'DISABLE'],
    description,
  });

export const ListenerMtlsSchema = Type.Object(
  {
    mode: MtlsMode(
      'What the listener accepts. `STRICT`: only mutual TLS: it presents the proxy’s workload certificate ' +
        '(X509-SVID) and requires a client certificate that chains to the mesh’s trust bundle; anything else ' +
        'is closed without an HTTP answer. `PERMISSIVE`: mutual TLS and plaintext on the same port, told apart by ' +
        'the first byte (a TLS handshake starts with 0x16), so callers can join the mesh one by one. `DISABLE`: ' +
        'plaintext only. Every mode removes an `X-Forwarded-Client-Cert` the caller sent; a caller verified by ' +
        'mutual TLS is passed on in a new one.',
    ),
  },
  {
    additionalProperties: false,
    description:
      'Mesh traffic with the proxy’s workload identity (a sidecar’s inbound listener; the control plane ' +
      'sets it). Needs a workload identity; excludes `tls`.',
  },
);

export const ServiceMtlsSchema = Type.Object(
  {
    mode: Type.Optional(
      MtlsMode(
        'How proxies call this service, and how its sidecars accept calls. `STRICT` and `PERMISSIVE`: callers ' +
          'connect with mutual TLS, presenting their workload certificate and checking the endpoint’s SPIFFE ID; ' +
          '`DISABLE`: plaintext (a service without sidecars). Default: the mesh-wide `mesh.mtls.mode`.',
      ),
    ),
    identities: Type.Optional(
      Type.Array(Type.String({ pattern: '^spiffe://', maxLength: 2048 }), {
        minItems: 1,
        uniqueItems: true,
        description:
          'SPIFFE IDs this service’s endpoints may present; a certificate from the mesh’s CA for any other ' +
          'identity is refused (MG_UPSTREAM_IDENTITY_MISMATCH). Default: `spiffe://<mesh.trustDomain>/ns/' +
          '<mesh.namespace>/sa/<service name>` (the proxy’s own trust domain when the config has no `mesh`).',
      }),
    ),
  },
  { additionalProperties: false, description: 'Mutual TLS towards this service (default: the mesh-wide setting).' },
);

export const MeshSchema = Type.Object(
  {
    trustDomain: Type.String({
      minLength: 1,
      maxLength: 255,
      pattern: '^[a-z0-9._-]+$',
      description: 'The SPIFFE trust domain of the mesh’s workload identities, e.g. `cluster.local`.',
    }),
    namespace: Type.Optional(
      Type.String({
        minLength: 1,
        pattern: '^[A-Za-z0-9._-]+$',
        description:
          'The namespace in the workloads’ SPIFFE IDs (`spiffe://<td>/ns/<namespace>/sa/<service>`). Default `default`.',
      }),
    ),
    mtls: Type.Optional(
      Type.Object(
        {
          mode: MtlsMode('Mesh-wide mode; a service’s `mtls.mode` overrides it. Default `PERMISSIVE` (as Istio).'),
        },
        { additionalProperties: false },
      ),
    ),
  },
  {
    additionalProperties: false,
    description:
      'The service mesh: its trust domain and mutual TLS between proxies. Absent: no mutual TLS (plaintext, as ' +
      'a gateway alone).',
  },
);

export const ListenerSchema = Type.Object(
  {
    name: Name('Unique name of the listener; appears in logs and metrics.'),
    port: Port('TCP port to accept connections on. 0 picks a free port (useful in tests).'),
    address: Type.Optional(
      Type.String({ minLength: 1, description: 'Address to bind. Default `0.0.0.0` (all IPv4 interfaces).' }),
    ),
    trustedHops: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: 10,
        description:
          'How many proxies in front of this listener are trusted to set X-Forwarded-For/-Proto/-Host and Forwarded. ' +
          '0 (default): client-supplied values are discarded and replaced by what the gateway sees. ' +
          'N > 0: client values are kept and appended to, and the client address is the Nth address from the right.',
      }),
    ),
    tls: Type.Optional(ListenerTlsSchema),
    mtls: Type.Optional(ListenerMtlsSchema),
    http2: Type.Optional(
      Type.Boolean({
        description:
          'Serve HTTP/2 besides HTTP/1.1. With `tls`: negotiated by ALPN (`h2`). Without: prior-knowledge h2c, told ' +
          'apart from HTTP/1.1 by the connection preface on the same port. Default: true with `tls`, false without.',
      }),
    ),
    engine: Type.Optional(
      Type.Unsafe<'node' | 'lean'>({
        type: 'string',
        enum: ['node', 'lean'],
        description:
          'What serves HTTP/1.1 on this listener. `lean` (the default for plain HTTP/1.1 listeners): a server on ' +
          'the same llhttp parser as node:http, with the same refusals, limits and timeouts, and less work per ' +
          'request (docs/listeners.md); not with `tls`, `http2: true` or `mtls` (STRICT, PERMISSIVE). `node`: ' +
          "node:http's server (the default, and the only choice, for those).",
      }),
    ),
    redirectToHttps: Type.Optional(
      Type.Boolean({
        description:
          'Answer every request on this (plain) listener with a 308 redirect to the same URL over https. Default false.',
      }),
    ),
    httpsPort: Type.Optional(
      Port(
        'Port in the Location of HTTPS redirects (this listener’s and its routes’). Default 443 (left out of the URL).',
      ),
    ),
    encodedSlashes: Type.Optional(
      Type.Unsafe<'keep' | 'decode' | 'reject'>({
        type: 'string',
        enum: ['keep', 'decode', 'reject'],
        description:
          'What `%2F` and `%5C` in a path mean. `keep` (default): they stay encoded, part of a segment, and are ' +
          'forwarded as sent. `decode`: they become `/` before normalising and matching (the upstream still ' +
          'gets the path as sent). `reject`: 400.',
      }),
    ),
    limits: Type.Optional(ListenerLimitsSchema),
    origin: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          'Where this object came from when it was converted from another format, e.g. ' +
          '`istio:VirtualService/default/property-service http[1]` (src/compat/). Shown by the admin API and ' +
          '`meshgate proxy-config`; changes no behaviour.',
      }),
    ),
  },
  { additionalProperties: false, description: 'A port on which the proxy accepts client traffic.' },
);

export const AdminSchema = Type.Object(
  {
    port: Port('Port of the admin API (status, config dump, metrics). Default 9901; 0 picks a free port.'),
    address: Type.Optional(
      Type.String({
        minLength: 1,
        description: 'Address to bind. Default `127.0.0.1`: the admin API is never exposed unless you say so.',
      }),
    ),
  },
  { additionalProperties: false, description: 'The admin API listener.' },
);

export const EndpointSchema = Type.Object(
  {
    url: Type.String({
      pattern: '^https?://[^/?#]+/?$',
      description: 'Origin of one instance, `http://host:port` (no path).',
      examples: ['http://127.0.0.1:8081'],
    }),
    labels: Type.Optional(Labels),
    weight: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 1000,
        description: 'Relative share of traffic for weighted balancing. Default 1.',
      }),
    ),
  },
  { additionalProperties: false },
);

export const ServiceTimeoutsSchema = Type.Object(
  {
    connect: Type.Optional(Duration('Time to establish a connection to an endpoint. Default 5s; 0 waits forever.')),
    request: Type.Optional(
      Duration(
        'Time from sending the request upstream until the response headers arrive, across all tries and the waits ' +
          'between them. Default 30s; 0 disables it. A route may set its own; X-Request-Timeout may shorten it.',
      ),
    ),
    idle: Type.Optional(
      Duration(
        'Longest silence allowed while a response body streams (between two chunks). Default 60s; 0 disables it.',
      ),
    ),
  },
  { additionalProperties: false },
);

export const PLUGIN_PHASE_NAMES = ['request', 'authenticate', 'authorize', 'limit', 'transform', 'respond'] as const;

export const PluginEntrySchema = Type.Object(
  {
    name: Type.Optional(
      Type.String({
        minLength: 1,
        description: 'A built-in plugin (see docs/plugins.md) or one loaded with `path` elsewhere in the config.',
      }),
    ),
    path: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          'A JavaScript module whose default export is a `definePlugin(...)` result, relative to the config file.',
      }),
    ),
    config: Type.Optional(
      Type.Record(Type.String(), Type.Unknown(), {
        description: "The plugin's settings, checked against the plugin's own schema.",
      }),
    ),
    enabled: Type.Optional(
      Type.Boolean({
        description:
          '`false` turns off a plugin this scope would inherit (e.g. a global one on one route). Default true.',
      }),
    ),
    phase: Type.Optional(
      Type.Unsafe<(typeof PLUGIN_PHASE_NAMES)[number]>({
        type: 'string',
        enum: [...PLUGIN_PHASE_NAMES],
        description: "Moves the plugin to another phase. Default: the plugin's own.",
      }),
    ),
    order: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: 999,
        description: "Position within the phase, lower first. Default: the plugin's own.",
      }),
    ),
  },
  {
    additionalProperties: false,
    description:
      'A plugin and its settings. A service entry replaces a global one of the same name, a route entry both, ' +
      'a consumer entry all three (for phases after authentication).',
  },
);

export const JwtCredentialSchema = Type.Object(
  {
    type: Type.Literal('jwt'),
    issuer: Type.String({
      minLength: 1,
      description: 'The `iss` claim of this consumer’s tokens; a token finds its consumer by it.',
    }),
    algorithm: Type.Optional(
      Type.Unsafe<(typeof JWT_ALGORITHMS)[number]>({
        type: 'string',
        enum: [...JWT_ALGORITHMS],
        description:
          'The one algorithm accepted. Default: HS256 with `secret`; with `publicKey`, the algorithms of its key type.',
      }),
    ),
    secret: Type.Optional(
      Type.String({ minLength: 32, description: 'HMAC secret (HS*), at least 32 characters; use `${ENV}`.' }),
    ),
    publicKey: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          'PEM public key (RS*, PS*, ES*, EdDSA): inline `-----BEGIN…`, or a file path relative to the config.',
      }),
    ),
    jwksUrl: Type.Optional(
      Type.String({ pattern: '^https?://', description: 'A JWKS endpoint; keys are cached and refreshed.' }),
    ),
    audiences: Type.Optional(
      Type.Array(Type.String({ minLength: 1 }), {
        minItems: 1,
        description: 'Accepted `aud` values; the token must carry one of them. Default: `aud` is not checked.',
      }),
    ),
  },
  { additionalProperties: false, description: 'JWTs from one issuer, with exactly one of secret, publicKey, jwksUrl.' },
);

export const ApiKeyCredentialSchema = Type.Object(
  {
    type: Type.Literal('api-key'),
    key: Type.String({ minLength: 16, description: 'The key, at least 16 characters; use `${ENV}`. Held hashed.' }),
  },
  { additionalProperties: false, description: 'An API key (key-auth plugin).' },
);

export const ConsumerSchema = Type.Object(
  {
    name: Name('Unique name; sent upstream as X-Consumer-Username.'),
    id: Type.Optional(Type.String({ minLength: 1, description: 'Sent upstream as X-Consumer-ID. Default: the name.' })),
    groups: Type.Optional(
      Type.Array(Type.String({ minLength: 1 }), {
        uniqueItems: true,
        description: 'Groups for the acl plugin; sent upstream as X-Consumer-Groups.',
      }),
    ),
    credentials: Type.Optional(Type.Array(Type.Union([JwtCredentialSchema, ApiKeyCredentialSchema]))),
    plugins: Type.Optional(Type.Array(PluginEntrySchema)),
    plan: Type.Optional(
      Name(
        "The name of one of the top-level `plans`: its quotas and rate limits apply to this consumer's requests " +
          'on every route (after authentication). Default: none (no plan limits).',
      ),
    ),
  },
  { additionalProperties: false, description: 'An API client: an identity with credentials and groups.' },
);

/** Where a request's hash key comes from: exactly one field. */
const hashOn = (description: string) =>
  Type.Object(
    {
      header: Type.Optional(Type.String({ minLength: 1, description: 'A request header (name, case-insensitive).' })),
      cookie: Type.Optional(Type.String({ minLength: 1, description: 'A cookie sent by the client (name).' })),
      query: Type.Optional(
        Type.String({ minLength: 1, description: 'A query parameter (name; the value is URL-decoded).' }),
      ),
      clientIp: Type.Optional(
        Type.Boolean({ description: '`true`: the client address (as seen through the listener’s trusted hops).' }),
      ),
    },
    { additionalProperties: false, minProperties: 1, maxProperties: 1, description },
  );

export const HashOnSchema = hashOn(
  'The hash key of `ring-hash` and `maglev`: one of `{ header }`, `{ cookie }`, `{ query }`, `{ clientIp: true }`. ' +
    'A request without that value gets a random key.',
);

export type LbPolicy = (typeof LB_POLICIES)[number];

export const LoadBalancerSchema = Type.Object(
  {
    policy: Type.Optional(
      Type.Unsafe<LbPolicy>({
        type: 'string',
        enum: [...LB_POLICIES],
        description:
          'How an endpoint is chosen. `round-robin` (default, weighted), `least-request` (of two endpoints drawn by ' +
          'weight, the one with fewer requests in flight), `random` (weighted), `ring-hash` and `maglev` (consistent ' +
          'hashing on `hashOn`: a key keeps its endpoint while that endpoint is available).',
      }),
    ),
    hashOn: Type.Optional(HashOnSchema),
    panicThreshold: Type.Optional(
      Type.Number({
        minimum: 0,
        maximum: 100,
        description:
          'Percent. When fewer of an endpoint set’s endpoints than this are available (healthy and not ejected), ' +
          'requests are spread over all of them instead of overloading the rest. Default 50; 0 disables panic mode.',
      }),
    ),
    ringPointsPerWeight: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 4096,
        description:
          '`ring-hash` only: points on the ring per unit of an endpoint’s weight (more: a smoother spread, more ' +
          'memory). Default 160. The whole ring is capped at 1048576 points.',
      }),
    ),
  },
  { additionalProperties: false, description: 'How requests are spread over the endpoints.' },
);

const StatusRange = Type.Union(
  [
    Type.Integer({ minimum: 100, maximum: 599 }),
    Type.String({ pattern: '^[1-5][0-9][0-9]-[1-5][0-9][0-9]$', description: 'An inclusive range, e.g. `200-299`.' }),
  ],
  { description: 'A status (`204`) or an inclusive range (`200-299`).' },
);

export const HealthCheckSchema = Type.Object(
  {
    path: Type.String({ pattern: '^/', description: 'Path requested with GET, e.g. `/healthz`.' }),
    host: Type.Optional(
      Type.String({ minLength: 1, description: 'Host header of the check. Default: the endpoint’s host:port.' }),
    ),
    interval: Type.Optional(Duration('Time between two checks of one endpoint. Default 5s. Must not be 0.')),
    timeout: Type.Optional(Duration('A check that takes longer fails. Default 1s; 0 waits as long as the interval.')),
    jitter: Type.Optional(
      Duration(
        'Random extra delay added to each interval, so proxies do not check in step. Default 10% of interval; 0: none.',
      ),
    ),
    unhealthyThreshold: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 100,
        description: 'Consecutive failed checks that take an endpoint out. Default 3.',
      }),
    ),
    healthyThreshold: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 100,
        description: 'Consecutive passed checks that bring it back. Default 2.',
      }),
    ),
    expectedStatuses: Type.Optional(
      Type.Array(StatusRange, { minItems: 1, description: 'Statuses that pass. Default `[200-299]`.' }),
    ),
  },
  {
    additionalProperties: false,
    description:
      'Active health checks: each endpoint is probed on its own schedule; an unhealthy one gets no traffic until it passes again.',
  },
);

export const OutlierDetectionSchema = Type.Object(
  {
    consecutiveErrors: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: 1000,
        description:
          'Consecutive 5xx responses or gateway failures (connect failure, reset, timeout) that eject an endpoint. ' +
          'Default 5; 0 disables this trigger.',
      }),
    ),
    consecutiveGatewayErrors: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: 1000,
        description:
          'Consecutive 502/503/504 responses or gateway failures that eject an endpoint. Default 0 (this trigger is off).',
      }),
    ),
    baseEjectionTime: Type.Optional(
      Duration('How long a first ejection lasts; the nth lasts n times as long. Default 30s. Must not be 0.'),
    ),
    maxEjectionTime: Type.Optional(Duration('Longest ejection, however often an endpoint is ejected. Default 300s.')),
    maxEjectionPercent: Type.Optional(
      Type.Number({
        minimum: 0,
        maximum: 100,
        description:
          'Most endpoints of the service ejected at once, in percent; one may always be ejected. Default 10; 0 never ejects.',
      }),
    ),
    interval: Type.Optional(
      Duration(
        'Each interval an endpoint stays in rotation forgives one past ejection. Default 10s; 0: never forgiven.',
      ),
    ),
  },
  {
    additionalProperties: false,
    description: 'Passive outlier detection: endpoints that keep failing real traffic are ejected for a while.',
  },
);

const Limit = (description: string) => Type.Integer({ minimum: 0, maximum: 1_000_000, description });

export const CircuitBreakerSchema = Type.Object(
  {
    maxConnections: Type.Optional(
      Limit(
        'Upstream connections to the whole service. At the limit a request waits for a free connection. Each ' +
          'endpoint may always open one (so 0 means one per endpoint). Default 1024.',
      ),
    ),
    maxPendingRequests: Type.Optional(
      Limit(
        'Requests waiting for a connection. Beyond it a request is answered at once with 503 MG_CIRCUIT_OPEN. ' +
          'Default 1024; 0: a request is refused when no connection is free.',
      ),
    ),
    maxRequests: Type.Optional(
      Limit(
        'Requests in flight to the service (sent or waiting). Beyond it: 503 MG_CIRCUIT_OPEN at once. Default 1024; ' +
          '0 refuses every request.',
      ),
    ),
    maxRetries: Type.Optional(
      Limit('Retries in flight to the service. Beyond it a failure is not retried. Default 1024; 0: no retries.'),
    ),
  },
  {
    additionalProperties: false,
    description:
      'Limits per service and per proxy process (Envoy semantics): overflow is refused at once, never queued.',
  },
);

export const AdaptiveConcurrencySchema = Type.Object(
  {
    sampleInterval: Type.Optional(
      Duration(
        'How often the limit is recalculated from the latencies of the tries that ended since the last time. ' +
          'Default 100ms. Must not be 0.',
      ),
    ),
    minRttInterval: Type.Optional(
      Duration(
        'How often the unloaded latency (minRTT) is measured again, with the limit held at minConcurrency while ' +
          'it is. Default 60s; 0: measured once, when the service starts.',
      ),
    ),
    minRttRequests: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 100_000,
        description: 'Tries whose mean latency is one minRTT measurement. Default 50.',
      }),
    ),
    jitter: Type.Optional(
      Type.Number({
        minimum: 0,
        maximum: 100,
        description:
          'Random extra delay before each minRTT measurement, percent of minRttInterval, so proxies do not ' +
          'measure in step. Default 15; 0: none.',
      }),
    ),
    tolerance: Type.Optional(
      Type.Number({
        minimum: 0,
        maximum: 1000,
        description:
          'Percent the sampled latency may exceed minRTT before the limit comes down. Default 25; 0: any rise ' +
          'lowers it.',
      }),
    ),
    minConcurrency: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 1_000_000,
        description: 'The lowest limit, and the limit while minRTT is measured. Default 3.',
      }),
    ),
    maxConcurrency: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 1_000_000,
        description: 'The highest limit. Default 1000; at least minConcurrency.',
      }),
    ),
    headroom: Type.Optional(
      Type.Number({
        minimum: 0,
        maximum: 1_000_000,
        description:
          'Tries added to each newly computed limit, so it can probe upwards (a queue the service may hold). ' +
          'Default: the square root of the limit; 0: none.',
      }),
    ),
    smoothing: Type.Optional(
      Type.Number({
        exclusiveMinimum: 0,
        maximum: 1,
        description: 'Weight of a newly computed limit against the current one. Default 0.2; 1: no smoothing.',
      }),
    ),
  },
  {
    additionalProperties: false,
    description:
      'An adaptive limit on tries in flight to the service, per proxy process, that follows its latency ' +
      '(gradient = minRTT / sampled latency). Over the limit a request is answered at once with 503 ' +
      'MG_CONCURRENCY_LIMITED. Off unless present.',
  },
);

export const RETRY_CONDITIONS = [
  'connect-failure',
  'refused-stream',
  'reset',
  'gateway-error',
  '5xx',
  'retriable-status-codes',
  'cancelled',
  'deadline-exceeded',
  'internal',
  'resource-exhausted',
  'unavailable',
] as const;
export type RetryCondition = (typeof RETRY_CONDITIONS)[number];

const retryFields = {
  attempts: Type.Optional(
    Type.Integer({
      minimum: 0,
      maximum: 10,
      description: 'Retries after the first try (2: at most 3 tries). Default 2; 0 disables retries.',
    }),
  ),
  on: Type.Optional(
    Type.Array(Type.Unsafe<RetryCondition>({ type: 'string', enum: [...RETRY_CONDITIONS] }), {
      minItems: 1,
      uniqueItems: true,
      description:
        'When to retry: `connect-failure`, `refused-stream`, `reset` (closed, reset or per-try timeout before the ' +
        'response), `gateway-error` (502/503/504 and all of those), `5xx` (any 5xx and all of those), ' +
        '`retriable-status-codes` (`statusCodes`), and gRPC statuses `cancelled`, `deadline-exceeded`, `internal`, ' +
        '`resource-exhausted`, `unavailable`. Default `[gateway-error, refused-stream]`.',
    }),
  ),
  statusCodes: Type.Optional(
    Type.Array(Type.Integer({ minimum: 100, maximum: 599 }), {
      minItems: 1,
      uniqueItems: true,
      description: 'Statuses retried under `retriable-status-codes`, e.g. `[409]`.',
    }),
  ),
  perTryTimeout: Type.Optional(
    Duration(
      'Time one try may take until the response headers arrive; a try that exceeds it is a `reset`. ' +
        'Default: none of its own (each try may use what is left of `timeouts.request`); 0: the same.',
    ),
  ),
  backoff: Type.Optional(
    Type.Object(
      {
        base: Type.Optional(Duration('Default 25ms. The nth retry waits a random time below base × 2^(n-1).')),
        max: Type.Optional(Duration('Cap of the wait. Default 250ms.')),
      },
      { additionalProperties: false, description: 'Exponential backoff with full jitter between tries.' },
    ),
  ),
  nonIdempotent: Type.Optional(
    Type.Boolean({
      description:
        'Also retry POST, PATCH and other non-idempotent methods. Default false: they are retried only when the ' +
        'request never left the proxy (connect failure, refused stream).',
    }),
  ),
  replayBufferBytes: Type.Optional(
    Type.Integer({
      minimum: 0,
      maximum: 16 * 1024 * 1024,
      description:
        'A request body is kept (while it streams) for a retry up to this many bytes; a larger body is not retried. ' +
        'Default 65536; 0: requests with a body are not retried once sent.',
    }),
  ),
  maxRetryAfter: Type.Optional(
    Duration(
      'An upstream’s Retry-After is waited for up to this long; a longer one ends the retries and its response goes ' +
        'to the client. Default 10s; 0: a response with Retry-After is never retried.',
    ),
  ),
};

export const RetryBudgetSchema = Type.Object(
  {
    percent: Type.Optional(
      Type.Number({
        minimum: 0,
        maximum: 1000,
        description:
          'Retries may add at most this percent to the requests of the window. Default 20; 0: only the minimum.',
      }),
    ),
    minPerSecond: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: 100000,
        description: 'Retries per second always allowed, for services with little traffic. Default 10; 0: none.',
      }),
    ),
    window: Type.Optional(
      Duration('The sliding window requests and retries are counted over. Default 10s. Must not be 0.'),
    ),
  },
  {
    additionalProperties: false,
    description: 'Bounds retries in proportion to traffic (as Linkerd does), so an outage cannot become a retry storm.',
  },
);

export const RetriesSchema = Type.Object(
  { ...retryFields, budget: Type.Optional(RetryBudgetSchema) },
  { additionalProperties: false, description: 'When and how failed requests are tried again.' },
);

export const RouteRetriesSchema = Type.Object(retryFields, {
  additionalProperties: false,
  description: 'Overrides the service’s `retries` field by field for this route (the budget stays the service’s).',
});

export const SubsetPolicySchema = Type.Object(
  {
    loadBalancer: Type.Optional(LoadBalancerSchema),
    circuitBreaker: Type.Optional(CircuitBreakerSchema),
    outlierDetection: Type.Optional(OutlierDetectionSchema),
    timeouts: Type.Optional(ServiceTimeoutsSchema),
  },
  {
    additionalProperties: false,
    description:
      'Policies for the traffic to one subset, each merged field by field over the service’s (a field set here ' +
      'replaces the service’s, the rest stay the service’s). A route or mirror naming this subset gets its own ' +
      'balancer, circuit breaker, outlier detection and health checks over exactly the subset’s endpoints; ' +
      'traffic to the service without a subset, or to another subset, keeps the service’s.',
  },
);

export const ServiceSchema = Type.Object(
  {
    name: Name('Unique name of the service; routes refer to it.'),
    endpoints: Type.Optional(
      Type.Array(EndpointSchema, {
        description:
          'Static instances of the service. Default none: in the mesh a service’s instances come from the ' +
          'registry (listed after these); a gateway service without any answers 503 MG_NO_HEALTHY_UPSTREAM.',
      }),
    ),
    subsets: Type.Optional(
      Type.Record(Type.String({ minLength: 1 }), Labels, {
        description: 'Named groups of endpoints selected by labels, e.g. `v2: { version: v2 }`.',
      }),
    ),
    subsetPolicies: Type.Optional(
      Type.Record(Type.String({ minLength: 1 }), SubsetPolicySchema, {
        description:
          'Per subset (a name declared under `subsets`), policies that override the service’s for traffic to ' +
          'that subset, e.g. `v2: { circuitBreaker: { maxRequests: 10 } }`.',
      }),
    ),
    timeouts: Type.Optional(ServiceTimeoutsSchema),
    plugins: Type.Optional(Type.Array(PluginEntrySchema, { description: 'Plugins for routes to this service.' })),
    loadBalancer: Type.Optional(LoadBalancerSchema),
    healthCheck: Type.Optional(HealthCheckSchema),
    outlierDetection: Type.Optional(OutlierDetectionSchema),
    circuitBreaker: Type.Optional(CircuitBreakerSchema),
    adaptiveConcurrency: Type.Optional(AdaptiveConcurrencySchema),
    retries: Type.Optional(RetriesSchema),
    protocol: Type.Optional(
      Type.Unsafe<'http1' | 'http2' | 'auto'>({
        type: 'string',
        enum: ['http1', 'http2', 'auto'],
        description:
          'HTTP version towards the endpoints. `http1` (default). `http2`: HTTP/2 only (h2c prior knowledge for ' +
          '`http://` endpoints, ALPN for `https://`), streams multiplexed on one connection per endpoint; needed for ' +
          'gRPC. `auto`: HTTP/2 when an `https://` endpoint offers it by ALPN, else HTTP/1.1.',
      }),
    ),
    engine: Type.Optional(
      Type.Unsafe<'undici' | 'lean'>({
        type: 'string',
        enum: ['undici', 'lean'],
        description:
          'What makes HTTP/1.1 requests to the endpoints. `lean` (the default for `protocol: http1`): a client on the ' +
          'same llhttp parser as node:http, with the same connection limits, keep-alive and timeouts as undici, and ' +
          'less work per request (docs/configuration.md); plain HTTP/1.1 only: `https://` endpoints, and endpoints ' +
          "under mutual TLS in the mesh, keep undici. `undici`: undici's client (the default for `http2` and `auto`).",
      }),
    ),
    mtls: Type.Optional(ServiceMtlsSchema),
    dependsOn: Type.Optional(
      Type.Array(Name('A service of the same file or model.'), {
        uniqueItems: true,
        description:
          'Mesh: the services this service calls (its egress, as the hosts of Istio’s Sidecar resource). ' +
          'Its sidecars then receive only these services (and those the model’s routes for them send to), ' +
          'and hear of no change to any other; a sidecar’s `--egress` adds to the list. `[]`: it calls ' +
          'none. Absent: every service in the mesh (unless `--egress` names some). Each must be a service ' +
          'declared here. A gateway or a proxy ignores it.',
      }),
    ),
    origin: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          'Where this object came from when it was converted from another format, e.g. ' +
          '`istio:VirtualService/default/property-service http[1]` (src/compat/). Shown by the admin API and ' +
          '`meshgate proxy-config`; changes no behaviour.',
      }),
    ),
  },
  { additionalProperties: false, description: 'A named upstream.' },
);

const StringMatchObject = Type.Object(
  {
    exact: Type.Optional(Type.String({ description: 'The value equals this.' })),
    prefix: Type.Optional(Type.String({ description: 'The value starts with this.' })),
    regex: Type.Optional(
      Type.String({ minLength: 1, description: 'The whole value matches this regular expression.' }),
    ),
    present: Type.Optional(Type.Boolean({ description: '`true`: present with any value; `false`: must be absent.' })),
  },
  { additionalProperties: false, minProperties: 1, maxProperties: 1 },
);

/** A header or query condition: a string means exact match. */
export const ValueMatchSchema = Type.Union([Type.String(), StringMatchObject], {
  description: 'A string for an exact match, or one of `{ exact }`, `{ prefix }`, `{ regex }`, `{ present }`.',
});

export const RouteMatchSchema = Type.Object(
  {
    hosts: Type.Optional(
      Type.Array(Type.String({ minLength: 1, pattern: '^(\\*\\.)?[A-Za-z0-9.-]+$' }), {
        minItems: 1,
        description: 'Host names (without port): exact, or `*.example.com` for any subdomain. Default: any host.',
      }),
    ),
    path: Type.Optional(
      Type.String({
        pattern: '^/',
        description:
          '`/a/b` exact; `/a/:id` a named segment; `/a/*` the prefix `/a/`, everything below it, and `/a` itself. ' +
          'Default: any path.',
      }),
    ),
    pathRegex: Type.Optional(
      Type.String({
        minLength: 1,
        description: 'A regular expression the whole path must match (use `path` if you can).',
      }),
    ),
    methods: Type.Optional(
      Type.Array(Type.Unsafe<HttpMethod>({ type: 'string', enum: [...HTTP_METHODS] }), {
        minItems: 1,
        uniqueItems: true,
        description: 'Methods that match. Default: any method.',
      }),
    ),
    headers: Type.Optional(
      Type.Record(Type.String({ minLength: 1 }), ValueMatchSchema, {
        description: 'Request headers that must match (names are case-insensitive).',
      }),
    ),
    query: Type.Optional(
      Type.Record(Type.String({ minLength: 1 }), ValueMatchSchema, {
        description: 'Query parameters that must match.',
      }),
    ),
    cookies: Type.Optional(
      Type.Record(Type.String({ minLength: 1 }), ValueMatchSchema, {
        description: 'Cookies (from the Cookie header, by name) that must match, e.g. `{ canary: "true" }`.',
      }),
    ),
    grpc: Type.Optional(
      Type.Object(
        {
          service: Type.String({
            minLength: 1,
            pattern: '^[A-Za-z_][A-Za-z0-9_.]*$',
            description: 'Fully qualified gRPC service, e.g. `shop.v1.Catalog`.',
          }),
          method: Type.Optional(
            Type.String({ minLength: 1, pattern: '^[A-Za-z_][A-Za-z0-9_]*$', description: 'Method; default: any.' }),
          ),
        },
        {
          additionalProperties: false,
          description:
            'gRPC calls of this service (and method): the path `/service/method`, or `/service/*`. Not with `path`.',
        },
      ),
    ),
  },
  { additionalProperties: false },
);

export const DestinationSchema = Type.Object(
  {
    service: Type.String({ minLength: 1, description: 'Name of a service.' }),
    subset: Type.Optional(Type.String({ minLength: 1, description: 'Name of a subset of that service.' })),
    weight: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: 100,
        description: 'Percentage of the route traffic; the weights of a route sum to 100. 0 sends nothing.',
      }),
    ),
  },
  { additionalProperties: false },
);

export const RewriteSchema = Type.Object(
  {
    prefix: Type.Optional(
      Type.String({
        pattern: '^/',
        description:
          'Replaces the part of the path matched before `*` (or the whole exact path) with this, e.g. `/v2/`. ' +
          '`/` strips the prefix.',
      }),
    ),
    regex: Type.Optional(
      Type.Object(
        {
          pattern: Type.String({ minLength: 1, description: 'Regular expression applied to the path.' }),
          substitution: Type.String({ description: 'Replacement; `$1` or `$<name>` refer to groups.' }),
        },
        { additionalProperties: false },
      ),
    ),
    host: Type.Optional(Type.String({ minLength: 1, description: 'Host header sent upstream.' })),
    autoHost: Type.Optional(
      Type.Boolean({ description: 'Send the chosen endpoint’s host:port as Host. Default false (the client’s Host).' }),
    ),
  },
  { additionalProperties: false, description: 'Changes to the request before it goes upstream.' },
);

export const RouteTimeoutsSchema = Type.Object(
  {
    request: Type.Optional(Duration('Overrides the service’s `timeouts.request` for this route; 0 disables it.')),
    idle: Type.Optional(Duration('Overrides the service’s `timeouts.idle` for this route; 0 disables it.')),
  },
  { additionalProperties: false },
);

export const DirectResponseSchema = Type.Object(
  {
    status: Type.Integer({ minimum: 200, maximum: 599 }),
    body: Type.Optional(Type.String({ description: 'Response body. Default empty.' })),
    contentType: Type.Optional(Type.String({ description: 'Default `text/plain; charset=utf-8`.' })),
  },
  { additionalProperties: false, description: 'Answer at the proxy without any upstream.' },
);

export const REDIRECT_STATUSES = [301, 302, 303, 307, 308] as const;

export const RedirectSchema = Type.Object(
  {
    status: Type.Optional(
      Type.Union(
        REDIRECT_STATUSES.map((s) => Type.Literal(s)),
        {
          description:
            'Status of the redirect. Default 301. 307 and 308 tell the client to repeat the method and body; ' +
            '301, 302 and 303 let it switch to GET.',
        },
      ),
    ),
    scheme: Type.Optional(
      Type.Union([Type.Literal('http'), Type.Literal('https')], {
        description: 'Scheme of the Location. Default: the scheme the request came in on.',
      }),
    ),
    host: Type.Optional(
      Type.String({ minLength: 1, description: 'Host of the Location (no port). Default: the request’s host.' }),
    ),
    port: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 65535,
        description:
          'Port of the Location. Default: the request’s port when neither scheme nor host changes, else the ' +
          'scheme’s default port (left out of the URL).',
      }),
    ),
    path: Type.Optional(
      Type.String({ pattern: '^/', description: 'Replaces the whole path. Default: the request’s path.' }),
    ),
    prefix: Type.Optional(
      Type.String({
        pattern: '^/',
        description:
          'Replaces the part of the path matched before `*` (or the whole exact path), as `rewrite.prefix` does. ' +
          'Use either `path` or `prefix`.',
      }),
    ),
    stripQuery: Type.Optional(
      Type.Boolean({ description: 'Leave the query string out of the Location. Default false (it is kept).' }),
    ),
  },
  {
    additionalProperties: false,
    description: 'Answer with a redirect (Location built from the request and these fields) instead of forwarding.',
  },
);

export const MirrorSchema = Type.Object(
  {
    service: Type.String({ minLength: 1, description: 'Name of the shadow service.' }),
    subset: Type.Optional(Type.String({ minLength: 1, description: 'Name of a subset of that service.' })),
    percent: Type.Optional(
      Type.Number({
        minimum: 0,
        maximum: 100,
        description: 'Percent of the route’s requests copied. Default 100; 0: none.',
      }),
    ),
  },
  {
    additionalProperties: false,
    description:
      'Sends a copy of requests to a shadow service; its response is discarded and never affects the client.',
  },
);

const Percent = (description: string) => Type.Number({ minimum: 0, maximum: 100, description });

export const FaultSchema = Type.Object(
  {
    delay: Type.Optional(
      Type.Object(
        {
          duration: Duration('How long the request is held before it goes on.'),
          percent: Type.Optional(Percent('Percent of requests delayed. Default 100.')),
        },
        { additionalProperties: false },
      ),
    ),
    abort: Type.Optional(
      Type.Object(
        {
          status: Type.Integer({ minimum: 200, maximum: 599, description: 'Status of the injected reply.' }),
          percent: Type.Optional(Percent('Percent of requests aborted. Default 100.')),
        },
        { additionalProperties: false },
      ),
    ),
    header: Type.Optional(
      Type.String({
        minLength: 1,
        description: 'Only requests carrying this header (any value) get faults. Default: every request of the route.',
      }),
    ),
  },
  {
    additionalProperties: false,
    description: 'Fault injection for chaos testing: delay and/or abort a share of the route’s requests.',
  },
);

export const AGGREGATE_CALL_METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'] as const;

export const AggregateCallSchema = Type.Object(
  {
    name: Name(
      "Name of the call: its answer's key in the composed document (`merge: keyed`), what `dependsOn` and " +
        '`$(results.<name>.…)` refer to, and what errors name. Unique within the route; `errors` is reserved.',
    ),
    service: Type.String({ minLength: 1, description: 'Name of the service the call goes to.' }),
    subset: Type.Optional(Type.String({ minLength: 1, description: 'Name of a subset of that service.' })),
    method: Type.Optional(
      Type.Union(
        AGGREGATE_CALL_METHODS.map((m) => Type.Literal(m)),
        { description: 'Method of the call. Default GET. The calls send no body.' },
      ),
    ),
    path: Type.String({
      pattern: '^/',
      description:
        'Path and query of the call, a template: `$(params.id)`, `$(query.x)`, `$(headers.x)`, ' +
        '`$(consumer.name)`, `$(claims.sub)` from the request, `$(results.<call>.<field>…)` from the JSON answer ' +
        'of a call it depends on. Values are percent-encoded. A missing value skips the call.',
      examples: ['/properties/$(params.id)', '/valuations/$(results.property.postcode)'],
    }),
    headers: Type.Optional(
      Type.Array(Type.String({ minLength: 1, pattern: "^[A-Za-z0-9!#$%&'*+.^_`|~-]+$" }), {
        uniqueItems: true,
        description:
          'Client request headers passed on to this call (an allow-list, case-insensitive), e.g. ' +
          '`[authorization, accept-language]`. Default none: only the request id, trace context and ' +
          'forwarding headers (X-Forwarded-*, Forwarded) go with every call.',
      }),
    ),
    required: Type.Optional(
      Type.Boolean({
        description:
          'A failure of this call (no connection, timeout, circuit open, a status outside 2xx, an answer that ' +
          'is not JSON, or skipped) fails the whole answer: 502 MG_AGGREGATE_CALL_FAILED naming it. Default ' +
          'false: the call is left out of the answer and listed under `errors`.',
      }),
    ),
    timeout: Type.Optional(
      Duration(
        "Time for the whole call: every try (the service's retry policy), the response headers and body. " +
          "Default: the service's `timeouts.request`. 0: none.",
      ),
    ),
    dependsOn: Type.Optional(
      Type.Array(Type.String({ minLength: 1 }), {
        uniqueItems: true,
        description:
          'Names of calls of this route that must have succeeded before this one is sent (it may then use ' +
          'their answers in its path). Default none: the call starts at once, in parallel with the others. ' +
          'If one of them fails, this call is skipped.',
      }),
    ),
    maxBodyBytes: Type.Optional(
      Type.Integer({
        minimum: 0,
        description:
          'Largest answer read from this call, in bytes; a larger one fails the call (MG_RESPONSE_TOO_LARGE). ' +
          'Default 1048576 (1 MiB). 0: no limit.',
      }),
    ),
  },
  { additionalProperties: false },
);

export const AggregateSchema = Type.Object(
  {
    calls: Type.Array(AggregateCallSchema, {
      minItems: 1,
      description: 'The upstream calls whose JSON answers make up the response; in parallel unless `dependsOn`.',
    }),
    merge: Type.Optional(
      Type.Union([Type.Literal('keyed'), Type.Literal('top')], {
        description:
          "`keyed` (default): each call's answer under its name. `top`: the members of each answer that is a " +
          "JSON object merged at the top level, in the order of `calls` (a later call's member replaces an " +
          "earlier one's); an answer that is not an object stays under its name.",
      }),
    ),
  },
  {
    additionalProperties: false,
    description:
      'Answer with one JSON document composed from several upstream calls (docs/aggregation.md): 200 with the ' +
      'answers, and `errors` listing the optional calls that failed.',
  },
);

/** An RFC 3339 date-time with a time zone, e.g. `2026-06-30T23:59:59Z`; references.ts checks the date exists. */
const DateTime = (description: string) =>
  Type.String({
    pattern: '^\\d{4}-\\d{2}-\\d{2}[Tt ]\\d{2}:\\d{2}:\\d{2}(\\.\\d+)?([Zz]|[+-]\\d{2}:\\d{2})$',
    description,
    examples: ['2026-06-30T23:59:59Z'],
  });

export const RouteVersionSchema = Type.Object(
  {
    api: Name(
      'The API this route serves a version of, e.g. `property-api`: a label in usage records and the access log.',
    ),
    name: Name('The version, e.g. `v1`: a label in usage records and the access log.'),
    deprecation: Type.Optional(
      DateTime(
        'When this version is (or will be) deprecated, RFC 3339. Set: every response of the route carries ' +
          '`Deprecation: @<unix seconds>` (RFC 9745). Default: not deprecated (no header).',
      ),
    ),
    sunset: Type.Optional(
      DateTime(
        'When this version stops answering, RFC 3339; not before `deprecation`. Set: every response carries ' +
          '`Sunset: <HTTP-date>` (RFC 8594). The gateway keeps serving the route after it: removing the route is the owner’s step.',
      ),
    ),
    link: Type.Optional(
      Type.String({
        minLength: 1,
        pattern: '^[^\\s<>]+$',
        description:
          'The successor version: an absolute URL or a path (e.g. `/api/v2/properties`). Set: every response carries ' +
          '`Link: <link>; rel="successor-version"`.',
      }),
    ),
    deprecationLink: Type.Optional(
      Type.String({
        minLength: 1,
        pattern: '^[^\\s<>]+$',
        description:
          'A page explaining the deprecation (migration guide), URL or path. Set: every response carries ' +
          '`Link: <deprecationLink>; rel="deprecation"; type="text/html"` (RFC 9745 §3).',
      }),
    ),
  },
  {
    additionalProperties: false,
    description:
      'The API version this route serves. Selection stays with `match` (a path prefix, a header or a query parameter; ' +
      'docs/versioning.md); this adds the lifecycle headers and the `api`/`version` labels of usage records.',
  },
);

export const RouteSchema = Type.Object(
  {
    name: Name('Unique name of the route; appears in logs, metrics and the admin API.'),
    listeners: Type.Optional(
      Type.Array(Type.String({ minLength: 1 }), {
        minItems: 1,
        uniqueItems: true,
        description:
          'Names of the listeners this route is served on. Default: every listener. A sidecar uses it to keep ' +
          'its inbound route (to the app) apart from its outbound routes (to other services).',
      }),
    ),
    match: Type.Optional(RouteMatchSchema),
    service: Type.Optional(
      Type.String({ minLength: 1, description: 'Shorthand for one destination with weight 100.' }),
    ),
    destinations: Type.Optional(
      Type.Array(DestinationSchema, { minItems: 1, description: 'Weighted destinations; weights sum to 100.' }),
    ),
    directResponse: Type.Optional(DirectResponseSchema),
    redirect: Type.Optional(RedirectSchema),
    aggregate: Type.Optional(AggregateSchema),
    graphql: Type.Optional(GraphqlActionSchema),
    transcode: Type.Optional(TranscodeSchema),
    rewrite: Type.Optional(RewriteSchema),
    timeouts: Type.Optional(RouteTimeoutsSchema),
    retries: Type.Optional(RouteRetriesSchema),
    sticky: Type.Optional(
      hashOn(
        'Keeps a client on one side of a weighted split: the destination is chosen by a hash of this value instead ' +
          'of at random: one of `{ header }`, `{ cookie }`, `{ query }`, `{ clientIp: true }`. A request without ' +
          'the value is placed at random.',
      ),
    ),
    mirror: Type.Optional(MirrorSchema),
    fault: Type.Optional(FaultSchema),
    plugins: Type.Optional(Type.Array(PluginEntrySchema)),
    limits: Type.Optional(
      Type.Object(
        {
          maxBodyBytes: Type.Optional(
            Type.Integer({
              minimum: 0,
              description:
                'Largest request body, in bytes; larger gets 413. Default: the listener’s `limits.maxBodyBytes`. 0: no limit.',
            }),
          ),
        },
        { additionalProperties: false },
      ),
    ),
    redirectToHttps: Type.Optional(
      Type.Boolean({
        description:
          'Requests to this route that arrive over plain HTTP get a 308 redirect to https (port: the listener’s ' +
          '`httpsPort`). Default false.',
      }),
    ),
    applyPlans: Type.Optional(
      Type.Boolean({
        description:
          "Whether consumers' `plans` (quotas and plan rate limits) apply on this route. Default true. `false`: " +
          'requests here are neither counted nor refused by plans (e.g. a usage or billing page a consumer over ' +
          'quota must still reach).',
      }),
    ),
    version: Type.Optional(RouteVersionSchema),
    priority: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 1_000_000,
        description:
          'Takes the route out of the specificity order (docs/routing.md): within its host group, routes with a ' +
          '`priority` are tried before all others, higher first, then in declaration order, whatever their path ' +
          'kind. For first-match route lists such as Istio’s `http[]`. Default: none (specificity order).',
      }),
    ),
    origin: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          'Where this object came from when it was converted from another format, e.g. ' +
          '`istio:VirtualService/default/property-service http[1]` (src/compat/). Shown by the admin API and ' +
          '`meshgate proxy-config`; changes no behaviour.',
      }),
    ),
  },
  {
    additionalProperties: false,
    description:
      'Match plus one action: forward to `service` or `destinations`, answer with `directResponse`, or `redirect`.',
  },
);

export const ObservabilitySchema = Type.Object(
  {
    accessLog: Type.Optional(
      Type.Object(
        {
          output: Type.String({
            minLength: 1,
            description: '`stdout`, or a file path (relative to the config file) that lines are appended to.',
          }),
          sampleRatio: Type.Optional(
            Type.Number({
              minimum: 0,
              maximum: 1,
              description: 'Share of requests logged. Default 1 (all); 0 logs none.',
            }),
          ),
          fields: Type.Optional(
            Type.Array(
              Type.Unsafe<(typeof ACCESS_LOG_FIELD_NAMES)[number]>({
                type: 'string',
                enum: [...ACCESS_LOG_FIELD_NAMES],
              }),
              {
                minItems: 1,
                uniqueItems: true,
                description: 'Fields written (an allow-list). Default: all of them (docs/observability.md).',
              },
            ),
          ),
        },
        { additionalProperties: false, description: 'One JSON line per request. Default: off.' },
      ),
    ),
    tracing: Type.Optional(
      Type.Object(
        {
          endpoint: Type.String({
            pattern: '^https?://',
            description: 'OTLP/HTTP traces endpoint of a collector, e.g. `http://127.0.0.1:4318/v1/traces`.',
          }),
          samplingRatio: Type.Optional(
            Type.Number({
              minimum: 0,
              maximum: 1,
              description: 'Share of new traces recorded (a trace that arrives sampled stays sampled). Default 0.1.',
            }),
          ),
          serviceName: Type.Optional(
            Type.String({
              minLength: 1,
              description: 'service.name of the spans. Default `meshgate` (sidecars: their service).',
            }),
          ),
        },
        { additionalProperties: false, description: 'Spans per request, exported over OTLP/HTTP. Default: off.' },
      ),
    ),
    serverTiming: Type.Optional(
      Type.Boolean({
        description:
          'Add `Server-Timing: proxy;dur=…, upstream;dur=…` (milliseconds, `desc` naming the proxy) to responses: ' +
          'the time this proxy added and the upstream’s time to its response head. Default false.',
      }),
    ),
    explain: Type.Optional(
      Type.Object(
        {
          size: Type.Optional(
            Type.Integer({
              minimum: 0,
              maximum: 100_000,
              description:
                'Decision trails kept per proxy process (a ring: the oldest is overwritten). Default 128; 0 keeps none.',
            }),
          ),
          sampleRate: Type.Optional(
            Type.Number({
              minimum: 0,
              maximum: 1,
              description:
                'Share of requests whose trail is recorded. Default 0: only requests that ask with ' +
                '`X-Meshgate-Explain: 1` (from an identified consumer) are recorded.',
            }),
          ),
          consumers: Type.Optional(
            Type.Array(Type.String({ minLength: 1 }), {
              uniqueItems: true,
              description:
                'Consumers (by name, or `group:NAME`) whose `X-Meshgate-Explain: 1` is honoured. Default: every identified consumer.',
            }),
          ),
        },
        {
          additionalProperties: false,
          description:
            'Decision trails of recent requests, for `meshgate explain` and admin `GET /requests/{id}/explain` (docs/explain.md). Default: off.',
        },
      ),
    ),
  },
  { additionalProperties: false, description: 'Access log, tracing and timing headers. Metrics are always on.' },
);

export const RedisSchema = Type.Object(
  {
    url: Type.String({
      pattern: '^rediss?://',
      description:
        'Where Redis is: `redis://[user:password@]host:port[/db]`, or `rediss://` for TLS. Use `${REDIS_URL}` to keep a password out of the file.',
      examples: ['redis://127.0.0.1:6379', 'rediss://:${REDIS_PASSWORD}@redis.internal:6380/0'],
    }),
    keyPrefix: Type.Optional(
      Type.String({
        maxLength: 128,
        description:
          'Prepended to every key meshgate writes, so one Redis can serve several gateway fleets or other users. Default `meshgate:`; an empty string writes bare keys. Gateways that must share limits and cache entries use the same prefix.',
      }),
    ),
    timeout: Type.Optional(
      Duration(
        "Longest wait for one reply (a rate-limit decision, a cache read) before the store counts as unavailable for that request and the plugin's `failOpen` policy answers it. Default 200ms. `0`: no limit (a request waits while a connection is up; a lost connection still fails at once).",
      ),
    ),
  },
  {
    additionalProperties: false,
    description:
      'The Redis that plugins with `store: redis` share (rate-limit counters, cached responses): one client per proxy process, reconnecting by itself. See docs/operations.md.',
  },
);

export const PlanSchema = Type.Object(
  {
    name: Name('Unique name; consumers name it in `plan`.'),
    quotas: Type.Optional(
      Type.Object(
        {
          day: Type.Optional(
            Type.Integer({
              minimum: 1,
              description:
                'Requests per UTC calendar day (00:00 to 24:00 UTC). Refused past it with 429 MG_QUOTA_EXCEEDED ' +
                'until the next midnight UTC. Default: no daily quota.',
            }),
          ),
          month: Type.Optional(
            Type.Integer({
              minimum: 1,
              description:
                'Requests per UTC calendar month (from the 1st, 00:00 UTC). Refused past it with 429 ' +
                'MG_QUOTA_EXCEEDED until the 1st of the next month. Default: no monthly quota.',
            }),
          ),
        },
        {
          additionalProperties: false,
          minProperties: 1,
          description:
            'Requests a consumer of the plan may make per calendar period (UTC), across every route and, ' +
            'with `store: redis`, every gateway. A request counts when it is admitted.',
        },
      ),
    ),
    rateLimits: Type.Optional(
      Type.Array(
        Type.Object(
          {
            requests: Type.Integer({ minimum: 1, description: 'Requests allowed per window.' }),
            window: Duration('Window length, e.g. `1s`, `1m`; sliding, as in the rate-limit plugin. Not 0.'),
          },
          { additionalProperties: false },
        ),
        {
          minItems: 1,
          description:
            'Rate limits per consumer of the plan, across every route, in the shape of the rate-limit ' +
            "plugin's `limits` (sliding windows). Refused past one with 429 MG_RATE_LIMITED.",
        },
      ),
    ),
    store: Type.Optional(
      Type.Union([Type.Literal('memory'), Type.Literal('redis')], {
        description:
          'Where the counts are kept. `memory` (default): on this machine, exact whatever `--workers` is. ' +
          '`redis`: in the top-level `redis`, one count for every gateway on it.',
      }),
    ),
    failOpen: Type.Optional(
      Type.Boolean({
        description:
          'When the count cannot be reached (Redis not answering within `redis.timeout`; a worker whose ' +
          'primary is gone): true (default) lets the request through uncounted, false refuses it with 503 ' +
          'MG_STORE_UNAVAILABLE.',
      }),
    ),
    headers: Type.Optional(
      Type.Boolean({
        description:
          'Add `RateLimit-*` and `X-RateLimit-Limit-Day`/`-Month`, `X-RateLimit-Remaining-Day`/`-Month` to ' +
          "responses to the plan's consumers. Default true.",
      }),
    ),
  },
  {
    additionalProperties: false,
    description: 'A plan consumers subscribe to (`consumers[].plan`): quotas per calendar period and rate limits.',
  },
);

export const MeteringSchema = Type.Object(
  {
    enabled: Type.Optional(
      Type.Boolean({
        description:
          'Count usage. Default true when the `metering` block is present; without the block nothing is metered.',
      }),
    ),
    store: Type.Optional(
      Type.Unsafe<'sqlite' | 'redis'>({
        type: 'string',
        enum: ['sqlite', 'redis'],
        description:
          'Where counts are kept: `sqlite` (a file on this machine, shared by every worker) or `redis` (the ' +
          'top-level `redis` block, shared by every gateway on it). Default `sqlite`.',
      }),
    ),
    path: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          'The SQLite file (`store: sqlite`), relative to the config file’s directory. Default ' +
          '`meshgate-usage.db` beside the config file. Its directory must exist.',
      }),
    ),
    flushInterval: Type.Optional(
      Duration(
        'How often counts kept in memory are written to the store. Default 5s. A crash loses at most this ' +
          'much; a clean stop (SIGTERM) loses nothing. `0`: the default.',
      ),
    ),
  },
  {
    additionalProperties: false,
    description:
      'Usage metering: requests and response bytes per hour, consumer, route, API version and status class, for ' +
      'every request a consumer made (docs/metering.md). Off unless this block is present.',
  },
);

export const ConfigSchema = Type.Object(
  {
    $schema: Type.Optional(Type.String({ description: 'Path or URL of this schema, for editors.' })),
    listeners: Type.Optional(Type.Array(ListenerSchema, { description: 'Client-facing ports.' })),
    admin: Type.Optional(AdminSchema),
    services: Type.Optional(Type.Array(ServiceSchema)),
    routes: Type.Optional(Type.Array(RouteSchema, { description: 'Routes; see docs/routing.md for precedence.' })),
    consumers: Type.Optional(Type.Array(ConsumerSchema, { description: 'API clients and their credentials.' })),
    plans: Type.Optional(
      Type.Array(PlanSchema, {
        description: 'Quotas and rate limits that consumers subscribe to (`consumers[].plan`); docs/plans.md.',
      }),
    ),
    plugins: Type.Optional(Type.Array(PluginEntrySchema, { description: 'Plugins for every route.' })),
    observability: Type.Optional(ObservabilitySchema),
    redis: Type.Optional(RedisSchema),
    metering: Type.Optional(MeteringSchema),
    authorizationPolicies: Type.Optional(
      Type.Array(AuthorizationPolicySchema, {
        description:
          'Who may call which service (Istio semantics; docs/authorization.md). Enforced on every route to the ' +
          'service a policy names, or on every route for a policy without `service`.',
      }),
    ),
    mesh: Type.Optional(MeshSchema),
  },
  { additionalProperties: false, title: 'meshgate configuration' },
);

export type Config = Static<typeof ConfigSchema>;
export type ObservabilityConfig = Static<typeof ObservabilitySchema>;
export type RedisConfig = Static<typeof RedisSchema>;
export type MeshConfig = Static<typeof MeshSchema>;
export type ServiceMtlsConfig = Static<typeof ServiceMtlsSchema>;
export type ListenerMtlsConfig = Static<typeof ListenerMtlsSchema>;
export type ListenerConfig = Static<typeof ListenerSchema>;
export type ListenerTlsConfig = Static<typeof ListenerTlsSchema>;
export type ListenerLimitsConfig = Static<typeof ListenerLimitsSchema>;
export type AdminConfig = Static<typeof AdminSchema>;
export type ServiceConfig = Static<typeof ServiceSchema>;
export type SubsetPolicyConfig = Static<typeof SubsetPolicySchema>;
export type EndpointConfig = Static<typeof EndpointSchema>;
export type RouteConfig = Static<typeof RouteSchema>;
export type RouteVersionConfig = Static<typeof RouteVersionSchema>;
export type MeteringConfig = Static<typeof MeteringSchema>;
export type RouteMatchConfig = Static<typeof RouteMatchSchema>;
export type ValueMatchConfig = Static<typeof ValueMatchSchema>;
export type DestinationConfig = Static<typeof DestinationSchema>;
export type RewriteConfig = Static<typeof RewriteSchema>;
export type PluginEntryConfig = Static<typeof PluginEntrySchema>;
export type ConsumerConfig = Static<typeof ConsumerSchema>;
export type PlanConfig = Static<typeof PlanSchema>;
export type JwtCredentialConfig = Static<typeof JwtCredentialSchema>;
export type ApiKeyCredentialConfig = Static<typeof ApiKeyCredentialSchema>;
export type HashOnConfig = Static<typeof HashOnSchema>;
export type LoadBalancerConfig = Static<typeof LoadBalancerSchema>;
export type HealthCheckConfig = Static<typeof HealthCheckSchema>;
export type OutlierDetectionConfig = Static<typeof OutlierDetectionSchema>;
export type CircuitBreakerConfig = Static<typeof CircuitBreakerSchema>;
export type AdaptiveConcurrencyConfig = Static<typeof AdaptiveConcurrencySchema>;
export type RetriesConfig = Static<typeof RetriesSchema>;
export type RouteRetriesConfig = Static<typeof RouteRetriesSchema>;
export type RetryBudgetConfig = Static<typeof RetryBudgetSchema>;
export type MirrorConfig = Static<typeof MirrorSchema>;
export type FaultConfig = Static<typeof FaultSchema>;
export type RedirectConfig = Static<typeof RedirectSchema>;
export type DirectResponseConfig = Static<typeof DirectResponseSchema>;
export type AggregateConfig = Static<typeof AggregateSchema>;
export type AggregateCallConfig = Static<typeof AggregateCallSchema>;
export type { AuthorizationPolicyConfig } from './authorization.ts';
export type { TranscodeConfig } from './transcode.ts';
export type { TSchema };
