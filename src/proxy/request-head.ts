/**
 * The request head pass: target, Host, request id, and the headers the upstream will get (hop-by-hop
 * removed, forwarding headers set per the listener's trusted hops), read once from `rawHeaders`.
 */
import type { Http2ServerRequest } from 'node:http2';
import { REQUEST_ID_HEADER } from '../core/defaults.ts';
import { parseB3, parseTraceparent } from '../observability/trace-context.ts';
import { traceparentOf } from '../observability/tracing.ts';
import { isValidAuthority, splitAbsoluteForm } from './authority.ts';
import { guardBody } from './body-guard.ts';
import type { StreamContext } from './context.ts';
import {
  clientAddress,
  connectionListed,
  forwardedElement,
  H_AUTHORITY,
  H_B3,
  H_CONNECTION,
  H_CONTENT_LENGTH,
  H_DROP,
  H_EXPLAIN,
  H_FORWARDED,
  H_HOST,
  H_REQUEST_ID,
  H_REQUEST_TIMEOUT,
  H_TE,
  H_TRACEPARENT,
  H_TRACESTATE,
  H_TRANSFER_ENCODING,
  H_XF_HOST,
  H_XF_PROTO,
  H_XFCC,
  H_XFF,
  REQUEST_HEADER_ACTIONS,
  removeHeaders,
} from './headers.ts';
import { peerOf } from './listener/peer.ts';
import { needsNormalising, normalisePath, PATH_OUTSIDE_ROOT } from './path.ts';
import { newRequestId } from './request-id.ts';

const MAX_REQUEST_ID_LENGTH = 200;

/**
 * Reads the request head into `ctx`: target, headers for upstream (hop-by-hop removed, forwarding
 * headers set), request id. Returns false after replying when the request cannot be served.
 */
