/**
 * A config file as a source of changes: watches the file (and its directory, since editors replace
 * files by rename), debounces bursts, and hands each new load result to the consumer.
 */
import { type FSWatcher, watch } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { DEFAULT_RELOAD_DEBOUNCE_MS } from '../core/defaults.ts';
import { type LoadOptions, type LoadResult, loadConfigFile } from './load.ts';

export class ConfigFileSource {
  readonly file: string;
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
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
    const name = basename(this.file);
    this.watcher = watch(dirname(this.file), (_event, changed) => {
      if (changed !== null && changed !== name) return;
      clearTimeout(this.timer);
      this.timer = setTimeout(() => void this.load().then(onChange), debounceMs);
    });
    this.watcher.unref();
  }

  close(): void {
    clearTimeout(this.timer);
    this.watcher?.close();
  }
}
