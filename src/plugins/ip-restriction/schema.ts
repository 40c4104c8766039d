/** Settings of the ip-restriction plugin. */
export interface IpRestrictionConfig {
  allow?: string[];
  deny?: string[];
}

const cidrList = {
  type: 'array',
  minItems: 1,
  items: { type: 'string', minLength: 2, description: 'An address (`10.0.0.7`, `2001:db8::1`) or a CIDR block.' },
} as const;

export const ipRestrictionSchema = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: {
    allow: { ...cidrList, description: 'Only these addresses may pass (when given).' },
    deny: { ...cidrList, description: 'These addresses are refused (checked first).' },
  },
} as const;
