/**
 * cache: a shared HTTP cache in front of a route, as Kong's proxy-cache, Varnish or nginx's
 * proxy_cache are. It follows the response's `Cache-Control` (`no-store`, `private`, `no-cache`,
 * `max-age`, `s-maxage`, `stale-while-revalidate`, `must-revalidate`), `Expires`, `Vary` and `Age`, and the
 * request's `no-store`, `no-cache` and `max-age`; answers `If-None-Match` / `If-Modified-Since` from a
 * fresh entry with 304; coalesces concurrent misses into one upstream call (coalesce.ts). The rules are
 * policy.ts; the storage is a CacheStore (store.ts: memory, or Redis shared by gateways).
 *
 * A hit is answered before anything goes upstream, from headers prepared when the entry was stored.
 * A miss streams to its client as usual; its body is copied as it passes and stored once it has ended.
 * Every response of the route carries `X-Cache-Status`: HIT, MISS, STALE, BYPASS, REFRESH or REVALIDATED.
 */
import { parseDuration } from '../../core/duration.ts';
import {
  definePlugin,
  type Filter,
  type FilterResult,
  type LocalReply,
  type RequestContext,
  type ResponseHead,
} from '../../core/plugin.ts';
import type { FailurePolicy } from '../../stores/failure.ts';
import { type Flight, Flights, type Landing } from './coalesce.ts';
import {
  freshness,
  httpDate,
  KEY_SEPARATOR,
  noneMatch,
  normaliseFieldValue,
  normaliseQuery,
  requestDirectives,
  responseDirectives,
  varyNames,
} from './policy.ts';
import { type CacheConfig, cacheSchema } from './schema.ts';
import { type CacheEntry, type CacheStore, entrySize } from './store.ts';
import { selectCacheStore } from './stores.ts';

const DEFAULT_TTL_MS = 60_000;
const DEFAULT_MAX_ENTRIES = 1000;
const DEFAULT_MAX_BYTES = 64 * 1024 * 1024;
const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;
const DEFAULT_COALESCE_TIMEOUT_MS = 10_000;
const DEFAULT_HIT_FOR_MISS_MS = 120_000;
const DEFAULT_STATUSES = [200];

export const CACHE_STATUS_HEADER = 'x-cache-status';

/** What the cache did with a request, in `X-Cache-Status` (docs in README.md). */
type CacheStatus = 'HIT' | 'MISS' | 'STALE' | 'BYPASS' | 'REFRESH' | 'REVALIDATED';

/** Response headers that describe this hop or this one response, not the stored content. */
const NOT_STORED = new Set([
  'x-request-id',
  'date',
  'age',
  'x-cache',
  CACHE_STATUS_HEADER,
  'server-timing',
  'content-length',
  'content-type',
  'set-cookie',
]);

/** What a 304 carries of the stored response (RFC 9110 §15.4.5), beside Age and X-Cache-Status. */
const NOT_MODIFIED_HEADERS = new Set(['cache-control', 'content-location', 'etag', 'expires', 'vary', 'last-modified']);

const EMPTY = Buffer.alloc(0);

interface Compiled {
  store: CacheStore;
  /** What to do when a shared store cannot answer (`failOpen`); null for the memory store. */
  failure: FailurePolicy | null;
  flights: Flights<CacheEntry>;
  now: () => number;
  ttlMs: number;
  maxTtlMs: number;
  staleMs: number;
  maxBodyBytes: number;
  statuses: ReadonlySet<number>;
  keyHeaders: readonly string[];
  perConsumer: boolean;
  cacheAuthorized: boolean;
  coalesceMs: number;
  hitForMissMs: number;
}

/** An entry being copied from a response, before its body is complete. */
type Pending = Omit<CacheEntry, 'body' | 'size'>;

/**
 * Path and normalised query first (a purge by URL or path prefix matches the start of the key), then
 * host, consumer and key headers. Within the route's entries: a canary route keeps its answers to itself.
 */
