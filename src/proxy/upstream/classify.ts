/**
 * Turning an undici failure of one try into a stable reply code, a detail a human can act on, and the
 * kind of failure the retry policy reasons about (connect, reset, or the request's own fault).
 */
import type { LocalReplyCode } from '../../core/errors.ts';
import { isTlsFailureCode } from '../identity/mesh-tls.ts';
import { FAILURE_CONNECT, FAILURE_REQUEST, FAILURE_RESET, type FailureKind } from './retry.ts';
import type { UpstreamService } from './service.ts';

/**
 * What the classification needs to know of the request: a forwarded request's StreamContext, or a
 * sub-request (sub-request.ts).
 */
export interface RequestFacts {
  readonly destination: { readonly service: UpstreamService } | null;
  /** Tries made so far, this one included. */
  readonly tries: number;
  /** The overall timeout in force, ms. */
  readonly timeoutMs: number;
}

/** What the classification needs to know of the try. */
export interface TryFacts {
  readonly authority: string;
  /** This try's headers timeout, ms. */
  readonly timeoutMs: number;
  /** The timeout was the per-try limit rather than what was left of the request's. */
  readonly perTryLimited: boolean;
}

export function classifyUpstreamError(
  error: Error,
  ctx: RequestFacts,
  call: TryFacts,
): [LocalReplyCode, string, FailureKind] {
  const code = (error as NodeJS.ErrnoException).code;
  const to = `${ctx.destination?.service.name} (${call.authority})`;
  const tls = ctx.destination?.service.tls;
  if (tls != null && isTlsFailureCode(code)) {
    // The identity check counted its own refusal (UpstreamTls); any other handshake failure is counted here.
    if (code === 'ERR_TLS_CERT_ALTNAME_INVALID')
      return ['MG_UPSTREAM_IDENTITY_MISMATCH', `${to}: ${error.message}`, FAILURE_CONNECT];
    tls.mesh.recordFailure('outbound', code!, error.message);
    return ['MG_UPSTREAM_TLS_FAILURE', `mutual TLS with ${to} failed: ${code}: ${error.message}`, FAILURE_CONNECT];
  }
  switch (code) {
    case 'UND_ERR_HEADERS_TIMEOUT':
      return [
        'MG_UPSTREAM_TIMEOUT',
        call.perTryLimited
          ? `${to} did not answer within the per-try timeout of ${call.timeoutMs} ms (try ${ctx.tries})`
          : `${to} did not answer within ${ctx.timeoutMs} ms`,
        FAILURE_RESET,
      ];
    case 'UND_ERR_CONNECT_TIMEOUT':
      return ['MG_UPSTREAM_TIMEOUT', `connecting to ${to} timed out`, FAILURE_CONNECT];
    case 'UND_ERR_BODY_TIMEOUT':
      return ['MG_UPSTREAM_TIMEOUT', `${to} stopped sending the response body`, FAILURE_RESET];
    case 'ECONNREFUSED':
    case 'ENOTFOUND':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'EAI_AGAIN':
      return ['MG_UPSTREAM_CONNECT_FAILURE', `cannot connect to ${to}: ${code}`, FAILURE_CONNECT];
    case 'ECONNRESET':
    case 'EPIPE':
    case 'UND_ERR_SOCKET':
    case 'UND_ERR_CLOSED':
      return ['MG_UPSTREAM_RESET', `${to} closed the connection before responding`, FAILURE_RESET];
    default:
      if (error.name === 'HTTPParserError' || code?.startsWith('HPE_'))
        return ['MG_UPSTREAM_PROTOCOL_ERROR', `${to} sent a malformed response`, FAILURE_RESET];
      if (code === 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH' || code === 'UND_ERR_ABORTED')
        return ['MG_BAD_REQUEST', 'the request body ended early', FAILURE_REQUEST];
      return ['MG_UPSTREAM_RESET', `${to} failed: ${error.message}`, FAILURE_RESET];
  }
}
