import { DURATION_PATTERN } from '../../core/duration.ts';

/** Settings of the cache plugin. */
export interface CacheConfig {
  ttl?: string;
  maxTtl?: string;
  staleWhileRevalidate?: string;
  maxEntries?: number;
  maxBytes?: number;
  maxBodyBytes?: number;
  statuses?: number[];
  keyHeaders?: string[];
  perConsumer?: boolean;
  cacheAuthorized?: boolean;
  coalesceTimeout?: string;
  hitForMiss?: string;
  store?: 'memory' | 'redis';
  failOpen?: boolean;
}

export const cacheSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    ttl: {
      type: 'string',
      pattern: DURATION_PATTERN,
      description:
        'How long a response that states no lifetime of its own (no `s-maxage`, `max-age` or `Expires`) is ' +
        'fresh. Default 60s. `0`: only responses that state a lifetime are stored.',
    },
    maxTtl: {
      type: 'string',
      pattern: DURATION_PATTERN,
      description:
        'Upper bound of any lifetime, the one a response states included. Not set (default): a response is ' +
        'fresh as long as it says. `0`: nothing is stored.',
    },
    staleWhileRevalidate: {
      type: 'string',
      pattern: DURATION_PATTERN,
      description:
        'After an entry expires, how long it may still be served (`X-Cache-Status: STALE`) to requests that ' +
        'arrive while one request refreshes it from the upstream, when the response has no ' +
        '`stale-while-revalidate` of its own. Default `0`: only responses that say so are served stale. ' +
        '`must-revalidate`, `proxy-revalidate` and `s-maxage` responses never are.',
    },
    maxEntries: {
      type: 'integer',
      minimum: 1,
      maximum: 1_000_000,
      description:
        'Responses kept by one memory store (each proxy process; routes with identical cache settings share ' +
        'a store); the least recently used goes first. Default 1000.',
    },
    maxBytes: {
      type: 'integer',
      minimum: 1024,
      description:
        'Bytes of responses (bodies, headers and a small overhead each) kept by one memory store (each proxy ' +
        'process; routes with identical cache settings share a store); the least recently used go first. ' +
        'Default 67108864 (64 MiB). 0 is not allowed: to cache nothing, remove the plugin.',
    },
    maxBodyBytes: {
      type: 'integer',
      minimum: 1,
      description: 'Larger responses are passed through, not cached. Default 1048576 (1 MiB).',
    },
    statuses: {
      type: 'array',
      items: { type: 'integer', minimum: 200, maximum: 599 },
      uniqueItems: true,
      minItems: 1,
      description:
        'Response statuses that may be stored (Kong’s `response_code`). Default [200]. A 206 or 304 is never stored.',
    },
    keyHeaders: {
      type: 'array',
      items: { type: 'string', pattern: "^[A-Za-z0-9!#$%&'*+.^_`|~-]+$" },
      uniqueItems: true,
      description:
        'Request headers whose values are part of the key (e.g. [accept-language]): each value (lower-cased, ' +
        'spaces around commas removed) gets its own entry, as if every response named them in `Vary`. Default none.',
    },
    perConsumer: {
      type: 'boolean',
      description:
        'Keep each authenticated consumer’s responses apart (the consumer is part of the key; requests without ' +
        'one share the anonymous entries). Requests with Authorization are then cached when a consumer was ' +
        'identified, since the entry is that consumer’s alone. Default false.',
    },
    cacheAuthorized: {
      type: 'boolean',
      description:
        'Also cache requests carrying Authorization or Cookie (then every client shares the entry, unless ' +
        '`perConsumer`). Default false: they bypass the cache.',
    },
    coalesceTimeout: {
      type: 'string',
      pattern: DURATION_PATTERN,
      description:
        'Concurrent misses for one key make one upstream call; the others wait for its response at most this ' +
        'long (from when that call started), then go upstream themselves. Default 10s. `0`: no coalescing, ' +
        'every miss goes upstream.',
    },
    hitForMiss: {
      type: 'string',
      pattern: DURATION_PATTERN,
      description:
        'How long a key whose response could not be stored is remembered as such: its misses then go upstream ' +
        'side by side instead of waiting on one another (Varnish’s hit-for-miss). Default 120s. `0`: never ' +
        'remembered.',
    },
    store: {
      type: 'string',
      enum: ['memory', 'redis'],
      description:
        'Where responses are kept. `memory` (default): in this proxy process, at most `maxEntries` and ' +
        '`maxBytes`. `redis`: in the Redis of the top-level `redis` block, shared by every gateway using it; ' +
        'Redis expires entries with their lifetime and its maxmemory policy bounds them (`maxEntries` and ' +
        '`maxBytes` do not apply).',
    },
    failOpen: {
      type: 'boolean',
      description:
        'With `store: redis`, when Redis cannot answer within `redis.timeout`: true (default) sends the request ' +
        'upstream as a miss (and stores nothing); false refuses it with 503 MG_STORE_UNAVAILABLE.',
    },
  },
} as const;
