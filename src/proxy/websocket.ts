/**
 * WebSocket proxying (HTTP/1.1 Upgrade). The upgrade request takes the request path like any other:
 * head hygiene, route match and the route's filters (authentication, rate limits) run before anything
 * is connected upstream, and any of them may answer instead (401, 429, a direct response), in which
 * case the connection is never upgraded. Once the upstream answers 101, the two sockets are piped to
 * each other byte for byte: frames flow both ways as they arrive, with backpressure, and a close of
 * either side (or silence past the listener's `websocketIdleTimeout`) closes the other.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import type { Client as ClientType, Dispatcher } from 'undici';
import { REQUEST_ID_HEADER } from '../core/defaults.ts';
import { http } from '../core/node-http.ts';
import { prepareUpgrade } from './actions/forward/forward.ts';
import { runAction } from './actions/index.ts';
import { runRequestFilters } from './chain/filters.ts';
import {
  type ClientRequest,
  type ClientResponse,
  type ListenerRuntime,
  StreamContext,
  type StreamHost,
  track,
} from './context.ts';
import { routeRequest } from './stream.ts';
import { UpstreamCall } from './upstream/try.ts';

const Client: typeof ClientType = createRequire(import.meta.url)('undici/lib/dispatcher/client.js');

/** The listener's 'upgrade' handler (only `Upgrade: websocket` gets here). */
export function handleUpgrade(
  host: StreamHost,
  listener: ListenerRuntime,
  req: IncomingMessage,
  socket: Socket,
  head: Buffer,
): void {
  // A response object on the raw socket, so that refusals (404, 401, a direct response) are ordinary replies.
  const res = new http.ServerResponse(req);
  res.assignSocket(socket);
  res.shouldKeepAlive = false;
  res.once('finish', () => socket.destroySoon());
  startUpgrade(host, listener, req, res, socket, head);
}

/**
 * An upgrade request with a response object that writes on its socket and closes it after a refusal
 * (node:http's, or the lean engine's): the request path, then the upstream connection.
 */
export function startUpgrade(
  host: StreamHost,
  listener: ListenerRuntime,
  req: ClientRequest,
  res: ClientResponse,
  socket: Socket,
  head: Buffer,
): void {
  socket.on('error', () => socket.destroy());
  const ctx = new StreamContext(req, res, host, listener);
  ctx.upgradeHead = head;
  track(ctx);
  host.onStreamStart(ctx);
  const route = routeRequest(ctx);
  if (route === null) return;
  if (route.filters.length === 0) connectUpstream(ctx);
  else runRequestFilters(ctx, route.filters, 0, connectUpstream);
}

function connectUpstream(ctx: StreamContext): void {
  const action = ctx.route!.action;
  if (action.kind !== 'forward') {
    // A route that answers at the proxy answers an upgrade the same way; the connection is never upgraded.
    runAction(ctx);
    return;
  }
  const path = prepareUpgrade(ctx, action);
  if (path === null) return;
  const endpoint = ctx.endpoint!;
  const destination = ctx.destination!;
  // One connection per WebSocket: it leaves HTTP for good, so it never returns to the pool.
  const tls = destination.service.tls;
  const client = new Client(endpoint.origin, {
    connectTimeout: destination.service.timeouts.connectMs,
    headersTimeout: 0,
    bodyTimeout: 0,
    ...(tls !== null && { connect: tls.connector(destination.service.timeouts.connectMs, false) }),
  });
  // prepareUpgrade admitted the endpoint under the breaker's maxRequests.
  const breaker = destination.service.breaker;
  const call = new UpgradeCall(ctx, endpoint, client);
  ctx.upstream = call;
  ctx.tries++;
  ctx.upstreamStartMs = performance.now();
  endpoint.active++;
  // The session counts as a request of the service until it ends (UpstreamCall.end balances it).
  breaker.requests++;
  client.dispatch(
    {
      method: 'GET',
      path,
      headers: ctx.headers,
      upgrade: 'websocket',
      headersTimeout: destination.requestTimeoutMs,
    },
    call,
  );
}

class UpgradeCall extends UpstreamCall {
  private readonly upgradeClient: ClientType;

  constructor(ctx: StreamContext, endpoint: ConstructorParameters<typeof UpstreamCall>[1], client: ClientType) {
    super(ctx, endpoint, ctx.destination!.service.breaker, false, 0, false);
    this.upgradeClient = client;
  }

  /** This connection left HTTP (or never got there): it is closed, never pooled. */
  protected override releaseConnection() {
    void this.upgradeClient.close().catch(() => {});
  }

  onRequestUpgrade(
    _controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: Record<string, string | string[] | undefined>,
    upstream: Duplex,
  ): void {
    const ctx = this.ctx;
    const res = ctx.res as ServerResponse;
    const client = res.socket as Socket | null;
    this.end();
    if (client === null || client.destroyed) {
      upstream.destroy();
      ctx.finish();
      return;
    }
    ctx.upstreamHeadersMs = performance.now();
    res.detachSocket(client);
    res.statusCode = statusCode;
    let head = `HTTP/1.1 ${statusCode} Switching Protocols\r\n`;
    for (const name in headers) {
      const value = headers[name];
      // The request's id is this proxy's to send back (as forward.ts does for other responses).
      if (value === undefined || name.toLowerCase() === REQUEST_ID_HEADER) continue;
      for (const v of Array.isArray(value) ? value : [value]) head += `${name}: ${v}\r\n`;
    }
    client.write(`${head}${REQUEST_ID_HEADER}: ${ctx.requestId}\r\n\r\n`);
    const early = ctx.upgradeHead;
    if (early !== null && early.length > 0) upstream.write(early);
    ctx.upgradeHead = null;
    const idleMs = ctx.listener.config.limits.websocketIdleTimeoutMs;
    let closed = false;
    const closeBoth = () => {
      if (closed) return;
      closed = true;
      client.destroy();
      upstream.destroy();
      ctx.finish();
    };
    // Half-closes travel on (a clean TCP close after the WebSocket close handshake); a destroy ends both.
    client.on('close', closeBoth);
    upstream.on('close', closeBoth);
    client.on('error', closeBoth);
    upstream.on('error', closeBoth);
    if (idleMs > 0) client.setTimeout(idleMs, closeBoth);
    client.pipe(upstream);
    upstream.pipe(client);
  }
}