export function readRequestHead(ctx: StreamContext): boolean {
  const req = ctx.req;
  let target = req.url ?? '/';
  if (target.length > ctx.listener.config.limits.maxUrlBytes) {
    ctx.failAndClose(
      'MG_URL_TOO_LONG',
      `the request target is ${target.length} bytes; this listener accepts ${ctx.listener.config.limits.maxUrlBytes}`,
    );
    return false;
  }
  // Absolute form (`GET http://svc/path`), as sent to an HTTP proxy: its authority replaces Host
  // (RFC 9112 §3.2.2), and its path is kept as sent.
  let targetAuthority: string | undefined;
  if (target.charCodeAt(0) !== 0x2f /* / */) {
    const absolute = splitAbsoluteForm(target);
    if (absolute === null) {
      ctx.failAndClose(
        'MG_BAD_REQUEST',
        'the request target is neither a path nor an http(s) URL with a valid authority (RFC 9112 §3.2)',
      );
      return false;
    }
    targetAuthority = absolute.authority;
    target = absolute.target;
  }
  const q = target.indexOf('?');
  let path = q === -1 ? target : target.slice(0, q);
  ctx.query = q === -1 ? '' : target.slice(q + 1);

  const raw = req.rawHeaders;
  const out = ctx.headers;
  const trusted = ctx.listener.config.trustedHops > 0;
  let hostHeader: string | undefined;
  let h2Authority: string | undefined;
  let connection: string | undefined;
  let xff: string | undefined;
  let xfProto: string | undefined;
  let xfHost: string | undefined;
  let forwarded: string | undefined;
  let traceparent: string | undefined;
  let tracestate: string | undefined;
  let b3 = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    const value = raw[i + 1]!;
    const action = REQUEST_HEADER_ACTIONS.get(name);
    if (action === undefined) {
      out.push(name, value);
      continue;
    }
    switch (action) {
      case H_DROP:
        break;
      case H_HOST:
        // Two Hosts leave the target ambiguous between this proxy and the upstream (RFC 9112 §3.2).
        if (hostHeader !== undefined && !ctx.h2) {
          ctx.failAndClose('MG_BAD_REQUEST', 'more than one Host header');
          return false;
        }
        if (!isValidAuthority(value)) return badAuthority(ctx, 'Host');
        // HTTP/2: `:authority` names the target; a Host naming another is malformed (RFC 9113 §8.3.1).
        if (h2Authority !== undefined) {
          if (value.toLowerCase() !== h2Authority.toLowerCase()) return badAuthority(ctx, 'Host');
          break;
        }
        hostHeader = value;
        break;
      case H_AUTHORITY:
        if (!isValidAuthority(value) || value === '') return badAuthority(ctx, ':authority');
        if (hostHeader !== undefined && hostHeader.toLowerCase() !== value.toLowerCase())
          return badAuthority(ctx, 'Host');
        h2Authority = hostHeader = value;
        break;
      case H_TE:
        if (value.toLowerCase().includes('trailers')) ctx.teTrailers = true;
        break;
      case H_CONNECTION:
        connection = connection === undefined ? value : `${connection}, ${value}`;
        break;
      case H_REQUEST_ID:
        if (value.length > 0 && value.length <= MAX_REQUEST_ID_LENGTH) ctx.requestId = value;
        break;
      // A client's forwarding headers count only from trusted hops; otherwise this proxy's replace them.
      case H_XFF:
        if (trusted) xff = xff === undefined ? value : `${xff}, ${value}`;
        break;
      case H_XF_PROTO:
        if (trusted) xfProto = value;
        break;
      case H_XF_HOST:
        if (trusted) xfHost = value;
        break;
      case H_FORWARDED:
        if (trusted) forwarded = forwarded === undefined ? value : `${forwarded}, ${value}`;
        break;
      case H_TRACEPARENT:
        traceparent = value;
        break;
      case H_TRACESTATE:
        tracestate = tracestate === undefined ? value : `${tracestate},${value}`;
        break;
      case H_B3:
        b3 = true;
        out.push(name, value);
        break;
      case H_CONTENT_LENGTH:
        // The parser has rejected malformed or conflicting lengths before we get here.
        ctx.contentLength = Number(value);
        if (value !== '0') ctx.hasBody = true;
        out.push(name, value);
        break;
      case H_TRANSFER_ENCODING:
        // HTTP/1.0 has no chunked coding: such a body's end is unknowable (RFC 9112 §6.1).
        if (req.httpVersionMinor === 0 && req.httpVersionMajor === 1) {
          ctx.failAndClose('MG_BAD_REQUEST', 'Transfer-Encoding in an HTTP/1.0 request');
          return false;
        }
        // The parser has validated framing; undici re-frames the body it streams upstream.
        ctx.hasBody = true;
        break;
      case H_REQUEST_TIMEOUT:
        ctx.requestTimeoutHeader = value;
        break;
      // Never forwarded as sent: a mesh hop gets it again only from a proxy that recorded the request.
      case H_EXPLAIN:
        if (value === '1' || value === 'true') ctx.explainAsked = 1;
        break;
      // A mesh listener vouches for the caller itself: a copy from the caller is never passed on.
      case H_XFCC:
        if (ctx.listener.config.mtls === null) out.push(name, value);
        break;
    }
  }
  // HTTP/2 frames bodies itself: a body follows unless the HEADERS frame ended the stream.
  if (ctx.h2 && !(req as unknown as Http2ServerRequest).stream.endAfterHeaders && ctx.contentLength !== 0)
    ctx.hasBody = true;
  if (connection !== undefined) {
    const listed = connectionListed(connection);
    if (listed !== null) removeHeaders(out, listed);
  }

  if (
    hostHeader === undefined &&
    targetAuthority === undefined &&
    req.httpVersionMajor === 1 &&
    req.httpVersionMinor === 1
  ) {
    ctx.failAndClose('MG_BAD_REQUEST', 'an HTTP/1.1 request needs a Host header');
    return false;
  }
  const authority = targetAuthority ?? hostHeader ?? '';
  ctx.host = hostOnly(authority);
  if (ctx.requestId === '') ctx.requestId = newRequestId();

  ctx.rawPath = path;
  if (needsNormalising(path)) {
    const normalised = normalisePath(path, ctx.listener.encodedSlashes);
    if (typeof normalised !== 'string') {
      ctx.fail(
        normalised === PATH_OUTSIDE_ROOT ? 'MG_PATH_OUTSIDE_ROOT' : 'MG_BAD_REQUEST',
        normalised === PATH_OUTSIDE_ROOT ? 'the path climbs above /' : 'the path is malformed',
      );
      return false;
    }
    path = normalised;
  }
  ctx.path = path;

  const peer = req.socket.remoteAddress ?? '';
  const proto = ctx.listener.scheme;
  ctx.clientAddress = trusted ? clientAddress(xff, peer, ctx.listener.config.trustedHops) : peer;
  const element = forwardedElement(peer, authority, proto);
  out.push(
    'x-forwarded-for',
    xff === undefined ? peer : `${xff}, ${peer}`,
    'x-forwarded-proto',
    xfProto ?? proto,
    'x-forwarded-host',
    xfHost ?? authority,
    'forwarded',
    forwarded === undefined ? element : `${forwarded}, ${element}`,
  );
  out.push('host', authority, REQUEST_ID_HEADER, ctx.requestId);
  if (ctx.listener.mesh !== null) {
    const peer = peerOf(req.socket);
    if (peer !== undefined) out.push('x-forwarded-client-cert', peer.xfcc);
  }
  if (traceparent !== undefined || b3 || ctx.owner.telemetry?.tracing)
    readTraceContext(ctx, traceparent, tracestate, b3);
  // A WebSocket upgrade's bytes after the head are the tunnel's, not a body.
  if (ctx.hasBody && (req as { upgrade?: boolean }).upgrade !== true) guardBody(ctx);
  return true;
}

