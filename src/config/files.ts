/**
 * Checks of the files a config names (TLS certificates, keys, CAs, JWT public keys): each exists and
 * parses, each TLS key belongs to its certificate, and each JWT key can verify its credential's
 * algorithm, so `meshgate validate` and a reload report a broken file at its line instead of a listener
 * or a plugin failing later. The proxy reads the files again when it applies the config.
 */
import { createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { createSecureContext } from 'node:tls';
import type { Config } from '../api/config.ts';
import { isInlinePem, jwtAlgorithmsFor } from '../core/jwt-keys.ts';
import type { Locator, Path } from './document.ts';
import { type ConfigIssue, formatPath } from './issues.ts';

/** `source`: the config file; relative paths resolve from its directory (the working directory otherwise). */
export function checkFiles(config: Config, source: string, at: Locator): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
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
  checkJwtKeys(config, read, report);
  if (!Array.isArray(config?.listeners)) return issues;
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

function checkJwtKeys(
  config: Config,
  read: (file: unknown, path: Path) => Buffer | undefined,
  report: (path: Path, message: string, hint?: string) => void,
): void {
  (Array.isArray(config?.consumers) ? config.consumers : []).forEach((consumer, i) => {
    (Array.isArray(consumer?.credentials) ? consumer.credentials : []).forEach((c, j) => {
      if (c?.type !== 'jwt' || typeof c.publicKey !== 'string') return;
      const at: Path = ['consumers', i, 'credentials', j, 'publicKey'];
      const pem = isInlinePem(c.publicKey) ? c.publicKey : read(c.publicKey, at);
      if (pem === undefined) return;
      let algorithms: string[];
      try {
        algorithms = jwtAlgorithmsFor(createPublicKey(pem));
      } catch (e) {
        report(
          at,
          `not a usable public key: ${(e as Error).message}`,
          'a PEM public key (RSA, EC P-256/P-384 or Ed25519)',
        );
        return;
      }
      if (typeof c.algorithm === 'string' && !algorithms.includes(c.algorithm))
        report(
          ['consumers', i, 'credentials', j, 'algorithm'],
          `this public key cannot verify ${c.algorithm} (it verifies ${algorithms.join(', ')})`,
        );
    });
  });
}
