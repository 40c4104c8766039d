/** A config file as a source of changes: each change (watch.ts) hands a new load result to the consumer. */
import { resolve } from 'node:path';
import { DEFAULT_RELOAD_DEBOUNCE_MS } from '../core/defaults.ts';
import { type LoadOptions, type LoadResult, loadConfigFile } from './load.ts';
import { type ConfigWatch, watchConfigPath } from './watch.ts';

export class ConfigFileSource {
  readonly file: string;
  private watcher: ConfigWatch | undefined;
  private readonly env: Record<string, string | undefined>;
  private readonly options: LoadOptions;

  constructor(file: string, env: Record<string, string | undefined> = process.env, options: LoadOptions = {}) {
    this.file = resolve(file);
    this.env = env;
    this.options = options;
  }

  load(): Promise<LoadResult> {
    return loadConfigFile(this.file, this.env, this.options);
  }

  /** Calls `onChange` with a fresh load after the file changes (debounced). */
  watch(onChange: (result: LoadResult) => void, debounceMs = DEFAULT_RELOAD_DEBOUNCE_MS): void {
    this.watcher = watchConfigPath(this.file, false, () => void this.load().then(onChange), debounceMs);
  }

  close(): void {
    this.watcher?.close();
  }
}
