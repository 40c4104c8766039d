import assert from 'node:assert/strict';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { openssl, TestPki } from '../../../test/helpers/certs.ts';
import { ManualClock } from '../../core/clock.ts';
import { DEFAULT_SVID_LIFETIME_MS, SVID_BACKDATE_MS } from '../../core/defaults.ts';
import { buildCsr, generateWorkloadKeyPair } from '../../proxy/identity/csr.ts';
import { CertificateAuthority, type TrustBundle } from './ca.ts';
import { CaError } from './errors.ts';
import { RETIRING_FILE, ROOT_FILE } from './state.ts';

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'meshgate-ca-'));
  dirs.push(dir);
  return dir;
}
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

const photo = { namespace: 'default', serviceAccount: 'photo-service' };
const csr = () => buildCsr(generateWorkloadKeyPair());
/** A clock at a whole second of real time: certificate times have second precision. */
const realClock = () => new ManualClock(Math.floor(Date.now() / 1000) * 1000);

/** `openssl verify` of a chain (leaf first) against a bundle, as a TLS peer would check it. */
function verifies(bundlePem: string, chainPem: string, purpose = 'sslclient'): boolean {
  const dir = tempDir();
  const blocks = chainPem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n/g) ?? [];
  writeFileSync(join(dir, 'bundle.pem'), bundlePem);
  writeFileSync(join(dir, 'leaf.pem'), blocks[0] ?? '');
  writeFileSync(join(dir, 'chain.pem'), blocks.slice(1).join('') || (blocks[0] ?? ''));
  try {
    openssl([
      'verify',
      '-purpose',
      purpose,
      '-CAfile',
      join(dir, 'bundle.pem'),
      '-untrusted',
      join(dir, 'chain.pem'),
      join(dir, 'leaf.pem'),
    ]);
    return true;
  } catch {
    return false;
  }
}

async function rejectsWith(promise: Promise<unknown>, code: string, message?: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof CaError, String(err));
    assert.equal(err.code, code, err.message);
    if (message) assert.match(err.message, message);
    return true;
  });
}

describe('certificate authority: its root', () => {
  it('generates a P-256 root on first start, keeps its key in a 0600 file, and loads the same root again', async () => {
    const stateDir = join(tempDir(), 'ca');
    const ca = await CertificateAuthority.open({ trustDomain: 'cluster.local', stateDir });
    const keyFile = join(stateDir, ROOT_FILE);
    assert.equal(statSync(keyFile).mode & 0o777, 0o600);
    assert.equal(statSync(stateDir).mode & 0o777, 0o700);
    const [root] = ca.bundle().roots;
    assert.equal(root?.active, true);

    const text = openssl(['x509', '-noout', '-text', '-in', keyFile]);
    assert.match(text, /CA:TRUE/);
    assert.match(text, /Certificate Sign, CRL Sign/);
    assert.match(text, /NIST CURVE: P-256/);
    assert.match(text, /O = cluster\.local/);

    const again = await CertificateAuthority.open({ trustDomain: 'cluster.local', stateDir });
    assert.equal(again.bundle().roots[0]?.fingerprint256, root?.fingerprint256);
    assert.equal(again.bundle().pem, ca.bundle().pem);
  });

  it('two CAs starting at once on one directory settle on one root', async () => {
    const stateDir = tempDir();
    const [a, b] = await Promise.all([
      CertificateAuthority.open({ trustDomain: 'td', stateDir }),
      CertificateAuthority.open({ trustDomain: 'td', stateDir }),
    ]);
    assert.equal(a.bundle().digest, b.bundle().digest);
    const onDisk = new X509Certificate(readFileSync(join(stateDir, ROOT_FILE)));
    assert.equal(onDisk.fingerprint256, a.bundle().roots[0]?.fingerprint256);
    // And both sign with the root on disk: a leaf of either verifies against the other's bundle.
    assert.ok(verifies(b.bundle().pem, (await a.issue(csr(), photo)).certChainPem));
  });

  it('refuses to start with a root key file others can read', async () => {
    const stateDir = tempDir();
    await CertificateAuthority.open({ trustDomain: 'td', stateDir });
    chmodSync(join(stateDir, ROOT_FILE), 0o644);
    await rejectsWith(CertificateAuthority.open({ trustDomain: 'td', stateDir }), 'MG_CA_UNAVAILABLE', /chmod 600/);
  });

  it('refuses options it cannot work with', async () => {
    await rejectsWith(CertificateAuthority.open({ trustDomain: 'td' }), 'MG_CA_UNAVAILABLE', /stateDir/);
    await rejectsWith(
      CertificateAuthority.open({ trustDomain: 'Not A Domain', stateDir: tempDir() }),
      'MG_IDENTITY_INVALID',
    );
    await assert.rejects(
      CertificateAuthority.open({ trustDomain: 'td', stateDir: tempDir(), svidLifetimeMs: 10 }),
      RangeError,
    );
  });
});

