/**
 * The control plane's certificate authority: it turns a proxy's certificate signing request into an
 * X509-SVID (a short-lived certificate whose only name is the proxy's SPIFFE ID) and keeps the trust
 * bundle (the roots every proxy trusts), including across a root rotation. docs/security.md describes
 * it for operators.
 *
 * The CA never sees a proxy's private key, and it never lets a request choose its identity: the caller
 * (the issuing endpoint, after authenticating the proxy) says who the proxy is, and the CA writes that
 * SPIFFE ID whatever the request's subject or SAN say.
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  type KeyObject,
  type webcrypto,
  X509Certificate,
} from 'node:crypto';
import { EventEmitter } from 'node:events';
import { type CancelTimer, type Clock, systemClock } from '../../core/clock.ts';
import {
  DEFAULT_CA_ROOT_LIFETIME_MS,
  DEFAULT_CA_ROTATION_OVERLAP_MS,
  DEFAULT_SVID_LIFETIME_MS,
  MAX_CSR_BYTES,
  MIN_SVID_LIFETIME_MS,
  SVID_BACKDATE_MS,
} from '../../core/defaults.ts';
import { scheduleAt } from '../../core/long-timer.ts';
import { spiffeIdOf, trustDomainProblem } from '../../core/spiffe.ts';
import { CaError } from './errors.ts';
import { CaStateDir, pemBlocks, type RetiringRoot } from './state.ts';
import { loadX509, type X509Lib } from './x509-lib.ts';

/** A certificate and its private key, PEM. */
export interface PemKeyPair {
  readonly certPem: string;
  readonly keyPem: string;
}

/** An operator's root: its key is needed only when no intermediate signs (the root may stay offline). */
export interface OperatorRoot {
  readonly certPem: string;
  readonly keyPem?: string;
}

export interface CertificateAuthorityOptions {
  /** The SPIFFE trust domain of every identity issued, e.g. `cluster.local`. */
  readonly trustDomain: string;
  /**
   * Directory of the CA's state (created 0700): the root it generates on first start (0600) and the
   * roots a rotation keeps trusted. Required unless `root` is given; with `root`, it only keeps the
   * rotation state (and without it a restart forgets retiring roots).
   */
  readonly stateDir?: string;
  /** An operator-supplied root (ECDSA P-256 or P-384). When set, the CA generates no root. */
  readonly root?: OperatorRoot;
  /** An intermediate signed by `root`, with its key: it signs every leaf and the chain carries it. */
  readonly intermediate?: PemKeyPair;
  /** Lifetime of an issued certificate, ms. Default 24 h; at least 1 s (tests use a few seconds). */
  readonly svidLifetimeMs?: number;
  /** How long a rotated-out root stays trusted, ms. Default 48 h (two lifetimes); 0: dropped at once. */
  readonly rotationOverlapMs?: number;
  /** Lifetime of a root the CA generates, ms. Default 10 years. */
  readonly rootLifetimeMs?: number;
  readonly clock?: Clock;
}

/** Who the certificate is for: established by the caller (authentication), never read from the CSR. */
export interface WorkloadSubject {
  readonly namespace: string;
  readonly serviceAccount: string;
  /** If given, must be the CA's own trust domain (a CA never issues for another). */
  readonly trustDomain?: string;
}

