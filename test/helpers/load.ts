/** A bounded closed-loop load: `connections` clients, each sending its next request when the last ends. */
import { Pool } from 'undici';

export interface LoadResult {
  ok: number;
  failed: number;
  /** Up to 10 examples of what failed. */
  failures: string[];
  /** performance.now() when each successful response ended, in order. */
  okAt: number[];
}

export async function closedLoopLoad(
  origin: string,
  options: { connections: number; durationMs: number; maxRequests?: number; path?: string | (() => string) },
): Promise<LoadResult> {
  const pool = new Pool(origin, { connections: options.connections, pipelining: 1 });
  const result: LoadResult = { ok: 0, failed: 0, failures: [], okAt: [] };
  const deadline = performance.now() + options.durationMs;
  const max = options.maxRequests ?? 10_000_000;
  let sent = 0;
  const pathOf = typeof options.path === 'function' ? options.path : () => (options.path as string) ?? '/';
  await Promise.all(
    Array.from({ length: options.connections }, async () => {
      while (performance.now() < deadline && sent < max) {
        sent++;
        try {
          const res = await pool.request({ method: 'GET', path: pathOf() });
          await res.body.dump();
          if (res.statusCode === 200) {
            result.ok++;
            result.okAt.push(performance.now());
          } else {
            result.failed++;
            if (result.failures.length < 10) result.failures.push(`status ${res.statusCode}`);
          }
        } catch (e) {
          result.failed++;
          if (result.failures.length < 10) result.failures.push((e as Error).message);
        }
      }
    }),
  );
  await pool.close();
  return result;
}
