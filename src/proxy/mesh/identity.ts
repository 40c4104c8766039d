/**
 * A mesh proxy's workload identity, obtained from its control plane: when the welcome says the
 * control plane issues identities, the proxy starts a WorkloadIdentity whose transport is
 * `POST /certificates`. The first certificate is requested with the join token; renewals prove the
 * current certificate instead (a signature by its key, see docs/mesh-protocol.md), and fall back to the
 * join token only when that is refused (e.g. the certificate expired while the control plane was away).
 * Bundles pushed with the config are installed as they arrive.
 */
import { sign, X509Certificate } from 'node:crypto';
import type { Agent } from 'node:http';
import type { CertificateRequest, CertificateResponse, TrustBundleRef, WelcomeEvent } from '../../api/mesh.ts';
import { renewalProofPayload } from '../../api/values.ts';
import { DEFAULT_CONTROL_REQUEST_TIMEOUT_MS } from '../../core/defaults.ts';
import type { Logger } from '../../observability/logger.ts';
import { type IdentityMaterial, type IssueFunction, WorkloadIdentity } from '../identity/workload-identity.ts';
import { bearer, controlAgent, errorOf, requestJson } from './http.ts';

export interface MeshIdentityOptions {
  /** Base URL of the control plane. */
  url: string;
  proxyId: string;
  token?: string;
  log: Logger;
  requestTimeoutMs?: number;
}

/** What `GET /identity` on the proxy's admin API shows: never the key. */
export interface IdentityStatus {
  state: 'not offered' | 'starting' | 'ready' | 'failed';
  spiffeId: string | null;
  issuer: string | null;
  serial: string | null;
  notBefore: string | null;
  notAfter: string | null;
  renewAt: string | null;
  renewals: number;
  lastError: string | null;
  trustBundle: { digest: string | null; roots: { subject: string; fingerprint256: string; notAfter: string }[] };
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g;

export class MeshIdentity {
  private readonly options: MeshIdentityOptions;
  private readonly agent: Agent;
  private identity: WorkloadIdentity | null = null;
  private starting: Promise<void> | null = null;
  private expected: string | null = null;
  /** The newest pushed bundle, installed when the identity exists (or once it starts). */
  private bundle: TrustBundleRef | null = null;
  private renewals = 0;
  private lastError: string | null = null;
  private failed = false;
  private closed = false;

  constructor(options: MeshIdentityOptions) {
    this.options = options;
    this.agent = controlAgent();
  }

  /** The identity in force, or null until the first certificate arrives (the mTLS layer builds TLS contexts from it). */
  get current(): WorkloadIdentity | null {
    return this.identity;
  }

  /**
   * Resolves once the identity the control plane offered is in force, or at once when none was offered
   * (the welcome comes before the first push, so by then an offer is known); gives up after `timeoutMs`
   * so a proxy whose certificate cannot be had still starts, refusing only configs that need mTLS.
   */
  async ready(timeoutMs: number): Promise<WorkloadIdentity | null> {
    const starting = this.starting;
    if (starting !== null) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([starting, new Promise((r) => (timer = setTimeout(r, timeoutMs)))]);
      clearTimeout(timer);
    }
    return this.identity;
  }

  /** From the subscription's welcome: starts the identity the first time it is offered. */
  onWelcome(welcome: WelcomeEvent): void {
    const offered = welcome.identity;
    if (offered === undefined || this.closed) return;
    if (this.expected !== null && this.expected !== offered.spiffeId)
      this.options.log.warn(
        { had: this.expected, offered: offered.spiffeId },
        'the control plane offers another identity; keeping the one in force until it renews',
      );
    if (this.identity !== null || this.starting !== null) return;
    this.expected = offered.spiffeId;
    this.starting = this.start(offered.spiffeId).finally(() => {
      this.starting = null;
    });
  }

  /** From a push: the trust bundle now in force at the control plane. */
  onTrustBundle(bundle: TrustBundleRef): void {
    this.bundle = bundle;
    this.applyBundle();
  }

