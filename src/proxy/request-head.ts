/**
 * The request head pass: target, Host, request id, and the headers the upstream will get (hop-by-hop
 * removed, forwarding headers set per the listener's trusted hops), read once from `rawHeaders`.
 */
import { randomUUID } from 'node:crypto';
import { REQUEST_ID_HEADER } from '../core/defaults.ts';
import type { StreamContext } from './context.ts';
import {
  clientAddress,
  connectionListed,
  forwardedElement,
  H_CONNECTION,
  H_CONTENT_LENGTH,
  H_DROP,
  H_FORWARDED,
  H_HOST,
  H_REQUEST_ID,
  H_REQUEST_TIMEOUT,
  H_TRANSFER_ENCODING,
  H_XF_HOST,
  H_XF_PROTO,
  H_XFF,
  REQUEST_HEADER_ACTIONS,
  removeHeaders,
} from './headers.ts';
import { needsNormalising, normalisePath, PATH_OUTSIDE_ROOT } from './path.ts';

const MAX_REQUEST_ID_LENGTH = 200;

/**
 * Reads the request head into `ctx`: target, headers for upstream (hop-by-hop removed, forwarding
 * headers set), request id. Returns false after replying when the request cannot be served.
 */
export function readRequestHead(ctx: StreamContext): boolean {
  const req = ctx.req;
  let target = req.url ?? '/';
  if (target.charCodeAt(0) !== 0x2f /* / */) {
    // Absolute form (`GET http://svc/path`), as sent to an HTTP proxy: the authority replaces Host.
    if (!URL.canParse(target)) {
      ctx.fail('MG_BAD_REQUEST', 'the request target is neither a path nor an absolute URL');
      return false;
    }
    const url = new URL(target);
    ctx.host = url.hostname.toLowerCase();
    target = url.pathname + url.search;
  }
  const q = target.indexOf('?');
  let path = q === -1 ? target : target.slice(0, q);
  ctx.query = q === -1 ? '' : target.slice(q + 1);

  const raw = req.rawHeaders;
  const out = ctx.headers;
  const trusted = ctx.listener.config.trustedHops > 0;
  let hostHeader: string | undefined;
  let connection: string | undefined;
  let xff: string | undefined;
  let xfProto: string | undefined;
  let xfHost: string | undefined;
  let forwarded: string | undefined;
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
        hostHeader = value;
        break;
      case H_CONNECTION:
        connection = connection === undefined ? value : `${connection}, ${value}`;
        break;
      case H_REQUEST_ID:
        if (value.length > 0 && value.length <= MAX_REQUEST_ID_LENGTH) ctx.requestId = value;
        break;
      case H_XFF:
        xff = xff === undefined ? value : `${xff}, ${value}`;
        break;
      case H_XF_PROTO:
        xfProto = value;
        break;
      case H_XF_HOST:
        xfHost = value;
        break;
      case H_FORWARDED:
        forwarded = forwarded === undefined ? value : `${forwarded}, ${value}`;
        break;
      case H_CONTENT_LENGTH:
        // The parser has rejected malformed or conflicting lengths before we get here.
        ctx.contentLength = Number(value);
        if (value !== '0') ctx.hasBody = true;
        out.push(name, value);
        break;
      case H_TRANSFER_ENCODING:
        // The parser has validated framing; undici re-frames the body it streams upstream.
        ctx.hasBody = true;
        break;
      case H_REQUEST_TIMEOUT:
        ctx.requestTimeoutHeader = value;
        break;
    }
  }
  if (connection !== undefined) {
    const listed = connectionListed(connection);
    if (listed !== null) removeHeaders(out, listed);
  }

  const authority = hostHeader ?? ctx.host;
  if (ctx.host === '') ctx.host = hostOnly(authority);
  if (ctx.requestId === '') ctx.requestId = randomUUID();

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
  if (trusted) {
    const hops = ctx.listener.config.trustedHops;
    ctx.clientAddress = clientAddress(xff, peer, hops);
    out.push('x-forwarded-for', xff === undefined ? peer : `${xff}, ${peer}`);
    out.push('x-forwarded-proto', xfProto ?? proto);
    out.push('x-forwarded-host', xfHost ?? authority);
    const element = forwardedElement(peer, authority, proto);
    out.push('forwarded', forwarded === undefined ? element : `${forwarded}, ${element}`);
  } else {
    ctx.clientAddress = peer;
    out.push(
      'x-forwarded-for',
      peer,
      'x-forwarded-proto',
      proto,
      'x-forwarded-host',
      authority,
      'forwarded',
      forwardedElement(peer, authority, proto),
    );
  }
  out.push('host', authority, REQUEST_ID_HEADER, ctx.requestId);
  return true;
}

/** `example.com:8080` → `example.com`; `[::1]:80` → `[::1]`; lower-case. */
function hostOnly(authority: string): string {
  let end = authority.length;
  const colon = authority.lastIndexOf(':');
  if (colon !== -1 && authority.indexOf(']', colon) === -1) end = colon;
  const host = authority.slice(0, end);
  return host === host.toLowerCase() ? host : host.toLowerCase();
}
