/**
 * Certificate renewals authenticated by the proxy's current certificate, on the plain-HTTP API: the
 * request carries the current chain and a signature, by the current key, over the proxy id, a signing
 * time and the new CSR (`renewalProofPayload`). This proves what a TLS client certificate would (the
 * caller holds the key of a certificate the CA issued and that has not expired) without TLS on the
 * API. A recorded proof is worth little: it only ever gets a certificate for the new request's key,
 * which the recorder does not have, and only within RENEWAL_PROOF_MAX_AGE_MS of its signing.
 */
import { verify, X509Certificate } from 'node:crypto';
import { type CertificateRequest, renewalProofPayload } from '../../api/mesh.ts';
import { RENEWAL_PROOF_MAX_AGE_MS } from '../../core/defaults.ts';
import { parseSpiffeId, spiffeIdOfCertificate } from '../../core/spiffe.ts';
import type { Principal } from './tokens.ts';

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/**
 * The principal a renewal proof establishes, or a reason (for the 401's detail) why it establishes none.
 * `bundlePem`: the roots trusted now (a rotated-out root still counts during its overlap).
 */
export function verifyRenewalProof(
  request: Required<Pick<CertificateRequest, 'proof'>> & Pick<CertificateRequest, 'proxy' | 'csr'>,
  bundlePem: string,
  trustDomain: string,
  now: number,
): Extract<Principal, { kind: 'svid' }> | { problem: string } {
  const { proof } = request;
  const signedAt = Date.parse(proof.signedAt);
  if (Number.isNaN(signedAt) || Math.abs(now - signedAt) > RENEWAL_PROOF_MAX_AGE_MS)
    return { problem: `the proof's signedAt is not within ${RENEWAL_PROOF_MAX_AGE_MS / 1000} s of now` };
  let chain: X509Certificate[];
  let roots: X509Certificate[];
  try {
    chain = (proof.certChainPem.match(PEM_CERT) ?? []).map((p) => new X509Certificate(p));
    roots = (bundlePem.match(PEM_CERT) ?? []).map((p) => new X509Certificate(p));
  } catch {
    return { problem: "the proof's certificate does not parse" };
  }
  const leaf = chain[0];
  if (leaf === undefined || chain.length > 2)
    return { problem: 'the proof needs the certificate (and at most one intermediate)' };
  if (leaf.ca) return { problem: "the proof's certificate is a CA certificate" };
  for (const c of chain)
    if (c.validFromDate.getTime() > now || c.validToDate.getTime() <= now)
      return { problem: "the proof's certificate is not valid now (expired?): renew with the join token" };
  // Leaf → (intermediate →) a root of the bundle, each link checked by name and signature.
  const signedBy = (child: X509Certificate, parent: X509Certificate) =>
    parent.ca && child.checkIssued(parent) && child.verify(parent.publicKey);
  const intermediate = chain[1];
  const anchored =
    intermediate === undefined
      ? roots.some((r) => signedBy(leaf, r))
      : signedBy(leaf, intermediate) && roots.some((r) => signedBy(intermediate, r));
  if (!anchored) return { problem: "the proof's certificate does not chain to the trust bundle" };
  const id = spiffeIdOfCertificate({ subjectaltname: leaf.subjectAltName ?? '' });
  const parsed = id === undefined ? undefined : parseSpiffeId(id);
  if (parsed?.trustDomain !== trustDomain || parsed.namespace === undefined || parsed.serviceAccount === undefined)
    return { problem: "the proof's certificate has no workload SPIFFE ID of this trust domain" };
  let valid = false;
  try {
    valid = verify(
      'sha256',
      renewalProofPayload(request.proxy, proof.signedAt, request.csr),
      leaf.publicKey,
      Buffer.from(proof.signature, 'base64'),
    );
  } catch {
    valid = false;
  }
  if (!valid) return { problem: "the proof's signature does not verify with the certificate's key" };
  return { kind: 'svid', namespace: parsed.namespace, serviceAccount: parsed.serviceAccount };
}
