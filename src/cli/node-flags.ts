/**
 * Node flags (and allocator settings) a proxy process runs with. Both are fixed when the process
 * starts, so the CLI re-executes itself with them (`process.execve`: the same pid, no wrapper process left behind) before
 * loading the proxy. A flag the user already gave (on the node command line or in NODE_OPTIONS), or a
 * variable already set, wins,
 * and where `execve` does not exist (Windows) the proxy runs with Node's defaults.
 */
import { DEFAULT_PROXY_SEMI_SPACE_MIB } from '../core/defaults.ts';

/**
 * `--max-semi-space-size`: the young generation sized for a proxy (DEFAULT_PROXY_SEMI_SPACE_MIB).
 * `--expose-gc`: lets upstream/streamed-bytes.ts free the buffers of large streamed bodies early, as
 * the gateway's workers always did (cluster/primary.ts).
 */
export const PROXY_NODE_FLAGS: readonly string[] = [
  `--max-semi-space-size=${DEFAULT_PROXY_SEMI_SPACE_MIB}`,
  '--expose-gc',
];

/** The flags of `wanted` whose name (`--max-semi-space-size` of `--max-semi-space-size=1`) is in neither list. */
export function missingNodeFlags(
  wanted: readonly string[],
  execArgv: readonly string[],
  nodeOptions: string | undefined,
): string[] {
  const name = (flag: string) => flag.split('=')[0]!.replace(/_/g, '-');
  const given = new Set([...execArgv, ...(nodeOptions ?? '').split(/\s+/)].filter(Boolean).map(name));
  return wanted.filter((flag) => !given.has(name(flag)));
}

/**
 * `MALLOC_ARENA_MAX=1`: glibc gives each thread that allocates (V8's compiler and GC threads) an arena
 * of its own and rarely returns their memory; a proxy at 1000 req/s held ~17 MB more RSS for it
 * (docs/benchmarks.md, "Sidecars"). Read by glibc at start, so it is set the same way; ignored elsewhere.
 */
export const PROXY_ENV: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: '1' };

/** Replaces this process with itself plus the proxy's flags and environment; returns when nothing is missing or it cannot. */
export function execWithProxyFlags(): void {
  if (typeof process.execve !== 'function') return;
  const missing = missingNodeFlags(PROXY_NODE_FLAGS, process.execArgv, process.env.NODE_OPTIONS);
  const env = Object.entries(PROXY_ENV).filter(([name]) => process.env[name] === undefined);
  if (missing.length === 0 && env.length === 0) return;
  process.execve(process.execPath, [process.execPath, ...process.execArgv, ...missing, ...process.argv.slice(1)], {
    ...process.env,
    ...Object.fromEntries(env),
  });
}
