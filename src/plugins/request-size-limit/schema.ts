/** Settings of the request-size-limit plugin. */
export interface RequestSizeLimitConfig {
  maxBytes: number;
}

export const requestSizeLimitSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['maxBytes'],
  properties: {
    maxBytes: {
      type: 'integer',
      minimum: 0,
      description: 'Largest request body accepted, in bytes; 0 accepts no body at all.',
    },
  },
} as const;
