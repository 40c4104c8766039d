/**
 * Node flags (and allocator settings) a proxy process runs with. Both are fixed when the process
 * starts, so the CLI re-executes itself with them (`process.execve`: the same pid, no wrapper process
 * left behind) before loading the proxy. A flag the user already gave (on the node command line or in
 * NODE_OPTIONS), or a variable already set, wins; where `execve` does not exist (Windows) the proxy
 * runs with Node's defaults.
 */
import { DEFAULT_SIDECAR_SEMI_SPACE_MIB, PROXY_MALLOC_MMAP_THRESHOLD_BYTES } from '../core/defaults.ts';

export interface ProcessSettings {
  flags: readonly string[];
  env: Readonly<Record<string, string>>;
}

/**
 * `--expose-gc` (both): lets upstream/streamed-bytes.ts free the buffers of large streamed bodies
 * early, as the gateway's workers always did (cluster/primary.ts).
 *
 * `MALLOC_MMAP_THRESHOLD_` (both): glibc serves blocks of at least this many bytes with their own
 * mapping, returned to the system when freed. By default the threshold rises (to 32 MB) each time such
 * a block is freed, so V8's compiler zones (a WebAssembly tier-up of undici's HTTP parser alone takes
 * ~7 MB in 32 KB blocks) come from the main heap; a block still in use above them after the compile
 * keeps all of it resident, and an idle proxy held 7 MB more in one start of two. Fixed at 32 KB, no
 * idle proxy kept them in the runs measured, and a sidecar at 1000 req/s made one mapping per ~30
 * requests (docs/benchmarks.md, "The demo's proxies").
 *
 * A sidecar trades a little CPU for memory, since one runs beside every instance at a modest rate
 * (docs/benchmarks.md, "Sidecars"):
 * - `--max-semi-space-size`: a young generation of DEFAULT_SIDECAR_SEMI_SPACE_MIB.
 * - `MALLOC_ARENA_MAX=1`: glibc gives each thread that allocates (V8's compiler and GC threads) an
 *   arena of its own and seldom returns their memory; one arena kept a sidecar at 1000 req/s ~17 MB
 *   smaller. Read by glibc at start; ignored by other C libraries.
 * A gateway keeps V8's young generation and glibc's arenas: it runs at saturation, where they buy
 * throughput, and its peak RSS is below the bare Node proxy's with them.
 */
export const PROXY_PROCESS_SETTINGS: Readonly<Record<'sidecar' | 'gateway', ProcessSettings>> = {
  sidecar: {
    flags: [`--max-semi-space-size=${DEFAULT_SIDECAR_SEMI_SPACE_MIB}`, '--expose-gc'],
    env: { MALLOC_ARENA_MAX: '1', MALLOC_MMAP_THRESHOLD_: String(PROXY_MALLOC_MMAP_THRESHOLD_BYTES) },
  },
  gateway: { flags: ['--expose-gc'], env: { MALLOC_MMAP_THRESHOLD_: String(PROXY_MALLOC_MMAP_THRESHOLD_BYTES) } },
};

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

/** Replaces this process with itself plus `settings`; returns when nothing is missing or it cannot. */
export function execWithSettings(settings: ProcessSettings): void {
  if (typeof process.execve !== 'function') return;
  const missing = missingNodeFlags(settings.flags, process.execArgv, process.env.NODE_OPTIONS);
  const env = Object.entries(settings.env).filter(([name]) => process.env[name] === undefined);
  if (missing.length === 0 && env.length === 0) return;
  process.execve(process.execPath, [process.execPath, ...process.execArgv, ...missing, ...process.argv.slice(1)], {
    ...process.env,
    ...Object.fromEntries(env),
  });
}
