/** Settings of the acl plugin. */
export interface AclConfig {
  allow?: string[];
  deny?: string[];
}

const groups = { type: 'array', minItems: 1, uniqueItems: true, items: { type: 'string', minLength: 1 } } as const;

export const aclSchema = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  maxProperties: 1,
  properties: {
    allow: { ...groups, description: 'Consumers in one of these groups pass; others get 403.' },
    deny: { ...groups, description: 'Consumers in one of these groups get 403; others pass.' },
  },
} as const;
