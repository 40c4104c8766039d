/**
 * The verified caller of a mutual-TLS connection, worked out once per connection when its handshake
 * completes and kept on the socket: every request on it reads the same object.
 */
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { spiffeIdOfCertificate } from '../../core/spiffe.ts';

export interface PeerIdentity {
  /** The caller's SPIFFE ID (its certificate's single URI SAN). */
  readonly principal: string;
  /**
   * The X-Forwarded-Client-Cert value for the app, in Envoy's format:
   * `By=<this proxy's SPIFFE ID>;Hash=<SHA-256 of the client certificate, hex>;URI=<caller's SPIFFE ID>`.
   */
  readonly xfcc: string;
}

const kPeer = Symbol('meshgate.peerIdentity');
type PeerSocket = Socket & { [kPeer]?: PeerIdentity };

/**
 * Reads the verified client certificate of `socket` (its chain already checked against the bundle)
 * and keeps the caller on it; undefined when the certificate carries no single, valid SPIFFE ID.
 */
export function notePeer(socket: TLSSocket, ownId: string): PeerIdentity | undefined {
  const cert = socket.getPeerCertificate();
  const principal = spiffeIdOfCertificate(cert);
  if (principal === undefined) return undefined;
  const hash = (cert.fingerprint256 ?? '').replaceAll(':', '').toLowerCase();
  const peer = Object.freeze({ principal, xfcc: `By=${ownId};Hash=${hash};URI=${principal}` });
  (socket as PeerSocket)[kPeer] = peer;
  return peer;
}

/** The verified caller of the connection a request came on (HTTP/2: the session's socket), if any. */
export function peerOf(socket: Socket | null | undefined): PeerIdentity | undefined {
  return (socket as PeerSocket | null | undefined)?.[kPeer];
}