export interface IssuedSvid {
  readonly spiffeId: string;
  /** The leaf alone. */
  readonly certPem: string;
  /** Leaf first, then the intermediate if any: what the proxy presents in TLS. */
  readonly certChainPem: string;
  /** The roots to trust, at issuance. */
  readonly bundlePem: string;
  /** Upper-case hex, as node:crypto and `openssl x509 -serial` print it. */
  readonly serial: string;
  /** The signer's subject (the root, or the intermediate). */
  readonly issuer: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

export interface TrustedRoot {
  readonly subject: string;
  /** SHA-256 of the DER certificate, `AB:CD:…` as `openssl x509 -fingerprint -sha256` prints it. */
  readonly fingerprint256: string;
  readonly notAfter: Date;
  /** True for the root that signs (directly or through the intermediate) new certificates. */
  readonly active: boolean;
  /** A rotated-out root: when it leaves the bundle. */
  readonly retiresAt?: Date;
}

export interface TrustBundle {
  /** The roots, active first, as concatenated PEM: the `ca` of a TLS context. */
  readonly pem: string;
  readonly roots: readonly TrustedRoot[];
  /** SHA-256 (hex) of `pem`: changes exactly when the bundle does, so a push can carry it as a version. */
  readonly digest: string;
}

export interface RotateOptions {
  /** The new root; omitted: the CA generates one (only when it generated its first one, too). */
  readonly root?: OperatorRoot;
  readonly intermediate?: PemKeyPair;
  /** Overrides the CA's `rotationOverlapMs` for this rotation. */
  readonly overlapMs?: number;
}

interface Signer {
  readonly cert: X509Certificate;
  readonly key: webcrypto.CryptoKey;
  readonly hash: 'SHA-256' | 'SHA-384';
  /** PEM of the intermediate to append to each leaf, or ''. */
  readonly chainPem: string;
  /** The signer's subject key identifier (hex), which each leaf names as its authority key identifier. */
  readonly keyId: string;
  /** The signer's subject as encoded in its certificate, copied byte for byte into each leaf's issuer. */
  readonly name: InstanceType<X509Lib['Name']>;
}

interface Root {
  readonly pem: string;
  readonly cert: X509Certificate;
  readonly retiresAt?: number;
}

/** Events: `'bundle'` (TrustBundle) whenever the set of trusted roots changes. */
export class CertificateAuthority extends EventEmitter<{ bundle: [TrustBundle] }> {
  readonly trustDomain: string;
  readonly svidLifetimeMs: number;
  readonly rotationOverlapMs: number;
  private readonly rootLifetimeMs: number;
  private readonly clock: Clock;
  private readonly state: CaStateDir | undefined;
  private readonly x509: X509Lib;
  /** True when the CA made its root; then `rotate()` may make the next one. */
  private readonly generated: boolean;
  private signer!: Signer;
  private active!: Root;
  private retiring: Root[] = [];
  private cachedBundle: TrustBundle | undefined;
  private cancelRetire: CancelTimer | undefined;
  /** Digest of the last bundle announced with `'bundle'` (or loaded at start). */
  private announced = '';
  /** Rotations run one at a time. */
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(options: CertificateAuthorityOptions, x509: X509Lib) {
    super();
    this.trustDomain = options.trustDomain;
    this.svidLifetimeMs = options.svidLifetimeMs ?? DEFAULT_SVID_LIFETIME_MS;
    this.rotationOverlapMs = options.rotationOverlapMs ?? DEFAULT_CA_ROTATION_OVERLAP_MS;
    this.rootLifetimeMs = options.rootLifetimeMs ?? DEFAULT_CA_ROOT_LIFETIME_MS;
    this.clock = options.clock ?? systemClock;
    this.state = options.stateDir === undefined ? undefined : new CaStateDir(options.stateDir);
    this.x509 = x509;
    this.generated = options.root === undefined;
  }

  /** Loads (or on first start generates and stores) the root, and the roots still trusted from a rotation. */
  static async open(options: CertificateAuthorityOptions): Promise<CertificateAuthority> {
    const problem = trustDomainProblem(options.trustDomain);
    if (problem !== undefined) throw new CaError('MG_IDENTITY_INVALID', `trustDomain: ${problem}`);
    const lifetime = options.svidLifetimeMs ?? DEFAULT_SVID_LIFETIME_MS;
    if (!Number.isInteger(lifetime) || lifetime < MIN_SVID_LIFETIME_MS)
      throw new RangeError(`svidLifetimeMs must be an integer of at least ${MIN_SVID_LIFETIME_MS}`);
    if ((options.rotationOverlapMs ?? 0) < 0) throw new RangeError('rotationOverlapMs must not be negative');
    if (options.root === undefined && options.stateDir === undefined)
      throw new CaError('MG_CA_UNAVAILABLE', 'the CA needs a stateDir to keep the root it generates, or a root');
    if (options.intermediate !== undefined && options.root === undefined)
      throw new CaError('MG_CA_UNAVAILABLE', 'an intermediate needs the root that signed it (root.certPem)');

    const ca = new CertificateAuthority(options, await loadX509());
    await ca.state?.ensure();
    if (options.root !== undefined) {
      const { signer, root } = await ca.operatorSigner(options.root, options.intermediate);
      ca.signer = signer;
      ca.active = root;
    } else {
      const state = ca.state as CaStateDir;
      const stored = (await state.readRoot()) ?? (await state.createRoot(await ca.generateRoot()));
      const { signer, root } = await ca.operatorSigner(stored, undefined);
      ca.signer = signer;
      ca.active = root;
    }
    const now = ca.clock.now();
    for (const r of (await ca.state?.readRetiring()) ?? []) {
      const cert = parseCert(r.certPem, 'a retiring root');
      // A crash between the two writes of a rotation can leave the active root listed as retiring.
      if (r.retiresAt > now && cert.fingerprint256 !== ca.active.cert.fingerprint256)
        ca.retiring.push({ pem: r.certPem, cert, retiresAt: r.retiresAt });
    }
    ca.announced = ca.bundle().digest;
    ca.scheduleRetirement();
    return ca;
  }

