/** Settings of the cors plugin. */
export interface CorsConfig {
  origins: string[];
  methods?: string[];
  headers?: string[];
  exposedHeaders?: string[];
  credentials?: boolean;
  maxAge?: number;
}

export const corsSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['origins'],
  properties: {
    origins: {
      type: 'array',
      minItems: 1,
      items: { type: 'string', minLength: 1 },
      description:
        'Allowed origins: exact (`https://app.example.com`), `*` for any, or `*.example.com`-style subdomains ' +
        '(`https://*.example.com`).',
    },
    methods: {
      type: 'array',
      items: { type: 'string', pattern: '^[A-Z]+$' },
      description: 'Methods a preflight may ask for. Default GET, HEAD, PUT, PATCH, POST, DELETE.',
    },
    headers: {
      type: 'array',
      items: { type: 'string', minLength: 1 },
      description: 'Request headers a preflight may ask for. Default: whatever it asks for.',
    },
    exposedHeaders: {
      type: 'array',
      items: { type: 'string', minLength: 1 },
      description: 'Response headers scripts may read (Access-Control-Expose-Headers).',
    },
    credentials: {
      type: 'boolean',
      description:
        'Allow cookies and Authorization (then `*` is answered with the request’s own origin). Default false.',
    },
    maxAge: {
      type: 'integer',
      minimum: 0,
      maximum: 86400,
      description: 'Seconds a browser may cache a preflight answer. Default 600; 0 disables caching.',
    },
  },
} as const;
