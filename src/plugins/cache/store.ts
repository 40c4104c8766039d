/**
 * Response-cache storage. A store keeps entries per route under a key the plugin makes (host, path,
 * query); it never decides what is cacheable. Implementations: in memory (this process, LRU) and
 * Redis (src/stores/redis/cache.ts, shared by gateways), each passing store.conformance.ts.
 */

export interface CacheEntry {
  status: number;
  /** Response headers as stored (hop and per-response headers removed), content type apart. */
  headers: [string, string][];
  contentType: string;
  body: Buffer;
  /** Milliseconds since the epoch. */
  storedAt: number;
  /** The entry is not served at or after this instant (ms since the epoch). */
  expiresAt: number;
}

export interface CacheStore {
  /** The live entry for `key` of `route`, or undefined (none, or expired at `now`). */
  get(route: string, key: string, now: number): CacheEntry | undefined | Promise<CacheEntry | undefined>;
  /** Stores (or replaces) the entry; it lives until its `expiresAt`. */
  set(route: string, key: string, entry: CacheEntry): void | Promise<void>;
  /** Removes every entry of `route`, or of every route when none is given; resolves to how many. */
  purge(route?: string): number | Promise<number>;
}

/** Least-recently-used map: a Map keeps insertion order, so re-inserting on use moves a key to the end. */
export class MemoryCacheStore implements CacheStore {
  private readonly entries = new Map<string, CacheEntry>();
  private readonly max: number;

  /** `max`: entries kept; the least recently used goes first. */
  constructor(max: number) {
    this.max = max;
  }

  get(route: string, key: string, now: number): CacheEntry | undefined {
    const id = `${route}\u0000${key}`;
    const entry = this.entries.get(id);
    if (entry === undefined) return undefined;
    this.entries.delete(id);
    if (entry.expiresAt <= now) return undefined;
    this.entries.set(id, entry);
    return entry;
  }

  set(route: string, key: string, entry: CacheEntry): void {
    const id = `${route}\u0000${key}`;
    this.entries.delete(id);
    if (this.entries.size >= this.max) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(id, entry);
  }

  /** What the admin API's `DELETE /cache` calls on plugin state (ProxyServer.purgeCaches). */
  purgeCache(route?: string): number {
    return this.purge(route);
  }

  purge(route?: string): number {
    if (route === undefined) {
      const n = this.entries.size;
      this.entries.clear();
      return n;
    }
    let n = 0;
    const prefix = `${route}\u0000`;
    for (const id of this.entries.keys())
      if (id.startsWith(prefix)) {
        this.entries.delete(id);
        n++;
      }
    return n;
  }
}