  /**
   * Signs `csrPem` (PKCS#10) for `subject`. The request proves possession of its key (its signature
   * is checked) and contributes nothing else: subject, SANs and extensions are the CA's.
   */
  async issue(csrPem: string, subject: WorkloadSubject): Promise<IssuedSvid> {
    if (subject.trustDomain !== undefined && subject.trustDomain !== this.trustDomain)
      throw new CaError(
        'MG_IDENTITY_INVALID',
        `this CA issues for trust domain ${this.trustDomain}, not ${subject.trustDomain}`,
      );
    let spiffeId: string;
    try {
      spiffeId = spiffeIdOf(this.trustDomain, subject.namespace, subject.serviceAccount);
    } catch (err) {
      throw new CaError('MG_IDENTITY_INVALID', (err as Error).message);
    }
    const publicKey = await this.verifiedCsrKey(csrPem);

    const x = this.x509;
    const signer = this.signer;
    const now = this.clock.now();
    const signerEnd = signer.cert.validToDate.getTime();
    if (signerEnd <= now)
      throw new CaError('MG_CA_UNAVAILABLE', `the CA's signing certificate expired at ${signer.cert.validTo}`);
    const notBefore = new Date(now - SVID_BACKDATE_MS);
    // A leaf never outlives its signer: a verifier would refuse it from then on anyway.
    const notAfter = new Date(Math.min(now + this.svidLifetimeMs, signerEnd));
    const leaf = await x.X509CertificateGenerator.create({
      serialNumber: randomSerial(),
      subject: `O=${this.trustDomain}`,
      issuer: signer.name,
      notBefore,
      notAfter,
      publicKey,
      signingKey: signer.key,
      signingAlgorithm: { name: 'ECDSA', hash: signer.hash } as webcrypto.EcdsaParams,
      extensions: [
        new x.BasicConstraintsExtension(false, undefined, true),
        new x.KeyUsagesExtension(x.KeyUsageFlags.digitalSignature | x.KeyUsageFlags.keyAgreement, true),
        new x.ExtendedKeyUsageExtension([x.ExtendedKeyUsage.serverAuth, x.ExtendedKeyUsage.clientAuth]),
        new x.SubjectAlternativeNameExtension([{ type: 'url', value: spiffeId }]),
        await x.SubjectKeyIdentifierExtension.create(publicKey),
        new x.AuthorityKeyIdentifierExtension(signer.keyId),
      ],
    });
    const certPem = `${leaf.toString('pem')}\n`;
    const parsed = new X509Certificate(certPem);
    return {
      spiffeId,
      certPem,
      certChainPem: certPem + signer.chainPem,
      bundlePem: this.bundle().pem,
      serial: parsed.serialNumber,
      issuer: oneLine(parsed.issuer),
      notBefore: parsed.validFromDate,
      notAfter: parsed.validToDate,
    };
  }

  /** The roots trusted now: the active one and rotated-out ones whose overlap has not ended. */
  bundle(): TrustBundle {
    const now = this.clock.now();
    if (this.cachedBundle !== undefined && this.retiring.every((r) => (r.retiresAt as number) > now))
      return this.cachedBundle;
    this.retiring = this.retiring.filter((r) => (r.retiresAt as number) > now);
    const roots = [this.active, ...this.retiring];
    const pem = roots.map((r) => r.pem).join('');
    this.cachedBundle = {
      pem,
      digest: createHash('sha256').update(pem).digest('hex'),
      roots: roots.map((r) => ({
        subject: oneLine(r.cert.subject),
        fingerprint256: r.cert.fingerprint256,
        notAfter: r.cert.validToDate,
        active: r === this.active,
        ...(r.retiresAt === undefined ? {} : { retiresAt: new Date(r.retiresAt) }),
      })),
    };
    return this.cachedBundle;
  }

