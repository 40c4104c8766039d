/**
 * Every default timeout and limit, in one place (house rule 5).
 * Unit in the name; what 0 means is documented at the config field that overrides it.
 */
export const DEFAULT_ADMIN_PORT = 9901;
export const DEFAULT_ADMIN_ADDRESS = '127.0.0.1';
export const DEFAULT_LISTENER_ADDRESS = '0.0.0.0';
export const DEFAULT_TRUSTED_HOPS = 0;

/** Upstream connect timeout (Envoy's default is also 5 s). */
export const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;
/** From sending the request upstream until the response headers arrive. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
/**
 * Request timeouts shorter than this are kept by a timer of the proxy's own, to the millisecond;
 * longer ones by undici's coarse shared timers (cheaper, accurate to about a second).
 */
export const PRECISE_TIMEOUT_BELOW_MS = 5_000;
/** Longest silence between two chunks of a streaming response body. */
export const DEFAULT_IDLE_TIMEOUT_MS = 60_000;

/** Upstream connections kept per endpoint. */
export const DEFAULT_MAX_CONNECTIONS_PER_ENDPOINT = 1024;
/** How long an unused upstream connection stays open. */
export const DEFAULT_UPSTREAM_KEEPALIVE_MS = 60_000;
/**
 * The lean upstream client (`services[].engine: lean`) closes a kept-alive connection this much before
 * the timeout its upstream announces (`Keep-Alive: timeout=N`), so it never sends on a connection the
 * upstream is closing (undici's `keepAliveTimeoutThreshold`, the same 2 s).
 */
export const UPSTREAM_KEEPALIVE_THRESHOLD_MS = 2_000;
/** Longest keep-alive the lean upstream client takes from an upstream's announcement (undici's `keepAliveMaxTimeout`). */
export const UPSTREAM_KEEPALIVE_MAX_MS = 600_000;
/**
 * How often the lean upstream client checks its connections' idle, headers and body deadlines (one sweep
 * for all of them instead of a timer per request): those timeouts fire up to this much late, as undici's
 * coarse timers do. Shorter request timeouts are kept to the millisecond by the forwarder's own timer.
 */
export const LEAN_CLIENT_SWEEP_MS = 500;

/** Client-side keep-alive: how long an idle client connection (or HTTP/2 session) is kept open. */
export const DEFAULT_CLIENT_KEEPALIVE_MS = 65_000;

/*
 * Listener limits (`listeners[].limits`). Each bounds what one client can make the proxy hold or wait
 * for; the request is refused before anything goes upstream.
 */
/** Request line plus headers, in bytes (431 beyond). Node's own default, and nginx's 4 × 8 KiB buffers. */
export const DEFAULT_MAX_HEADER_BYTES = 16 * 1024;
/** Request target (path and query), in bytes (414 beyond). */
export const DEFAULT_MAX_URL_BYTES = 8 * 1024;
/**
 * Request body, in bytes (413 beyond); 0: no limit. Bodies stream and are never held whole, so the limit
 * protects upstreams rather than the proxy; routes set their own.
 */
export const DEFAULT_MAX_BODY_BYTES = 0;
/** Open client connections per proxy process; more are closed as they arrive. */
export const DEFAULT_MAX_CLIENT_CONNECTIONS = 10_000;
/** Concurrent HTTP/2 streams a client may open on one connection (RFC 9113 suggests at least 100). */
export const DEFAULT_MAX_CONCURRENT_STREAMS = 100;
/** Streams an HTTP/2 upstream connection carries at once; more wait in undici's queue (pending requests). */
export const DEFAULT_UPSTREAM_MAX_CONCURRENT_STREAMS = 100;
/** From a connection's first byte (or the end of the previous request) until the request head is complete. */
export const DEFAULT_HEADERS_TIMEOUT_MS = 10_000;
/** From a request's first byte until its body has been received whole (Node's default). */
export const DEFAULT_CLIENT_REQUEST_TIMEOUT_MS = 300_000;
/**
 * Longest wait for the next byte of a request body while the proxy is ready to read it (a stalled
 * upload). nginx's client_body_timeout is 60 s between reads; shorter here, since a healthy client on
 * any network sends something within seconds.
 */
export const DEFAULT_BODY_IDLE_TIMEOUT_MS = 10_000;
/** Slowest request body accepted once the grace period is over, in bytes per second (Apache mod_reqtimeout's MinRate). */
export const DEFAULT_BODY_MIN_BYTES_PER_SECOND = 500;
/** The body rate is not enforced for this long after the body starts; also the most credit a fast start earns. */
export const DEFAULT_BODY_MIN_RATE_GRACE_MS = 10_000;
/** Longest silence, either way, on an upgraded (WebSocket) connection. */
export const DEFAULT_WEBSOCKET_IDLE_TIMEOUT_MS = 300_000;

