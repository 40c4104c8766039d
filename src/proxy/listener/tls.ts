/**
 * Server certificates chosen by SNI, and client-certificate verification, for a TLS listener. Files are
 * read when a config is applied (so a reload picks up rotated files) into SecureContexts that the
 * listener swaps in one assignment: handshakes in progress finish on the contexts they started with.
 */

import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createSecureContext, type SecureContext, type SecureContextOptions } from 'node:tls';
import { DEFAULT_TLS_CIPHERS } from '../../core/defaults.ts';
import type { CompiledTls } from '../compiled.ts';

export interface TlsMaterial {
  /** Options of the first certificate: what a client that sends no SNI name gets. */
  readonly defaultOptions: SecureContextOptions & { requestCert: boolean; rejectUnauthorized: boolean };
  readonly defaultContext: SecureContext;
  /** Exact names (lower-case) → context. */
  readonly exact: ReadonlyMap<string, SecureContext>;
  /** `*.example.com` as `.example.com` → context; a wildcard covers exactly one label. */
  readonly wildcard: ReadonlyMap<string, SecureContext>;
  /** mTLS: verify client certificates, and refuse handshakes without one (`requireClientCert`). */
  readonly requestCert: boolean;
  readonly rejectUnauthorized: boolean;
}

async function read(path: string, what: string, listener: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (e) {
    throw new Error(`listener ${listener}: cannot read ${what} ${path}: ${(e as NodeJS.ErrnoException).code ?? e}`);
  }
}

/** The DNS names of a certificate's subjectAltName (its leaf, the first PEM block). */
function sanNames(pem: Buffer): string[] {
  const san = new X509Certificate(pem).subjectAltName ?? '';
  return san
    .split(/,\s*/)
    .filter((entry) => entry.startsWith('DNS:'))
    .map((entry) => entry.slice(4).toLowerCase());
}

/** Reads and checks every file; rejects with the listener, the file and the reason. */
export async function loadTls(tls: CompiledTls, listener: string): Promise<TlsMaterial> {
  const ca = tls.clientCa === null ? undefined : await read(tls.clientCa, 'tls.clientCa', listener);
  const requestCert = ca !== undefined;
  const rejectUnauthorized = requestCert && tls.requireClientCert;
  const exact = new Map<string, SecureContext>();
  const wildcard = new Map<string, SecureContext>();
  let defaultOptions: TlsMaterial['defaultOptions'] | undefined;
  let defaultContext: SecureContext | undefined;
  for (const [i, c] of tls.certificates.entries()) {
    const cert = await read(c.cert, `tls.certificates[${i}].cert`, listener);
    const key = await read(c.key, `tls.certificates[${i}].key`, listener);
    const options = {
      cert,
      key,
      ca,
      minVersion: tls.minVersion,
      ciphers: DEFAULT_TLS_CIPHERS,
      honorCipherOrder: true,
      requestCert,
      rejectUnauthorized,
    };
    let context: SecureContext;
    let names: string[];
    try {
      context = createSecureContext(options);
      names = c.serverNames.length > 0 ? [...c.serverNames] : sanNames(cert);
    } catch (e) {
      throw new Error(`listener ${listener}: tls.certificates[${i}] (${c.cert}, ${c.key}): ${(e as Error).message}`);
    }
    for (const name of names) {
      const table = name.startsWith('*.') ? wildcard : exact;
      const keyName = name.startsWith('*.') ? name.slice(1) : name;
      // The first certificate listing a name keeps it, as the order of `certificates` promises.
      if (!table.has(keyName)) table.set(keyName, context);
    }
    defaultOptions ??= options;
    defaultContext ??= context;
  }
  return Object.freeze({
    defaultOptions: defaultOptions!,
    defaultContext: defaultContext!,
    exact,
    wildcard,
    requestCert,
    rejectUnauthorized,
  });
}

/** The context for an SNI name: exact, then the wildcard one label up, then the default. */
export function contextFor(material: TlsMaterial, servername: string): SecureContext {
  const name = servername.toLowerCase();
  const exact = material.exact.get(name);
  if (exact !== undefined) return exact;
  const dot = name.indexOf('.');
  if (dot > 0) {
    const wild = material.wildcard.get(name.slice(dot));
    if (wild !== undefined) return wild;
  }
  return material.defaultContext;
}
