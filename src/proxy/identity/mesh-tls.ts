/**
 * Mutual TLS between proxies, as the data plane sees it: the proxy's workload identity behind a small
 * interface (the data plane never imports the control plane), a generation number that moves on every
 * rotation, and the count of refused handshakes by direction and reason.
 *
 * Servers follow a rotation with `setSecureContext`; upstream clients connect through a connector that
 * takes the material in force for each new connection (undici would otherwise fix TLS options per
 * client). Either way, open connections keep the certificate they started with, as Envoy's do: a
 * certificate's expiry matters at the handshake only.
 */
import { createRequire } from 'node:module';
import { createSecureContext, type PeerCertificate, type SecureContext, type SecureContextOptions } from 'node:tls';
import type { buildConnector as BuildConnector } from 'undici';
import { checkPeerSpiffeId, parseSpiffeId } from '../../core/spiffe.ts';
import type { Logger } from '../../observability/logger.ts';

/**
 * What the data plane needs of a workload identity (`WorkloadIdentity` is one): the current key,
 * certificate chain and trust bundle, its SPIFFE ID, and `'rotated'` whenever any of them changes.
 */
export interface IdentityProvider {
  readonly spiffeId: string;
  secureContextOptions(): Readonly<Pick<SecureContextOptions, 'key' | 'cert' | 'ca'>>;
  on(event: 'rotated', listener: () => void): unknown;
  off(event: 'rotated', listener: () => void): unknown;
}

export type MtlsDirection = 'inbound' | 'outbound';

type Connector = BuildConnector.connector;
// undici's connector module alone (as pool.ts loads its client): not the package's index.
const buildConnector: typeof BuildConnector = createRequire(import.meta.url)('undici/lib/core/connect.js');

/** Refused handshakes of one reason are logged at most this often (the metric counts them all). */
const LOG_INTERVAL_MS = 1_000;

export class MeshTls {
  readonly identity: IdentityProvider;
  /** Moves on every rotation: connections made before it carry an older certificate or bundle. */
  generation = 0;
  /** Refused handshakes, `direction\0reason` → count. */
  readonly failures = new Map<string, number>();
  /** Completed handshakes (the peer verified), by direction. */
  readonly handshakes = { inbound: 0, outbound: 0 };
  private readonly log: Pick<Logger, 'warn'> | undefined;
  private readonly rotationListeners = new Set<() => void>();
  private readonly lastLogged = new Map<string, number>();
  private context: SecureContext | undefined;
  private contextGeneration = -1;
  private readonly onRotated = () => {
    this.generation++;
    for (const listener of this.rotationListeners) listener();
  };

  constructor(identity: IdentityProvider, log?: Pick<Logger, 'warn'>) {
    this.identity = identity;
    this.log = log;
    identity.on('rotated', this.onRotated);
  }

  get spiffeId(): string {
    return this.identity.spiffeId;
  }

  /** A SecureContext of the current material, made once per rotation. */
  secureContext(): SecureContext {
    if (this.context === undefined || this.contextGeneration !== this.generation) {
      this.context = createSecureContext(this.identity.secureContextOptions());
      this.contextGeneration = this.generation;
    }
    return this.context;
  }

  /** The trust domain of this proxy's own identity: the default of services' expected identities. */
  get trustDomain(): string {
    return parseSpiffeId(this.identity.spiffeId).trustDomain;
  }

  /** Calls `listener` after each rotation (after `generation` moved); returns the unsubscribe. */
  onRotation(listener: () => void): () => void {
    this.rotationListeners.add(listener);
    return () => this.rotationListeners.delete(listener);
  }

  /** Counts (and, throttled, logs) a refused handshake. */
  recordFailure(direction: MtlsDirection, reason: string, detail?: string): void {
    const key = `${direction}\u0000${reason}`;
    this.failures.set(key, (this.failures.get(key) ?? 0) + 1);
    const now = Date.now();
    if (this.log !== undefined && now - (this.lastLogged.get(key) ?? 0) >= LOG_INTERVAL_MS) {
      this.lastLogged.set(key, now);
      this.log.warn(
        { direction, reason, ...(detail ? { detail } : {}), total: this.failures.get(key) },
        'mutual TLS handshake refused',
      );
    }
  }

  close(): void {
    this.identity.off('rotated', this.onRotated);
    this.rotationListeners.clear();
  }
}

/**
 * mTLS towards one service: the SPIFFE IDs its endpoints may present. The host name dialled plays no
 * part (an SVID has no DNS name); the chain is checked against the bundle by TLS itself.
 */
export class UpstreamTls {
  readonly mesh: MeshTls;
  readonly identities: readonly string[];
  /** Equal keys: interchangeable (an endpoint keeps its connections across a reload). */
  readonly key: string;
  private readonly check: (host: string, cert: PeerCertificate) => Error | undefined;

  constructor(mesh: MeshTls, identities: readonly string[]) {
    this.mesh = mesh;
    this.identities = Object.freeze([...identities]);
    this.key = identities.join(' ');
    const check = checkPeerSpiffeId(identities);
    this.check = (host, cert) => {
      const error = check(host, cert);
      if (error !== undefined) this.mesh.recordFailure('outbound', 'identity-mismatch', error.message);
      return error;
    };
  }

  /**
   * An undici `connect` function: each new connection presents the certificate in force when it opens
   * (and the bundle of that moment), so a client made before a rotation never offers an outdated one,
   * and a rotation closes nothing. TLS sessions are resumed within one generation only.
   */
  connector(timeoutMs: number, allowH2: boolean): Connector {
    let generation = -1;
    let inner: Connector | undefined;
    return (options, callback) => {
      if (inner === undefined || generation !== this.mesh.generation) {
        generation = this.mesh.generation;
        inner = buildConnector({
          // One context per rotation: tls.connect would otherwise parse the key and bundle per connection.
          secureContext: this.mesh.secureContext(),
          rejectUnauthorized: true,
          checkServerIdentity: this.check,
          timeout: timeoutMs,
          allowH2,
        } as never) as Connector;
      }
      return inner(options, (error, socket) => {
        if (error === null) this.mesh.handshakes.outbound++;
        callback(error as never, socket as never);
      });
    };
  }
}

/** Node's certificate verification codes and TLS/SSL failures: a handshake that did not complete. */
const TLS_FAILURE = /CERT|^ERR_SSL_|^ERR_TLS_|^EPROTO$|SIGNATURE|ISSUER/;

export function isTlsFailureCode(code: string | undefined): boolean {
  return code !== undefined && TLS_FAILURE.test(code);
}
