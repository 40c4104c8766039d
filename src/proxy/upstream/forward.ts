/**
 * Sending a request upstream and its response back: destination and endpoint choice, the undici
 * dispatch, response streaming with backpressure, and turning failures into problem replies.
 */
import type { Http2ServerResponse } from 'node:http2';
import { Transform, type TransformCallback } from 'node:stream';
import type { Client, Dispatcher } from 'undici';
import { REQUEST_ID_HEADER } from '../../core/defaults.ts';
import type { LocalReplyCode } from '../../core/errors.ts';
import { runResponseFilters } from '../chain/filters.ts';
import type { StreamContext } from '../context.ts';
import { connectionListed, RESPONSE_HOP_BY_HOP, removeHeaders } from '../headers.ts';
import { rewritePath } from '../path.ts';
import { pickDestination } from '../snapshot.ts';
import type { Endpoint } from './endpoint.ts';
import type { PooledHandler } from './pool.ts';
import { noteStreamedBytes } from './streamed-bytes.ts';

/**
 * Picks destination and endpoint and applies the route's rewrite; returns the upstream path, or null
 * after replying when there is nowhere to send the request.
 */
export function prepareUpstream(ctx: StreamContext): string | null {
  const route = ctx.route!;
  const destination = pickDestination(route, Math.random() * 100);
  if (destination === null) {
    ctx.fail('MG_NO_HEALTHY_UPSTREAM', `route ${route.name} has no destination with weight`);
    return null;
  }
  ctx.destination = destination;
  const endpoint = destination.endpoints.pick();
  if (endpoint === null) {
    const where = destination.subset ? `subset ${destination.subset} of ` : '';
    ctx.fail('MG_NO_HEALTHY_UPSTREAM', `${where}service ${destination.service.name} has no healthy endpoint`);
    return null;
  }
  ctx.endpoint = endpoint;
  const rw = route.rewrite;
  if (rw === null) return ctx.query === '' ? ctx.path : `${ctx.path}?${ctx.query}`;
  if (rw.host !== undefined) ctx.setHeader('host', rw.host);
  else if (rw.autoHost) ctx.setHeader('host', endpoint.authority);
  return rewritePath(rw, ctx.path, ctx.query === '' ? '' : `?${ctx.query}`);
}

/** Picks destination and endpoint, then sends the request upstream. */
export function forward(ctx: StreamContext): void {
  const upstreamPath = prepareUpstream(ctx);
  if (upstreamPath === null) return;
  const destination = ctx.destination!;
  const endpoint = ctx.endpoint!;
  // gRPC's `TE: trailers` says the client takes trailers; an HTTP/2 upstream may then send them.
  if (ctx.teTrailers && endpoint.protocol !== 'http1' && ctx.tries === 0) ctx.headers.push('te', 'trailers');
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
      body: ctx.hasBody ? (ctx.bodyAllowance >= 0 ? ctx.req.pipe(new BodyLimit(ctx)) : ctx.req) : null,
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
  protected readonly ctx: StreamContext;
  protected readonly endpoint: Endpoint;
  protected controller: Dispatcher.DispatchController | null = null;
  protected ended = false;
  protected aborted = false;
  /** gRPC trailers-only response: the head was the whole response. */
  private headOnly = false;

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
    const telemetry = ctx.owner.telemetry;
    if (telemetry?.serverTiming) out.push('server-timing', telemetry.serverTimingOf(ctx));
    if (ctx.activeFilters !== null) runResponseFilters(ctx, statusCode, out);
    // Keep the upstream's Date; Node adds one only when it sent none (RFC 9110 §6.6.1).
    if (hasDate) res.sendDate = false;
    // A gRPC error can be trailers-only: grpc-status in the one HEADERS frame, which must end the stream,
    // or the client waits for trailers that never come (docs/listeners.md, gRPC).
    if (ctx.h2 && headers['grpc-status'] !== undefined) {
      this.headOnly = true;
      const head: Record<string, string | string[]> = { ':status': String(statusCode) };
      for (let i = 0; i < out.length; i += 2) head[out[i] as string] = out[i + 1]!;
      res.statusCode = statusCode;
      (res as unknown as Http2ServerResponse).stream.respond(head, { endStream: true });
      return;
    }
    res.writeHead(statusCode, out as string[]);
  }

  onBodySent(chunk: Buffer): void {
    this.ctx.bytesIn += chunk.length;
    noteStreamedBytes(chunk.length);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.headOnly) return;
    this.ctx.bytesOut += chunk.length;
    noteStreamedBytes(chunk.length);
    if (!this.ctx.res.write(chunk)) {
      controller.pause();
      this.ctx.res.once('drain', () => controller.resume());
    }
  }

  onResponseEnd(
    _controller: Dispatcher.DispatchController,
    trailers: Record<string, string | string[] | undefined>,
  ): void {
    this.end();
    const ctx = this.ctx;
    ctx.upstreamEndMs = performance.now();
    if (!this.headOnly) {
      // Trailers (gRPC's grpc-status) go on to HTTP/2 clients; HTTP/1.1 responses are sent without them.
      if (ctx.h2 && trailers !== undefined) {
        let any = false;
        for (const _name in trailers) {
          any = true;
          break;
        }
        if (any) (ctx.res as unknown as Http2ServerResponse).addTrailers(trailers as Record<string, string>);
      }
      ctx.res.end();
    }
    ctx.finish();
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
  protected end() {
    this.ended = true;
    this.endpoint.active--;
    this.endpoint.pool.release(this);
  }
}

export function classifyUpstreamError(error: Error, ctx: StreamContext): [LocalReplyCode, string] {
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

/**
 * Counts a chunked request body against the route's limit as it streams; past the limit the upstream
 * request is aborted and the client gets 413 (the connection closes: the rest of its body is unread).
 * Only chunked bodies on routes with a limit pass through here.
 */
class BodyLimit extends Transform {
  private readonly ctx: StreamContext;

  constructor(ctx: StreamContext) {
    super();
    this.ctx = ctx;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    const ctx = this.ctx;
    ctx.bodyAllowance -= chunk.length;
    if (ctx.bodyAllowance >= 0) {
      callback(null, chunk);
      return;
    }
    if (!ctx.done) {
      ctx.upstream?.abort();
      ctx.failAndClose(
        'MG_BODY_TOO_LARGE',
        `the body exceeds ${ctx.bodyLimit} bytes, the limit of route ${ctx.route!.name}`,
      );
    }
    callback();
  }
}
