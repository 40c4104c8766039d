/**
 * Replies the proxy produces itself: `application/problem+json` (RFC 9457) with a stable code,
 * the request id and a reason a human can act on; the code is also in a header for clients that
 * do not read bodies (house rule 8). Active filters see the head before it is written.
 */
import type { Http2ServerResponse } from 'node:http2';
import {
  LOCAL_REPLY_CODE_HEADER,
  REQUEST_ID_HEADER,
  RETRY_AFTER_CIRCUIT_OPEN_SECONDS,
  RETRY_AFTER_CONCURRENCY_LIMITED_SECONDS,
  RETRY_AFTER_NO_HEALTHY_UPSTREAM_SECONDS,
  RETRY_AFTER_SHUTTING_DOWN_SECONDS,
  RETRY_AFTER_STORE_UNAVAILABLE_SECONDS,
} from '../core/defaults.ts';
import type { LocalReply } from '../core/plugin.ts';
import { runResponseFilters } from './chain/filters.ts';
import type { StreamContext } from './context.ts';
import { pushVersionHeaders } from './versioning.ts';

export interface ProblemDetails {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  requestId: string;
  traceId?: string;
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

export function problemOf(reply: LocalReply, requestId: string, traceId?: string): ProblemDetails {
  return {
    type: `urn:meshgate:error:${reply.code}`,
    title: STATUS_TITLES[reply.status] ?? 'Error',
    status: reply.status,
    detail: reply.detail,
    code: reply.code,
    requestId,
    ...(traceId === undefined ? {} : { traceId }),
  };
}

/**
 * Overload replies and the Retry-After they carry when nothing better is known (docs/errors.md); a
 * reply with its own (a rate limit's window, a quota's period, an ejection's end) keeps it.
 */
const RETRY_AFTER_BY_CODE: Record<string, string> = {
  MG_CIRCUIT_OPEN: String(RETRY_AFTER_CIRCUIT_OPEN_SECONDS),
  MG_CONCURRENCY_LIMITED: String(RETRY_AFTER_CONCURRENCY_LIMITED_SECONDS),
  MG_NO_HEALTHY_UPSTREAM: String(RETRY_AFTER_NO_HEALTHY_UPSTREAM_SECONDS),
  MG_SHUTTING_DOWN: String(RETRY_AFTER_SHUTTING_DOWN_SECONDS),
  MG_STORE_UNAVAILABLE: String(RETRY_AFTER_STORE_UNAVAILABLE_SECONDS),
};

/**
 * Writes a local reply. Only when nothing was sent yet; returns false otherwise (the caller then
 * aborts the response instead, so a client never takes a half reply for a whole one).
 */
export function writeLocalReply(ctx: StreamContext, reply: LocalReply): boolean {
  const res = ctx.res;
  if (res.headersSent || res.destroyed) return false;
  if (ctx.h2 && reply.body === undefined && isGrpc(ctx)) {
    writeGrpcStatus(ctx, reply);
    return true;
  }
  // A 304 (a cache's answer to a conditional request) has no body, nor the framing of one.
  const bodiless = reply.status === 304;
  const body = bodiless ? '' : (reply.body?.text ?? JSON.stringify(problemOf(reply, ctx.requestId, ctx.traceId)));
  const headers: (string | string[])[] = bodiless
    ? [REQUEST_ID_HEADER, ctx.requestId]
    : [
        'content-type',
        reply.body?.contentType ?? 'application/problem+json',
        'content-length',
        String(typeof body === 'string' ? Buffer.byteLength(body) : body.length),
        REQUEST_ID_HEADER,
        ctx.requestId,
      ];
  if (reply.plain !== true) headers.push(LOCAL_REPLY_CODE_HEADER, reply.code, 'cache-control', 'no-store');
  let retryAfter: string | undefined = RETRY_AFTER_BY_CODE[reply.code];
  if (reply.headers)
    for (const [k, v] of reply.headers) {
      const name = k.toLowerCase();
      if (name === 'retry-after') retryAfter = undefined;
      headers.push(name, v);
    }
  if (retryAfter !== undefined) headers.push('retry-after', retryAfter);
  const version = ctx.route?.version;
  if (version != null) pushVersionHeaders(headers, version);
  runResponseFilters(ctx, reply.status, headers);
  res.writeHead(reply.status, headers as string[]);
  res.end(ctx.method === 'HEAD' || bodiless ? undefined : body);
  return true;
}

/** gRPC over HTTP/2; not gRPC-Web, whose status travels in the body. */
function isGrpc(ctx: StreamContext): boolean {
  const type = ctx.header('content-type') ?? (ctx.req.headers['content-type'] as string | undefined);
  return type?.startsWith('application/grpc') === true && !type.startsWith('application/grpc-web');
}

/** gRPC status codes (grpc/doc/statuscodes.md). */
export const GrpcStatus = {
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const;

const GRPC_BY_CODE: Record<string, number> = {
  MG_ROUTE_NOT_FOUND: GrpcStatus.UNIMPLEMENTED,
  MG_NO_HEALTHY_UPSTREAM: GrpcStatus.UNAVAILABLE,
  MG_UPSTREAM_CONNECT_FAILURE: GrpcStatus.UNAVAILABLE,
  MG_UPSTREAM_RESET: GrpcStatus.UNAVAILABLE,
  MG_SHUTTING_DOWN: GrpcStatus.UNAVAILABLE,
  MG_UPSTREAM_TIMEOUT: GrpcStatus.DEADLINE_EXCEEDED,
  MG_UPSTREAM_PROTOCOL_ERROR: GrpcStatus.INTERNAL,
  MG_INTERNAL: GrpcStatus.INTERNAL,
};

const GRPC_BY_STATUS: Record<number, number> = {
  400: GrpcStatus.INVALID_ARGUMENT,
  401: GrpcStatus.UNAUTHENTICATED,
  403: GrpcStatus.PERMISSION_DENIED,
  404: GrpcStatus.UNIMPLEMENTED,
  408: GrpcStatus.DEADLINE_EXCEEDED,
  413: GrpcStatus.RESOURCE_EXHAUSTED,
  414: GrpcStatus.RESOURCE_EXHAUSTED,
  429: GrpcStatus.RESOURCE_EXHAUSTED,
  431: GrpcStatus.RESOURCE_EXHAUSTED,
  499: GrpcStatus.CANCELLED,
  500: GrpcStatus.INTERNAL,
  501: GrpcStatus.UNIMPLEMENTED,
  504: GrpcStatus.DEADLINE_EXCEEDED,
};

/** The gRPC status for a local reply: by its code where one says more, else by its HTTP status. */
export function grpcStatusOf(reply: LocalReply): number {
  return (
    GRPC_BY_CODE[reply.code] ??
    GRPC_BY_STATUS[reply.status] ??
    (reply.status >= 500 ? GrpcStatus.UNAVAILABLE : GrpcStatus.UNKNOWN)
  );
}

/** grpc-message is percent-encoded UTF-8: bytes outside 0x20–0x7E, and `%`, are escaped. */
export function encodeGrpcMessage(message: string): string {
  let out = '';
  for (const byte of Buffer.from(message)) {
    out +=
      byte >= 0x20 && byte <= 0x7e && byte !== 0x25
        ? String.fromCharCode(byte)
        : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/**
 * A gRPC client reads the outcome from grpc-status, not from the HTTP status: answer 200 with a
 * trailers-only response (one HEADERS frame with END_STREAM), as a gRPC server does for an error.
 */
function writeGrpcStatus(ctx: StreamContext, reply: LocalReply) {
  const headers: (string | string[])[] = [
    'content-type',
    'application/grpc',
    'grpc-status',
    String(grpcStatusOf(reply)),
    'grpc-message',
    encodeGrpcMessage(`${reply.detail} (${reply.code})`),
    LOCAL_REPLY_CODE_HEADER,
    reply.code,
    REQUEST_ID_HEADER,
    ctx.requestId,
  ];
  if (reply.headers) for (const [k, v] of reply.headers) headers.push(k.toLowerCase(), v);
  const version = ctx.route?.version;
  if (version != null) pushVersionHeaders(headers, version);
  runResponseFilters(ctx, 200, headers);
  const res = ctx.res as unknown as Http2ServerResponse;
  res.statusCode = 200;
  const out: Record<string, string | string[]> = { ':status': '200' };
  for (let i = 0; i < headers.length; i += 2) out[headers[i] as string] = headers[i + 1]!;
  res.stream.respond(out, { endStream: true });
}
