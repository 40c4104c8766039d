/**
 * A directory of config files as a config source (`meshgate control-plane --config DIR`): every
 * `*.yaml`, `*.yml` and `*.json` not starting with "." is read and merged in name order (their
 * listeners, services and routes add up; any other section may be set by one file only). A path that
 * is a file is read as a directory of that one file, so `--config` takes either. Watched; a burst of
 * saves is one change.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { extname, join } from 'node:path';
import type { ConfigText } from '../../load.ts';
import { CONFIG_EXTENSIONS } from '../../watch.ts';
import { DiskSource } from '../disk.ts';

export class DirectorySource extends DiskSource {
  readonly kind = 'directory';
  protected readonly notFound = 'file or directory not found';

  protected readTexts(): Promise<ConfigText[]> {
    return readTexts(this.location);
  }

  protected async isDirectory(): Promise<boolean> {
    return (await stat(this.location)).isDirectory();
  }
}

/** The text of a config file, or of each config file of a directory in name order. */
export async function readTexts(path: string): Promise<ConfigText[]> {
  if (!(await stat(path)).isDirectory()) return [{ file: path, text: await readFile(path, 'utf8') }];
  const names = (await readdir(path)).filter((n) => CONFIG_EXTENSIONS.has(extname(n)) && !n.startsWith('.')).sort();
  return Promise.all(names.map(async (n) => ({ file: join(path, n), text: await readFile(join(path, n), 'utf8') })));
}
