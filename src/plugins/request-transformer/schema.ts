import type { JsonType } from '../shared/transform/plan.ts';
import { transformSchema } from '../shared/transform/schema.ts';

interface Lists {
  headers?: string[];
  querystring?: string[];
  json?: string[];
}

interface ValueLists extends Lists {
  json_types?: JsonType[];
}

/** Settings of the request-transformer plugin (Kong's shape; `json` where Kong says `body`). */
export interface RequestTransformerConfig {
  remove?: Lists;
  rename?: Lists;
  replace?: ValueLists & { uri?: string };
  add?: ValueLists;
  append?: ValueLists;
  maxBodyBytes?: number;
}

export const requestTransformerSchema = transformSchema('request');
