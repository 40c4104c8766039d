/**
 * One Redis client per proxy process and `redis` config (url, keyPrefix, timeout), shared by every
 * plugin that chose `store: redis` and kept across reloads through `PluginDeps.shared`: closed once no
 * config in force asks for it.
 *
 * Client: ioredis. It ships its own types, runs scripts with EVALSHA and falls back to EVAL on
 * NOSCRIPT by itself (`defineCommand`: after a Redis restart or SCRIPT FLUSH nothing needs reloading),
 * and batches the commands of one event-loop tick into one write (`enableAutoPipelining`), which
 * multiplies decisions per second when many requests are in flight. node-redis would do as well with
 * more code around scripts.
 *
 * Failure model: while Redis is unreachable a command fails at once (no offline queue once the first
 * connection was up), so a request never waits on a dead Redis; a slow one is cut at `timeout`. The
 * client reconnects on its own (backoff up to DEFAULT_REDIS_RECONNECT_MAX_MS), and the next command
 * after it is back is served: recovery needs no restart and no reload.
 */
import { Redis } from 'ioredis';
import {
  DEFAULT_REDIS_CONNECT_TIMEOUT_MS,
  DEFAULT_REDIS_KEY_PREFIX,
  DEFAULT_REDIS_RECONNECT_MAX_MS,
  DEFAULT_REDIS_TIMEOUT_MS,
} from '../../core/defaults.ts';
import { parseDuration } from '../../core/duration.ts';
import type { PluginDeps } from '../../core/plugin.ts';

/** The top-level `redis` block (src/api/config.ts documents each field). */
export interface RedisSettings {
  readonly url: string;
  readonly keyPrefix?: string;
  readonly timeout?: string;
}

/** Thrown (as a rejection) when a store cannot answer: Redis is down, unreachable or too slow. */
export class StoreUnavailableError extends Error {
  override name = 'StoreUnavailableError';
}

/** The URL as it may be logged: no password. */
export function redactedUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== '') u.password = '***';
    return u.toString();
  } catch {
    return '(unparsable url)';
  }
}

export class RedisConnection {
  readonly client: Redis;
  /** Prepended to every key (ioredis adds it to the keys of commands; patterns need it by hand). */
  readonly keyPrefix: string;
  readonly timeoutMs: number;
  readonly url: string;
  private everReady = false;
  private closed = false;
  private readonly defined = new Set<string>();

  constructor(settings: RedisSettings, warn: PluginDeps['warn']) {
    this.keyPrefix = settings.keyPrefix ?? DEFAULT_REDIS_KEY_PREFIX;
    this.timeoutMs = settings.timeout === undefined ? DEFAULT_REDIS_TIMEOUT_MS : parseDuration(settings.timeout)!;
    this.url = redactedUrl(settings.url);
    this.client = new Redis(settings.url, {
      keyPrefix: this.keyPrefix,
      commandTimeout: this.timeoutMs === 0 ? undefined : this.timeoutMs,
      connectTimeout: DEFAULT_REDIS_CONNECT_TIMEOUT_MS,
      enableAutoPipelining: true,
      // A command sent while the connection is down is not kept for later: its request is answered
      // now, by the plugin's failure policy. Until the first connection is up (at start) commands
      // wait for it, within `timeout`.
      maxRetriesPerRequest: 0,
      retryStrategy: (attempt) => Math.min(attempt * 50, DEFAULT_REDIS_RECONNECT_MAX_MS),
    });
    let down = false;
    let lastError = '';
    const wentDown = (why: string) => {
      if (down || this.closed) return;
      down = true;
      warn('redis unavailable; stores on it follow their failOpen policy until it returns', {
        store: 'redis',
        url: this.url,
        err: why,
      });
    };
    this.client.on('ready', () => {
      this.everReady = true;
      lastError = '';
      if (down) warn('redis available again', { store: 'redis', url: this.url });
      down = false;
    });
    // A lost connection shows as `close` (a crashed Redis may send no error); one never made as `error`.
    this.client.on('close', () => {
      if (this.everReady) wentDown(lastError || 'connection closed');
    });
    this.client.on('error', (err: Error) => {
      lastError = err.message;
      wentDown(err.message);
    });
  }

  /**
   * Throws StoreUnavailableError when the connection, once up, is down now: a command would only
   * fail after a reconnect attempt, and a request should not wait for that.
   */
  check(): void {
    if (this.everReady && this.client.status !== 'ready')
      throw new StoreUnavailableError(`redis at ${this.url} is not connected (${this.client.status})`);
  }

  /** Defines a Lua script as a command once per client (EVALSHA, EVAL after NOSCRIPT). */
  define(name: string, lua: string): void {
    if (this.defined.has(name)) return;
    this.client.defineCommand(name, { lua });
    this.defined.add(name);
  }

  close(): void {
    this.closed = true;
    this.client.disconnect();
  }
}

/** The connection for the config's `redis` block (one per process and settings). */
export function redisConnection(deps: Pick<PluginDeps, 'shared' | 'warn'>, settings: RedisSettings): RedisConnection {
  const key = `store:redis\u0000${settings.url}\u0000${settings.keyPrefix ?? ''}\u0000${settings.timeout ?? ''}`;
  return deps.shared(key, () => new RedisConnection(settings, deps.warn));
}