describe('certificate authority: issuing', () => {
  it('issues an SVID for the identity it is given, ignoring the subject and SANs the request asks for', async () => {
    const clock = realClock();
    const ca = await CertificateAuthority.open({ trustDomain: 'cluster.local', stateDir: tempDir(), clock });
    const dir = tempDir();
    // A request made by openssl, asking for another identity: the CA must not care.
    openssl([
      'req',
      '-new',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      join(dir, 'k.pem'),
      '-out',
      join(dir, 'r.csr'),
      '-subj',
      '/CN=admin',
      '-addext',
      'subjectAltName=DNS:evil.example,URI:spiffe://cluster.local/ns/kube-system/sa/admin',
    ]);
    const svid = await ca.issue(readFileSync(join(dir, 'r.csr'), 'utf8'), photo);
    assert.equal(svid.spiffeId, 'spiffe://cluster.local/ns/default/sa/photo-service');
    writeFileSync(join(dir, 'leaf.pem'), svid.certPem);

    const text = openssl(['x509', '-noout', '-text', '-in', join(dir, 'leaf.pem')]);
    assert.match(
      text,
      /X509v3 Subject Alternative Name: \n\s+URI:spiffe:\/\/cluster\.local\/ns\/default\/sa\/photo-service\n/,
    );
    assert.doesNotMatch(text, /evil|admin|kube-system/);
    assert.match(text, /TLS Web Server Authentication, TLS Web Client Authentication/);
    assert.match(text, /Key Usage: critical\n\s+Digital Signature, Key Agreement/);
    assert.match(text, /CA:FALSE/);
    assert.match(text, /Authority Key Identifier/);
    // The lifetime: 24 h from now, and a not-before a minute back for clocks that lag.
    const dates = openssl(['x509', '-noout', '-dates', '-in', join(dir, 'leaf.pem')]);
    const notBefore = Date.parse(/notBefore=(.*)/.exec(dates)?.[1] ?? '');
    const notAfter = Date.parse(/notAfter=(.*)/.exec(dates)?.[1] ?? '');
    assert.equal(notAfter - clock.now(), DEFAULT_SVID_LIFETIME_MS);
    assert.equal(clock.now() - notBefore, SVID_BACKDATE_MS);
    assert.equal(svid.notAfter.getTime(), notAfter);
    // The key is the requester's: the CA never had the private key, yet the certificate matches it.
    const leaf = new X509Certificate(svid.certPem);
    assert.ok(leaf.checkPrivateKey(createPrivateKey(readFileSync(join(dir, 'k.pem')))));
    assert.equal(svid.serial, leaf.serialNumber);
    assert.equal(svid.issuer, ca.bundle().roots[0]?.subject);
    assert.ok(verifies(svid.bundlePem, svid.certChainPem, 'sslclient'));
    assert.ok(verifies(svid.bundlePem, svid.certChainPem, 'sslserver'));
  });

  it('uses a random 128-bit serial and a lifetime configured in seconds', async () => {
    const clock = realClock();
    const ca = await CertificateAuthority.open({
      trustDomain: 'td',
      stateDir: tempDir(),
      clock,
      svidLifetimeMs: 2_000,
    });
    const a = await ca.issue(csr(), photo);
    const b = await ca.issue(csr(), photo);
    assert.notEqual(a.serial, b.serial);
    for (const s of [a.serial, b.serial]) assert.ok(s.replace(/^00/, '').length <= 32 && s.length >= 24, s);
    assert.equal(a.notAfter.getTime() - clock.now(), 2_000);
  });

  it('refuses a request that is not one, is tampered with, or is for a key it does not issue for', async () => {
    const ca = await CertificateAuthority.open({ trustDomain: 'td', stateDir: tempDir() });
    await rejectsWith(ca.issue('hello', photo), 'MG_CSR_INVALID', /CERTIFICATE REQUEST/);
    await rejectsWith(
      ca.issue('-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n', photo),
      'MG_CSR_INVALID',
    );
    await rejectsWith(ca.issue(`${csr()}${' '.repeat(20_000)}`, photo), 'MG_CSR_INVALID', /at most/);

    // One flipped bit in the signature: the proof of possession of the key no longer verifies.
    const der = Buffer.from(csr().replace(/-----[^-]+-----|\s/g, ''), 'base64');
    der[der.length - 1] = (der[der.length - 1] as number) ^ 0x01;
    const tampered = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
    await rejectsWith(ca.issue(tampered, photo), 'MG_CSR_INVALID', /does not verify/);

    const dir = tempDir();
    for (const key of [['rsa:2048'], ['ec', '-pkeyopt', 'ec_paramgen_curve:P-384']]) {
      openssl([
        'req',
        '-new',
        '-newkey',
        ...key,
        '-nodes',
        '-keyout',
        join(dir, 'k'),
        '-out',
        join(dir, 'r'),
        '-subj',
        '/CN=x',
      ]);
      await rejectsWith(ca.issue(readFileSync(join(dir, 'r'), 'utf8'), photo), 'MG_CSR_KEY_UNSUPPORTED', /P-256/);
    }
  });

  it('refuses an identity that is not a valid SPIFFE ID or belongs to another trust domain', async () => {
    const ca = await CertificateAuthority.open({ trustDomain: 'td', stateDir: tempDir() });
    await rejectsWith(ca.issue(csr(), { namespace: 'a/b', serviceAccount: 's' }), 'MG_IDENTITY_INVALID', /namespace/);
    await rejectsWith(
      ca.issue(csr(), { ...photo, trustDomain: 'other.domain' }),
      'MG_IDENTITY_INVALID',
      /trust domain td, not other\.domain/,
    );
    assert.equal(
      (await ca.issue(csr(), { ...photo, trustDomain: 'td' })).spiffeId,
      'spiffe://td/ns/default/sa/photo-service',
    );
  });
});