function keyOf(ctx: RequestContext, c: Compiled): string {
  let key = `${ctx.path}${KEY_SEPARATOR}${normaliseQuery(ctx.query)}${KEY_SEPARATOR}${ctx.host}${KEY_SEPARATOR}`;
  if (c.perConsumer) key += `${ctx.consumer?.id ?? ''}${KEY_SEPARATOR}`;
  for (const name of c.keyHeaders) key += `${normaliseFieldValue(ctx.header(name))}${KEY_SEPARATOR}`;
  return key;
}

/** The suffix of a variant's key: the request's values of the headers the response varies on. */
function variantOf(ctx: RequestContext, names: readonly string[]): string {
  let variant = 'vary:';
  for (const name of names) variant += `${normaliseFieldValue(ctx.header(name))}${KEY_SEPARATOR}`;
  return variant;
}

function headerValue(headers: readonly [string, string][], name: string): string | undefined {
  for (const [n, v] of headers) if (n === name) return v;
  return undefined;
}

/** True when a conditional GET/HEAD would be answered 304 by this (200) entry (RFC 9110 §13.2.2). */
function notModified(ctx: RequestContext, entry: CacheEntry): boolean {
  const ifNoneMatch = ctx.header('if-none-match');
  if (ifNoneMatch !== undefined)
    return entry.etag === undefined ? ifNoneMatch.trim() === '*' : noneMatch(ifNoneMatch, entry.etag);
  const ifModifiedSince = ctx.header('if-modified-since');
  if (ifModifiedSince === undefined || entry.lastModified === undefined) return false;
  const since = httpDate(ifModifiedSince);
  return !Number.isNaN(since) && entry.lastModified <= since;
}

function isConditional(ctx: RequestContext): boolean {
  return ctx.header('if-none-match') !== undefined || ctx.header('if-modified-since') !== undefined;
}

/** Per request: what the cache did, and the response being copied for storing. */
class CacheFilter implements Filter {
  private readonly c: Compiled;
  private status: CacheStatus = 'BYPASS';
  /** The request's key within its route; '' when it bypasses the cache. */
  private key = '';
  /** The Vary variant this request's entry is stored under ('' when the response does not vary). */
  private variant = '';
  /** The Vary marker found at the key, if any. */
  private marker: CacheEntry | undefined;
  /** An entry past its freshness that this request may refresh (or revalidate). */
  private stale: CacheEntry | undefined;
  /** Request `max-age`, seconds; -1 when none. */
  private maxAgeS = -1;
  private unavailable = false;
  /** Set while this request leads the flight of its key. */
  private flight: Flight<CacheEntry> | null = null;
  private flightId = '';
  private storing: Pending | null = null;
  /** Set by `storable` when the response's own headers forbid storing: remembered as hit-for-miss until then. */
  private uncacheableUntil = 0;
  private chunks: Buffer[] = [];
  private size = 0;

  constructor(compiled: Compiled) {
    this.c = compiled;
  }

  explain(): Record<string, unknown> {
    return { status: this.status };
  }

  onRequestHeaders(ctx: RequestContext): FilterResult {
    const c = this.c;
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD') return undefined;
    if (!c.cacheAuthorized) {
      if (ctx.header('cookie') !== undefined) return undefined;
      // With perConsumer, an identified consumer's entries are its own: its credential may be cached under it.
      if (ctx.header('authorization') !== undefined && !(c.perConsumer && ctx.consumer !== null)) return undefined;
    }
    const cacheControl = ctx.header('cache-control');
    let refresh = false;
    if (cacheControl !== undefined) {
      const d = requestDirectives(cacheControl);
      if (d.noStore) return undefined;
      refresh = d.noCache || d.maxAge === 0;
      this.maxAgeS = d.maxAge;
    }
    this.key = keyOf(ctx, c);
    if (refresh) {
      // Fetched from the upstream whatever is stored, and stored again (Kong's Refresh).
      this.status = 'REFRESH';
      return undefined;
    }
    this.status = 'MISS';
    const now = c.now();
    return this.lookup(ctx, c.store.get(ctx.routeName, this.key, now), now, true);
  }