  /** The certificate that signs leaves now (the intermediate if there is one). */
  signerInfo(): { subject: string; fingerprint256: string; notAfter: Date } {
    const c = this.signer.cert;
    return { subject: oneLine(c.subject), fingerprint256: c.fingerprint256, notAfter: c.validToDate };
  }

  /**
   * Replaces the signing root: new leaves come from the new root (or its intermediate) at once, and the
   * old root stays in the bundle until the overlap ends, so certificates it signed keep verifying while
   * proxies renew. Emits `'bundle'`; the control plane pushes the new bundle to every proxy.
   */
  rotate(options: RotateOptions = {}): Promise<TrustBundle> {
    const run = this.queue.then(() => this.rotateNow(options));
    this.queue = run.catch(() => {});
    return run;
  }

  /** Stops the retirement timer; the CA stays usable for signing. */
  close(): void {
    this.cancelRetire?.();
    this.cancelRetire = undefined;
  }

  private async rotateNow(options: RotateOptions): Promise<TrustBundle> {
    const overlapMs = options.overlapMs ?? this.rotationOverlapMs;
    if (overlapMs < 0) throw new RangeError('overlapMs must not be negative');
    let next: { signer: Signer; root: Root };
    let stored: PemKeyPair | undefined;
    if (options.root !== undefined) {
      next = await this.operatorSigner(options.root, options.intermediate);
      if (this.generated) {
        if (options.intermediate !== undefined || options.root.keyPem === undefined)
          throw new CaError(
            'MG_CA_UNAVAILABLE',
            'a CA that generated its root rotates to a root with its key and no intermediate',
          );
        stored = { certPem: options.root.certPem, keyPem: options.root.keyPem };
      }
    } else {
      if (!this.generated)
        throw new CaError('MG_CA_UNAVAILABLE', 'this CA uses an operator-supplied root: rotate() needs the new root');
      stored = await this.generateRoot();
      next = await this.operatorSigner(stored, undefined);
    }
    if (next.root.cert.fingerprint256 === this.active.cert.fingerprint256)
      throw new CaError('MG_CA_UNAVAILABLE', 'the new root is the root in use');

    const now = this.clock.now();
    const old: Root = { pem: this.active.pem, cert: this.active.cert, retiresAt: now + overlapMs };
    const retiring = [...this.retiring.filter((r) => r.cert.fingerprint256 !== next.root.cert.fingerprint256)];
    if (overlapMs > 0) retiring.push(old);
    // The retiring list first: a crash before the root is replaced leaves the old root both active and
    // listed, which open() resolves; the reverse order could lose trust in the old root.
    await this.state?.writeRetiring(
      retiring.map((r): RetiringRoot => ({ certPem: r.pem, retiresAt: r.retiresAt as number })),
    );
    if (stored !== undefined) await this.state?.replaceRoot(stored);
    this.signer = next.signer;
    this.active = next.root;
    this.retiring = retiring;
    this.cachedBundle = undefined;
    this.scheduleRetirement();
    const bundle = this.bundle();
    this.announced = bundle.digest;
    this.emit('bundle', bundle);
    return bundle;
  }

  /** One timer, at the earliest end of an overlap: drops the root, stores the list, emits the bundle. */
  private scheduleRetirement(): void {
    this.cancelRetire?.();
    this.cancelRetire = undefined;
    if (this.retiring.length === 0) return;
    const next = Math.min(...this.retiring.map((r) => r.retiresAt as number));
    this.cancelRetire = scheduleAt(this.clock, next, () => {
      this.cancelRetire = undefined;
      this.cachedBundle = undefined;
      const bundle = this.bundle();
      this.scheduleRetirement();
      this.state
        ?.writeRetiring(this.retiring.map((r) => ({ certPem: r.pem, retiresAt: r.retiresAt as number })))
        .catch(() => {
          // Harmless: open() drops roots whose overlap has ended, whatever the file says.
        });
      // bundle() may have dropped the root already (an issue() after the end): announce it once.
      if (bundle.digest === this.announced) return;
      this.announced = bundle.digest;
      this.emit('bundle', bundle);
    });
  }

