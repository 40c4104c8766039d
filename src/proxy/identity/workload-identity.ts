/**
 * A proxy's workload identity: its key pair, its X509-SVID and the trust bundle, kept fresh.
 *
 * The holder makes a new P-256 key pair for every certificate, sends only the CSR through `issue`, and
 * renews at half the certificate's lifetime (jittered, so proxies started together do not renew in
 * step), retrying with backoff when the control plane is unreachable. Each new certificate or bundle
 * replaces the material whole and emits `'rotated'`; a TLS server follows with
 * `server.setSecureContext(identity.secureContextOptions())` (open connections keep the old
 * certificate), a client by building its next connections (or its next undici Agent) from it.
 */
import { X509Certificate } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { createSecureContext, type SecureContext, type SecureContextOptions } from 'node:tls';
import { type CancelTimer, type Clock, schedule, systemClock } from '../../core/clock.ts';
import {
  DEFAULT_SVID_RENEW_JITTER_PERCENT,
  DEFAULT_SVID_RENEW_RETRY_BASE_MS,
  DEFAULT_SVID_RENEW_RETRY_MAX_MS,
} from '../../core/defaults.ts';
import { scheduleAt } from '../../core/long-timer.ts';
import { spiffeIdOfCertificate } from '../../core/spiffe.ts';
import { buildCsr, generateWorkloadKeyPair, type WorkloadKeyPair } from './csr.ts';

/** What the control plane answers to a CSR. */
export interface IssueResponse {
  /** Leaf first, then any intermediate. */
  readonly certChainPem: string;
  readonly bundlePem: string;
}

/** Sends a CSR to the control plane and resolves with the certificate (tests wire it to a CA directly). */
export type IssueFunction = (csrPem: string) => Promise<IssueResponse>;

export interface WorkloadIdentityOptions {
  readonly issue: IssueFunction;
  /** If set, a certificate for any other SPIFFE ID is refused (a misrouted or misconfigured issuer). */
  readonly expectedSpiffeId?: string;
  /** Put as CN in the CSR, for people reading it; the CA ignores it. */
  readonly csrCommonName?: string;
  /** Renewal moves from half-life by up to this share of the lifetime either way. Default 10; 0: exactly half. */
  readonly renewJitterPercent?: number;
  /** First retry after a failed renewal, ms (doubling up to `renewRetryMaxMs`). Default 1000. */
  readonly renewRetryBaseMs?: number;
  /** Longest wait between renewal attempts, ms. Default 30000. */
  readonly renewRetryMaxMs?: number;
  readonly clock?: Clock;
  /** Uniform in [0, 1): the jitter's source (tests pass a fixed one). */
  readonly random?: () => number;
}

/** One certificate with its key and the bundle: replaced whole, never changed. */
export interface IdentityMaterial {
  readonly spiffeId: string;
  /** In memory only: never written to disk or sent anywhere. */
  readonly keyPem: string;
  readonly certChainPem: string;
  readonly bundlePem: string;
  /** Upper-case hex, as node:crypto prints it. */
  readonly serial: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

export type RotationReason = 'renewed' | 'bundle';

export interface WorkloadIdentityEvents {
  /** New material is in force: a new certificate (and key), or a new trust bundle. */
  rotated: [IdentityMaterial, RotationReason];
  /** A renewal failed; another attempt follows after `retryInMs`. */
  renewalFailed: [Error, { attempt: number; retryInMs: number }];
  /** The certificate expired before a renewal succeeded: peers refuse it from now on. */
  expired: [IdentityMaterial];
}

export class WorkloadIdentity extends EventEmitter<WorkloadIdentityEvents> {
  private readonly options: WorkloadIdentityOptions;
  private readonly clock: Clock;
  private readonly random: () => number;
  private material!: IdentityMaterial;
  private contextOptions!: Readonly<Pick<SecureContextOptions, 'key' | 'cert' | 'ca'>>;
  private context: SecureContext | undefined;
  private renewing: Promise<IdentityMaterial> | undefined;
  private cancelRenew: CancelTimer | undefined;
  private cancelExpiry: CancelTimer | undefined;
  private failures = 0;
  private closed = false;
  /** When the next renewal is planned (ms since the epoch), for status pages and tests. */
  renewAt = 0;

  private constructor(options: WorkloadIdentityOptions) {
    super();
    const jitter = options.renewJitterPercent ?? DEFAULT_SVID_RENEW_JITTER_PERCENT;
    if (!(jitter >= 0 && jitter <= 50)) throw new RangeError('renewJitterPercent must be within 0–50');
    this.options = options;
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? Math.random;
  }

  /** Obtains the first certificate (rejecting if that fails) and schedules its renewal. */
  static async start(options: WorkloadIdentityOptions): Promise<WorkloadIdentity> {
    const identity = new WorkloadIdentity(options);
    identity.install(await identity.obtain(), undefined);
    return identity;
  }

  get current(): IdentityMaterial {
    return this.material;
  }

  get spiffeId(): string {
    return this.material.spiffeId;
  }

  /** `key`, `cert` (the chain) and `ca` (the bundle) for `tls.createServer`/`connect`/`setSecureContext`. */
  secureContextOptions(): Readonly<Pick<SecureContextOptions, 'key' | 'cert' | 'ca'>> {
    return this.contextOptions;
  }

  /** A SecureContext of the current material, made once per rotation. */
  secureContext(): SecureContext {
    this.context ??= createSecureContext(this.contextOptions);
    return this.context;
  }