  private lookup(
    ctx: RequestContext,
    got: CacheEntry | undefined | Promise<CacheEntry | undefined>,
    now: number,
    atKey: boolean,
  ): FilterResult {
    if (!(got instanceof Promise)) return this.found(ctx, got, now, atKey);
    const failure = this.c.failure!;
    return got.then(
      (entry) => {
        failure.ok(ctx.routeName);
        return this.found(ctx, entry, now, atKey);
      },
      (error: unknown) => {
        // A miss, and not stored either: the store is what failed.
        this.unavailable = true;
        return failure.failed(ctx.routeName, error);
      },
    );
  }

  private found(ctx: RequestContext, entry: CacheEntry | undefined, now: number, atKey: boolean): FilterResult {
    if (entry?.vary !== undefined) {
      if (!atKey) return this.miss(ctx, now);
      this.marker = entry;
      this.variant = variantOf(ctx, entry.vary);
      return this.lookup(ctx, this.c.store.get(ctx.routeName, this.key + this.variant, now), now, false);
    }
    if (entry !== undefined) {
      if (now < entry.expiresAt && (this.maxAgeS < 0 || now - entry.storedAt <= this.maxAgeS * 1000))
        return this.hit(ctx, entry, 'HIT', now);
      this.stale = entry;
    }
    return this.miss(ctx, now);
  }

  /** Leads the key's flight, follows it, is served stale while it refreshes, or goes upstream alone. */
  private miss(ctx: RequestContext, now: number): FilterResult {
    const c = this.c;
    if (c.coalesceMs === 0) return undefined;
    // Once a Vary marker is known, each variant coalesces on its own.
    const id = `${ctx.routeName}${KEY_SEPARATOR}${this.key}${this.variant}`;
    const flight = c.flights.get(id);
    if (flight !== undefined) {
      const landed = flight.landed;
      if (landed !== null) return this.landedHit(ctx, landed, now);
      const stale = this.stale;
      if (stale !== undefined && now < stale.staleUntil) return this.hit(ctx, stale, 'STALE', now);
      return flight.accepting ? this.follow(ctx, flight) : undefined;
    }
    // A HEAD's response has no body to share, and a conditional one may be a bodiless 304.
    if (ctx.method === 'HEAD' || isConditional(ctx) || c.flights.isUncacheable(id, now)) return undefined;
    this.flight = c.flights.lead(id, c.coalesceMs);
    this.flightId = id;
    return undefined;
  }

  private follow(ctx: RequestContext, flight: Flight<CacheEntry>): Promise<LocalReply | undefined> {
    // The leader had nothing to share, or the wait ran out: this request goes upstream itself.
    return flight.wait().then((landing) => (landing === null ? undefined : this.landedHit(ctx, landing, this.c.now())));
  }

  /** The leader's entry, when it is this request's variant too. */
  private landedHit(ctx: RequestContext, landing: Landing<CacheEntry>, now: number): LocalReply | undefined {
    if (landing.variant !== '' && variantOf(ctx, landing.vary) !== landing.variant) return undefined;
    return this.hit(ctx, landing.entry, 'HIT', now);
  }

  private hit(ctx: RequestContext, entry: CacheEntry, status: 'HIT' | 'STALE', now: number): LocalReply {
    this.status = status;
    const age = String(Math.max(0, Math.floor((now - entry.storedAt) / 1000)));
    if (entry.status === 200 && notModified(ctx, entry)) {
      const headers: [string, string][] = [];
      for (const header of entry.headers) if (NOT_MODIFIED_HEADERS.has(header[0])) headers.push(header);
      headers.push(['age', age], [CACHE_STATUS_HEADER, status]);
      return { status: 304, code: 'MG_CACHE_HIT', detail: 'not modified (cache)', headers, plain: true };
    }
    return {
      status: entry.status,
      code: 'MG_CACHE_HIT',
      detail: 'served from the cache',
      headers: [...entry.headers, ['age', age], [CACHE_STATUS_HEADER, status]],
      body: { contentType: entry.contentType, text: entry.body },
      plain: true,
    };
  }

