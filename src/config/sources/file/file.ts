/**
 * A config file as a config source (`meshgate gateway --config FILE`): read whole, YAML or JSON,
 * `${NAME}` taken from the environment; watched through its directory, since editors replace files
 * by rename. A burst of saves is one change.
 */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { DEFAULT_RELOAD_DEBOUNCE_MS } from '../../../core/defaults.ts';
import type { ConfigSource, RawConfig } from '../../pipeline.ts';
import { type ConfigWatch, watchConfigPath } from '../../watch.ts';

export class FileSource implements ConfigSource {
  readonly kind = 'file';
  /** The file's absolute path. */
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

  async read(): Promise<RawConfig> {
    const file = this.location;
    try {
      return { kind: 'texts', texts: [{ file, text: await readFile(file, 'utf8') }], source: file, env: this.env };
    } catch (e) {
      const reason = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : (e as Error).message;
      return { kind: 'unreadable', source: file, issues: [{ file, line: 0, column: 0, path: '', message: reason }] };
    }
  }

  async watch(onChange: () => void): Promise<void> {
    this.watcher?.close();
    this.watcher = watchConfigPath(this.location, false, onChange, this.debounceMs);
  }

  close(): void {
    this.watcher?.close();
  }
}