  /**
   * Installs a trust bundle pushed by the control plane (after a root rotation, before this proxy's
   * own renewal). An unchanged bundle does nothing.
   */
  setBundle(bundlePem: string): void {
    if (bundlePem === this.material.bundlePem) return;
    if (!bundlePem.includes('-----BEGIN CERTIFICATE-----'))
      throw new TypeError('the trust bundle holds no certificate');
    this.update({ ...this.material, bundlePem }, 'bundle');
  }

  /** Renews now and puts the result in force (a renewal already running is shared). */
  renew(): Promise<IdentityMaterial> {
    this.renewing ??= this.obtain()
      .then((material) => {
        // Material from a renewal that finished after close() is dropped: nobody serves with it.
        if (!this.closed) this.install(material, 'renewed');
        return material;
      })
      .finally(() => {
        this.renewing = undefined;
      });
    return this.renewing;
  }

  close(): void {
    this.closed = true;
    this.cancelRenew?.();
    this.cancelExpiry?.();
  }

  /** A key pair, a CSR, the issuer's answer, checked against the key and the bundle. */
  private async obtain(): Promise<IdentityMaterial> {
    const keys = generateWorkloadKeyPair();
    const response = await this.options.issue(buildCsr(keys, this.options.csrCommonName));
    return this.check(keys, response);
  }

  private check(keys: WorkloadKeyPair, response: IssueResponse): IdentityMaterial {
    const chain = pemCertificates(response.certChainPem).map((pem) => new X509Certificate(pem));
    const roots = pemCertificates(response.bundlePem).map((pem) => new X509Certificate(pem));
    const leaf = chain[0];
    if (leaf === undefined) throw new Error('the issuer answered with no certificate');
    if (roots.length === 0) throw new Error('the issuer answered with an empty trust bundle');
    if (!leaf.checkPrivateKey(keys.privateKey)) throw new Error('the issued certificate is not for this key');
    const spiffeId = spiffeIdOfCertificate({ subjectaltname: leaf.subjectAltName ?? '' });
    if (spiffeId === undefined) throw new Error('the issued certificate has no single SPIFFE ID URI SAN');
    if (this.options.expectedSpiffeId !== undefined && spiffeId !== this.options.expectedSpiffeId)
      throw new Error(`the issued certificate is for ${spiffeId}, not ${this.options.expectedSpiffeId}`);
    // Peers check the chain against the same bundle: a chain that does not reach it would fail every
    // handshake, so it is refused here, where the message can say why.
    for (let i = 0; i + 1 < chain.length; i++) {
      const [child, parent] = [chain[i] as X509Certificate, chain[i + 1] as X509Certificate];
      if (!child.checkIssued(parent) || !child.verify(parent.publicKey))
        throw new Error('the issued chain is out of order or broken');
    }
    const top = chain[chain.length - 1] as X509Certificate;
    if (!roots.some((root) => top.checkIssued(root) && top.verify(root.publicKey)))
      throw new Error('the issued certificate does not chain to the trust bundle');
    if (leaf.validToDate.getTime() <= this.clock.now()) throw new Error('the issued certificate has already expired');
    return {
      spiffeId,
      keyPem: keys.privateKeyPem,
      certChainPem: chain.map((c) => c.toString()).join(''),
      bundlePem: response.bundlePem,
      serial: leaf.serialNumber,
      notBefore: leaf.validFromDate,
      notAfter: leaf.validToDate,
    };
  }

  private update(material: IdentityMaterial, reason: RotationReason): void {
    this.material = material;
    this.contextOptions = Object.freeze({ key: material.keyPem, cert: material.certChainPem, ca: material.bundlePem });
    this.context = undefined;
    this.emit('rotated', material, reason);
  }

  /** Puts new material in force and plans its renewal and expiry. */
  private install(material: IdentityMaterial, reason: RotationReason | undefined): void {
    if (reason === undefined) {
      this.material = material;
      this.contextOptions = Object.freeze({
        key: material.keyPem,
        cert: material.certChainPem,
        ca: material.bundlePem,
      });
    } else this.update(material, reason);
    this.failures = 0;
    const now = this.clock.now();
    const remaining = material.notAfter.getTime() - now;
    const jitter = (this.options.renewJitterPercent ?? DEFAULT_SVID_RENEW_JITTER_PERCENT) / 100;
    const delay = Math.max(0, remaining * (0.5 + (this.random() * 2 - 1) * jitter));
    this.renewAt = now + delay;
    this.cancelRenew?.();
    // By date, not delay: a lifetime of months is longer than Node's longest timer.
    this.cancelRenew = scheduleAt(this.clock, this.renewAt, () => this.renewInBackground());
    this.cancelExpiry?.();
    this.cancelExpiry = scheduleAt(this.clock, material.notAfter.getTime(), () => this.emit('expired', material));
  }

  private renewInBackground(): void {
    this.cancelRenew = undefined;
    if (this.closed) return;
    this.renew().then(
      () => {},
      (err: Error) => {
        if (this.closed) return;
        this.failures++;
        const base = this.options.renewRetryBaseMs ?? DEFAULT_SVID_RENEW_RETRY_BASE_MS;
        const max = this.options.renewRetryMaxMs ?? DEFAULT_SVID_RENEW_RETRY_MAX_MS;
        const retryInMs = Math.min(max, base * 2 ** (this.failures - 1));
        this.renewAt = this.clock.now() + retryInMs;
        this.cancelRenew = schedule(this.clock, () => this.renewInBackground(), retryInMs);
        this.emit('renewalFailed', err, { attempt: this.failures, retryInMs });
      },
    );
  }
}

function pemCertificates(text: string): string[] {
  return text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}
