/**
 * The built-in plugins as modules imported when a config first names them: what a proxy uses
 * (`createLazyPluginCatalog`), so a sidecar whose config names no plugin loads none of their code
 * (all twelve cost ~3 MB of heap). The same list as index.ts, in the same order (a test keeps them
 * equal); tools that check configs synchronously (the control plane, `validate`) take index.ts's.
 */
import { type PluginLoader, PluginRegistry } from './registry.ts';

export const BUILTIN_PLUGIN_MODULES: ReadonlyMap<string, PluginLoader> = new Map<string, PluginLoader>([
  ['request-id', () => import('./request-id/plugin.ts')],
  ['cors', () => import('./cors/plugin.ts')],
  ['ip-restriction', () => import('./ip-restriction/plugin.ts')],
  ['request-size-limit', () => import('./request-size-limit/plugin.ts')],
  ['jwt', () => import('./jwt/plugin.ts')],
  ['key-auth', () => import('./key-auth/plugin.ts')],
  ['acl', () => import('./acl/plugin.ts')],
  ['rate-limit', () => import('./rate-limit/plugin.ts')],
  ['request-transformer', () => import('./request-transformer/plugin.ts')],
  ['response-transformer', () => import('./response-transformer/plugin.ts')],
  ['graphql-protection', () => import('./graphql-protection/plugin.ts')],
  ['cache', () => import('./cache/plugin.ts')],
]);

/** A catalog of the built-in plugins that imports each on first use (its config pipeline preloads them). */
export function createLazyPluginCatalog(): PluginRegistry {
  return new PluginRegistry(BUILTIN_PLUGIN_MODULES);
}
