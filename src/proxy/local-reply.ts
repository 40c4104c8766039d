/**
 * Replies the proxy produces itself: `application/problem+json` (RFC 9457) with a stable code,
 * the request id and a reason a human can act on; the code is also in a header for clients that
 * do not read bodies (house rule 8). Active filters see the head before it is written.
 */
import { LOCAL_REPLY_CODE_HEADER, REQUEST_ID_HEADER } from '../core/defaults.ts';
import type { LocalReply } from '../core/plugin.ts';
import { runResponseFilters } from './chain/filters.ts';
import type { StreamContext } from './context.ts';

export interface ProblemDetails {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  requestId: string;
}

const STATUS_TITLES: Record<number, string> = {
  400: 'Bad request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not found',
  405: 'Method not allowed',
  408: 'Request timeout',
  413: 'Content too large',
  414: 'URI too long',
  429: 'Too many requests',
  431: 'Request header fields too large',
  500: 'Internal proxy error',
  502: 'Bad gateway',
  503: 'Service unavailable',
  504: 'Gateway timeout',
};

export function problemOf(reply: LocalReply, requestId: string): ProblemDetails {
  return {
    type: `urn:meshgate:error:${reply.code}`,
    title: STATUS_TITLES[reply.status] ?? 'Error',
    status: reply.status,
    detail: reply.detail,
    code: reply.code,
    requestId,
  };
}

/**
 * Writes a local reply. Only when nothing was sent yet; returns false otherwise (the caller then
 * aborts the response instead, so a client never takes a half reply for a whole one).
 */
export function writeLocalReply(ctx: StreamContext, reply: LocalReply): boolean {
  const res = ctx.res;
  if (res.headersSent || res.destroyed) return false;
  const body = reply.body?.text ?? JSON.stringify(problemOf(reply, ctx.requestId));
  const headers: (string | string[])[] = [
    'content-type',
    reply.body?.contentType ?? 'application/problem+json',
    'content-length',
    String(Buffer.byteLength(body)),
    LOCAL_REPLY_CODE_HEADER,
    reply.code,
    REQUEST_ID_HEADER,
    ctx.requestId,
    'cache-control',
    'no-store',
  ];
  if (reply.headers) for (const [k, v] of reply.headers) headers.push(k.toLowerCase(), v);
  runResponseFilters(ctx, reply.status, headers);
  res.writeHead(reply.status, headers as string[]);
  res.end(ctx.method === 'HEAD' ? undefined : body);
  return true;
}