  onResponseHeaders(ctx: RequestContext, response: ResponseHead): void {
    const status = this.status;
    // A hit's own reply already says so.
    if (status === 'HIT' || status === 'STALE') return;
    response.setHeader(CACHE_STATUS_HEADER, status);
    if (this.key === '') return;
    const now = this.c.now();
    if (this.unavailable || ctx.method === 'HEAD') {
      this.land(null, 0);
      return;
    }
    if (response.status === 304) {
      if (this.stale !== undefined && this.revalidate(ctx, response, now))
        response.setHeader(CACHE_STATUS_HEADER, 'REVALIDATED');
      this.land(null, 0);
      return;
    }
    this.storing = this.storable(response, now);
    if (this.storing === null) this.land(null, this.uncacheableUntil);
  }

  private storable(response: ResponseHead, now: number): Pending | null {
    const c = this.c;
    if (!c.statuses.has(response.status)) return null;
    const hitForMiss = c.hitForMissMs > 0 ? now + c.hitForMissMs : 0;
    this.uncacheableUntil = hitForMiss;
    const cacheControl = responseDirectives(response.header('cache-control'));
    if (cacheControl.noStore || cacheControl.noCache || response.header('set-cookie') !== undefined) return null;
    const vary = response.header('vary');
    const names = vary === undefined ? [] : varyNames(vary);
    if (names === null) return null;
    const length = response.header('content-length');
    if (length !== undefined && Number(length) > c.maxBodyBytes) return null;
    const etag = response.header('etag');
    const lastModified = httpDate(response.header('last-modified'));
    const times = freshness({
      cacheControl,
      expires: response.header('expires'),
      date: response.header('date'),
      age: response.header('age'),
      hasValidator: etag !== undefined || !Number.isNaN(lastModified),
      now,
      defaultTtlMs: c.ttlMs,
      maxTtlMs: c.maxTtlMs,
      defaultStaleMs: c.staleMs,
    });
    if (times === null) return null;
    this.uncacheableUntil = 0;
    const headers: [string, string][] = [];
    let contentType = 'application/octet-stream';
    for (const [name, value] of response.entries()) {
      if (name === 'content-type') contentType = String(value);
      else if (!NOT_STORED.has(name)) for (const v of Array.isArray(value) ? value : [value]) headers.push([name, v]);
    }
    return {
      status: response.status,
      headers,
      contentType,
      ...times,
      ...(etag === undefined ? {} : { etag }),
      ...(Number.isNaN(lastModified) ? {} : { lastModified }),
      ...(names.length === 0 ? {} : { vary: names }),
    };
  }

  /**
   * The upstream answered the client's own conditional request for a stale entry with 304: the entry
   * is still current, so it is stored again with the 304's headers and a new lifetime (RFC 9111 §4.3.4).
   */
  private revalidate(ctx: RequestContext, response: ResponseHead, now: number): boolean {
    const entry = this.stale!;
    // Only when the client's validators are the entry's: the 304 is then about this entry.
    if (!notModified(ctx, entry)) return false;
    const etag = response.header('etag');
    if (etag !== undefined && (entry.etag === undefined || !noneMatch(etag, entry.etag))) return false;
    const updates = new Map<string, string[]>();
    for (const [name, value] of response.entries())
      if (!NOT_STORED.has(name)) updates.set(name, Array.isArray(value) ? value : [value]);
    const headers = entry.headers.filter(([name]) => !updates.has(name));
    for (const [name, values] of updates) for (const v of values) headers.push([name, v]);
    const cacheControl = responseDirectives(headerValue(headers, 'cache-control'));
    if (cacheControl.noStore || cacheControl.noCache) return false;
    const times = freshness({
      cacheControl,
      expires: headerValue(headers, 'expires'),
      date: response.header('date'),
      age: response.header('age'),
      hasValidator: true,
      now,
      defaultTtlMs: this.c.ttlMs,
      maxTtlMs: this.c.maxTtlMs,
      defaultStaleMs: this.c.staleMs,
    });
    if (times === null) return false;
    const { size: _size, ...rest } = entry;
    const refreshed = { ...rest, headers, ...times };
    this.put(ctx, this.key + this.variant, { ...refreshed, size: entrySize(refreshed) });
    return true;
  }

