/**
 * The request path: one StreamContext per request, from the listener's callback to the log phase.
 * listener → context (id, snapshot, start time) → normalise → route → (filters) → upstream → response.
 *
 * Hot path: the context has a fixed shape; headers are read once from `rawHeaders` into the flat list
 * sent upstream; no closures are created per request; a route without filters takes no detour.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Client, Dispatcher } from 'undici';
import { REQUEST_ID_HEADER } from '../core/defaults.ts';
import { CLIENT_CLOSED, type LocalReplyCode } from '../core/errors.ts';
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
  H_TRANSFER_ENCODING,
  H_XF_HOST,
  H_XF_PROTO,
  H_XFF,
  REQUEST_HEADER_ACTIONS,
  RESPONSE_HOP_BY_HOP,
  removeHeaders,
} from './headers.ts';
import { problem, writeProblem } from './local-reply.ts';
import { type EncodedSlashPolicy, needsNormalising, normalisePath, PATH_OUTSIDE_ROOT, rewritePath } from './path.ts';
import type { MatchInput } from './router/router.ts';
import {
  type CompiledDestination,
  type CompiledListener,
  type CompiledRoute,
  pickDestination,
  type Snapshot,
} from './snapshot.ts';
import type { Endpoint } from './upstream/endpoint.ts';
import type { PooledHandler } from './upstream/pool.ts';

/** What a listener needs from the proxy: the snapshot in force and where finished streams go. */
export interface StreamHost {
  readonly snapshot: Snapshot;
  /** Called once per request as it starts, before anything can fail. */
  onStreamStart(ctx: StreamContext): void;
  /** Called once per request when it is over (log phase): access log, metrics. */
  onStreamEnd(ctx: StreamContext): void;
}

/** Per-listener settings the request path reads; resolved once per listener and snapshot. */
export interface ListenerRuntime {
  readonly config: CompiledListener;
  /** `http` or `https`: the scheme clients used, for X-Forwarded-Proto. */
  readonly scheme: string;
  readonly encodedSlashes: EncodedSlashPolicy;
}

const MAX_REQUEST_ID_LENGTH = 200;

export class StreamContext implements MatchInput {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  /** The proxy this stream belongs to (for the log phase). */
  readonly owner: StreamHost;
  readonly snapshot: Snapshot;
  readonly listener: ListenerRuntime;
  /** performance.now() at arrival. */
  readonly startMs: number;
  requestId = '';
  method: string;
  host = '';
  path = '';
  /** Raw query string without `?`, '' when absent. */
  query = '';
  /** Headers to send upstream, `[name, value, …]`, names lower-case. */
  readonly headers: string[] = [];
  clientAddress = '';
  hasBody = false;
  route: CompiledRoute | null = null;
  destination: CompiledDestination | null = null;
  endpoint: Endpoint | null = null;
  /** Upstream attempts made. */
  tries = 0;
  /** Code of the local reply or failure that ended the stream, if any. */
  code: string | null = null;
  status = 0;
  /** performance.now() when the upstream's response headers arrived (0: never). */
  upstreamHeadersMs = 0;
  upstreamStartMs = 0;
  bytesOut = 0;
  done = false;
  upstream: UpstreamCall | null = null;

  /** Another stream pipelined on the same client connection (rare), for closing them all. */
  nextOnSocket: StreamContext | null = null;

  constructor(req: IncomingMessage, res: ServerResponse, host: StreamHost, listener: ListenerRuntime) {
    this.req = req;
    this.res = res;
    this.owner = host;
    this.snapshot = host.snapshot;
    this.listener = listener;
    this.method = req.method ?? 'GET';
    this.startMs = performance.now();
  }

  /** Value of a request header by lower-case name (after hygiene: what the upstream will see). */
  header(name: string): string | undefined {
    const h = this.headers;
    let value: string | undefined;
    for (let i = 0; i < h.length; i += 2) {
      if (h[i] === name) value = value === undefined ? h[i + 1] : `${value}, ${h[i + 1]}`;
    }
    return value;
  }

  setHeader(name: string, value: string): void {
    const h = this.headers;
    for (let i = 0; i < h.length; i += 2)
      if (h[i] === name) {
        h[i + 1] = value;
        return;
      }
    h.push(name, value);
  }

  /** Ends the stream with a problem reply (or an abort, when the response has already started). */
  fail(code: LocalReplyCode, detail: string): void {
    this.code = code;
    if (!writeProblem(this.res, problem(code, this.requestId, detail))) this.res.destroy();
    this.finish();
  }

  /**
   * The log phase, exactly once per stream: when the proxy has written the last byte, failed it, or
   * the client connection closed under it.
   */
  finish(): void {
    if (this.done) return;
    this.done = true;
    this.status = this.res.statusCode;
    untrack(this);
    this.owner.onStreamEnd(this);
  }
}

/*
 * Client disconnects are noticed per connection, not per request: one 'close' listener per socket
 * (added by the listener) instead of one per response, which cost ~4% of the proxy's instructions.
 */
