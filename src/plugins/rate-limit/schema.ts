import { DURATION_PATTERN } from '../../core/duration.ts';

/** Settings of the rate-limit plugin. */
export interface RateLimitConfig {
  limits?: { requests: number; window: string }[];
  second?: number;
  minute?: number;
  hour?: number;
  day?: number;
  month?: number;
  year?: number;
  by?: 'consumer' | 'credential' | 'ip' | 'header' | 'route' | 'service';
  header?: string;
  algorithm?: 'sliding' | 'fixed';
  dryRun?: boolean;
  headers?: boolean;
  store?: 'memory' | 'redis';
  failOpen?: boolean;
  periodHeaders?: boolean;
  group?: string;
}

const count = (description: string) => ({ type: 'integer', minimum: 1, description }) as const;

export const rateLimitSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    limits: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['requests', 'window'],
        properties: {
          requests: count('Requests allowed per window.'),
          window: { type: 'string', pattern: DURATION_PATTERN, description: 'Window length, e.g. `1m`, `1h`.' },
        },
      },
      description: 'Limits that all apply, e.g. 100 per minute and 1,000 per hour.',
    },
    second: count('Shorthand: requests per second.'),
    minute: count('Shorthand: requests per minute (as in Kong).'),
    hour: count('Shorthand: requests per hour.'),
    day: count('Shorthand: requests per day.'),
    month: count(
      'Shorthand: requests per UTC calendar month (from the 1st, 00:00 UTC, whatever `algorithm` says: a ' +
        'fixed window, as in Kong).',
    ),
    year: count(
      'Shorthand: requests per UTC calendar year (from 1 January, 00:00 UTC, whatever `algorithm` says: a ' +
        'fixed window, as in Kong).',
    ),
    by: {
      type: 'string',
      enum: ['consumer', 'credential', 'ip', 'header', 'route', 'service'],
      description:
        'What is counted: per consumer (default; requests without one count per client address), per ' +
        'credential, per client address (through trusted hops), per value of `header`, per route, or per ' +
        "service: one count across every route to the route's service (its first destination's) that has " +
        'the same limits.',
    },
    header: { type: 'string', pattern: '^[A-Za-z0-9-]+$', description: 'The header, with `by: header`.' },
    algorithm: {
      type: 'string',
      enum: ['sliding', 'fixed'],
      description: '`sliding` (default): no 2x burst at window edges. `fixed`: counters reset at each window.',
    },
    dryRun: {
      type: 'boolean',
      description: 'Count and add the headers, but never refuse (to try a limit out). Default false.',
    },
    headers: {
      type: 'boolean',
      description: 'Add RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset to responses. Default true.',
    },
    store: {
      type: 'string',
      enum: ['memory', 'redis'],
      description:
        'Where requests are counted. `memory` (default): on this machine, exact whatever `--workers` is (a ' +
        "gateway's workers all count in its primary process). `redis`: in the Redis of the " +
        'top-level `redis` block, one limit shared by every gateway using it (exact while Redis answers).',
    },
    periodHeaders: {
      type: 'boolean',
      description:
        'Also add Kong’s per-window headers for each shorthand window: `X-RateLimit-Limit-Second` … ' +
        '`-Year` and `X-RateLimit-Remaining-Second` … `-Year` (with `headers`). Default false.',
    },
    group: {
      type: 'string',
      minLength: 1,
      maxLength: 200,
      description:
        'Routes whose entries name the same group (and have the same limits and `by`) draw from one count, ' +
        'as a Kong plugin set on a service or globally counts across its routes. Default: each route counts ' +
        'on its own (`by: service`: each service).',
    },
    failOpen: {
      type: 'boolean',
      description:
        'When the shared count cannot answer (`store: redis`: Redis not within `redis.timeout`; `memory` in a ' +
        'worker: the primary process gone): true (default) lets the request ' +
        'through uncounted; false refuses it with 503 MG_STORE_UNAVAILABLE. Counting resumes by itself when ' +
        'Redis is back.',
    },
  },
} as const;
