/**
 * The direct action: answer at the proxy with a fixed status and body (`directResponse`), without any
 * upstream: maintenance pages, health answers, stubs. The body is encoded once per snapshot.
 */
import type { RouteConfig } from '../../../api/config.ts';
import { REQUEST_ID_HEADER } from '../../../core/defaults.ts';
import { runResponseFilters } from '../../chain/filters.ts';
import type { DirectAction } from '../../compiled.ts';
import type { StreamContext } from '../../context.ts';
import { pushVersionHeaders } from '../../versioning.ts';

export function isDirect(rc: RouteConfig): boolean {
  return rc.directResponse !== undefined;
}

export function compileDirect(rc: RouteConfig): DirectAction {
  const d = rc.directResponse!;
  const body = Buffer.from(d.body ?? '');
  return Object.freeze({
    kind: 'direct',
    status: d.status,
    body,
    contentType: d.contentType ?? 'text/plain; charset=utf-8',
    contentLength: String(body.length),
  });
}

export function runDirect(ctx: StreamContext, d: DirectAction): void {
  const headers = ['content-type', d.contentType, 'content-length', d.contentLength, REQUEST_ID_HEADER, ctx.requestId];
  const version = ctx.route!.version;
  if (version !== null) pushVersionHeaders(headers, version);
  if (ctx.activeFilters !== null) runResponseFilters(ctx, d.status, headers);
  ctx.res.writeHead(d.status, headers);
  ctx.res.end(ctx.method === 'HEAD' ? undefined : d.body);
  ctx.finish();
}

export function describeDirect(d: DirectAction): Record<string, unknown> {
  return { kind: 'direct', status: d.status, contentType: d.contentType, bodyBytes: d.body.length };
}
