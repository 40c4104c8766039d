/**
 * Replies the proxy produces itself: `application/problem+json` (RFC 9457) with a stable code,
 * the request id and a reason a human can act on; the code is also in a header for clients that
 * do not read bodies (house rule 8).
 */
import type { ServerResponse } from 'node:http';
import { LOCAL_REPLY_CODE_HEADER, REQUEST_ID_HEADER } from '../core/defaults.ts';
import { type LocalReplyCode, LocalReplyCodes } from '../core/errors.ts';

export interface ProblemDetails {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  requestId: string;
  traceId?: string;
}

export function problem(code: LocalReplyCode, requestId: string, detail: string, status?: number): ProblemDetails {
  const known = LocalReplyCodes[code];
  return {
    type: `urn:meshgate:error:${code}`,
    title: known.title,
    status: status ?? known.status,
    detail,
    code,
    requestId,
  };
}

/**
 * Writes a problem reply. Only when nothing was sent yet; returns false otherwise (the caller then
 * aborts the response instead, so a client never takes a half reply for a whole one).
 */
export function writeProblem(
  res: ServerResponse,
  details: ProblemDetails,
  extraHeaders?: readonly [string, string][],
): boolean {
  if (res.headersSent || res.destroyed) return false;
  const body = JSON.stringify(details);
  const headers: (string | number)[] = [
    'content-type',
    'application/problem+json',
    'content-length',
    Buffer.byteLength(body),
    LOCAL_REPLY_CODE_HEADER,
    details.code,
    REQUEST_ID_HEADER,
    details.requestId,
    'cache-control',
    'no-store',
  ];
  if (extraHeaders) for (const [k, v] of extraHeaders) headers.push(k, v);
  res.writeHead(details.status, headers as string[]);
  res.end(res.req?.method === 'HEAD' ? undefined : body);
  return true;
}