  onResponseBody(_ctx: RequestContext, chunk: Buffer): void {
    if (this.storing === null) return;
    this.size += chunk.length;
    if (this.size > this.c.maxBodyBytes) {
      this.storing = null;
      this.chunks = [];
      this.land(null, this.c.hitForMissMs > 0 ? this.c.now() + this.c.hitForMissMs : 0);
      return;
    }
    this.chunks.push(chunk);
  }

  onResponseComplete(ctx: RequestContext): void {
    const pending = this.storing;
    if (pending === null) return;
    this.storing = null;
    const { vary, ...rest } = pending;
    const body = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.size);
    this.chunks = [];
    const stored = { ...rest, body };
    const entry: CacheEntry = { ...stored, size: entrySize(stored) };
    let variant = '';
    if (vary !== undefined) {
      variant = variantOf(ctx, vary);
      const keepUntil = Math.max(this.marker?.keepUntil ?? 0, entry.keepUntil);
      const marker = { ...rest, headers: [], contentType: '', body: EMPTY, keepUntil, vary };
      this.put(ctx, this.key, { ...marker, size: entrySize(marker) });
    }
    const written = this.put(ctx, this.key + variant, entry);
    const flight = this.flight;
    if (flight === null) return;
    this.flight = null;
    this.c.flights.land(this.flightId, flight, { entry, variant, vary: vary ?? [] }, 0, written);
  }

  /** Stores the entry; a promise while a shared store writes it. */
  private put(ctx: RequestContext, key: string, entry: CacheEntry): Promise<void> | undefined {
    const stored = this.c.store.set(ctx.routeName, key, entry);
    if (!(stored instanceof Promise)) return undefined;
    // The response has gone out; a store that cannot keep it only costs a later miss.
    return stored.catch(() => {});
  }

  onLog(): void {
    // The leader's response failed or was cut short: its followers go upstream themselves.
    this.land(null, 0);
  }

  private land(landing: Landing<CacheEntry> | null, uncacheableUntil: number): void {
    const flight = this.flight;
    if (flight === null) return;
    this.flight = null;
    this.c.flights.land(this.flightId, flight, landing, uncacheableUntil);
  }
}

export default definePlugin<CacheConfig>({
  name: 'cache',
  phase: 'respond',
  order: 100,
  description:
    'An HTTP cache for GET/HEAD: Cache-Control, Vary, 304s, coalesced misses (X-Cache-Status: HIT/MISS/STALE/BYPASS).',
  configSchema: cacheSchema,
  async compile(config, deps) {
    const duration = (text: string | undefined, otherwise: number) =>
      text === undefined ? otherwise : (parseDuration(text) ?? otherwise);
    const { store, failure } = await selectCacheStore(
      config,
      deps,
      config.maxEntries ?? DEFAULT_MAX_ENTRIES,
      config.maxBytes ?? DEFAULT_MAX_BYTES,
    );
    const compiled: Compiled = Object.freeze({
      store,
      failure,
      // One per process: concurrent misses of every route coalesce, across reloads too.
      flights: deps.shared('cache:flights', () => new Flights<CacheEntry>()),
      now: deps.now,
      ttlMs: duration(config.ttl, DEFAULT_TTL_MS),
      maxTtlMs: duration(config.maxTtl, Number.POSITIVE_INFINITY),
      staleMs: duration(config.staleWhileRevalidate, 0),
      maxBodyBytes: config.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES,
      // A partial response or a 304 is not a response to store.
      statuses: new Set((config.statuses ?? DEFAULT_STATUSES).filter((s) => s !== 206 && s !== 304)),
      keyHeaders: Object.freeze((config.keyHeaders ?? []).map((h) => h.toLowerCase())),
      perConsumer: config.perConsumer === true,
      cacheAuthorized: config.cacheAuthorized === true,
      coalesceMs: duration(config.coalesceTimeout, DEFAULT_COALESCE_TIMEOUT_MS),
      hitForMissMs: duration(config.hitForMiss, DEFAULT_HIT_FOR_MISS_MS),
    });
    return () => new CacheFilter(compiled);
  },
});
