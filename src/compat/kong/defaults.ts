/**
 * Kong's defaults, where they differ from meshgate's: what an absent field means in Kong's own schemas
 * (kong/db/schema/entities/*.lua, kong/plugins/<name>/schema.lua), reproduced on what the converter
 * produces so the same traffic behaves the same after a move.
 */

/** Where Kong's proxy listens for plain HTTP (`proxy_listen = 0.0.0.0:8000`). */
export const KONG_PROXY_ADDRESS = '0.0.0.0';
export const KONG_PROXY_PORT = 8000;

/** A service's `retries`: retries after a connection failure or timeout (nginx's `proxy_next_upstream error timeout`). */
export const KONG_DEFAULT_RETRIES = 5;
/** meshgate's most retries per request (the schema's ceiling); Kong allows up to 32767. */
export const MESHGATE_MAX_RETRIES = 10;

/** A service's `connect_timeout`, `write_timeout`, `read_timeout`, in milliseconds. */
export const KONG_DEFAULT_TIMEOUT_MS = 60_000;

/** A service's port when neither `port` nor its URL gives one: by protocol, else 80. */
export const KONG_DEFAULT_PORTS: Readonly<Record<string, number>> = { http: 80, https: 443, grpc: 80, grpcs: 443 };

/** A target's port when its `target` names none, and its weight. */
export const KONG_DEFAULT_TARGET_PORT = 8000;
export const KONG_DEFAULT_TARGET_WEIGHT = 100;
/** meshgate's largest endpoint weight; Kong's is 65535. */
export const MESHGATE_MAX_WEIGHT = 1000;

/** Active health checks: `http_path`, `timeout` (s), `healthy.http_statuses`. */
export const KONG_ACTIVE_HTTP_PATH = '/';
export const KONG_ACTIVE_TIMEOUT_S = 1;
export const KONG_ACTIVE_HEALTHY_STATUSES = [200, 302] as const;
export const KONG_ACTIVE_UNHEALTHY_STATUSES = [429, 404, 500, 501, 502, 503, 504, 505] as const;
export const KONG_PASSIVE_HEALTHY_STATUSES = [
  200, 201, 202, 203, 204, 205, 206, 207, 208, 226, 300, 301, 302, 303, 304, 305, 306, 307, 308,
] as const;
export const KONG_PASSIVE_UNHEALTHY_STATUSES = [429, 500, 503] as const;

/** jwt: where tokens are looked for, in this order (query, cookies, headers), and the claim naming the key. */
export const KONG_JWT_URI_PARAM_NAMES = ['jwt'] as const;
export const KONG_JWT_HEADER_NAMES = ['authorization'] as const;
export const KONG_JWT_KEY_CLAIM = 'iss';

/** key-auth: where keys are looked for; Kong passes the key upstream (meshgate hides it by default). */
export const KONG_KEY_NAMES = ['apikey'] as const;

/** rate-limiting's refusal. */
export const KONG_RATE_LIMIT_STATUS = 429;
export const KONG_RATE_LIMIT_MESSAGE = 'API rate limit exceeded';
/** Redis: `port`, `timeout` (ms), `database`. */
export const KONG_REDIS_PORT = 6379;
export const KONG_REDIS_TIMEOUT_MS = 2000;

/** proxy-cache. */
export const KONG_CACHE_RESPONSE_CODES = [200, 301, 404] as const;
export const KONG_CACHE_REQUEST_METHODS = ['GET', 'HEAD'] as const;
export const KONG_CACHE_CONTENT_TYPES = ['text/plain', 'application/json'] as const;
export const KONG_CACHE_TTL_S = 300;

/** request-size-limiting: 128 megabytes of 2^20 bytes. */
export const KONG_SIZE_LIMIT = 128;
export const KONG_SIZE_UNITS: Readonly<Record<string, number>> = { bytes: 1, kilobytes: 1024, megabytes: 1_048_576 };

/** correlation-id. */
export const KONG_CORRELATION_HEADER = 'Kong-Request-ID';

/** cors: `methods` when not given (every one Kong knows). */
export const KONG_CORS_METHODS = [
  'GET',
  'HEAD',
  'PUT',
  'PATCH',
  'POST',
  'DELETE',
  'OPTIONS',
  'TRACE',
  'CONNECT',
] as const;