const kStreams = Symbol('meshgate.streams');
const kCloseWhenIdle = Symbol('meshgate.closeWhenIdle');
type TrackedSocket = Socket & { [kStreams]?: StreamContext | null; [kCloseWhenIdle]?: boolean };

/**
 * Draining: close the connection once its streams are done (now, if it has none). Returns true when
 * the socket was idle and has been closed.
 */
export function closeWhenIdle(socket: Socket): boolean {
  const s = socket as TrackedSocket;
  s[kCloseWhenIdle] = true;
  if (s[kStreams] == null) {
    socket.end();
    return true;
  }
  for (let ctx: StreamContext | null | undefined = s[kStreams]; ctx != null; ctx = ctx.nextOnSocket) {
    if (!ctx.res.headersSent) ctx.res.shouldKeepAlive = false;
  }
  return false;
}

function track(ctx: StreamContext) {
  const socket = ctx.req.socket as TrackedSocket;
  ctx.nextOnSocket = socket[kStreams] ?? null;
  socket[kStreams] = ctx;
}

function untrack(ctx: StreamContext) {
  const socket = ctx.req.socket as TrackedSocket;
  let s = socket[kStreams];
  if (s === ctx) {
    socket[kStreams] = ctx.nextOnSocket;
    if (ctx.nextOnSocket === null && socket[kCloseWhenIdle] === true) socket.end();
    return;
  }
  while (s != null) {
    if (s.nextOnSocket === ctx) {
      s.nextOnSocket = ctx.nextOnSocket;
      return;
    }
    s = s.nextOnSocket;
  }
}

/** The listener's 'close' handler for client sockets: ends every stream still open on it. */
export function onClientSocketClose(this: Socket) {
  let ctx = (this as TrackedSocket)[kStreams];
  (this as TrackedSocket)[kStreams] = null;
  while (ctx != null) {
    const next = ctx.nextOnSocket;
    if (!ctx.done) {
      if (ctx.code === null) ctx.code = CLIENT_CLOSED;
      ctx.upstream?.abort();
      ctx.finish();
    }
    ctx = next;
  }
}

/**
 * Reads the request head into `ctx`: target, headers for upstream (hop-by-hop removed, forwarding
 * headers set), request id. Returns false after replying when the request cannot be served.
 */
