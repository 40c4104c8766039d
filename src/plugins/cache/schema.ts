import { DURATION_PATTERN } from '../../core/duration.ts';

/** Settings of the cache plugin. */
export interface CacheConfig {
  ttl?: string;
  maxEntries?: number;
  maxBodyBytes?: number;
  cacheAuthorized?: boolean;
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
        'How long a response is served from the cache. Default 60s. An upstream max-age that is shorter wins.',
    },
    maxEntries: {
      type: 'integer',
      minimum: 1,
      maximum: 1_000_000,
      description: 'Responses kept per route; the least recently used goes first. Default 1000.',
    },
    maxBodyBytes: {
      type: 'integer',
      minimum: 1,
      description: 'Larger responses are passed through, not cached. Default 1048576 (1 MiB).',
    },
    cacheAuthorized: {
      type: 'boolean',
      description:
        'Also cache requests carrying Authorization or Cookie (then every client shares the entry). Default false.',
    },
    store: {
      type: 'string',
      enum: ['memory', 'redis'],
      description:
        'Where responses are kept. `memory` (default): in this proxy process, at most `maxEntries`. `redis`: in the ' +
        'Redis of the top-level `redis` block, shared by every gateway using it; Redis expires entries with their ' +
        'TTL and its maxmemory policy bounds them (`maxEntries` does not apply).',
    },
    failOpen: {
      type: 'boolean',
      description:
        'With `store: redis`, when Redis cannot answer within `redis.timeout`: true (default) sends the request ' +
        'upstream as a miss (and stores nothing); false refuses it with 503 MG_STORE_UNAVAILABLE.',
    },
  },
} as const;
