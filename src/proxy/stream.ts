/**
 * The request path, phase by phase: listener → context (id, snapshot, start time) → request head
 * (normalise, header hygiene) → route → (filters) → upstream (upstream/forward.ts) → response → log.
 *
 * Hot path: the context has a fixed shape; headers are read once from `rawHeaders` into the flat list
 * sent upstream; no closures are created per request; a route without filters takes no detour.
 */

import { runAction } from './actions/index.ts';
import { runRedirect } from './actions/redirect/action.ts';
import { prepareRequestBody } from './chain/body.ts';
import { runRequestFilters } from './chain/filters.ts';
import type { CompiledRoute } from './compiled.ts';
import {
  type ClientRequest,
  type ClientResponse,
  type ListenerRuntime,
  StreamContext,
  type StreamHost,
  track,
  watchStream,
} from './context.ts';
import { startTrail } from './explain/trail.ts';
import { readRequestHead } from './request-head.ts';

/** The listener's request callback body. */
export function handleRequest(host: StreamHost, listener: ListenerRuntime, req: ClientRequest, res: ClientResponse) {
  const ctx = new StreamContext(req, res, host, listener);
  if (ctx.h2) watchStream(ctx);
  else track(ctx);
  host.onStreamStart(ctx);
  const route = routeRequest(ctx);
  if (route === null) return;
  if (ctx.hasBody && !admitBody(ctx, route)) return;
  if (route.filters.length === 0) proceed(ctx);
  else runRequestFilters(ctx, route.filters, 0, proceed);
}

/**
 * The head and the route, shared by plain requests and WebSocket upgrades: reads the head, matches
 * the listener's routes and takes the redirects to HTTPS. Null when the request was answered here.
 */
export function routeRequest(ctx: StreamContext): CompiledRoute | null {
  if (!readRequestHead(ctx)) return null;
  const explain = ctx.owner.telemetry?.explain;
  if (explain != null) startTrail(ctx, explain);
  const listener = ctx.listener;
  if (listener.config.redirectToHttps) {
    redirectToHttps(ctx);
    return null;
  }
  const shadow = ctx.owner.shadow;
  if (shadow != null) shadow.observe(ctx);
  const route = listener.router.match(ctx);
  if (route === null) {
    ctx.fail('MG_ROUTE_NOT_FOUND', `no route for ${ctx.method} ${ctx.host}${ctx.path}`);
    return null;
  }
  ctx.route = route;
  if (ctx.trail !== null) ctx.trail.route = route;
  if (route.redirectToHttps && listener.tls === null) {
    redirectToHttps(ctx);
    return null;
  }
  return route;
}

/** After the request filters: the body filters (if any read the body), then the route's action. */
function proceed(ctx: StreamContext): void {
  if (ctx.requestBodyFilters !== null && ctx.hasBody) prepareRequestBody(ctx, runAction);
  else runAction(ctx);
}

/**
 * The route's (or listener's) body limit: a declared length over it is refused before anything goes
 * upstream; a chunked body is counted as it streams (upstream/forward.ts). Only requests with a body
 * on routes with a limit pay for this.
 */
function admitBody(ctx: StreamContext, route: CompiledRoute): boolean {
  const limit = route.maxBodyBytes >= 0 ? route.maxBodyBytes : ctx.listener.config.limits.maxBodyBytes;
  if (limit === 0) return true;
  if (ctx.contentLength > limit) {
    ctx.failAndClose(
      'MG_BODY_TOO_LARGE',
      `the body is ${ctx.contentLength} bytes; route ${route.name} accepts ${limit}`,
    );
    return false;
  }
  ctx.limitRequestBody(limit);
  return true;
}

/** 308 keeps the method and body, so a POST is repeated as a POST over https. */
export function redirectToHttps(ctx: StreamContext) {
  runRedirect(ctx, ctx.listener.config.httpsRedirect);
}
