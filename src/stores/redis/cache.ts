/**
 * Cached responses in Redis, shared by every gateway on the same Redis and key prefix: a response one
 * gateway stored is a hit on all of them. Passes the cache store conformance suite.
 *
 * Keys: `<prefix>cache:<route>:<key>`, one string per response, expiring with the entry (PX = until its
 * `keepUntil`), so Redis drops what is stale by itself; how much is kept is Redis' `maxmemory` and
 * eviction policy (`allkeys-lru` suits a cache), not the plugin's `maxEntries`/`maxBytes`. Route names
 * contain no `:`, so a route's keys are exactly those matching `cache:<route>:*` (purge scans for them).
 *
 * Value: a 4-byte big-endian length, the head as JSON (status, headers, content type, times,
 * validators, vary), then the body bytes as they are. `usage` counts the values' lengths (STRLEN).
 */
import type { CacheEntry, CacheStore, CacheUsage, PurgeSelector } from '../../plugins/cache/store.ts';
import type { RedisConnection } from './connection.ts';

/** Keys removed per DEL while purging, and asked for per SCAN step. */
const PURGE_BATCH = 500;

type Head = Omit<CacheEntry, 'body'>;

function encode(entry: CacheEntry): Buffer {
  const { body, ...head } = entry;
  const json = Buffer.from(JSON.stringify(head satisfies Head));
  const length = Buffer.allocUnsafe(4);
  length.writeUInt32BE(json.length);
  return Buffer.concat([length, json, body]);
}

function decode(value: Buffer): CacheEntry {
  const length = value.readUInt32BE(0);
  const head = JSON.parse(value.toString('utf8', 4, 4 + length)) as Head;
  return { ...head, body: value.subarray(4 + length) };
}

export class RedisCacheStore implements CacheStore {
  private readonly redis: RedisConnection;

  constructor(redis: RedisConnection) {
    this.redis = redis;
  }

  async get(route: string, key: string, now: number): Promise<CacheEntry | undefined> {
    this.redis.check();
    const value = await this.redis.client.getBuffer(`cache:${route}:${key}`);
    if (value === null) return undefined;
    const entry = decode(value);
    // Redis expires the key on its own clock; the entry's own times are what the plugin's clock sees.
    return entry.keepUntil <= now ? undefined : entry;
  }

  async set(route: string, key: string, entry: CacheEntry): Promise<void> {
    this.redis.check();
    // From when the response was generated: at most its initial Age longer than needed, never shorter.
    const keepMs = entry.keepUntil - entry.storedAt;
    if (keepMs <= 0) return;
    await this.redis.client.set(`cache:${route}:${key}`, encode(entry), 'PX', keepMs);
  }

  /** What the admin API's `DELETE /cache…` calls on plugin state (ProxyServer.purgeCaches). */
  purgeCache(selector?: PurgeSelector): Promise<number> {
    return this.purge(selector);
  }

  /** SCAN (never KEYS: it would block Redis on a large keyspace) and DEL in batches. */
  async purge(selector: PurgeSelector = {}): Promise<number> {
    let removed = 0;
    await this.scan(selector, async (keys) => {
      removed += await this.redis.client.del(...keys);
    });
    return removed;
  }

  async usage(route?: string): Promise<CacheUsage> {
    let entries = 0;
    let bytes = 0;
    await this.scan(route === undefined ? {} : { route }, async (keys) => {
      const pipeline = this.redis.client.pipeline();
      for (const key of keys) pipeline.strlen(key);
      for (const [error, length] of (await pipeline.exec()) ?? []) {
        if (error !== null) throw error;
        // A key that expired between SCAN and STRLEN reads 0.
        if ((length as number) > 0) {
          entries++;
          bytes += length as number;
        }
      }
    });
    return { entries, bytes };
  }

  /** Calls `each` with batches of the selector's keys, without the client's key prefix (commands add it). */
  private async scan(selector: PurgeSelector, each: (keys: string[]) => Promise<void>): Promise<void> {
    this.redis.check();
    const client = this.redis.client;
    // SCAN's pattern is not prefixed by the client; the keys it returns carry the prefix.
    const prefix = this.redis.keyPrefix;
    const { route, keyPrefix } = selector;
    const routePart = route === undefined ? (keyPrefix === undefined ? '' : '*:') : `${escapeGlob(route)}:`;
    const pattern = `${escapeGlob(prefix)}cache:${routePart}${keyPrefix === undefined ? '' : escapeGlob(keyPrefix)}*`;
    const start = prefix.length + 'cache:'.length;
    let cursor = '0';
    do {
      const [next, found] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', PURGE_BATCH);
      cursor = next;
      const keys: string[] = [];
      for (const key of found) {
        // `*:` may match across a `:` in the path: the route ends at the first `:`, the key starts after it.
        if (route === undefined && keyPrefix !== undefined && !key.startsWith(keyPrefix, key.indexOf(':', start) + 1))
          continue;
        keys.push(key.slice(prefix.length));
      }
      if (keys.length > 0) await each(keys);
    } while (cursor !== '0');
  }
}

function escapeGlob(s: string): string {
  return s.replace(/[*?[\]\\]/g, '\\$&');
}
