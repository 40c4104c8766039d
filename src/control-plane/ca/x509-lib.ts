/**
 * @peculiar/x509, loaded on first use. It costs about 21 MiB of RSS with reflect-metadata (measured on
 * Node 24 in a fresh process: 41 → 62 MiB), so only a process that runs a CA imports it; proxies build
 * their requests with node:crypto (src/proxy/identity/csr.ts).
 */
import { webcrypto } from 'node:crypto';

export type X509Lib = typeof import('@peculiar/x509');

let loading: Promise<X509Lib> | undefined;

export function loadX509(): Promise<X509Lib> {
  loading ??= (async () => {
    // The library's decorators read type metadata, which needs this polyfill loaded first.
    await import('reflect-metadata');
    const lib = await import('@peculiar/x509');
    // The library's provider is process-wide; Node's own WebCrypto is the only one meshgate uses.
    lib.cryptoProvider.set(webcrypto as unknown as Parameters<X509Lib['cryptoProvider']['set']>[0]);
    return lib;
  })();
  return loading;
}
