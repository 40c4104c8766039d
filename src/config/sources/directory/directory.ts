/**
 * A directory of config files as a config source (`meshgate control-plane --config DIR`): every
 * `*.yaml`, `*.yml` and `*.json` not starting with "." is read and merged in name order (their
 * listeners, services and routes add up; any other section may be set by one file only). A path that
 * is a file is read as a directory of that one file, so `--config` takes either. Watched; a burst of
 * saves is one change.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { extname, join, resolve } from 'node:path';
import { DEFAULT_RELOAD_DEBOUNCE_MS } from '../../../core/defaults.ts';
import type { ConfigText } from '../../load.ts';
import type { ConfigSource, RawConfig } from '../../pipeline.ts';
import { CONFIG_EXTENSIONS, type ConfigWatch, watchConfigPath } from '../../watch.ts';

export class DirectorySource implements ConfigSource {
  readonly kind = 'directory';
  /** The directory's (or file's) absolute path. */
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
    const path = this.location;
    try {
      return { kind: 'texts', texts: await readTexts(path), source: path, env: this.env };
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      const reason = err.code === 'ENOENT' ? 'file or directory not found' : err.message;
      return {
        kind: 'unreadable',
        source: path,
        issues: [{ file: path, line: 0, column: 0, path: '', message: reason }],
      };
    }
  }

  async watch(onChange: () => void): Promise<void> {
    const isDirectory = (await stat(this.location)).isDirectory();
    this.watcher?.close();
    this.watcher = watchConfigPath(this.location, isDirectory, onChange, this.debounceMs);
  }

  close(): void {
    this.watcher?.close();
  }
}

/** The text of a config file, or of each config file of a directory in name order. */
export async function readTexts(path: string): Promise<ConfigText[]> {
  if (!(await stat(path)).isDirectory()) return [{ file: path, text: await readFile(path, 'utf8') }];
  const names = (await readdir(path)).filter((n) => CONFIG_EXTENSIONS.has(extname(n)) && !n.startsWith('.')).sort();
  return Promise.all(names.map(async (n) => ({ file: join(path, n), text: await readFile(join(path, n), 'utf8') })));
}
