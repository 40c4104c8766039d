import { DURATION_PATTERN } from '../../core/duration.ts';

/**
 * Settings of the jwt plugin (per route, service or global). Keys and issuers live on consumers, or,
 * with `issuers`, on the plugin entry itself.
 */
export type TokenSource = { header: string; prefix?: string } | { cookie: string } | { query: string };

/** An issuer the entry trusts by itself (no consumer): its keys from a JWKS URL or an inline JWKS. */
export interface JwtIssuer {
  issuer: string;
  jwksUrl?: string;
  jwks?: string;
  audiences?: string[];
}

export interface JwtConfig {
  scopes?: string[];
  scopesMatch?: 'all' | 'any';
  tokenFrom?: TokenSource[];
  clockSkew?: string;
  requireExpiration?: boolean;
  maxTokenBytes?: number;
  claimsToHeaders?: Record<string, string>;
  optional?: boolean;
  issuers?: JwtIssuer[];
  forwardToken?: boolean;
  payloadToHeader?: string;
}

const HEADER_NAME = '^[A-Za-z0-9-]+$';

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
        oneOf: [
          {
            type: 'object',
            additionalProperties: false,
            required: ['header'],
            properties: {
              header: { type: 'string', minLength: 1 },
              prefix: {
                type: 'string',
                minLength: 1,
                description:
                  'The header value must start with this (compared exactly), and the token is what follows, e.g. `"Bearer "`. Default: none (the whole value; for `authorization`, the `Bearer` scheme in any case).',
              },
            },
          },
          {
            type: 'object',
            additionalProperties: false,
            required: ['cookie'],
            properties: { cookie: { type: 'string', minLength: 1 } },
          },
          {
            type: 'object',
            additionalProperties: false,
            required: ['query'],
            properties: { query: { type: 'string', minLength: 1 } },
          },
        ],
      },
      description:
        'Where the token is, tried in order: `{ header, prefix? }`, `{ cookie }` or `{ query }`. Default `[{ header: authorization }]` (the `Bearer` scheme).',
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
      additionalProperties: { type: 'string', pattern: HEADER_NAME },
      description: 'Claims sent upstream as headers, e.g. `{ sub: x-user-id }`; client copies are removed.',
    },
    optional: {
      type: 'boolean',
      description:
        'A request without a token passes, unauthenticated (no consumer, no claims); a token that is present must still be valid (else 401). Default false (a token is required). Istio’s RequestAuthentication.',
    },
    issuers: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['issuer'],
        properties: {
          issuer: { type: 'string', minLength: 1, description: 'The `iss` claim of its tokens.' },
          jwksUrl: { type: 'string', pattern: '^https?://', description: 'Its JWKS endpoint (fetched and refreshed).' },
          jwks: { type: 'string', minLength: 1, description: 'Its key set inline: a JWKS JSON document.' },
          audiences: {
            type: 'array',
            minItems: 1,
            items: { type: 'string', minLength: 1 },
            description: 'The token’s `aud` must name one of these. Default: any (or none).',
          },
        },
        oneOf: [{ required: ['jwksUrl'] }, { required: ['jwks'] }],
      },
      description:
        'The only issuers this entry trusts, each with its keys: consumers’ jwt credentials are not consulted, and a verified token authenticates no consumer (its claims still go to authorization policies). Default: the consumers’ credentials.',
    },
    forwardToken: {
      type: 'boolean',
      description:
        'false: the verified token is removed from where it was found (the header, the query parameter or the cookie) before the request goes upstream. Default true.',
    },
    payloadToHeader: {
      type: 'string',
      pattern: HEADER_NAME,
      description:
        'A header that carries the verified token’s payload upstream, base64url-encoded JSON as in the token; a client copy is removed. Default: none.',
    },
  },
} as const;
