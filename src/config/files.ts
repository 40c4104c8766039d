/**
 * Checks of the files a config names (TLS certificates, keys, CAs): each exists and parses, and each
 * key belongs to its certificate, so `meshgate validate` and a reload report a broken file at its line
 * instead of a listener failing later. The proxy reads the files again when it applies the config.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { createSecureContext } from 'node:tls';
import type { Config } from '../api/config.ts';
import type { Locator, Path } from './document.ts';
import { type ConfigIssue, formatPath } from './issues.ts';

/** `source`: the config file; relative paths resolve from its directory (the working directory otherwise). */
export function checkFiles(config: Config, source: string, at: Locator): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  if (!Array.isArray(config?.listeners)) return issues;
  const report = (path: Path, message: string, hint?: string) =>
    issues.push({ ...at.position(path), path: formatPath(path), message, hint });
  const read = (file: unknown, path: Path): Buffer | undefined => {
    if (typeof file !== 'string') return undefined;
    const absolute = resolve(dirname(source), file);
    try {
      return readFileSync(absolute);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      report(path, `cannot read ${absolute}: ${code === 'ENOENT' ? 'no such file' : (code ?? (e as Error).message)}`);
      return undefined;
    }
  };
  config.listeners.forEach((listener, i) => {
    const tls = listener?.tls;
    if (tls === undefined || !Array.isArray(tls.certificates)) return;
    const here: Path = ['listeners', i, 'tls'];
    const ca = read(tls.clientCa, [...here, 'clientCa']);
    if (ca !== undefined) {
      try {
        createSecureContext({ ca });
      } catch (e) {
        report([...here, 'clientCa'], `not a PEM CA bundle: ${(e as Error).message}`);
      }
    }
    tls.certificates.forEach((c, j) => {
      const cert = read(c?.cert, [...here, 'certificates', j, 'cert']);
      const key = read(c?.key, [...here, 'certificates', j, 'key']);
      if (cert === undefined || key === undefined) return;
      try {
        createSecureContext({ cert, key });
      } catch (e) {
        report(
          [...here, 'certificates', j],
          `the certificate and key cannot be used: ${(e as Error).message}`,
          'cert is the PEM certificate (then its chain), key its private key',
        );
      }
    });
  });
  return issues;
}
