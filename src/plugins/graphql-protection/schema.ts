import {
  DEFAULT_GRAPHQL_MAX_ALIASES,
  DEFAULT_GRAPHQL_MAX_COST,
  DEFAULT_GRAPHQL_MAX_DEPTH,
  DEFAULT_GRAPHQL_PROTECTION_BODY_BYTES,
} from '../../core/defaults.ts';

/** Settings of the graphql-protection plugin (README.md has the rules in full). */
export interface GraphqlProtectionConfig {
  maxDepth?: number;
  maxAliases?: number;
  maxCost?: number;
  defaultFieldCost?: number;
  fieldCosts?: Record<string, number>;
  listArguments?: string[];
  introspection?: boolean;
  schema?: string;
  persistedQueries?: { only?: boolean; file?: string; queries?: Record<string, string> };
  maxBodyBytes?: number;
}

export const graphqlProtectionSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    maxDepth: {
      type: 'integer',
      minimum: 0,
      description: `Deepest field nesting accepted (root fields are depth 1; fragments count where they are spread). Default ${DEFAULT_GRAPHQL_MAX_DEPTH}. 0: no limit.`,
    },
    maxAliases: {
      type: 'integer',
      minimum: 0,
      description: `Most aliased fields in the operation (fragments counted each time they are spread). Default ${DEFAULT_GRAPHQL_MAX_ALIASES}. 0: no limit.`,
    },
    maxCost: {
      type: 'integer',
      minimum: 0,
      description: `Highest cost of the operation: each field costs its weight, and a field with a list argument (listArguments) multiplies the cost of what it selects by that argument's value. Default ${DEFAULT_GRAPHQL_MAX_COST}. 0: no limit.`,
    },
    defaultFieldCost: {
      type: 'number',
      minimum: 0,
      description: 'Weight of a field that fieldCosts does not name. Default 1. `__typename` always costs 0.',
    },
    fieldCosts: {
      type: 'object',
      additionalProperties: { type: 'number', minimum: 0 },
      propertyNames: { pattern: '^([_A-Za-z][_0-9A-Za-z]*\\.)?[_A-Za-z][_0-9A-Za-z]*$' },
      description:
        'Weights of fields: `Type.field` (e.g. `Query.search`) or `field` for that name on any type. Nested types are ' +
        'known from `schema`, from fragments’ type conditions, or as Query/Mutation for root fields. Default: none.',
    },
    listArguments: {
      type: 'array',
      items: { type: 'string', minLength: 1 },
      uniqueItems: true,
      description:
        'Arguments whose integer value (a literal or a variable) is how many items a field returns: the cost of its ' +
        'selection is multiplied by it (at least 1). Default [first, last, limit].',
    },
    introspection: {
      type: 'boolean',
      description: 'Allow introspection (`__schema`, `__type`). Default false: refused with MG_GRAPHQL_INTROSPECTION.',
    },
    schema: {
      type: 'string',
      minLength: 1,
      description:
        'GraphQL SDL file (relative to the config file) giving the types of nested fields, so `fieldCosts` can name ' +
        'them. Default: none.',
    },
    persistedQueries: {
      type: 'object',
      additionalProperties: false,
      description:
        'An allow-list of queries by sha256 hash (Apollo’s `extensions.persistedQuery.sha256Hash`). A request with ' +
        'only the hash gets its query from the list, inserted into what goes upstream; an unknown hash is refused ' +
        '(MG_GRAPHQL_NOT_PERSISTED).',
      properties: {
        only: {
          type: 'boolean',
          description: 'Refuse any query not on the list, even sent in full. Default false.',
        },
        file: {
          type: 'string',
          minLength: 1,
          description:
            'JSON file (relative to the config file): an object of sha256 hex → query, or an Apollo persisted query ' +
            'manifest. Read when the config loads.',
        },
        queries: {
          type: 'object',
          additionalProperties: { type: 'string', minLength: 1 },
          propertyNames: { pattern: '^[0-9a-fA-F]{64}$' },
          description: 'sha256 hex → query, inline; added to the file’s.',
        },
      },
    },
    maxBodyBytes: {
      type: 'integer',
      minimum: 1,
      description: `Largest POST body read and checked, in bytes; larger is a 413. Default ${DEFAULT_GRAPHQL_PROTECTION_BODY_BYTES}.`,
    },
  },
} as const;
