import type { JsonType } from '../shared/transform/plan.ts';
import { transformSchema } from '../shared/transform/schema.ts';

interface Lists {
  headers?: string[];
  json?: string[];
}

interface ValueLists extends Lists {
  json_types?: JsonType[];
}

/** Settings of the response-transformer plugin (Kong's shape). */
export interface ResponseTransformerConfig {
  remove?: Lists;
  rename?: Lists;
  replace?: ValueLists;
  add?: ValueLists;
  append?: ValueLists;
  maxBodyBytes?: number;
}

export const responseTransformerSchema = transformSchema('response');