  status(): IdentityStatus {
    const m = this.identity?.current;
    const bundlePem = m?.bundlePem ?? this.bundle?.pem ?? '';
    const roots = (bundlePem.match(PEM_CERT) ?? []).map((pem) => {
      const c = new X509Certificate(pem);
      return {
        subject: c.subject.split('\n').join(', '),
        fingerprint256: c.fingerprint256,
        notAfter: c.validToDate.toISOString(),
      };
    });
    const leaf = m ? new X509Certificate((m.certChainPem.match(PEM_CERT) ?? [])[0] as string) : undefined;
    return {
      state: m ? 'ready' : this.failed ? 'failed' : this.expected ? 'starting' : 'not offered',
      spiffeId: m?.spiffeId ?? this.expected,
      issuer: leaf ? leaf.issuer.split('\n').join(', ') : null,
      serial: m?.serial ?? null,
      notBefore: m?.notBefore.toISOString() ?? null,
      notAfter: m?.notAfter.toISOString() ?? null,
      renewAt: this.identity && this.identity.renewAt > 0 ? new Date(this.identity.renewAt).toISOString() : null,
      renewals: this.renewals,
      lastError: this.lastError,
      trustBundle: { digest: this.bundle?.digest ?? null, roots },
    };
  }

  close(): void {
    this.closed = true;
    this.identity?.close();
    this.agent.destroy();
  }

  private async start(expectedSpiffeId: string): Promise<void> {
    const log = this.options.log;
    // Retried with the same backoff as renewals until it succeeds or the proxy stops.
    let delay = 1_000;
    while (!this.closed) {
      try {
        const identity = await WorkloadIdentity.start({
          issue: this.transport(),
          expectedSpiffeId,
          csrCommonName: this.options.proxyId,
        });
        if (this.closed) {
          identity.close();
          return;
        }
        this.identity = identity;
        this.failed = false;
        this.lastError = null;
        identity.on('rotated', (m, reason) => {
          if (reason === 'renewed') this.renewals++;
          this.lastError = null;
          log.info(
            { spiffeId: m.spiffeId, serial: m.serial, notAfter: m.notAfter, reason },
            'workload identity rotated',
          );
        });
        identity.on('renewalFailed', (err, { attempt, retryInMs }) => {
          this.lastError = err.message;
          log.warn({ err: err.message, attempt, retryInMs }, 'certificate renewal failed; retrying');
        });
        identity.on('expired', (m) => log.error({ spiffeId: m.spiffeId, notAfter: m.notAfter }, 'certificate expired'));
        this.applyBundle();
        const m = identity.current;
        log.info({ spiffeId: m.spiffeId, serial: m.serial, notAfter: m.notAfter }, 'workload identity obtained');
        return;
      } catch (e) {
        this.failed = true;
        this.lastError = (e as Error).message;
        log.warn({ err: this.lastError, retryInMs: delay }, 'could not obtain a workload certificate; retrying');
        await new Promise((r) => setTimeout(r, delay).unref());
        delay = Math.min(delay * 2, 30_000);
      }
    }
  }

  private applyBundle() {
    if (this.identity === null || this.bundle === null) return;
    try {
      this.identity.setBundle(this.bundle.pem);
    } catch (e) {
      this.options.log.warn({ err: (e as Error).message }, 'ignored a pushed trust bundle');
    }
  }

  /** `POST /certificates`: a renewal proves the current certificate; the first request (or a refused proof) uses the token. */
  private transport(): IssueFunction {
    const url = new URL('/certificates', this.options.url).href;
    const timeout = this.options.requestTimeoutMs ?? DEFAULT_CONTROL_REQUEST_TIMEOUT_MS;
    const post = async (body: CertificateRequest, headers: Record<string, string>) => {
      const res = await requestJson(this.agent, url, 'POST', body, timeout, headers);
      return res;
    };
    return async (csr) => {
      const material = this.identity?.current;
      if (material !== undefined && material.notAfter.getTime() > Date.now()) {
        const res = await post(
          { proxy: this.options.proxyId, csr, proof: proofFor(material, this.options.proxyId, csr) },
          {},
        );
        if (res.status === 200) return res.body as CertificateResponse;
        if (res.status !== 401) throw new Error(`the control plane refused the renewal: ${errorOf(res)}`);
        this.options.log.warn({ reason: errorOf(res) }, 'renewal by certificate refused; renewing with the join token');
      }
      const res = await post({ proxy: this.options.proxyId, csr }, bearer(this.options.token));
      if (res.status !== 200) throw new Error(`the control plane refused the certificate request: ${errorOf(res)}`);
      return res.body as CertificateResponse;
    };
  }
}

function proofFor(material: IdentityMaterial, proxy: string, csr: string): NonNullable<CertificateRequest['proof']> {
  const signedAt = new Date().toISOString();
  const signature = sign('sha256', renewalProofPayload(proxy, signedAt, csr), material.keyPem).toString('base64');
  return { certChainPem: material.certChainPem, signedAt, signature };
}
