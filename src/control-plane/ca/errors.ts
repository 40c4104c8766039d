/**
 * Errors of the certificate authority. The code is stable API: the issuing endpoint answers with it
 * (problem+json) and its status, so a proxy can tell a request it must fix from a CA that is down.
 */
export const CaErrorCodes = {
  /** Not a PEM PKCS#10 request, its self-signature does not verify, or it is too large. */
  MG_CSR_INVALID: 400,
  /** The request's key is not ECDSA P-256. */
  MG_CSR_KEY_UNSUPPORTED: 400,
  /** The identity to certify is not a valid SPIFFE ID, or names another trust domain. */
  MG_IDENTITY_INVALID: 400,
  /** The CA's root, intermediate or state directory is unusable (the message says how). */
  MG_CA_UNAVAILABLE: 503,
} as const;

export type CaErrorCode = keyof typeof CaErrorCodes;

export class CaError extends Error {
  readonly code: CaErrorCode;
  readonly status: number;

  constructor(code: CaErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'CaError';
    this.code = code;
    this.status = CaErrorCodes[code];
  }
}
