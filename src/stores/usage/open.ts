/**
 * The usage store a config names (`metering`), opened by the proxy that writes it and by the commands
 * that read it. The SQLite and Redis code is imported only here, on first use: a process whose config
 * does not meter never loads `node:sqlite` or ioredis for it.
 */
import type { Config } from '../../api/config.ts';
import { DEFAULT_METERING_FLUSH_INTERVAL_MS, METERING_REDIS_TIMEOUT_MS } from '../../core/defaults.ts';
import { parseDuration } from '../../core/duration.ts';
import type { PluginDeps } from '../../core/plugin.ts';
import type { RedisSettings } from '../redis/connection.ts';
import type { UsageStore } from './store.ts';

/** A config's metering settings with defaults applied (the loader made `path` absolute). */
export interface MeteringSettings {
  readonly store: 'sqlite' | 'redis';
  /** The SQLite file (store `sqlite`). */
  readonly path: string;
  /** The Redis (store `redis`). */
  readonly redis: RedisSettings | null;
  readonly flushIntervalMs: number;
}

/** null: the config does not meter (no `metering` block, or `enabled: false`). */
export function meteringSettings(config: Config): MeteringSettings | null {
  const m = config.metering;
  if (m === undefined || m.enabled === false) return null;
  const interval = m.flushInterval === undefined ? 0 : (parseDuration(m.flushInterval) ?? 0);
  const store = m.store ?? 'sqlite';
  return Object.freeze({
    store,
    path: m.path ?? '',
    redis: store === 'redis' ? (config.redis ?? null) : null,
    flushIntervalMs: interval > 0 ? interval : DEFAULT_METERING_FLUSH_INTERVAL_MS,
  });
}

/** Where the settings keep their counts, for messages (no password). */
export async function describeStore(settings: MeteringSettings): Promise<string> {
  if (settings.store === 'sqlite') return settings.path;
  const { redactedUrl } = await import('../redis/connection.ts');
  return redactedUrl(settings.redis?.url ?? '');
}

export async function openUsageStore(
  settings: MeteringSettings,
  options: { readOnly?: boolean; warn?: PluginDeps['warn'] } = {},
): Promise<UsageStore> {
  if (settings.store === 'redis') {
    if (settings.redis === null) throw new Error('metering: store: redis needs the top-level redis block');
    const { RedisConnection } = await import('../redis/connection.ts');
    const { RedisUsageStore } = await import('../redis/usage.ts');
    // Its own client, with a timeout for batches rather than for decisions on the request path.
    const connection = new RedisConnection(
      { ...settings.redis, timeout: `${METERING_REDIS_TIMEOUT_MS}ms` },
      options.warn ?? (() => {}),
    );
    return new RedisUsageStore(connection, true);
  }
  const { SqliteUsageStore } = await import('./sqlite.ts');
  return new SqliteUsageStore(settings.path, { readOnly: options.readOnly === true });
}
