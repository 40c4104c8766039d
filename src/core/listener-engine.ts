import type { ListenerConfig } from '../api/config.ts';

/**
 * What keeps a listener off the lean HTTP/1.1 engine: TLS, HTTP/2 or the mesh's mutual TLS, which
 * node:tls and node:http2 serve. Null for a plain HTTP/1.1 listener.
 */
export function leanEngineBlocker(l: Pick<ListenerConfig, 'tls' | 'http2' | 'mtls'>): 'tls' | 'http2' | 'mtls' | null {
  if (l.tls !== undefined) return 'tls';
  if (l.http2 === true) return 'http2';
  if (l.mtls !== undefined && l.mtls.mode !== 'DISABLE') return 'mtls';
  return null;
}

/** What serves the listener's HTTP/1.1: the one it names, else lean unless something keeps it off. */
export function listenerEngine(l: Pick<ListenerConfig, 'engine' | 'tls' | 'http2' | 'mtls'>): 'lean' | 'node' {
  return l.engine ?? (leanEngineBlocker(l) === null ? 'lean' : 'node');
}
