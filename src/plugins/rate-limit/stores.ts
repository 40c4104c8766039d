/**
 * Which store a rate-limit config counts in (`store: memory | redis`). `memory` counts in this process
 * when it serves alone (`--workers 0`), and in the primary when it is one of a gateway's workers, so
 * that a limit is one limit per machine (src/stores/primary.ts). The Redis code is loaded only when a
 * config first asks for it.
 */
import type { PluginDeps } from '../../core/plugin.ts';
import { FailurePolicy } from '../../stores/failure.ts';
import { primaryRateLimitStore } from '../../stores/primary.ts';
import { MemoryStore, type RateLimitStore } from './store.ts';

export interface SelectedStore {
  store: RateLimitStore;
  /** Null for the memory store, which cannot fail. */
  failure: FailurePolicy | null;
}

/** What choosing a store reads of a config: the rate-limit plugin's fields, which a plan repeats. */
export interface StoreChoice {
  readonly store?: 'memory' | 'redis';
  readonly failOpen?: boolean;
}

/** What choosing a store uses of the plugin deps. */
export type StoreDeps = Pick<PluginDeps, 'shared' | 'redis' | 'counter' | 'warn' | 'isolated'>;

/**
 * `owner` names who counts, in the `store_unavailable_total{plugin}` label and log lines. Every owner
 * counts in the same store (keys tell them apart), so a gateway has one primary-held count.
 */
export async function selectStore(config: StoreChoice, deps: StoreDeps, owner = 'rate-limit'): Promise<SelectedStore> {
  // A dry run counts on its own, never in the counters the live config refuses by: in the primary under
  // keys of its own (one count for the machine, as live), else in its own memory; never in Redis.
  if (deps.isolated !== undefined) {
    const primary = primaryRateLimitStore();
    if (primary === null) return { store: deps.shared('rate-limit:memory', () => new MemoryStore()), failure: null };
    const prefix = `${deps.isolated}|`;
    const store: RateLimitStore = {
      consume: (key, windows, now) => primary.consume(prefix + key, windows, now),
      peek: (key, windows, now) => primary.peek(prefix + key, windows, now),
    };
    return { store, failure: new FailurePolicy(owner, true, deps) };
  }
  if (config.store !== 'redis') {
    const primary = primaryRateLimitStore();
    // The primary can only fail to answer when it is gone (the worker is then draining): failOpen decides.
    if (primary !== null) return { store: primary, failure: new FailurePolicy(owner, config.failOpen !== false, deps) };
    return { store: deps.shared('rate-limit:memory', () => new MemoryStore()), failure: null };
  }
  // The config check makes `store: redis` without a `redis` block an error before it gets here.
  if (deps.redis === undefined) throw new Error(`${owner}: store: redis needs the top-level redis block`);
  const { redisConnection } = await import('../../stores/redis/connection.ts');
  const { RedisRateLimitStore } = await import('../../stores/redis/rate-limit.ts');
  // Stateless over the shared connection (which is what outlives snapshots), so made per compile.
  return {
    store: new RedisRateLimitStore(redisConnection(deps, deps.redis)),
    failure: new FailurePolicy(owner, config.failOpen !== false, deps),
  };
}
