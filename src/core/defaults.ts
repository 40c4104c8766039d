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
