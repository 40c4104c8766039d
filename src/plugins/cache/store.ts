/**
 * Response-cache storage. A store keeps entries per route under a key the plugin makes (path, query,
 * host, consumer, key headers, then any Vary values); it never decides what is cacheable or fresh.
 * Implementations: in memory (this process, LRU by entries and bytes) and Redis
 * (src/stores/redis/cache.ts, shared by gateways), each passing store.conformance.ts.
 */

export interface CacheEntry {
  status: number;
  /**
   * Response headers as served on a hit (lower-case names; hop, per-response and framing headers
   * removed; content type apart), so a hit copies them without looking at them.
   */
  headers: [string, string][];
  contentType: string;
  body: Buffer;
  /** Milliseconds since the epoch: when the response was generated, as far as known (its `Age` counts from here). */
  storedAt: number;
  /** Fresh before this instant (ms since the epoch). */
  expiresAt: number;
  /** May be served stale while another request refreshes it, before this instant; ≥ expiresAt. */
  staleUntil: number;
  /** The store keeps the entry before this instant and drops it at or after it; ≥ staleUntil. */
  keepUntil: number;
  /** The `ETag`, as the upstream sent it. */
  etag?: string;
  /** `Last-Modified` in ms since the epoch. */
  lastModified?: number;
  /**
   * Set on a marker entry: the response at this key varies on these request headers (lower-case,
   * sorted), and each variant is stored under its own key. A marker has no body of its own.
   */
  vary?: string[];
  /** Bytes the entry is accounted as (`entrySize`), fixed when it is made. */
  size: number;
}

/** Which entries a purge removes: all of them, one route's, and/or those whose key starts with `keyPrefix`. */
export interface PurgeSelector {
  route?: string;
  /** A key prefix (see policy.ts keyPrefixOf): a URL's entries, or every entry under a path prefix. */
  keyPrefix?: string;
}

export interface CacheUsage {
  entries: number;
  bytes: number;
}

export interface CacheStore {
  /** The entry for `key` of `route`, or undefined (none, or past its `keepUntil` at `now`). */
  get(route: string, key: string, now: number): CacheEntry | undefined | Promise<CacheEntry | undefined>;
  /** Stores (or replaces) the entry; it is kept until its `keepUntil`, or until the store needs the room. */
  set(route: string, key: string, entry: CacheEntry): void | Promise<void>;
  /** Removes the entries the selector names (every entry without one); resolves to how many. */
  purge(selector?: PurgeSelector): number | Promise<number>;
  /**
   * Entries held (of one route, or all) and their bytes: at least the bytes of their bodies, at most
   * their `size` plus a small constant each (how a store lays an entry out is its own).
   */
  usage(route?: string): CacheUsage | Promise<CacheUsage>;
}

/** Bookkeeping bytes per entry beside its headers and body (map slot, object, times). */
const ENTRY_OVERHEAD_BYTES = 160;

/** The bytes an entry is accounted as: its body, its headers and a fixed overhead. */
export function entrySize(entry: Omit<CacheEntry, 'size'>): number {
  let bytes = ENTRY_OVERHEAD_BYTES + entry.body.length + entry.contentType.length;
  for (const [name, value] of entry.headers) bytes += name.length + value.length + 4;
  if (entry.vary !== undefined) for (const name of entry.vary) bytes += name.length + 4;
  return bytes;
}

const SEPARATOR = '\u0000';

/**
 * Least-recently-used map bounded by entries and bytes: a Map keeps insertion order, so re-inserting on
 * use moves a key to the end, and the first key is the one to evict.
 */
export class MemoryCacheStore implements CacheStore {
  private readonly entries = new Map<string, CacheEntry>();
  private readonly maxEntries: number;
  private readonly maxBytes: number;
  private bytes = 0;

  /** `maxEntries`, `maxBytes`: what is kept at most; the least recently used goes first. */
  constructor(maxEntries: number, maxBytes = Number.POSITIVE_INFINITY) {
    this.maxEntries = maxEntries;
    this.maxBytes = maxBytes;
  }

  get(route: string, key: string, now: number): CacheEntry | undefined {
    const id = `${route}${SEPARATOR}${key}`;
    const entry = this.entries.get(id);
    if (entry === undefined) return undefined;
    this.entries.delete(id);
    if (entry.keepUntil <= now) {
      this.bytes -= entry.size;
      return undefined;
    }
    this.entries.set(id, entry);
    return entry;
  }

  set(route: string, key: string, entry: CacheEntry): void {
    const id = `${route}${SEPARATOR}${key}`;
    const old = this.entries.get(id);
    if (old !== undefined) {
      this.entries.delete(id);
      this.bytes -= old.size;
    }
    // Larger than the whole budget: storing it would only empty the cache for nothing.
    if (entry.size > this.maxBytes) return;
    while (this.entries.size > 0 && (this.entries.size >= this.maxEntries || this.bytes + entry.size > this.maxBytes)) {
      const [oldest, evicted] = this.entries.entries().next().value!;
      this.entries.delete(oldest);
      this.bytes -= evicted.size;
    }
    this.entries.set(id, entry);
    this.bytes += entry.size;
  }

  /** What the admin API's `DELETE /cache…` calls on plugin state (ProxyServer.purgeCaches). */
  purgeCache(selector?: PurgeSelector): number {
    return this.purge(selector);
  }

  purge(selector: PurgeSelector = {}): number {
    const { route, keyPrefix } = selector;
    if (route === undefined && keyPrefix === undefined) {
      const n = this.entries.size;
      this.entries.clear();
      this.bytes = 0;
      return n;
    }
    let n = 0;
    const routePrefix = route === undefined ? undefined : `${route}${SEPARATOR}`;
    for (const [id, entry] of this.entries) {
      if (routePrefix !== undefined && !id.startsWith(routePrefix)) continue;
      // Route names never contain the separator: the key starts right after the first one.
      if (keyPrefix !== undefined && !id.startsWith(keyPrefix, id.indexOf(SEPARATOR) + 1)) continue;
      this.entries.delete(id);
      this.bytes -= entry.size;
      n++;
    }
    return n;
  }

  usage(route?: string): CacheUsage {
    if (route === undefined) return { entries: this.entries.size, bytes: this.bytes };
    const prefix = `${route}${SEPARATOR}`;
    let entries = 0;
    let bytes = 0;
    for (const [id, entry] of this.entries)
      if (id.startsWith(prefix)) {
        entries++;
        bytes += entry.size;
      }
    return { entries, bytes };
  }
}