function readRequestHead(ctx: StreamContext): boolean {
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
        if (value !== '0') ctx.hasBody = true;
        out.push(name, value);
        break;
      case H_TRANSFER_ENCODING:
        // The parser has validated framing; undici re-frames the body it streams upstream.
        ctx.hasBody = true;
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

/** The listener's request callback body. */
export function handleRequest(host: StreamHost, listener: ListenerRuntime, req: IncomingMessage, res: ServerResponse) {
  const ctx = new StreamContext(req, res, host, listener);
  track(ctx);
  host.onStreamStart(ctx);
  if (!readRequestHead(ctx)) return;

  const route = ctx.snapshot.router.match(ctx);
  if (route === null) {
    ctx.fail('MG_ROUTE_NOT_FOUND', `no route for ${ctx.method} ${ctx.host}${ctx.path}`);
    return;
  }
  ctx.route = route;
  if (route.direct !== null) {
    sendDirect(ctx, route);
    return;
  }
  forward(ctx);
}

function sendDirect(ctx: StreamContext, route: CompiledRoute) {
  const d = route.direct!;
  ctx.res.writeHead(d.status, [
    'content-type',
    d.contentType,
    'content-length',
    String(d.body.length),
    REQUEST_ID_HEADER,
    ctx.requestId,
  ]);
  ctx.res.end(ctx.method === 'HEAD' ? undefined : d.body);
  ctx.finish();
}

/** Picks destination and endpoint, then sends the request upstream. */
export function forward(ctx: StreamContext): void {
  const route = ctx.route!;
  const destination = pickDestination(route, Math.random() * 100);
  if (destination === null) {
    ctx.fail('MG_NO_HEALTHY_UPSTREAM', `route ${route.name} has no destination with weight`);
    return;
  }
  ctx.destination = destination;
  const endpoint = destination.endpoints.pick();
  if (endpoint === null) {
    const where = destination.subset ? `subset ${destination.subset} of ` : '';
    ctx.fail('MG_NO_HEALTHY_UPSTREAM', `${where}service ${destination.service.name} has no healthy endpoint`);
    return;
  }
  ctx.endpoint = endpoint;
  let upstreamPath: string;
  const rw = route.rewrite;
  if (rw === null) {
    upstreamPath = ctx.query === '' ? ctx.path : `${ctx.path}?${ctx.query}`;
  } else {
    upstreamPath = rewritePath(rw, ctx.path, ctx.query === '' ? '' : `?${ctx.query}`);
    if (rw.host !== undefined) ctx.setHeader('host', rw.host);
    else if (rw.autoHost) ctx.setHeader('host', endpoint.authority);
  }
  const call = new UpstreamCall(ctx, endpoint);
  ctx.upstream = call;
  ctx.tries++;
  ctx.upstreamStartMs = performance.now();
  endpoint.active++;
  endpoint.pool.dispatch(
    {
      method: ctx.method,
      path: upstreamPath,
      headers: ctx.headers,
      body: ctx.hasBody ? ctx.req : null,
      headersTimeout: destination.requestTimeoutMs,
      bodyTimeout: destination.idleTimeoutMs,
    },
    call,
  );
}

/**
 * One attempt upstream, as an undici dispatch handler: response headers and body go straight to the
 * client's response with backpressure; failures before the response starts become problem replies.
 * (Node corks the client socket for the tick of a write, so head, a small body and the end still
 * leave in one writev.)
 */
export class UpstreamCall implements PooledHandler {
  client: Client | null = null;
  private readonly ctx: StreamContext;
  private readonly endpoint: Endpoint;
  private controller: Dispatcher.DispatchController | null = null;
  private ended = false;
  private aborted = false;

  constructor(ctx: StreamContext, endpoint: Endpoint) {
    this.ctx = ctx;
    this.endpoint = endpoint;
  }

  /** The client went away: stop the upstream work, or drop the request if it is still queued. */
  abort() {
    if (this.ended) return;
    this.aborted = true;
    if (this.controller !== null) this.controller.abort(new Error('client closed'));
    else if (this.endpoint.pool.cancel(this)) this.end();
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.aborted) controller.abort(new Error('client closed'));
  }

  onResponseStart(
    controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: Record<string, string | string[] | undefined>,
  ): void {
    if (statusCode < 200) return; // interim responses: the proxy answers Expect itself
    const ctx = this.ctx;
    ctx.upstreamHeadersMs = performance.now();
    const res = ctx.res;
    if (res.destroyed) {
      controller.abort(new Error('client closed'));
      return;
    }
    const out: (string | string[])[] = [];
    let hasDate = false;
    let listed: Set<string> | null = null;
    for (const name in headers) {
      const value = headers[name];
      if (value === undefined) continue;
      if (RESPONSE_HOP_BY_HOP.has(name)) {
        if (name === 'connection') listed = connectionListed(String(value));
        continue;
      }
      if (name === 'date') hasDate = true;
      out.push(name, value);
    }
    if (listed !== null) removeHeaders(out as string[], listed);
    out.push(REQUEST_ID_HEADER, ctx.requestId);
    // Keep the upstream's Date; Node adds one only when it sent none (RFC 9110 §6.6.1).
    if (hasDate) res.sendDate = false;
    res.writeHead(statusCode, out as string[]);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.ctx.bytesOut += chunk.length;
    if (!this.ctx.res.write(chunk)) {
      controller.pause();
      this.ctx.res.once('drain', () => controller.resume());
    }
  }

  onResponseEnd(): void {
    this.end();
    this.ctx.res.end();
    this.ctx.finish();
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    if (this.ended) return;
    this.end();
    if (this.aborted) return;
    const ctx = this.ctx;
    const [code, detail] = classifyUpstreamError(error, ctx);
    ctx.fail(code, detail);
  }

  /** Bookkeeping once the attempt is over: the connection goes back to the pool. */
  private end() {
    this.ended = true;
    this.endpoint.active--;
    const client = this.client;
    if (client !== null) {
      this.client = null;
      this.endpoint.pool.release(client);
    }
  }
}

function classifyUpstreamError(error: Error, ctx: StreamContext): [LocalReplyCode, string] {
  const code = (error as NodeJS.ErrnoException).code;
  const to = `${ctx.destination?.service.name} (${ctx.endpoint?.authority})`;
  switch (code) {
    case 'UND_ERR_HEADERS_TIMEOUT':
      return ['MG_UPSTREAM_TIMEOUT', `${to} did not answer within ${ctx.destination?.requestTimeoutMs} ms`];
    case 'UND_ERR_CONNECT_TIMEOUT':
      return ['MG_UPSTREAM_TIMEOUT', `connecting to ${to} timed out`];
    case 'UND_ERR_BODY_TIMEOUT':
      return ['MG_UPSTREAM_TIMEOUT', `${to} stopped sending the response body`];
    case 'ECONNREFUSED':
    case 'ENOTFOUND':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'EAI_AGAIN':
      return ['MG_UPSTREAM_CONNECT_FAILURE', `cannot connect to ${to}: ${code}`];
    case 'ECONNRESET':
    case 'EPIPE':
    case 'UND_ERR_SOCKET':
    case 'UND_ERR_CLOSED':
      return ['MG_UPSTREAM_RESET', `${to} closed the connection before responding`];
    default:
      if (error.name === 'HTTPParserError' || code?.startsWith('HPE_'))
        return ['MG_UPSTREAM_PROTOCOL_ERROR', `${to} sent a malformed response`];
      if (code === 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH' || code === 'UND_ERR_ABORTED')
        return ['MG_BAD_REQUEST', 'the request body ended early'];
      return ['MG_UPSTREAM_RESET', `${to} failed: ${error.message}`];
  }
}
