/** Settings of the request-id plugin (JSON Schema, checked when the config is loaded). */
export interface RequestIdConfig {
  header?: string;
  echo?: boolean;
  trustIncoming?: boolean;
}

export const requestIdSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    header: {
      type: 'string',
      pattern: '^[A-Za-z0-9-]+$',
      description: 'Header carrying the id, to the upstream and back. Default `x-request-id`.',
    },
    echo: { type: 'boolean', description: 'Return the id on the response. Default true.' },
    trustIncoming: {
      type: 'boolean',
      description: 'Keep an id the client sent (up to 200 characters). Default true; false always makes a new one.',
    },
  },
} as const;
