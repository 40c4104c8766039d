/**
 * Watching a config on disk: a file (through its directory, since editors replace files by rename) or
 * every config file of a directory, with a burst of saves delivered as one change.
 */
import { watch } from 'node:fs';
import { basename, dirname, extname } from 'node:path';

/** What a config directory holds: the files merged into one config. */
export const CONFIG_EXTENSIONS = new Set(['.yaml', '.yml', '.json']);

export interface ConfigWatch {
  close(): void;
}

/** Calls `onChange` once things have been quiet for `debounceMs` after a change to `path`. */
export function watchConfigPath(
  path: string,
  isDirectory: boolean,
  onChange: () => void,
  debounceMs: number,
): ConfigWatch {
  const name = basename(path);
  let timer: NodeJS.Timeout | undefined;
  const watcher = watch(isDirectory ? path : dirname(path), (_event, changed) => {
    if (changed !== null && (isDirectory ? !CONFIG_EXTENSIONS.has(extname(changed)) : changed !== name)) return;
    clearTimeout(timer);
    timer = setTimeout(onChange, debounceMs);
  });
  watcher.unref();
  return {
    close() {
      clearTimeout(timer);
      watcher.close();
    },
  };
}
