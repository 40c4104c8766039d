/** A loaded config compiled as a proxy would, with plugins that need nothing outside the test. */
import type { LoadedConfig } from '../../src/config/load.ts';
import type { Snapshot } from '../../src/proxy/compiled.ts';
import { compileSnapshot, releaseSnapshot } from '../../src/proxy/snapshot.ts';

/** Compiles `loaded`, hands the snapshot to `use`, and releases it (its timers and pools) after. */
export async function withSnapshot<T>(loaded: LoadedConfig, use: (snapshot: Snapshot) => T | Promise<T>): Promise<T> {
  const snapshot = await compileSnapshot(loaded, 1, {
    plugins: { now: Date.now, warn: () => {}, shared: (_key, create) => create() },
  });
  try {
    return await use(snapshot);
  } finally {
    releaseSnapshot(snapshot);
  }
}
