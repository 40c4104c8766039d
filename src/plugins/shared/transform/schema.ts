/** The JSON Schema of the transformers' config (Kong's shape), for the request and the response side. */
import type { Side } from './plan.ts';

const entries = (description: string) =>
  ({ type: 'array', items: { type: 'string', minLength: 1 }, description }) as const;

const JSON_TYPES = {
  type: 'array',
  items: { type: 'string', enum: ['string', 'number', 'boolean'] },
  description:
    'The JSON type of each `json` value, by position (`json_types[i]` for `json[i]`): `string`, `number` or ' +
    '`boolean`. Entries left out: a constant is a string, and a value that is exactly one template ' +
    '(`$(claims.roles)`) keeps the JSON type it has.',
} as const;

const VALUES = 'Values may use templates: $(params.x), $(query.x), $(headers.x), $(consumer.name), $(claims.x).';

function lists(side: Side, op: 'remove' | 'rename' | 'replace' | 'add' | 'append') {
  const what = {
    remove: ['names', 'dot paths (`data.secret`, `items.0.internal`)'],
    rename: ['`old:new` pairs (the value is kept)', '`from:to` dot paths (the value moves to `to`)'],
    replace: ['`name:value` pairs, applied only where the name is present', '`path:value` pairs, only where present'],
    add: ['`name:value` pairs, applied only where the name is absent', '`path:value` pairs, only where absent'],
    append: [
      '`name:value` pairs: one more value (another header line, another parameter)',
      '`path:value` pairs: the field becomes a list with the value at its end',
    ],
  }[op];
  const values = op === 'remove' || op === 'rename' ? '' : ` ${VALUES}`;
  const properties: Record<string, unknown> = {
    headers: entries(`Headers: ${what[0]}.${values}`),
    json: entries(`Fields of a JSON body: ${what[1]}.${values}`),
  };
  if (side === 'request') properties.querystring = entries(`Query parameters: ${what[0]}.${values}`);
  if (op === 'replace' || op === 'add' || op === 'append') properties.json_types = JSON_TYPES;
  if (side === 'request' && op === 'replace')
    properties.uri = {
      type: 'string',
      minLength: 1,
      description:
        'The path sent upstream instead of the request’s (and of the route’s rewrite), e.g. ' +
        '`/v2/things/$(params.id)`; template values are percent-encoded as one path segment; the query is kept.',
    };
  return { type: 'object', additionalProperties: false, properties } as const;
}

export function transformSchema(side: Side) {
  return {
    type: 'object',
    additionalProperties: false,
    properties: {
      remove: lists(side, 'remove'),
      rename: lists(side, 'rename'),
      replace: lists(side, 'replace'),
      add: lists(side, 'add'),
      append: lists(side, 'append'),
      maxBodyBytes: {
        type: 'integer',
        minimum: 1,
        description:
          `Bytes of JSON ${side} body read whole for the json operations; a larger one is refused ` +
          `(${side === 'request' ? '413 MG_BODY_TOO_LARGE' : '502 MG_RESPONSE_TOO_LARGE'}). ` +
          'Default 1048576 (1 MiB); 0 is not accepted (a body is never read without a limit).',
      },
    },
  } as const;
}
