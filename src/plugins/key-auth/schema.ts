/** Settings of the key-auth plugin. */
export interface KeyAuthConfig {
  keyNames?: string[];
  in?: ('header' | 'query')[];
  hideCredentials?: boolean;
}

export const keyAuthSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    keyNames: {
      type: 'array',
      minItems: 1,
      items: { type: 'string', pattern: '^[A-Za-z0-9_.-]+$' },
      description: 'Header or query parameter names that carry the key. Default `apikey`, `x-api-key`.',
    },
    in: {
      type: 'array',
      minItems: 1,
      uniqueItems: true,
      items: { type: 'string', enum: ['header', 'query'] },
      description: 'Where to look for the key. Default: headers, then the query string.',
    },
    hideCredentials: {
      type: 'boolean',
      description: 'Remove the key before the request goes upstream. Default true.',
    },
  },
} as const;
