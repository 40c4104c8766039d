/**
 * SPIFFE IDs (https://github.com/spiffe/spiffe/blob/main/standards/SPIFFE-ID.md): the workload
 * identities of the mesh, `spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>`. Shared by the
 * control plane (which puts them in certificates) and the proxy (which checks them on every hop), so
 * it lives here and does no I/O.
 */
import type { PeerCertificate } from 'node:tls';

/** The trust domain's characters (the standard's, lower case only). */
const TRUST_DOMAIN = /^[a-z0-9._-]+$/;
/** A path segment's characters; `.` and `..` are refused separately. */
const SEGMENT = /^[A-Za-z0-9._-]+$/;
/** The standard's bounds: a trust domain of at most 255 bytes, a whole ID of at most 2048. */
const MAX_TRUST_DOMAIN_BYTES = 255;
const MAX_ID_BYTES = 2048;

export interface SpiffeId {
  readonly id: string;
  readonly trustDomain: string;
  /** `''` for the trust domain's own ID, else `/seg/seg…`. */
  readonly path: string;
  /** Present when the path has the mesh's form `/ns/<namespace>/sa/<service-account>`. */
  readonly namespace?: string;
  readonly serviceAccount?: string;
}

/** Why a string is not a valid SPIFFE ID, or undefined when it is. */
export function spiffeIdProblem(id: string): string | undefined {
  if (!id.startsWith('spiffe://')) return 'must start with spiffe://';
  if (id.length > MAX_ID_BYTES) return `longer than ${MAX_ID_BYTES} bytes`;
  const rest = id.slice('spiffe://'.length);
  const slash = rest.indexOf('/');
  const trustDomain = slash === -1 ? rest : rest.slice(0, slash);
  const problem = trustDomainProblem(trustDomain);
  if (problem !== undefined) return problem;
  if (slash === -1) return undefined;
  for (const segment of rest.slice(slash + 1).split('/')) {
    if (segment === '') return 'the path has an empty segment (or a trailing slash)';
    if (segment === '.' || segment === '..') return 'the path has a . or .. segment';
    if (!SEGMENT.test(segment)) return `path segment "${segment}" has characters other than A-Z a-z 0-9 . - _`;
  }
  return undefined;
}

export function trustDomainProblem(trustDomain: string): string | undefined {
  if (trustDomain === '') return 'the trust domain is empty';
  if (trustDomain.length > MAX_TRUST_DOMAIN_BYTES) return `the trust domain is longer than ${MAX_TRUST_DOMAIN_BYTES}`;
  if (!TRUST_DOMAIN.test(trustDomain))
    return `trust domain "${trustDomain}" has characters other than a-z 0-9 . - _ (no port, user or upper case)`;
  return undefined;
}

/** Parses and validates a SPIFFE ID; throws a TypeError that says what is wrong. */
export function parseSpiffeId(id: string): SpiffeId {
  const problem = spiffeIdProblem(id);
  if (problem !== undefined) throw new TypeError(`invalid SPIFFE ID "${id}": ${problem}`);
  const rest = id.slice('spiffe://'.length);
  const slash = rest.indexOf('/');
  const trustDomain = slash === -1 ? rest : rest.slice(0, slash);
  const path = slash === -1 ? '' : rest.slice(slash);
  const segments = path.split('/');
  if (segments.length === 5 && segments[1] === 'ns' && segments[3] === 'sa')
    return { id, trustDomain, path, namespace: segments[2], serviceAccount: segments[4] };
  return { id, trustDomain, path };
}

/** The mesh's workload ID; throws a TypeError naming the bad part. */
export function spiffeIdOf(trustDomain: string, namespace: string, serviceAccount: string): string {
  const problem = trustDomainProblem(trustDomain);
  if (problem !== undefined) throw new TypeError(`invalid SPIFFE trust domain: ${problem}`);
  for (const [what, value] of [
    ['namespace', namespace],
    ['service account', serviceAccount],
  ] as const)
    if (value === '.' || value === '..' || !SEGMENT.test(value))
      throw new TypeError(`invalid SPIFFE ${what} "${value}": only A-Z a-z 0-9 . - _ (and not . or ..)`);
  return `spiffe://${trustDomain}/ns/${namespace}/sa/${serviceAccount}`;
}

/**
 * The URI SANs of a certificate as Node reports them (`subjectaltname`, e.g. `DNS:a, URI:spiffe://…`).
 * Node quotes a value holding a comma or quote as a JSON string; a valid SPIFFE ID has neither, so a
 * quoted entry is never one and is skipped.
 */
export function uriSans(subjectaltname: string | undefined): string[] {
  if (!subjectaltname) return [];
  const out: string[] = [];
  for (const entry of subjectaltname.split(', ')) if (entry.startsWith('URI:')) out.push(entry.slice(4));
  return out;
}

/**
 * The SPIFFE ID of a peer certificate (`socket.getPeerCertificate()`), or undefined. An X509-SVID has
 * exactly one URI SAN; a certificate with several is not one.
 */
export function spiffeIdOfCertificate(cert: Pick<PeerCertificate, 'subjectaltname'> | undefined): string | undefined {
  const uris = uriSans(cert?.subjectaltname);
  if (uris.length !== 1) return undefined;
  const id = uris[0] as string;
  return spiffeIdProblem(id) === undefined ? id : undefined;
}

/**
 * A `checkServerIdentity` for `tls.connect`/`https`/undici that accepts a server whose SPIFFE ID is one
 * of `expected`, whatever host name was dialled. Node's own check needs a DNS or IP SAN, which an SVID
 * does not carry. Chain and validity are checked by TLS itself (`rejectUnauthorized`, `ca` = bundle);
 * this only pins the identity.
 */
export function checkPeerSpiffeId(
  expected: readonly string[],
): (hostname: string, cert: PeerCertificate) => Error | undefined {
  for (const id of expected) parseSpiffeId(id);
  const allowed = new Set(expected);
  return (_hostname, cert) => {
    const uris = uriSans(cert?.subjectaltname);
    const id = uris.length === 1 ? (uris[0] as string) : undefined;
    if (id !== undefined && allowed.has(id)) return undefined;
    const seen = uris.length === 0 ? 'no URI SAN' : uris.length === 1 ? id : `${uris.length} URI SANs`;
    const err = new Error(`peer SPIFFE ID ${seen} is not one of ${[...allowed].join(', ')}`) as Error & {
      code: string;
      cert: PeerCertificate;
    };
    // Node's own identity errors carry this code, so callers that log TLS failures by code keep working.
    err.code = 'ERR_TLS_CERT_ALTNAME_INVALID';
    err.cert = cert;
    return err;
  };
}