describe('certificate authority: an operator-supplied root', () => {
  const pki = new TestPki('operator-root');
  after(() => pki.remove());

  /** An intermediate signed by `ca` (openssl), P-256. */
  function intermediate(ca: TestPki, name: string): { certPem: string; keyPem: string } {
    const key = join(ca.dir, `${name}.key`);
    const req = join(ca.dir, `${name}.csr`);
    const cert = join(ca.dir, `${name}.pem`);
    const ext = join(ca.dir, `${name}.ext`);
    writeFileSync(ext, 'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n');
    openssl([
      'req',
      '-new',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      key,
      '-out',
      req,
      '-subj',
      `/CN=${name}`,
    ]);
    openssl([
      'x509',
      '-req',
      '-in',
      req,
      '-CA',
      ca.ca.cert,
      '-CAkey',
      ca.ca.key,
      '-CAcreateserial',
      '-out',
      cert,
      '-days',
      '1',
      '-extfile',
      ext,
    ]);
    return { certPem: readFileSync(cert, 'utf8'), keyPem: readFileSync(key, 'utf8') };
  }

  it('signs with the root key when there is no intermediate, and writes nothing without a stateDir', async () => {
    const ca = await CertificateAuthority.open({
      trustDomain: 'td',
      root: { certPem: readFileSync(pki.ca.cert, 'utf8'), keyPem: readFileSync(pki.ca.key, 'utf8') },
    });
    const svid = await ca.issue(csr(), photo);
    assert.equal(svid.issuer, 'CN=operator-root');
    assert.equal(svid.bundlePem, pki.caPem().toString());
    assert.ok(verifies(pki.caPem().toString(), svid.certChainPem));
  });

  it('signs with an intermediate, returns the chain, and needs no root key', async () => {
    const inter = intermediate(pki, 'operator-intermediate');
    const ca = await CertificateAuthority.open({
      trustDomain: 'td',
      root: { certPem: readFileSync(pki.ca.cert, 'utf8') },
      intermediate: inter,
    });
    const svid = await ca.issue(csr(), photo);
    assert.equal(svid.issuer, 'CN=operator-intermediate');
    const chain = svid.certChainPem.match(/-----BEGIN CERTIFICATE-----/g) ?? [];
    assert.equal(chain.length, 2, 'leaf and intermediate');
    assert.ok(svid.certChainPem.endsWith(inter.certPem.trimEnd() + '\n'));
    assert.equal(ca.bundle().roots.length, 1, 'the bundle holds roots only');
    assert.ok(verifies(ca.bundle().pem, svid.certChainPem));
    assert.equal(ca.signerInfo().subject, 'CN=operator-intermediate');
    await rejectsWith(ca.rotate(), 'MG_CA_UNAVAILABLE', /needs the new root/);
  });

  it("refuses a key that is not the certificate's, and an intermediate the root did not sign", async () => {
    const other = new TestPki('other-root');
    try {
      await rejectsWith(
        CertificateAuthority.open({
          trustDomain: 'td',
          root: { certPem: readFileSync(pki.ca.cert, 'utf8'), keyPem: readFileSync(other.ca.key, 'utf8') },
        }),
        'MG_CA_UNAVAILABLE',
        /does not belong/,
      );
      await rejectsWith(
        CertificateAuthority.open({
          trustDomain: 'td',
          root: { certPem: readFileSync(pki.ca.cert, 'utf8') },
          intermediate: intermediate(other, 'foreign-intermediate'),
        }),
        'MG_CA_UNAVAILABLE',
        /not signed by the root/,
      );
      const leaf = pki.leaf('not-a-ca', ['a.example']);
      await rejectsWith(
        CertificateAuthority.open({
          trustDomain: 'td',
          root: { certPem: readFileSync(leaf.cert, 'utf8'), keyPem: readFileSync(leaf.key, 'utf8') },
        }),
        'MG_CA_UNAVAILABLE',
        /not a CA/,
      );
    } finally {
      other.remove();
    }
  });
});

