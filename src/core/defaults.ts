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
/** Longest silence between two chunks of a streaming response body. */
export const DEFAULT_IDLE_TIMEOUT_MS = 60_000;

/** Upstream connections kept per endpoint. */
export const DEFAULT_MAX_CONNECTIONS_PER_ENDPOINT = 1024;
/** How long an unused upstream connection stays open. */
export const DEFAULT_UPSTREAM_KEEPALIVE_MS = 60_000;

/** Client-side keep-alive: how long an idle client connection is kept open. */
export const DEFAULT_CLIENT_KEEPALIVE_MS = 65_000;

/** On SIGTERM: how long in-flight requests may take before connections are cut. */
export const DEFAULT_DRAIN_TIMEOUT_MS = 20_000;
/** After a reload removes or moves a listener: how long its in-flight requests may finish. */
export const DEFAULT_LISTENER_DRAIN_MS = 5_000;
/** Debounce between a config file change and its reload, so editors' multi-step saves load once. */
export const DEFAULT_RELOAD_DEBOUNCE_MS = 150;

export const REQUEST_ID_HEADER = 'x-request-id';
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
/** A disconnected proxy is still listed (as DISCONNECTED) for this long. */
export const DEFAULT_PROXY_FORGET_MS = 10 * 60_000;
/** Largest model accepted by `PUT /config` on the control plane. */
export const MAX_MODEL_BODY_BYTES = 4 * 1024 * 1024;
/** Largest hello, ACK, registration or heartbeat the control plane reads. */
export const MAX_MESH_MESSAGE_BYTES = 256 * 1024;
/** How long the inspection commands (status, proxy-status, …) wait for an answer. */
export const DEFAULT_INSPECT_TIMEOUT_MS = 5_000;
