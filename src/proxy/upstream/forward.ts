/**
 * Sending a request upstream and its response back: destination and endpoint choice, the undici
 * dispatch, response streaming with backpressure, and turning failures into problem replies.
 */
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
  private bodyTooLarge = false;

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
    if (ctx.activeFilters !== null) runResponseFilters(ctx, statusCode, out);
    // Keep the upstream's Date; Node adds one only when it sent none (RFC 9110 §6.6.1).
    if (hasDate) res.sendDate = false;
    res.writeHead(statusCode, out as string[]);
  }

  onBodySent(chunk: Buffer): void {
    noteStreamedBytes(chunk.length);
    const ctx = this.ctx;
    if (ctx.bodyLimit >= 0 && (ctx.bodyBytes += chunk.length) > ctx.bodyLimit && !this.bodyTooLarge) {
      this.bodyTooLarge = true;
      this.controller?.abort(new Error('request body too large'));
    }
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.ctx.bytesOut += chunk.length;
    noteStreamedBytes(chunk.length);
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
    if (this.bodyTooLarge) {
      // The rest of the body will not be read: the connection cannot be reused.
      ctx.res.shouldKeepAlive = false;
      ctx.reply({
        status: 413,
        code: 'MG_PAYLOAD_TOO_LARGE',
        detail: `the request body is larger than the ${ctx.bodyLimit} bytes this route accepts`,
      });
      return;
    }
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
