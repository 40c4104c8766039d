/**
 * Which store a cache config keeps responses in (`store: memory | redis`). The Redis code is loaded
 * only when a config first asks for it.
 */
import type { PluginDeps } from '../../core/plugin.ts';
import { FailurePolicy } from '../../stores/failure.ts';
import type { CacheConfig } from './schema.ts';
import { type CacheStore, MemoryCacheStore } from './store.ts';

export async function selectCacheStore(
  config: CacheConfig,
  deps: PluginDeps,
  maxEntries: number,
  maxBytes: number,
): Promise<{ store: CacheStore; failure: FailurePolicy | null }> {
  if (config.store !== 'redis')
    // Shared across reloads while the settings stay: a reload does not empty the cache.
    return {
      store: deps.shared(`cache:${JSON.stringify(config)}`, () => new MemoryCacheStore(maxEntries, maxBytes)),
      failure: null,
    };
  // The config check makes `store: redis` without a `redis` block an error before it gets here.
  if (deps.redis === undefined) throw new Error('cache: store: redis needs the top-level redis block');
  const { redisConnection } = await import('../../stores/redis/connection.ts');
  const { RedisCacheStore } = await import('../../stores/redis/cache.ts');
  const connection = redisConnection(deps, deps.redis);
  const { url, keyPrefix, timeout } = deps.redis;
  return {
    // Kept as plugin state (with the same settings as its connection) so the admin API can purge it.
    store: deps.shared(
      `cache:redis\u0000${url}\u0000${keyPrefix ?? ''}\u0000${timeout ?? ''}`,
      () => new RedisCacheStore(connection),
    ),
    failure: new FailurePolicy('cache', config.failOpen !== false, deps),
  };
}
