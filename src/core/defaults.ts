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
/** From a connection's first byte (or the end of the previous request) until the request head is complete. */
export const DEFAULT_HEADERS_TIMEOUT_MS = 10_000;
/** From a request's first byte until its body has been received whole (Node's default). */
export const DEFAULT_CLIENT_REQUEST_TIMEOUT_MS = 300_000;
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
/** Header naming the code of a reply the proxy produced itself. */
export const LOCAL_REPLY_CODE_HEADER = 'x-meshgate-code';
