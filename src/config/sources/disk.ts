/**
 * What the file and directory sources share: a path on disk read whole when a change's turn comes,
 * `${NAME}` from the environment, and a debounced watch (editors replace files by rename, so a file is
 * watched through its directory). Each source says only how it reads its texts and whether its path
 * is a directory.
 */
import { resolve } from 'node:path';
import { DEFAULT_RELOAD_DEBOUNCE_MS } from '../../core/defaults.ts';
import type { ConfigText } from '../load.ts';
import type { ConfigSource, RawConfig } from '../pipeline.ts';
import { type ConfigWatch, watchConfigPath } from '../watch.ts';

export abstract class DiskSource implements ConfigSource {
  abstract readonly kind: string;
  /** The absolute path. */
  readonly location: string;
  private readonly env: Record<string, string | undefined>;
  private readonly debounceMs: number;
  private watcher: ConfigWatch | undefined;

  /** `debounceMs`: quiet time after the last change before it counts (default DEFAULT_RELOAD_DEBOUNCE_MS). */
  constructor(
    path: string,
    env: Record<string, string | undefined> = process.env,
    debounceMs = DEFAULT_RELOAD_DEBOUNCE_MS,
  ) {
    this.location = resolve(path);
    this.env = env;
    this.debounceMs = debounceMs;
  }

  /** The texts at `location`, in merge order. */
  protected abstract readTexts(): Promise<ConfigText[]>;
  /** What a missing path is called in the issue (`file not found`, …). */
  protected abstract readonly notFound: string;
  protected abstract isDirectory(): Promise<boolean>;

  async read(): Promise<RawConfig> {
    const path = this.location;
    try {
      return { kind: 'texts', texts: await this.readTexts(), source: path, env: this.env };
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      const reason = err.code === 'ENOENT' ? this.notFound : err.message;
      return {
        kind: 'unreadable',
        source: path,
        issues: [{ file: path, line: 0, column: 0, path: '', message: reason }],
      };
    }
  }

  async watch(onChange: () => void): Promise<void> {
    const isDirectory = await this.isDirectory();
    this.watcher?.close();
    this.watcher = watchConfigPath(this.location, isDirectory, onChange, this.debounceMs);
  }

  close(): void {
    this.watcher?.close();
  }
}
