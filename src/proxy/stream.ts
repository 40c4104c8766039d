/**
 * The request path, phase by phase: listener → context (id, snapshot, start time) → request head
 * (normalise, header hygiene) → route → (filters) → upstream (upstream/forward.ts) → response → log.
 *
 * Hot path: the context has a fixed shape; headers are read once from `rawHeaders` into the flat list
 * sent upstream; no closures are created per request; a route without filters takes no detour.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { REQUEST_ID_HEADER } from '../core/defaults.ts';
import { runRequestFilters, runResponseFilters } from './chain/filters.ts';
import { type ListenerRuntime, StreamContext, type StreamHost, track } from './context.ts';
import { readRequestHead } from './request-head.ts';
import type { CompiledRoute } from './snapshot.ts';
import { forward } from './upstream/forward.ts';

/** The listener's request callback body. */
export function handleRequest(host: StreamHost, listener: ListenerRuntime, req: IncomingMessage, res: ServerResponse) {
  const ctx = new StreamContext(req, res, host, listener);
  track(ctx);
  host.onStreamStart(ctx);
  if (!readRequestHead(ctx)) return;

  const route = ctx.listener.router.match(ctx);
  if (route === null) {
    ctx.fail('MG_ROUTE_NOT_FOUND', `no route for ${ctx.method} ${ctx.host}${ctx.path}`);
    return;
  }
  ctx.route = route;
  if (route.filters.length === 0) proceed(ctx);
  else runRequestFilters(ctx, route.filters, 0, proceed);
}

/** After the request filters: answer directly or forward upstream. */
function proceed(ctx: StreamContext): void {
  const route = ctx.route!;
  if (route.direct !== null) sendDirect(ctx, route);
  else forward(ctx);
}

function sendDirect(ctx: StreamContext, route: CompiledRoute) {
  const d = route.direct!;
  const headers = [
    'content-type',
    d.contentType,
    'content-length',
    String(d.body.length),
    REQUEST_ID_HEADER,
    ctx.requestId,
  ];
  if (ctx.activeFilters !== null) runResponseFilters(ctx, d.status, headers);
  ctx.res.writeHead(d.status, headers);
  ctx.res.end(ctx.method === 'HEAD' ? undefined : d.body);
  ctx.finish();
}
