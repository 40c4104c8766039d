/**
 * Cached responses in Redis, shared by every gateway on the same Redis and key prefix: a response one
 * gateway stored is a hit on all of them. Passes the cache store conformance suite.
 *
 * Keys: `<prefix>cache:<route>:<key>`, one string per response, expiring with the entry (PX = its TTL),
 * so Redis drops what is stale by itself; how much is kept is Redis' `maxmemory` and eviction policy
 * (`allkeys-lru` suits a cache), not the plugin's `maxEntries`. Route names contain no `:`, so a route's
 * keys are exactly those matching `cache:<route>:*` (purge scans for them).
 *
 * Value: a 4-byte big-endian length, the head as JSON (status, headers, content type, times), then the
 * body bytes as they are.
 */
import type { CacheEntry, CacheStore } from '../../plugins/cache/store.ts';
import type { RedisConnection } from './connection.ts';

/** Keys removed per DEL while purging, and asked for per SCAN step. */
const PURGE_BATCH = 500;

interface Head {
  status: number;
  headers: [string, string][];
  contentType: string;
  storedAt: number;
  expiresAt: number;
}

function encode(entry: CacheEntry): Buffer {
  const head: Head = {
    status: entry.status,
    headers: entry.headers,
    contentType: entry.contentType,
    storedAt: entry.storedAt,
    expiresAt: entry.expiresAt,
  };
  const json = Buffer.from(JSON.stringify(head));
  const length = Buffer.allocUnsafe(4);
  length.writeUInt32BE(json.length);
  return Buffer.concat([length, json, entry.body]);
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
    // Redis expires the key on its own clock; the entry's own expiry is what the plugin's clock sees.
    return entry.expiresAt <= now ? undefined : entry;
  }

  async set(route: string, key: string, entry: CacheEntry): Promise<void> {
    this.redis.check();
    const ttl = entry.expiresAt - entry.storedAt;
    if (ttl <= 0) return;
    await this.redis.client.set(`cache:${route}:${key}`, encode(entry), 'PX', ttl);
  }

  /** What the admin API's `DELETE /cache` calls on plugin state (ProxyServer.purgeCaches). */
  purgeCache(route?: string): Promise<number> {
    return this.purge(route);
  }

  /** SCAN (never KEYS: it would block Redis on a large keyspace) and DEL in batches. */
  async purge(route?: string): Promise<number> {
    this.redis.check();
    const client = this.redis.client;
    // SCAN's pattern is not prefixed by the client; the keys it returns carry the prefix, DEL adds it again.
    const prefix = this.redis.keyPrefix;
    const pattern = `${escapeGlob(prefix)}cache:${route === undefined ? '' : `${escapeGlob(route)}:`}*`;
    let cursor = '0';
    let removed = 0;
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', PURGE_BATCH);
      cursor = next;
      if (keys.length > 0) removed += await client.del(...keys.map((k) => k.slice(prefix.length)));
    } while (cursor !== '0');
    return removed;
  }
}

function escapeGlob(s: string): string {
  return s.replace(/[*?[\]\\]/g, '\\$&');
}