describe('certificate authority: root rotation', () => {
  it('trusts the old and the new root during the overlap, then the new one only; a restart keeps the state', async () => {
    const clock = realClock();
    const stateDir = tempDir();
    const overlapMs = 60_000;
    const ca = await CertificateAuthority.open({ trustDomain: 'td', stateDir, clock, rotationOverlapMs: overlapMs });
    const bundles: TrustBundle[] = [];
    ca.on('bundle', (b) => bundles.push(b));
    const oldRoot = ca.bundle().roots[0]?.fingerprint256;
    const oldLeaf = await ca.issue(csr(), photo);

    const during = await ca.rotate();
    assert.equal(bundles.length, 1, 'the rotation announced its bundle');
    assert.equal(during.roots.length, 2);
    assert.equal(during.roots[0]?.active, true);
    assert.notEqual(during.roots[0]?.fingerprint256, oldRoot);
    assert.equal(during.roots[1]?.fingerprint256, oldRoot);
    assert.equal(during.roots[1]?.retiresAt?.getTime(), clock.now() + overlapMs);
    assert.notEqual(during.roots[0]?.subject, during.roots[1]?.subject, 'two roots, two names');

    const newLeaf = await ca.issue(csr(), photo);
    assert.equal(newLeaf.issuer, during.roots[0]?.subject, 'new leaves come from the new root');
    assert.equal(newLeaf.bundlePem, during.pem);
    assert.ok(verifies(during.pem, oldLeaf.certChainPem), 'an old leaf verifies during the overlap');
    assert.ok(verifies(during.pem, newLeaf.certChainPem), 'a new leaf verifies during the overlap');
    assert.ok(!verifies(oldLeaf.bundlePem, newLeaf.certChainPem), 'the old bundle alone does not trust the new root');
    assert.equal(statSync(join(stateDir, ROOT_FILE)).mode & 0o777, 0o600, 'the new key file is 0600 too');

    // A restart during the overlap keeps both roots and signs with the new one.
    const restarted = await CertificateAuthority.open({
      trustDomain: 'td',
      stateDir,
      clock,
      rotationOverlapMs: overlapMs,
    });
    assert.equal(restarted.bundle().pem, during.pem);
    assert.equal((await restarted.issue(csr(), photo)).issuer, newLeaf.issuer);
    restarted.close();

    clock.advance(overlapMs - 1);
    assert.equal(bundles.length, 1, 'nothing changes before the overlap ends');
    clock.advance(1);
    assert.equal(bundles.length, 2, 'the end of the overlap is announced');
    const afterOverlap = ca.bundle();
    assert.deepEqual(bundles[1], afterOverlap);
    assert.equal(afterOverlap.roots.length, 1);
    assert.ok(!verifies(afterOverlap.pem, oldLeaf.certChainPem), 'the old leaf no longer verifies');
    assert.ok(verifies(afterOverlap.pem, newLeaf.certChainPem));
    assert.equal(clock.pending, 0, 'no timer left');

    // The file follows (written in the background); a restart no longer trusts the old root.
    const deadline = Date.now() + 5_000;
    while (readFileSync(join(stateDir, RETIRING_FILE), 'utf8').includes('BEGIN') && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 10));
    const later = await CertificateAuthority.open({ trustDomain: 'td', stateDir, clock });
    assert.equal(later.bundle().pem, afterOverlap.pem);
  });

  it('rotates to a root the operator supplies, and can drop the old root at once', async () => {
    const pki = new TestPki('next-root');
    try {
      const clock = realClock();
      const ca = await CertificateAuthority.open({ trustDomain: 'td', stateDir: tempDir(), clock });
      const bundle = await ca.rotate({
        root: { certPem: readFileSync(pki.ca.cert, 'utf8'), keyPem: readFileSync(pki.ca.key, 'utf8') },
        overlapMs: 0,
      });
      assert.deepEqual(
        bundle.roots.map((r) => r.subject),
        ['CN=next-root'],
      );
      assert.equal((await ca.issue(csr(), photo)).issuer, 'CN=next-root');
      assert.equal(clock.pending, 0);
    } finally {
      pki.remove();
    }
  });
});
