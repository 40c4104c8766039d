/**
 * Rate-limit counters in Redis, shared by every gateway on the same Redis and key prefix: the same
 * sliding-window counter as the memory store (src/plugins/rate-limit/store.ts), passing the same
 * conformance suite.
 *
 * One decision is one Lua script (EVALSHA): it reads every window's counters, decides, and counts the
 * request in all of them or none, atomically inside Redis. Nothing is read by one command and written
 * by a later one, so concurrent gateways cannot both see the last free slot: the shared limit is exact
 * while Redis answers (the README states the bounds when it does not).
 *
 * Keys: `<prefix>rl:{<key>}:<window ms><s|f|c>:<window start ms>` (`c`: a calendar month or year,
 * told apart by their window ms), one counter per key, window and window start, expiring two windows
 * after its first request (once it can no longer be the previous window). The braces make every key of one decision hash to one Redis Cluster slot.
 */

import type { Result } from 'ioredis';
import {
  type Counter,
  type Decision,
  estimate,
  type RateLimitStore,
  resetIn,
  type Window,
  type WindowState,
  windowEnd,
  windowStart,
} from '../../plugins/rate-limit/store.ts';
import type { RedisConnection } from './connection.ts';

/**
 * KEYS: per window i (1-based) the current counter at 2i-1 and the previous one at 2i.
 * ARGV: now, then per window: limit, window ms, `s` (sliding) or `f` (fixed), window start.
 * Returns { allowed (1/0), current₁, previous₁, current₂, … }, the counts before this request.
 * Numbers are doubles in Lua, exact for integers below 2^53 (epoch milliseconds are far below).
 */
const CONSUME_LUA = `
local now = tonumber(ARGV[1])
local n = #KEYS / 2
local reply = { 1 }
for i = 1, n do
  local limit = tonumber(ARGV[i * 4 - 2])
  local w = tonumber(ARGV[i * 4 - 1])
  local sliding = ARGV[i * 4] == 's'
  local start = tonumber(ARGV[i * 4 + 1])
  local current = tonumber(redis.call('GET', KEYS[i * 2 - 1]) or '0')
  local previous = 0
  local used = current
  if sliding then
    previous = tonumber(redis.call('GET', KEYS[i * 2]) or '0')
    used = previous * (1 - (now - start) / w) + current
  end
  if used + 1 > limit then reply[1] = 0 end
  reply[i * 2] = current
  reply[i * 2 + 1] = previous
end
if reply[1] == 1 then
  for i = 1, n do
    if redis.call('INCR', KEYS[i * 2 - 1]) == 1 then
      redis.call('PEXPIRE', KEYS[i * 2 - 1], 2 * tonumber(ARGV[i * 4 - 1]))
    end
  end
end
return reply
`;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    meshgateRateLimit(numKeys: number, ...args: (string | number)[]): Result<number[], Context>;
  }
}

export class RedisRateLimitStore implements RateLimitStore {
  private readonly redis: RedisConnection;

  constructor(redis: RedisConnection) {
    this.redis = redis;
    redis.define('meshgateRateLimit', CONSUME_LUA);
  }

  async consume(key: string, windows: readonly Window[], now: number): Promise<Decision> {
    this.redis.check();
    const args: (string | number)[] = [];
    const tail: (string | number)[] = [now];
    for (const w of windows) {
      const start = windowStart(w, now);
      args.push(...keysOf(key, w, start));
      tail.push(w.limit, w.windowMs, w.algorithm[0]!, start);
    }
    const reply = await this.redis.client.meshgateRateLimit(args.length, ...args, ...tail);
    const allowed = reply[0] === 1;
    const states: WindowState[] = [];
    for (let i = 0; i < windows.length; i++) {
      const w = windows[i]!;
      const c: Counter = {
        windowMs: w.windowMs,
        start: windowStart(w, now),
        current: reply[i * 2 + 1]!,
        previous: reply[i * 2 + 2]!,
      };
      const count = estimate(c, w, now) + (allowed ? 1 : 0);
      states.push({
        limit: w.limit,
        remaining: Math.max(0, Math.floor(w.limit - count)),
        resetMs: resetIn(c, w, now, allowed),
      });
    }
    return { allowed, windows: states };
  }
  /** Reads the counters (MGET, one round trip), counting nothing. */
  async peek(key: string, windows: readonly Window[], now: number): Promise<Decision> {
    this.redis.check();
    const keys = windows.flatMap((w) => keysOf(key, w, windowStart(w, now)));
    const values = await this.redis.client.mget(...keys);
    let allowed = true;
    const states: WindowState[] = [];
    for (let i = 0; i < windows.length; i++) {
      const w = windows[i]!;
      const c: Counter = {
        windowMs: w.windowMs,
        start: windowStart(w, now),
        current: Number(values[i * 2] ?? 0),
        previous: Number(values[i * 2 + 1] ?? 0),
      };
      const count = estimate(c, w, now);
      if (count + 1 > w.limit) allowed = false;
      states.push({
        limit: w.limit,
        remaining: Math.max(0, Math.floor(w.limit - count)),
        resetMs: windowEnd(w, c.start) - now,
      });
    }
    return { allowed, windows: states };
  }
}

/** The current and the previous counter of `key` in window `w` starting at `start`. */
function keysOf(key: string, w: Window, start: number): [string, string] {
  const base = `rl:{${key}}:${w.windowMs}${w.algorithm[0]}:`;
  return [base + start, base + (start - w.windowMs)];
}
