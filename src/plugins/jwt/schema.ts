import { DURATION_PATTERN } from '../../core/duration.ts';

/** Settings of the jwt plugin (per route, service or global). Keys and issuers live on consumers. */
export type TokenSource = { header: string } | { cookie: string } | { query: string };

export interface JwtConfig {
  scopes?: string[];
  scopesMatch?: 'all' | 'any';
  tokenFrom?: TokenSource[];
  clockSkew?: string;
  requireExpiration?: boolean;
  maxTokenBytes?: number;
  claimsToHeaders?: Record<string, string>;
}

export const jwtSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    scopes: {
      type: 'array',
      items: { type: 'string', minLength: 1 },
      description: 'Scopes the token must carry (in `scope`, space-separated, or `scp`). Default: none.',
    },
    scopesMatch: {
      type: 'string',
      enum: ['all', 'any'],
      description: '`all` (default): every listed scope; `any`: at least one.',
    },
    tokenFrom: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        additionalProperties: false,
        minProperties: 1,
        maxProperties: 1,
        properties: {
          header: { type: 'string', minLength: 1 },
          cookie: { type: 'string', minLength: 1 },
          query: { type: 'string', minLength: 1 },
        },
      },
      description: 'Where the token is, tried in order. Default `[{ header: authorization }]` (the `Bearer` scheme).',
    },
    clockSkew: {
      type: 'string',
      pattern: DURATION_PATTERN,
      description: 'Tolerance for `exp` and `nbf` against this proxy’s clock. Default 30s; 0 is exact.',
    },
    requireExpiration: {
      type: 'boolean',
      description: 'Refuse tokens without `exp`. Default true.',
    },
    maxTokenBytes: {
      type: 'integer',
      minimum: 64,
      maximum: 65536,
      description: 'Longer tokens are refused before any parsing. Default 8192.',
    },
    claimsToHeaders: {
      type: 'object',
      additionalProperties: { type: 'string', pattern: '^[A-Za-z0-9-]+$' },
      description: 'Claims sent upstream as headers, e.g. `{ sub: x-user-id }`; client copies are removed.',
    },
  },
} as const;
