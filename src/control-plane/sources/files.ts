/**
 * The model from disk: one file, or every `*.yaml`, `*.yml` and `*.json` of a directory (merged in
 * name order: their listeners, services and routes add up). Watched; a burst of saves loads once.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { extname, join, resolve } from 'node:path';
import type { ConfigText, LoadOptions } from '../../config/load.ts';
import { CONFIG_EXTENSIONS, type ConfigWatch, watchConfigPath } from '../../config/watch.ts';
import { DEFAULT_RELOAD_DEBOUNCE_MS } from '../../core/defaults.ts';
import { type ModelResult, parseModel } from '../model/model.ts';

export class ModelFileSource {
  readonly path: string;
  private readonly env: Record<string, string | undefined>;
  private readonly options: LoadOptions;
  private watcher: ConfigWatch | undefined;

  constructor(path: string, env: Record<string, string | undefined> = process.env, options: LoadOptions = {}) {
    this.path = resolve(path);
    this.env = env;
    this.options = options;
  }

  async load(): Promise<ModelResult> {
    let texts: ConfigText[];
    try {
      texts = await readTexts(this.path);
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      const reason = err.code === 'ENOENT' ? 'file or directory not found' : err.message;
      return { ok: false, issues: [{ file: this.path, line: 0, column: 0, path: '', message: reason }] };
    }
    return parseModel(texts, this.path, this.env, this.options);
  }

  /** Calls `onChange` with a fresh load after a change (debounced). */
  async watch(onChange: (result: ModelResult) => void, debounceMs = DEFAULT_RELOAD_DEBOUNCE_MS): Promise<void> {
    const isDirectory = (await stat(this.path)).isDirectory();
    this.watcher = watchConfigPath(this.path, isDirectory, () => void this.load().then(onChange), debounceMs);
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