  private async generateRoot(): Promise<PemKeyPair> {
    const x = this.x509;
    const keys = (await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, [
      'sign',
      'verify',
    ])) as webcrypto.CryptoKeyPair;
    const now = this.clock.now();
    const serialNumber = randomSerial();
    const cert = await x.X509CertificateGenerator.createSelfSigned({
      serialNumber,
      // The serial in the name keeps two roots of one trust domain apart when a rotation lists both.
      name: `CN=meshgate root CA ${serialNumber.slice(0, 8)}, O=${this.trustDomain}`,
      notBefore: new Date(now - SVID_BACKDATE_MS),
      notAfter: new Date(now + this.rootLifetimeMs),
      keys,
      signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' } as webcrypto.EcdsaParams,
      extensions: [
        new x.BasicConstraintsExtension(true, undefined, true),
        new x.KeyUsagesExtension(x.KeyUsageFlags.keyCertSign | x.KeyUsageFlags.cRLSign, true),
        await x.SubjectKeyIdentifierExtension.create(keys.publicKey),
      ],
    });
    const pkcs8 = Buffer.from(await crypto.subtle.exportKey('pkcs8', keys.privateKey));
    const keyPem = createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' }).export({
      type: 'pkcs8',
      format: 'pem',
    }) as string;
    return { certPem: `${cert.toString('pem')}\n`, keyPem };
  }

  /** Checks a root (and intermediate) and the key that signs: CA flags, key match, chain, validity. */
  private async operatorSigner(
    rootIn: OperatorRoot,
    intermediateIn: PemKeyPair | undefined,
  ): Promise<{ signer: Signer; root: Root }> {
    const rootPem = onePem(rootIn.certPem, 'root');
    const root = parseCert(rootPem, 'the root');
    const now = this.clock.now();
    if (!root.ca) throw new CaError('MG_CA_UNAVAILABLE', 'the root certificate is not a CA (BasicConstraints CA:TRUE)');
    if (!root.checkIssued(root) || !root.verify(root.publicKey))
      throw new CaError('MG_CA_UNAVAILABLE', 'the root certificate is not self-signed');
    if (root.validToDate.getTime() <= now)
      throw new CaError('MG_CA_UNAVAILABLE', `the root expired at ${root.validTo}`);
    if (intermediateIn === undefined) {
      if (rootIn.keyPem === undefined)
        throw new CaError('MG_CA_UNAVAILABLE', 'without an intermediate, the root key is needed to sign');
      const key = signingKey(rootIn.keyPem, root, 'root');
      return {
        signer: {
          cert: root,
          key: await toCryptoKey(key.keyObject),
          hash: key.hash,
          chainPem: '',
          ...(await this.signerNames(rootPem)),
        },
        root: { pem: rootPem, cert: root },
      };
    }
    const interPem = onePem(intermediateIn.certPem, 'intermediate');
    const inter = parseCert(interPem, 'the intermediate');
    if (!inter.ca) throw new CaError('MG_CA_UNAVAILABLE', 'the intermediate is not a CA (BasicConstraints CA:TRUE)');
    if (!inter.checkIssued(root) || !inter.verify(root.publicKey))
      throw new CaError('MG_CA_UNAVAILABLE', 'the intermediate is not signed by the root');
    if (inter.validToDate.getTime() <= now)
      throw new CaError('MG_CA_UNAVAILABLE', `the intermediate expired at ${inter.validTo}`);
    const key = signingKey(intermediateIn.keyPem, inter, 'intermediate');
    return {
      signer: {
        cert: inter,
        key: await toCryptoKey(key.keyObject),
        hash: key.hash,
        chainPem: interPem,
        ...(await this.signerNames(interPem)),
      },
      root: { pem: rootPem, cert: root },
    };
  }

  /** A CA certificate's subject and key identifier (computed by RFC 5280 method 1 when it has none). */
  private async signerNames(pem: string): Promise<Pick<Signer, 'keyId' | 'name'>> {
    const x = this.x509;
    const cert = new x.X509Certificate(pem);
    const ski = cert.getExtension(x.SubjectKeyIdentifierExtension);
    return {
      keyId: (ski ?? (await x.SubjectKeyIdentifierExtension.create(cert.publicKey))).keyId,
      name: cert.subjectName,
    };
  }

  /** The request's public key, once its self-signature and key type are checked. */
  private async verifiedCsrKey(csrPem: string): Promise<ArrayBuffer> {
    if (typeof csrPem !== 'string' || csrPem.length > MAX_CSR_BYTES)
      throw new CaError('MG_CSR_INVALID', `the request must be a PEM string of at most ${MAX_CSR_BYTES} bytes`);
    const block = pemBlocks(csrPem, 'CERTIFICATE REQUEST')[0];
    if (block === undefined) throw new CaError('MG_CSR_INVALID', 'no -----BEGIN CERTIFICATE REQUEST----- block');
    let csr: InstanceType<X509Lib['Pkcs10CertificateRequest']>;
    let valid: boolean;
    try {
      csr = new this.x509.Pkcs10CertificateRequest(block);
      valid = await csr.verify();
    } catch (err) {
      throw new CaError('MG_CSR_INVALID', `the request does not parse: ${(err as Error).message}`, { cause: err });
    }
    if (!valid) throw new CaError('MG_CSR_INVALID', "the request's signature does not verify with its own key");
    const spki = csr.publicKey.rawData;
    const details = createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' }).asymmetricKeyDetails;
    if (details?.namedCurve !== 'prime256v1')
      throw new CaError('MG_CSR_KEY_UNSUPPORTED', 'the request must be for an ECDSA P-256 key');
    return spki;
  }
}

