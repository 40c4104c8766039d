/**
 * The built-in plugins: an explicit list (house rule 7: no registration by side effect). A new plugin
 * is a folder under src/plugins with schema.ts, plugin.ts, plugin.test.ts and README.md, added here.
 */
import type { PluginDefinition } from '../core/plugin.ts';
import acl from './acl/plugin.ts';
import cache from './cache/plugin.ts';
import cors from './cors/plugin.ts';
import graphqlProtection from './graphql-protection/plugin.ts';
import ipRestriction from './ip-restriction/plugin.ts';
import jwt from './jwt/plugin.ts';
import keyAuth from './key-auth/plugin.ts';
import rateLimit from './rate-limit/plugin.ts';
import { PluginRegistry } from './registry.ts';
import requestId from './request-id/plugin.ts';
import requestSizeLimit from './request-size-limit/plugin.ts';
import requestTransformer from './request-transformer/plugin.ts';
import responseTransformer from './response-transformer/plugin.ts';

export const builtinPlugins: readonly PluginDefinition[] = [
  requestId,
  cors,
  ipRestriction,
  requestSizeLimit,
  jwt,
  keyAuth,
  acl,
  rateLimit,
  requestTransformer,
  responseTransformer,
  graphqlProtection,
  cache,
] as PluginDefinition[];

/** A fresh catalog of the built-in plugins, to which modules named by `path` are added as loaded. */
export function createPluginCatalog(): PluginRegistry {
  return new PluginRegistry(builtinPlugins);
}
