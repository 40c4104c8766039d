/**
 * A config file as a config source (`meshgate gateway --config FILE`): read whole, YAML or JSON,
 * `${NAME}` taken from the environment; watched through its directory, since editors replace files
 * by rename. A burst of saves is one change.
 */
import { readFile } from 'node:fs/promises';
import type { ConfigText } from '../../load.ts';
import { DiskSource } from '../disk.ts';

export class FileSource extends DiskSource {
  readonly kind = 'file';
  protected readonly notFound = 'file not found';

  protected async readTexts(): Promise<ConfigText[]> {
    return [{ file: this.location, text: await readFile(this.location, 'utf8') }];
  }

  protected async isDirectory(): Promise<boolean> {
    return false;
  }
}
