/**
 * The redirect action: answer with a 3xx whose Location is the request's URL with the parts the route
 * names replaced (scheme, host, port, path or path prefix, query dropped), as Envoy's route redirect
 * and Kong's redirect plugin do. Everything that does not depend on the request is decided once.
 */
import type { RouteConfig } from '../../../api/config.ts';
import { REQUEST_ID_HEADER } from '../../../core/defaults.ts';
import { runResponseFilters } from '../../chain/filters.ts';
import type { RedirectAction } from '../../compiled.ts';
import type { StreamContext } from '../../context.ts';
import { compileRewrite, upstreamPath } from '../../path.ts';
import { pushVersionHeaders } from '../../versioning.ts';

/** 301, as Envoy and Kong answer when no status is given. */
const DEFAULT_REDIRECT_STATUS = 301;

export function isRedirect(rc: RouteConfig): boolean {
  return rc.redirect !== undefined;
}

export function compileRedirect(rc: RouteConfig): RedirectAction {
  const r = rc.redirect!;
  const prefix = r.prefix === undefined ? null : compileRewrite(rc, { prefix: r.prefix });
  return Object.freeze({
    kind: 'redirect',
    status: r.status ?? DEFAULT_REDIRECT_STATUS,
    scheme: r.scheme ?? null,
    host: r.host?.toLowerCase() ?? null,
    port: r.port ?? 0,
    keepAuthority: r.scheme === undefined && r.host === undefined && r.port === undefined,
    path: r.path ?? null,
    prefix,
    stripQuery: r.stripQuery === true,
  });
}

/** The Location for this request. */
export function locationOf(ctx: StreamContext, r: RedirectAction): string {
  const scheme = r.scheme ?? ctx.listener.scheme;
  let authority: string;
  if (r.keepAuthority) authority = ctx.header('host') ?? ctx.host;
  else {
    const host = r.host ?? ctx.host;
    const bracketed = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
    const defaultPort = scheme === 'https' ? 443 : 80;
    authority = r.port === 0 || r.port === defaultPort ? bracketed : `${bracketed}:${r.port}`;
  }
  const query = r.stripQuery || ctx.query === '' ? '' : `?${ctx.query}`;
  if (r.path !== null) return `${scheme}://${authority}${r.path}${query}`;
  // The path as the client sent it, as it would go upstream (path.ts): a redirect does not normalise it.
  const target = r.stripQuery ? { path: ctx.path, rawPath: ctx.rawPath, query: '', listener: ctx.listener } : ctx;
  return `${scheme}://${authority}${upstreamPath(r.prefix, target)}`;
}

export function runRedirect(ctx: StreamContext, r: RedirectAction): void {
  const headers = ['location', locationOf(ctx, r), 'content-length', '0', REQUEST_ID_HEADER, ctx.requestId];
  const version = ctx.route?.version;
  if (version != null) pushVersionHeaders(headers, version);
  if (ctx.activeFilters !== null) runResponseFilters(ctx, r.status, headers);
  ctx.res.writeHead(r.status, headers);
  ctx.res.end();
  ctx.finish();
}

/**
 * The 308 to the same URL over https that `redirectToHttps` (listener or route) answers with; compiled
 * once per listener (CompiledListener.httpsRedirect).
 */
export function httpsRedirect(port: number): RedirectAction {
  return Object.freeze({
    kind: 'redirect',
    status: 308,
    scheme: 'https',
    host: null,
    port,
    keepAuthority: false,
    path: null,
    prefix: null,
    stripQuery: false,
  });
}

export function describeRedirect(r: RedirectAction, rc: RouteConfig): Record<string, unknown> {
  return { kind: 'redirect', status: r.status, ...rc.redirect };
}