/**
 * The request's trace: with tracing on, this hop's span becomes the parent sent upstream; with it off,
 * the incoming context passes through unchanged (its trace id still names the request in logs).
 */
function readTraceContext(
  ctx: StreamContext,
  traceparent: string | undefined,
  tracestate: string | undefined,
  b3: boolean,
) {
  const parsed = traceparent !== undefined ? parseTraceparent(traceparent) : b3 ? parseB3((n) => ctx.header(n)) : null;
  const incoming = parsed === null ? null : { ...parsed, traceState: tracestate ?? '' };
  const tracing = ctx.owner.telemetry?.tracing;
  if (tracing) {
    const trace = tracing.start(incoming, ctx.method, ctx.startEpochMs);
    ctx.trace = trace;
    ctx.traceId = trace.traceId;
    ctx.headers.push('traceparent', traceparentOf(trace));
    if (trace.traceState !== '') ctx.headers.push('tracestate', trace.traceState);
    return;
  }
  if (traceparent !== undefined) ctx.headers.push('traceparent', traceparent);
  if (tracestate !== undefined) ctx.headers.push('tracestate', tracestate);
  if (incoming !== null) ctx.traceId = incoming.traceId;
}

/** A malformed authority is refused before anything is forwarded; the connection closes with it. */
function badAuthority(ctx: StreamContext, field: string): false {
  ctx.failAndClose('MG_BAD_REQUEST', `malformed ${field}: not host[:port] as RFC 3986 defines it (RFC 9112 §3.2)`);
  return false;
}

/** `example.com:8080` → `example.com`; `[::1]:80` → `[::1]`; lower-case. */
function hostOnly(authority: string): string {
  let end = authority.length;
  const colon = authority.lastIndexOf(':');
  if (colon !== -1 && authority.indexOf(']', colon) === -1) end = colon;
  const host = authority.slice(0, end);
  return host === host.toLowerCase() ? host : host.toLowerCase();
}