/** TLS listeners: the oldest protocol accepted. */
export const DEFAULT_TLS_MIN_VERSION = 'TLSv1.2';
/**
 * TLS 1.2 cipher suites (TLS 1.3 suites are all modern): ECDHE with AES-GCM or ChaCha20-Poly1305 only,
 * i.e. forward secrecy and AEAD (Mozilla's "intermediate" list).
 */
export const DEFAULT_TLS_CIPHERS = [
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');
/** Port in the Location of an HTTP → HTTPS redirect (left out of the URL when 443). */
export const DEFAULT_HTTPS_PORT = 443;

/** On SIGTERM: how long in-flight requests may take before connections are cut. */
export const DEFAULT_DRAIN_TIMEOUT_MS = 20_000;
/** After a reload removes or moves a listener: how long its in-flight requests may finish. */
export const DEFAULT_LISTENER_DRAIN_MS = 5_000;
/** Debounce between a config file change and its reload, so editors' multi-step saves load once. */
export const DEFAULT_RELOAD_DEBOUNCE_MS = 150;

export const REQUEST_ID_HEADER = 'x-request-id';
/**
 * A client's own deadline for one request, as a duration (`250ms`, `2s`): it can only shorten the
 * route's `timeouts.request`. Read by the proxy and not forwarded.
 */
export const REQUEST_TIMEOUT_HEADER = 'x-request-timeout';
/**
 * A client asks for its request's decision trail (`1`); consumed by the proxy. Between mesh proxies it
 * says the caller recorded one, so the next hop records its own.
 */
export const EXPLAIN_REQUEST_HEADER = 'x-meshgate-explain';
/** The response header naming the request id whose trail was recorded (`meshgate explain ID`). */
export const EXPLAIN_ID_HEADER = 'x-meshgate-explain-id';

// --- Load balancing (docs/resilience.md) -------------------------------------------------------

export const DEFAULT_LB_POLICY = 'round-robin';
/**
 * Below this share of available endpoints (healthy and not ejected) a set spreads load over all its
 * endpoints rather than overload the few left (Envoy's default, too). 0 disables panic mode.
 */
export const DEFAULT_PANIC_THRESHOLD_PERCENT = 50;
/**
 * Ring-hash: points per unit of weight (ketama's 160). Fixed, not derived from the number of endpoints,
 * so an endpoint's points never change while its URL and weight do not: a config change that adds or
 * removes endpoints moves only their keys.
 */
export const DEFAULT_RING_POINTS_PER_WEIGHT = 160;
/** Most points on one ring; beyond it every endpoint's share is scaled down alike. */
export const MAX_RING_HASH_RING_SIZE = 1 << 20;
/** Maglev lookup table size: a prime; larger means less disruption when endpoints change. */
export const MAGLEV_TABLE_SIZE = 65_537;
/** Tries to find an endpoint not yet used by this request before a retry accepts a repeat. */
export const RETRY_HOST_RESELECT_ATTEMPTS = 3;

// --- Active health checks -----------------------------------------------------------------------

export const DEFAULT_HEALTH_CHECK_INTERVAL_MS = 5_000;
export const DEFAULT_HEALTH_CHECK_TIMEOUT_MS = 1_000;
/** Consecutive failed checks that take a healthy endpoint out of rotation. */
export const DEFAULT_HEALTH_CHECK_UNHEALTHY_THRESHOLD = 3;
/** Consecutive passed checks that bring an unhealthy endpoint back. */
export const DEFAULT_HEALTH_CHECK_HEALTHY_THRESHOLD = 2;
/** Random extra delay added to each interval, as a share of the interval, so proxies do not check in step. */
export const DEFAULT_HEALTH_CHECK_JITTER_PERCENT = 10;
export const DEFAULT_HEALTH_CHECK_EXPECTED_STATUSES: readonly [number, number][] = [[200, 299]];

// --- Outlier detection (passive) ----------------------------------------------------------------

/** Consecutive 5xx responses or gateway failures (connect failure, reset, timeout) that eject an endpoint. */
export const DEFAULT_OUTLIER_CONSECUTIVE_ERRORS = 5;
/** Consecutive gateway failures (502/503/504, connect failure, reset, timeout) that eject; 0: off. */
export const DEFAULT_OUTLIER_CONSECUTIVE_GATEWAY_ERRORS = 0;
/** The first ejection lasts this long; the nth lasts n times as long, up to the maximum. */
export const DEFAULT_OUTLIER_BASE_EJECTION_MS = 30_000;
export const DEFAULT_OUTLIER_MAX_EJECTION_MS = 300_000;
/** Most endpoints of a service ejected at once, in percent (at least one may always be ejected). */
export const DEFAULT_OUTLIER_MAX_EJECTION_PERCENT = 10;
/** Each interval an endpoint spends in rotation forgives one past ejection (the multiplier shrinks). */
export const DEFAULT_OUTLIER_INTERVAL_MS = 10_000;

// --- Circuit breaking (per service, per proxy process; Envoy's defaults) -----------------------

export const DEFAULT_CB_MAX_CONNECTIONS = 1024;
export const DEFAULT_CB_MAX_PENDING_REQUESTS = 1024;
export const DEFAULT_CB_MAX_REQUESTS = 1024;
/** Retries in flight at once; the retry budget is what bounds retries in proportion to traffic. */
export const DEFAULT_CB_MAX_RETRIES = 1024;

// --- Adaptive concurrency (per service, per proxy process; off unless configured) ---------------

/** How often the limit is recalculated from the latencies sampled since the last time. */
export const DEFAULT_AC_SAMPLE_INTERVAL_MS = 100;
/** How often the service's unloaded latency (minRTT) is measured again; 0: once, at the start. */
export const DEFAULT_AC_MIN_RTT_INTERVAL_MS = 60_000;
/** Tries sampled for one minRTT measurement (at `minConcurrency` in flight). */
export const DEFAULT_AC_MIN_RTT_REQUESTS = 50;
/** Random extra delay before each minRTT measurement, in percent of the interval, so proxies differ. */
export const DEFAULT_AC_JITTER_PERCENT = 15;
/** Percent the sampled latency may exceed minRTT before the limit comes down (Envoy's buffer). */
export const DEFAULT_AC_TOLERANCE_PERCENT = 25;
/** The lowest limit, and the limit while minRTT is measured. */
export const DEFAULT_AC_MIN_CONCURRENCY = 3;
export const DEFAULT_AC_MAX_CONCURRENCY = 1000;
/** Weight of a newly computed limit against the current one (1: no smoothing). */
export const DEFAULT_AC_SMOOTHING = 0.2;
/** The gradient (minRTT × (1 + tolerance) / sampled latency) is kept within these bounds per step. */
export const AC_MIN_GRADIENT = 0.5;
export const AC_MAX_GRADIENT = 2;
/**
 * Latencies of one sample interval (or one minRTT measurement) are summed up by this percentile, so a
 * few late answers (a GC pause, a scheduler hiccup) do not move the limit; Envoy's default.
 */
export const AC_SAMPLE_PERCENTILE = 50;
/** Latencies kept per sample interval (the first ones; preallocated). */
export const AC_SAMPLE_BUFFER = 512;

// --- Retries ------------------------------------------------------------------------------------

/** Retries after the first try (so 2 means at most 3 tries). */
export const DEFAULT_RETRY_ATTEMPTS = 2;
export const DEFAULT_RETRY_ON: readonly string[] = ['gateway-error', 'refused-stream'];
/** Full-jitter exponential backoff: try n waits a random time in [0, min(max, base × 2^(n-1))). */
export const DEFAULT_RETRY_BACKOFF_BASE_MS = 25;
export const DEFAULT_RETRY_BACKOFF_MAX_MS = 250;
/** A request body is kept for a retry while it is at most this large; a larger one is never retried. */
export const DEFAULT_RETRY_REPLAY_BUFFER_BYTES = 64 * 1024;
/** An upstream's Retry-After longer than this is not waited for: its response goes to the client. */
export const DEFAULT_RETRY_MAX_RETRY_AFTER_MS = 10_000;
/** Retry budget: retries may add this percent to the requests of the window … */
export const DEFAULT_RETRY_BUDGET_PERCENT = 20;
/** … plus this many retries per second whatever the traffic, so quiet services can still retry … */
export const DEFAULT_RETRY_BUDGET_MIN_PER_SECOND = 10;
/** … counted over a sliding window this long. */
export const DEFAULT_RETRY_BUDGET_WINDOW_MS = 10_000;
/** A retriable response with a body up to this size is read to the end (keeping the connection) before the retry. */
export const RETRY_DRAIN_MAX_BYTES = 64 * 1024;

// --- Body filters -----------------------------------------------------------------------------

/**
 * Bytes a plugin that reads a whole body (a transformer, a validator) buffers unless its config says
 * otherwise: 1 MiB. A body over its filter's limit is refused (413 for requests, 502 for responses).
 */
export const DEFAULT_BODY_BUFFER_BYTES = 1024 * 1024;

// --- Mirroring ----------------------------------------------------------------------------------

/** A request body is copied to the shadow only up to this size; larger requests are not mirrored. */
export const DEFAULT_MIRROR_BODY_BYTES = 64 * 1024;
/** Appended to the Host a shadow receives, so it can tell mirrored traffic apart (as Envoy does). */
export const MIRROR_HOST_SUFFIX = '-shadow';
/*
 * Retry-After (delay-seconds, RFC 9110 §10.2.3) on the proxy's own overload replies, so clients back
 * off instead of retrying at once. A reply that sets its own (rate-limit's 429) keeps it.
 */
/** `503 MG_CIRCUIT_OPEN`: a concurrency limit, which frees as requests in flight finish. */
export const RETRY_AFTER_CIRCUIT_OPEN_SECONDS = 1;
/** `503 MG_NO_HEALTHY_UPSTREAM`: about one health-check interval, when an endpoint may be back. */
export const RETRY_AFTER_NO_HEALTHY_UPSTREAM_SECONDS = 5;
/** `503 MG_SHUTTING_DOWN`: another instance can take the request at once. */
export const RETRY_AFTER_SHUTTING_DOWN_SECONDS = 1;
/** `503 MG_STORE_UNAVAILABLE`: a shared store that could not be reached is tried again about once a second. */
export const RETRY_AFTER_STORE_UNAVAILABLE_SECONDS = 1;
/** `503 MG_CONCURRENCY_LIMITED`: the adaptive limit follows latency within a few sample intervals. */
export const RETRY_AFTER_CONCURRENCY_LIMITED_SECONDS = 1;

/** Header naming the code of a reply the proxy produced itself. */
export const LOCAL_REPLY_CODE_HEADER = 'x-meshgate-code';

// ── Mesh: control plane, registry, sidecar ────────────────────────────────────────────────────────
/** Control plane API and push stream (`meshgate control-plane --port`). */
export const DEFAULT_CONTROL_PLANE_PORT = 15010;
export const DEFAULT_CONTROL_PLANE_ADDRESS = '127.0.0.1';
export const DEFAULT_CONTROL_PLANE_URL = 'http://127.0.0.1:15010';
/** Sidecar ports, as in Istio, so the numbers are familiar: admin, outbound (app → mesh), inbound (mesh → app). */
export const DEFAULT_SIDECAR_ADMIN_PORT = 15000;
export const DEFAULT_SIDECAR_OUTBOUND_PORT = 15001;
export const DEFAULT_SIDECAR_INBOUND_PORT = 15006;
/** The sidecar registers this address (and binds its inbound listener to it) unless told otherwise. */
export const DEFAULT_SIDECAR_ADDRESS = '127.0.0.1';
/** Path of the app's readiness check; 200–399 means ready. */
export const DEFAULT_APP_READY_PATH = '/healthz';
/** How often the sidecar checks its app, and how long one check may take. */
export const DEFAULT_APP_CHECK_INTERVAL_MS = 1_000;
export const DEFAULT_APP_CHECK_TIMEOUT_MS = 1_000;
/** Until the app is first ready, it is checked this often, so it is registered soon after. */
export const APP_STARTUP_CHECK_INTERVAL_MS = 200;

/** An instance that sends no heartbeat for this long is removed from the registry. */
export const DEFAULT_INSTANCE_TTL_MS = 3_000;
/** Bounds a registration may ask for. */
export const MIN_INSTANCE_TTL_MS = 1_000;
export const MAX_INSTANCE_TTL_MS = 300_000;
/** Heartbeats per TTL: at 3, two heartbeats may be lost before the instance expires. */
export const HEARTBEATS_PER_TTL = 3;
/** On SIGTERM the sidecar deregisters, then keeps serving this long so callers learn of it first. */
export const DEFAULT_DEREGISTER_GRACE_MS = 1_000;

/**
 * After the control plane starts, it pushes nothing for this long, so instances that were running
 * can re-register first: an empty in-memory registry must not empty every proxy's endpoints.
 */
export const DEFAULT_CONTROL_PLANE_WARMUP_MS = DEFAULT_INSTANCE_TTL_MS;
/** Changes arriving within this quiet period are pushed together (a burst of registrations: one push). */
export const DEFAULT_PUSH_DEBOUNCE_MS = 10;
/** A steady stream of changes is still pushed at least this often. */
export const DEFAULT_PUSH_DEBOUNCE_MAX_MS = 100;
/** The control plane writes a keep-alive on an idle push stream this often. */
export const DEFAULT_STREAM_KEEPALIVE_MS = 5_000;
/** A proxy that hears nothing on its stream for this long (3 keep-alives) reconnects. */
export const DEFAULT_STREAM_IDLE_TIMEOUT_MS = 15_000;
/** Reconnect backoff: the first retry waits up to the base, each failure doubles it up to the max (full jitter). */
export const DEFAULT_RECONNECT_BASE_MS = 250;
export const DEFAULT_RECONNECT_MAX_MS = 5_000;
/** Control plane requests (register, heartbeat, ACK) give up after this long. */
export const DEFAULT_CONTROL_REQUEST_TIMEOUT_MS = 2_000;
/** Change records kept by the control plane (oldest dropped first). */
export const DEFAULT_CHANGE_HISTORY = 1_000;
/**
 * With etcd (`--etcd`): a change record's updates (pushes, ACKs) are written at most this long after
 * they happen, so a push to many proxies is one write, not one per proxy. 0 writes each at once.
 */
export const DEFAULT_CHANGE_PERSIST_DELAY_MS = 50;
/** With etcd: the key prefix of one control plane cluster's state (several clusters may share an etcd). */
export const DEFAULT_ETCD_PREFIX = '/meshgate/';
/** With etcd: how long the control plane waits for etcd to answer at start before giving up. */
export const DEFAULT_ETCD_DIAL_TIMEOUT_MS = 5_000;
/**
 * With etcd: each control plane keeps a key alive under a lease of this TTL (whole seconds), so the
 * others know which are running; a change result pushed by one that is gone reads as disconnected.
 */
export const DEFAULT_CONTROL_PLANE_LEASE_TTL_MS = 10_000;
/** A disconnected proxy is still listed (as DISCONNECTED) for this long. */
export const DEFAULT_PROXY_FORGET_MS = 10 * 60_000;
/** Largest model accepted by `PUT /config` on the control plane. */
export const MAX_MODEL_BODY_BYTES = 4 * 1024 * 1024;
/** Largest hello, ACK, registration or heartbeat the control plane reads. */
export const MAX_MESH_MESSAGE_BYTES = 256 * 1024;
/** How long the inspection commands (status, proxy-status, …) wait for an answer. */
export const DEFAULT_INSPECT_TIMEOUT_MS = 5_000;

// ── observability ──
/** Longest an access log line waits in the write buffer before it reaches its file or stdout. */
export const ACCESS_LOG_FLUSH_INTERVAL_MS = 1_000;
/** `observability.tracing.samplingRatio` when not set: the share of new traces recorded. */
export const DEFAULT_TRACE_SAMPLING_RATIO = 0.1;
/** Finished spans wait this long in the batch before they are exported. */
export const TRACE_EXPORT_DELAY_MS = 500;
/** Finished spans held for export; past it new ones are dropped (a collector that is down costs spans, never requests). */
export const TRACE_EXPORT_QUEUE_MAX_SPANS = 8192;
/** Spans in one OTLP export request; a full batch is sent without waiting for the delay. */
export const TRACE_EXPORT_BATCH_MAX_SPANS = 512;
/** Longest one OTLP export request may take; then it is abandoned and its spans dropped. */
export const TRACE_EXPORT_TIMEOUT_MS = 10_000;
/**
 * TLS handshake limit when `headersTimeout` is 0 (disabled): Node's own default. A handshake never
 * goes unbounded, since a client that never finishes it holds a socket and memory.
 */
export const TLS_HANDSHAKE_TIMEOUT_WITHOUT_HEADERS_TIMEOUT_MS = 120_000;
/**
 * The lean HTTP/1.1 engine serves a connection's pipelined requests one after another; past this many
 * parsed and waiting their turn, it stops reading the connection until one is served (node:http bounds
 * the same queue by the bytes of its held responses). Not configurable; never 0.
 */
export const LEAN_PIPELINED_REQUESTS_HELD_MAX = 32;
/**
 * Most header lines in a request head; more gets 431, like a head over `maxHeaderBytes`. node:http's
 * limit (its parser's `maxHeaderPairs`, 2000 names and values, from `maxHeadersCount`), which the
 * lean engine sets on the same parser so both engines refuse the same heads. Not configurable.
 */
export const MAX_REQUEST_HEADER_LINES = 1_000;
/**
 * An idle keep-alive connection closes this long after `keepAliveTimeout` (the value announced in
 * `Keep-Alive: timeout=`), so a client that reuses it just before the announced time does not race
 * the close. node:http's `keepAliveTimeoutBuffer` (Node 24); the lean engine keeps the same margin.
 */
export const KEEPALIVE_TIMEOUT_MARGIN_MS = 1_000;
/**
 * Lean engine: a first body chunk up to this size is copied into the buffer of the response head, so
 * head and body leave in one write; a larger one is written after it (corked: still one system call).
 */
export const LEAN_HEAD_COALESCE_MAX_BYTES = 16 * 1024;

// ── Workload identities and the certificate authority (docs/security.md) ──
/** Lifetime of a workload certificate (X509-SVID) the control plane's CA issues. */
export const DEFAULT_SVID_LIFETIME_MS = 24 * 60 * 60_000;
/** Shortest lifetime the CA accepts (tests use a few seconds). */
export const MIN_SVID_LIFETIME_MS = 1_000;
/** A certificate's not-before is set this far in the past, so a peer whose clock lags still accepts it. */
export const SVID_BACKDATE_MS = 60_000;
/**
 * A proxy renews its certificate at half its lifetime, moved by up to this share of the lifetime either
 * way (at 10: between 40 % and 60 %), so proxies started together do not renew in step. 0: exactly half.
 */
export const DEFAULT_SVID_RENEW_JITTER_PERCENT = 10;
/** A failed renewal is retried after this long, doubling on each failure up to the maximum. */
export const DEFAULT_SVID_RENEW_RETRY_BASE_MS = 1_000;
export const DEFAULT_SVID_RENEW_RETRY_MAX_MS = 30_000;
/** Lifetime of a root the CA generates itself (10 years, as Istio's self-signed root). */
export const DEFAULT_CA_ROOT_LIFETIME_MS = 10 * 365 * 24 * 60 * 60_000;
/**
 * After a root rotation the old root stays in the trust bundle this long: two certificate lifetimes,
 * so every proxy renews from the new root and every certificate of the old one expires first.
 */
export const DEFAULT_CA_ROTATION_OVERLAP_MS = 2 * DEFAULT_SVID_LIFETIME_MS;
/** Largest certificate signing request (PEM) the CA reads. */
export const MAX_CSR_BYTES = 16 * 1024;

// ── Route action transcode: REST/JSON → gRPC (src/proxy/actions/transcode/) ──
/** Largest JSON request body a transcoded route reads, in bytes (gRPC's default message limit). */
export const DEFAULT_TRANSCODE_MAX_REQUEST_BYTES = 4 * 1024 * 1024;
/** Largest gRPC message a transcoded route accepts from the service, in bytes (gRPC's default receive limit). */
export const DEFAULT_TRANSCODE_MAX_RESPONSE_MESSAGE_BYTES = 4 * 1024 * 1024;

// ── Mutual TLS between proxies (docs/security.md) ──
/** The mesh-wide mode when a config has a `mesh` section without `mtls.mode` (Istio's default). */
export const DEFAULT_MESH_MTLS_MODE = 'PERMISSIVE';
/** The namespace of the mesh's SPIFFE IDs (`spiffe://<td>/ns/<namespace>/sa/<service>`) unless `mesh.namespace` says. */
export const DEFAULT_MESH_NAMESPACE = 'default';

// ── Shared stores (Redis) ─────────────────────────────────────────────────────────────────────────
/** Keys meshgate writes in Redis start with this, so one Redis can serve other users too. */
export const DEFAULT_REDIS_KEY_PREFIX = 'meshgate:';
/**
 * Longest wait for one Redis reply (a rate-limit decision, a cache read) before the store counts as
 * unavailable for that request and the plugin's `failOpen` policy answers it.
 */
export const DEFAULT_REDIS_TIMEOUT_MS = 200;
/** Longest wait for a TCP (or TLS) connection to Redis to open. */
export const DEFAULT_REDIS_CONNECT_TIMEOUT_MS = 2_000;
/** Reconnect attempts back off 50 ms per attempt up to this: a Redis that returns is used again within it. */
export const DEFAULT_REDIS_RECONNECT_MAX_MS = 1_000;

// ── jwt plugin: remote key sets (JWKS) ──
/** How long fetched JWKS keys are trusted; they are refreshed in the background every half of it. */
export const DEFAULT_JWKS_CACHE_MS = 10 * 60_000;
/**
 * Least time between two on-demand JWKS fetches (a token with a key id the set does not hold, or a
 * failed fetch): a flood of forged `kid`s costs the identity provider one request per period.
 */
export const DEFAULT_JWKS_UNKNOWN_KID_COOLDOWN_MS = 30_000;
/** A JWKS fetch that has not answered in this long fails; the cached keys stay in use. */
export const DEFAULT_JWKS_FETCH_TIMEOUT_MS = 5_000;

// ── Authentication to the control plane (docs/security.md#authentication-to-the-control-plane) ──
/** Trust domain of the mesh's identities when neither the model (`mesh.trustDomain`) nor a flag sets one. */
export const DEFAULT_TRUST_DOMAIN = 'cluster.local';
/** SPIFFE namespace of an identity whose join token names none. */
export const DEFAULT_SPIFFE_NAMESPACE = 'default';
/** Service account of a gateway that names none (`meshgate gateway --name`). */
export const DEFAULT_GATEWAY_NAME = 'gateway';
/** The control plane's state (its CA's root), relative to its working directory, unless `--state-dir` says. */
export const DEFAULT_CONTROL_PLANE_STATE_DIR = '.meshgate/control-plane';
/** Largest token file read (join or operator tokens). */
export const MAX_TOKEN_FILE_BYTES = 1024 * 1024;
/** Shortest token accepted: 16 bytes, so a token cannot be guessed by trying. */
export const MIN_TOKEN_LENGTH = 16;
/**
 * A certificate renewal proven by the proxy's current certificate carries a signing time; one older
 * (or further in the future) than this is refused, so a recorded request cannot be replayed later.
 */
export const RENEWAL_PROOF_MAX_AGE_MS = 5 * 60_000;
/**
 * A mesh proxy's first config waits this long for the workload certificate the control plane offered,
 * so mutual TLS can present it from the first request; past it the proxy starts without, and only a
 * config that needs mTLS is refused (NACKed) until the certificate arrives.
 */
export const MESH_IDENTITY_WAIT_MS = 10_000;

// ── The aggregate action (docs/aggregation.md) ──
/**
 * Largest response body read from one call of an aggregate route, in bytes (`calls[].maxBodyBytes`):
 * each answer is held whole to be parsed and composed, so this bounds what one client request can make
 * the proxy hold (times the number of calls). A larger answer fails the call (MG_RESPONSE_TOO_LARGE).
 */
export const DEFAULT_AGGREGATE_CALL_MAX_BODY_BYTES = 1024 * 1024;
/** The method of an aggregate call that names none. */
export const DEFAULT_AGGREGATE_CALL_METHOD = 'GET';
// ── GraphQL: the `graphql` route action and the graphql-protection plugin (docs/graphql.md) ──
/** Where a `graphql` action POSTs its document at the service, unless `graphql.path` says. */
export const DEFAULT_GRAPHQL_PATH = '/graphql';
/** Largest request body a `graphql` action reads for `$(body…)` variables (only then is it read). */
export const DEFAULT_GRAPHQL_MAX_BODY_BYTES = 1024 * 1024;
/** Largest GraphQL response a `graphql` action reads from its service (it maps errors to a status). */
export const DEFAULT_GRAPHQL_MAX_RESPONSE_BYTES = 8 * 1024 * 1024;
/** graphql-protection: deepest field nesting accepted (root fields are depth 1). */
export const DEFAULT_GRAPHQL_MAX_DEPTH = 10;
/** graphql-protection: most aliased fields in one operation (fragments counted where spread). */
export const DEFAULT_GRAPHQL_MAX_ALIASES = 15;
/** graphql-protection: highest cost of one operation (see the plugin's README for the rule). */
export const DEFAULT_GRAPHQL_MAX_COST = 5000;
/** graphql-protection: largest GraphQL request body read and checked. */
export const DEFAULT_GRAPHQL_PROTECTION_BODY_BYTES = 256 * 1024;
/** Usage metering: how often counts kept in memory are written to the store (`metering.flushInterval`). */
export const DEFAULT_METERING_FLUSH_INTERVAL_MS = 5_000;
/** Usage metering: the SQLite file, beside the config file, when `metering.path` is not set. */
export const DEFAULT_METERING_PATH = 'meshgate-usage.db';
/**
 * Usage metering with SQLite: how long a write waits for another process (a worker, `usage export`)
 * holding the file's write lock before the flush fails and is retried at the next interval.
 */
export const METERING_SQLITE_BUSY_TIMEOUT_MS = 5_000;
/**
 * Usage metering with Redis: longest wait for one flush or read, longer than `redis.timeout` (which is
 * sized for decisions on the request path): a flush is off the request path and may carry many rows.
 */
export const METERING_REDIS_TIMEOUT_MS = 5_000;
// ── The dashboard and the telemetry behind it (docs/dashboard.md) ──
/**
 * How often mesh proxies post their telemetry report to the control plane (`control-plane
 * --telemetry-interval`), ms; the dashboard's resolution. 0: proxies are told to send none.
 */
export const DEFAULT_TELEMETRY_INTERVAL_MS = 5_000;
/** How much telemetry the control plane keeps per proxy (the charts' span), ms. */
export const DEFAULT_TELEMETRY_HISTORY_MS = 10 * 60_000;
/** A proxy silent for this long (ms) leaves the topology (its last report is dropped). */
export const TELEMETRY_STALE_MS = 60_000;
/** The window of the dashboard's headline numbers (rates, error rates, percentiles, shares), ms. */
export const DEFAULT_DASHBOARD_WINDOW_MS = 30_000;
/** Requests each proxy process remembers for the request lookup (a ring, overwritten). 0: none. */
export const DEFAULT_RECENT_REQUESTS = 256;
/**
 * Decision trails each proxy process keeps for `meshgate explain` (`observability.explain.size`; a
 * ring, overwritten). 0: none.
 */
export const DEFAULT_EXPLAIN_TRAILS = 128;
/** Share of requests whose decision trail is recorded (`observability.explain.sampleRate`). 0: only those that ask. */
export const DEFAULT_EXPLAIN_SAMPLE_RATE = 0;
/** How long a request lookup waits for the proxies' answers, ms. */
export const DEFAULT_LOOKUP_TIMEOUT_MS = 2_000;
/** How long a request lookup waits for the tracing backend (`control-plane --trace-query`), ms. */
export const DEFAULT_TRACE_QUERY_TIMEOUT_MS = 2_000;
/** Largest answer read from the tracing backend, bytes. */
export const MAX_TRACE_QUERY_BYTES = 8 * 1024 * 1024;
/** Spans a request lookup shows from the tracing backend, at most. */
export const MAX_TRACE_QUERY_SPANS = 500;
/**
 * How far two proxies' clocks may disagree when a request lookup orders their hops, ms: each hop's
 * start is its own process's `performance.timeOrigin + now()`, and processes on one machine were seen
 * a millisecond or more apart, so a called hop could seem to start before its caller.
 */
export const LOOKUP_CLOCK_SKEW_MS = 10;
// ── Guarded rollouts (docs/rollout.md) ──
/** How long canary proxies are watched after each applied the change, ms. 0: promoted once every canary ACKed. */
export const DEFAULT_ROLLOUT_WATCH_MS = 60_000;
/** Canary error rate (5xx or unanswered, 0..1) above which a rollout is rolled back. 0: any error. */
export const DEFAULT_ROLLOUT_MAX_ERROR_RATE = 0.05;
/** Requests the canaries must have served before a rollout's thresholds are judged. 0: from the first. */
export const DEFAULT_ROLLOUT_MIN_REQUESTS = 20;
/**
 * How long a rollout waits for every canary proxy to answer its push, ms, before it is rolled back
 * (a canary that cannot apply the change in time is as good as one that rejected it). 0: no limit.
 */
export const DEFAULT_ROLLOUT_ANSWER_TIMEOUT_MS = 30_000;
/** Models the control plane keeps (by version) to show each change's diff. */
export const DEFAULT_MODEL_HISTORY = 20;
/** How often the dashboard's event stream (`GET /dashboard/events`) checks for news, ms. */
export const DASHBOARD_EVENT_TICK_MS = 1_000;
// ── Sidecar processes: V8 heap sizing (docs/operations.md, "Proxy processes: memory") ──
/**
 * Young-generation semi-space of a sidecar process, in MiB (`--max-semi-space-size`). V8's default (16
 * on 64-bit) lets the young generation grow to ~48 MB under load, for garbage that lives microseconds.
 * At 1 it stays at 3 MB: scavenges run ~17× as often, which cost a sidecar at 1000 req/s ~5 % more CPU
 * for ~15 MB less RSS (docs/benchmarks.md, "Sidecars"). A flag given on the command line wins.
 */
export const DEFAULT_SIDECAR_SEMI_SPACE_MIB = 1;
/**
 * glibc's `MALLOC_MMAP_THRESHOLD_` for proxy processes, in bytes: blocks this large get a mapping of
 * their own, returned when freed, instead of the main heap, where a compile's transient blocks stayed
 * resident behind a live one (cli/node-flags.ts). The variable set in the environment wins.
 */
export const PROXY_MALLOC_MMAP_THRESHOLD_BYTES = 32 * 1024;
// ── Shadow config (docs/shadow.md) ──
/**
 * Percent of requests a shadow config evaluates beside the live one (`PUT /shadow?sample=`), 0 to 100.
 * 0: none are (the shadow is set but counts nothing).
 */
export const DEFAULT_SHADOW_SAMPLE_PERCENT = 100;
/** Differing requests a shadow keeps as examples, per kind of difference (a ring, newest kept). 0: none. */
export const DEFAULT_SHADOW_EXAMPLES = 10;
/**
 * How long the control plane waits for every proxy to set a shadow config (each validates and compiles
 * its own), ms; a proxy that answers later is left with it set and counted in later reports.
 */
export const SHADOW_SET_TIMEOUT_MS = 10_000;
/** How long `meshgate diff --live` watches a shadow config when `--for` is not given, ms. */
export const DEFAULT_DIFF_DURATION_MS = 30_000;
/** How often `meshgate diff --live` polls the shadow's report while it waits, ms. */
export const DIFF_POLL_INTERVAL_MS = 1_000;
