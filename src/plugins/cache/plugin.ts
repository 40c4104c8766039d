/**
 * cache: serves repeated GET/HEAD requests from memory, like Kong's proxy-cache. A response is stored
 * when it is a complete 200 that allows it (no `Cache-Control: no-store`/`private`, no `Set-Cookie`, no
 * `Vary` beyond `Accept-Encoding`, within `maxBodyBytes`); the key is route, host, path and query. Hits get
 * `X-Cache: HIT` and `Age`; misses `X-Cache: MISS`. The body is copied as it streams to the client,
 * never held back.
 *
 * Entries live per proxy process (or, with `store: redis`, in Redis, shared by every gateway on it)
 * and survive reloads while the route's settings stay the same.
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
import { type CacheConfig, cacheSchema } from './schema.ts';
import type { CacheEntry, CacheStore } from './store.ts';
import { selectCacheStore } from './stores.ts';

const DEFAULT_TTL_MS = 60_000;
const DEFAULT_MAX_ENTRIES = 1000;
const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;

/** Response headers that describe this hop or this one response, not the cached content. */
const NOT_STORED = new Set(['x-request-id', 'date', 'age', 'x-cache', 'server-timing', 'content-length']);

interface Compiled {
  store: CacheStore;
  /** What to do when a shared store cannot answer (`failOpen`); null for the memory store. */
  failure: FailurePolicy | null;
  ttlMs: number;
  maxBodyBytes: number;
  cacheAuthorized: boolean;
  now: () => number;
}

/** Within the route's entries (the route keeps a canary's answers to itself). */
function keyOf(ctx: RequestContext): string {
  return `${ctx.host}\u0000${ctx.path}\u0000${ctx.query}`;
}

function maxAgeMs(cacheControl: string | undefined): number | null {
  if (cacheControl === undefined) return null;
  const m = /(?:^|,)\s*(?:s-maxage|max-age)\s*=\s*(\d+)/i.exec(cacheControl);
  return m ? Number(m[1]) * 1000 : null;
}

/** Per request: whether the response may be stored, and its body so far. */
class Lookup implements Filter {
  private readonly c: Compiled;
  private key = '';
  private unavailable = false;
  private storing: Omit<CacheEntry, 'body'> | null = null;
  private chunks: Buffer[] = [];
  private size = 0;

  constructor(compiled: Compiled) {
    this.c = compiled;
  }

  onRequestHeaders(ctx: RequestContext): FilterResult {
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD') return undefined;
    if (!this.c.cacheAuthorized && (ctx.header('authorization') !== undefined || ctx.header('cookie') !== undefined))
      return undefined;
    if (/no-cache|no-store/i.test(ctx.header('cache-control') ?? '')) return undefined;
    this.key = keyOf(ctx);
    const now = this.c.now();
    const hit = this.c.store.get(ctx.routeName, this.key, now);
    if (!(hit instanceof Promise)) return this.serve(hit, now);
    const failure = this.c.failure!;
    return hit.then(
      (entry) => {
        failure.ok(ctx.routeName);
        return this.serve(entry, now);
      },
      (error: unknown) => {
        // A miss, and not stored either: the store is what failed.
        this.unavailable = true;
        return failure.failed(ctx.routeName, error);
      },
    );
  }

  private serve(hit: CacheEntry | undefined, now: number): LocalReply | undefined {
    if (hit === undefined) return undefined;
    const headers: [string, string][] = [
      ...hit.headers,
      ['age', String(Math.floor((now - hit.storedAt) / 1000))],
      ['x-cache', 'HIT'],
    ];
    return {
      status: hit.status,
      code: 'MG_CACHE_HIT',
      detail: 'served from the cache',
      headers,
      body: { contentType: hit.contentType, text: hit.body },
      plain: true,
    };
  }

  onResponseHeaders(_ctx: RequestContext, response: ResponseHead): void {
    if (this.key === '' || response.header('x-cache') !== undefined) return;
    response.setHeader('x-cache', 'MISS');
    if (response.status !== 200 || this.unavailable) return;
    const cacheControl = response.header('cache-control');
    if (/no-store|private/i.test(cacheControl ?? '')) return;
    if (response.header('set-cookie') !== undefined) return;
    const vary = response.header('vary');
    if (vary?.split(',').some((v) => v.trim().toLowerCase() !== 'accept-encoding')) return;
    const length = response.header('content-length');
    if (length !== undefined && Number(length) > this.c.maxBodyBytes) return;
    const upstreamMaxAge = maxAgeMs(cacheControl);
    const ttl = upstreamMaxAge === null ? this.c.ttlMs : Math.min(this.c.ttlMs, upstreamMaxAge);
    if (ttl <= 0) return;
    const kept: [string, string][] = [];
    let contentType = 'application/octet-stream';
    for (const [name, value] of response.entries()) {
      if (name === 'content-type') contentType = String(value);
      else if (!NOT_STORED.has(name)) for (const v of Array.isArray(value) ? value : [value]) kept.push([name, v]);
    }
    const now = this.c.now();
    this.storing = { status: 200, headers: kept, contentType, storedAt: now, expiresAt: now + ttl };
  }

  onResponseBody(_ctx: RequestContext, chunk: Buffer): void {
    if (this.storing === null) return;
    this.size += chunk.length;
    if (this.size > this.c.maxBodyBytes) {
      this.storing = null;
      this.chunks = [];
      return;
    }
    this.chunks.push(chunk);
  }

  onResponseComplete(ctx: RequestContext): void {
    if (this.storing === null || ctx.method === 'HEAD') return;
    const stored = this.c.store.set(ctx.routeName, this.key, {
      ...this.storing,
      body: Buffer.concat(this.chunks, this.size),
    });
    // The response has gone out; a store that cannot keep it only costs a later miss.
    if (stored instanceof Promise) stored.catch(() => {});
    this.storing = null;
    this.chunks = [];
  }
}

export default definePlugin<CacheConfig>({
  name: 'cache',
  phase: 'respond',
  order: 100,
  description: 'Serve repeated GET/HEAD responses from memory for a TTL (X-Cache: HIT/MISS).',
  configSchema: cacheSchema,
  async compile(config, deps) {
    const ttlMs = parseDuration(config.ttl ?? '') ?? DEFAULT_TTL_MS;
    const { store, failure } = await selectCacheStore(config, deps, config.maxEntries ?? DEFAULT_MAX_ENTRIES);
    const compiled: Compiled = {
      store,
      failure,
      ttlMs,
      maxBodyBytes: config.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES,
      cacheAuthorized: config.cacheAuthorized === true,
      now: deps.now,
    };
    return () => new Lookup(compiled);
  },
});
