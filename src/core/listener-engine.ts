import type { ListenerConfig } from '../api/config.ts';

/**
 * What keeps a listener off the lean HTTP/1.1 engine: TLS, HTTP/2 or the mesh's mutual TLS, which
 * node:tls and node:http2 serve. Null for a plain HTTP/1.1 listener, which the lean engine serves
 * unless the listener names `engine: node`.
 */
export function leanEngineBlocker(l: Pick<ListenerConfig, 'tls' | 'http2' | 'mtls'>): 'tls' | 'http2' | 'mtls' | null {
  if (l.tls !== undefined) return 'tls';
  if (l.http2 === true) return 'http2';
  if (l.mtls !== undefined && l.mtls.mode !== 'DISABLE') return 'mtls';
  return null;
}