/** 128 random bits, hex; the library encodes it as a positive INTEGER (a leading 00 when needed). */
function randomSerial(): string {
  return Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString('hex');
}

/** node:crypto prints a name one attribute a line; logs and JSON read better with `CN=a, O=b`. */
function oneLine(name: string): string {
  return name.split('\n').join(', ');
}

function onePem(text: string, what: string): string {
  const block = pemBlocks(text, 'CERTIFICATE')[0];
  if (block === undefined) throw new CaError('MG_CA_UNAVAILABLE', `the ${what} is not a PEM certificate`);
  return block;
}

function parseCert(pem: string, what: string): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch (err) {
    throw new CaError('MG_CA_UNAVAILABLE', `${what} does not parse: ${(err as Error).message}`, { cause: err });
  }
}

const CURVE_HASH: Record<string, 'SHA-256' | 'SHA-384'> = { prime256v1: 'SHA-256', secp384r1: 'SHA-384' };
const CURVE_WEBCRYPTO: Record<string, string> = { prime256v1: 'P-256', secp384r1: 'P-384' };

function signingKey(
  keyPem: string,
  cert: X509Certificate,
  what: string,
): { keyObject: KeyObject; hash: 'SHA-256' | 'SHA-384' } {
  let keyObject: KeyObject;
  try {
    keyObject = createPrivateKey(keyPem);
  } catch (err) {
    throw new CaError('MG_CA_UNAVAILABLE', `the ${what} key does not parse: ${(err as Error).message}`, { cause: err });
  }
  const curve = keyObject.asymmetricKeyDetails?.namedCurve;
  const hash = keyObject.asymmetricKeyType === 'ec' && curve !== undefined ? CURVE_HASH[curve] : undefined;
  if (hash === undefined) throw new CaError('MG_CA_UNAVAILABLE', `the ${what} key must be ECDSA P-256 or P-384`);
  if (!cert.checkPrivateKey(keyObject))
    throw new CaError('MG_CA_UNAVAILABLE', `the ${what} key does not belong to the ${what} certificate`);
  return { keyObject, hash };
}

function toCryptoKey(key: KeyObject): Promise<webcrypto.CryptoKey> {
  const namedCurve = CURVE_WEBCRYPTO[key.asymmetricKeyDetails?.namedCurve as string] as string;
  // Not extractable: once loaded, the key can sign but no code path can export it again.
  return Promise.resolve(key.toCryptoKey({ name: 'ECDSA', namedCurve }, false, ['sign']) as webcrypto.CryptoKey);
}
