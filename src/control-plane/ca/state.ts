/**
 * The CA's state directory: the root it generated (certificate and private key in one file, mode 0600)
 * and the retired roots still trusted after a rotation. Every write goes to a temporary file that is
 * synced and then renamed (or linked) into place, so a crash leaves the old file or the new one, never
 * half of either.
 *
 *   <stateDir>/root-ca.pem          certificate + PKCS#8 key of the root that signs (0600)
 *   <stateDir>/retiring-roots.json  [{ certPem, retiresAt }] of earlier roots still trusted
 */
import { randomBytes } from 'node:crypto';
import { link, mkdir, open, readFile, rename, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { CaError } from './errors.ts';

export const ROOT_FILE = 'root-ca.pem';
export const RETIRING_FILE = 'retiring-roots.json';
/** The private key's file mode: owner read/write only. A looser mode found on start is refused. */
export const KEY_FILE_MODE = 0o600;

export interface StoredRoot {
  readonly certPem: string;
  readonly keyPem: string;
}

export interface RetiringRoot {
  readonly certPem: string;
  /** Milliseconds since the epoch after which the root is no longer trusted. */
  readonly retiresAt: number;
}

/** Every `-----BEGIN <label>-----` block of a PEM text, each ending in a newline. */
export function pemBlocks(text: string, label: string): string[] {
  const re = new RegExp(`-----BEGIN ${label}-----[\\s\\S]+?-----END ${label}-----`, 'g');
  return (text.match(re) ?? []).map((b) => `${b}\n`);
}

export class CaStateDir {
  readonly dir: string;

  constructor(dir: string) {
    this.dir = dir;
  }

  async ensure(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
  }

  /** The stored root, or undefined on first start. */
  async readRoot(): Promise<StoredRoot | undefined> {
    const file = join(this.dir, ROOT_FILE);
    let text: string;
    try {
      const info = await stat(file);
      if ((info.mode & 0o077) !== 0)
        throw new CaError(
          'MG_CA_UNAVAILABLE',
          `${file} holds the root's private key but is readable by others (mode ${(info.mode & 0o777).toString(8)}); ` +
            'chmod 600 it (and check who read it) before starting the CA',
        );
      text = await readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    const certPem = pemBlocks(text, 'CERTIFICATE')[0];
    const keyPem = pemBlocks(text, 'PRIVATE KEY')[0];
    if (certPem === undefined || keyPem === undefined)
      throw new CaError('MG_CA_UNAVAILABLE', `${file} must hold a CERTIFICATE and a PRIVATE KEY block`);
    return { certPem, keyPem };
  }

  /**
   * Stores a first root unless one is already there (another CA process may start at the same time):
   * returns the root on disk afterwards, which is `root` only if this call wrote it.
   */
  async createRoot(root: StoredRoot): Promise<StoredRoot> {
    const written = await this.write(ROOT_FILE, root.certPem + root.keyPem, KEY_FILE_MODE, false);
    if (written) return root;
    const existing = await this.readRoot();
    if (existing === undefined) throw new CaError('MG_CA_UNAVAILABLE', `${ROOT_FILE} vanished while starting`);
    return existing;
  }

  async replaceRoot(root: StoredRoot): Promise<void> {
    await this.write(ROOT_FILE, root.certPem + root.keyPem, KEY_FILE_MODE, true);
  }

  async readRetiring(): Promise<RetiringRoot[]> {
    let text: string;
    try {
      text = await readFile(join(this.dir, RETIRING_FILE), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const parsed: unknown = JSON.parse(text);
    if (
      !Array.isArray(parsed) ||
      !parsed.every((r) => typeof r?.certPem === 'string' && Number.isFinite(Date.parse(r?.retiresAt)))
    )
      throw new CaError(
        'MG_CA_UNAVAILABLE',
        `${join(this.dir, RETIRING_FILE)} is not a list of { certPem, retiresAt }`,
      );
    return parsed.map((r: { certPem: string; retiresAt: string }) => ({
      certPem: r.certPem,
      retiresAt: Date.parse(r.retiresAt),
    }));
  }

  async writeRetiring(roots: readonly RetiringRoot[]): Promise<void> {
    const body = roots.map((r) => ({ certPem: r.certPem, retiresAt: new Date(r.retiresAt).toISOString() }));
    // Public certificates only, but the directory is private anyway: keep every file owner-only.
    await this.write(RETIRING_FILE, `${JSON.stringify(body, null, 2)}\n`, KEY_FILE_MODE, true);
  }

  /** Writes `name` atomically; with `replace` false, returns false (and writes nothing) if it exists. */
  private async write(name: string, data: string, mode: number, replace: boolean): Promise<boolean> {
    const final = join(this.dir, name);
    const tmp = join(this.dir, `.${name}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
    // 'wx' with the mode: the key is never on disk, even briefly, with a looser mode.
    const fh = await open(tmp, 'wx', mode);
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    try {
      if (replace) await rename(tmp, final);
      else {
        try {
          // link() fails if the name exists, where rename() would replace it: first writer wins.
          await link(tmp, final);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
          throw err;
        }
      }
      await this.syncDir();
      return true;
    } finally {
      if (!replace) await unlink(tmp).catch(() => {});
    }
  }

  /** The rename is durable only once the directory entry is. */
  private async syncDir(): Promise<void> {
    const dh = await open(this.dir, 'r');
    try {
      await dh.sync();
    } finally {
      await dh.close();
    }
  }
}
