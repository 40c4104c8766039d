/**
 * cors: answers CORS preflight requests at the gateway (they never reach the upstream) and adds the
 * CORS headers to actual responses, local replies included (a browser must be able to read a 401).
 */
import { definePlugin, type Filter, type LocalReply } from '../../core/plugin.ts';
import { type CorsConfig, corsSchema } from './schema.ts';

const DEFAULT_METHODS = ['GET', 'HEAD', 'PUT', 'PATCH', 'POST', 'DELETE'];
const DEFAULT_MAX_AGE_S = 600;

function originTest(origins: readonly string[]): (origin: string) => boolean {
  if (origins.includes('*')) return () => true;
  const exact = new Set(origins.filter((o) => !o.includes('*')).map((o) => o.toLowerCase()));
  const patterns = origins
    .filter((o) => o.includes('*'))
    .map(
      (o) =>
        new RegExp(
          `^${o
            .toLowerCase()
            .replace(/[.+?^${}()|[\]\\]/g, '\\$&')
            .replace('*', '[a-z0-9-]+(\\.[a-z0-9-]+)*')}$`,
        ),
    );
  return (origin) => {
    const o = origin.toLowerCase();
    return exact.has(o) || patterns.some((p) => p.test(o));
  };
}

export default definePlugin<CorsConfig>({
  name: 'cors',
  phase: 'request',
  order: 10,
  description: 'Answer CORS preflights at the gateway and add CORS headers to responses.',
  configSchema: corsSchema,
  compile(config) {
    const allowed = originTest(config.origins);
    const anyOrigin = config.origins.includes('*') && config.credentials !== true;
    const methods = (config.methods ?? DEFAULT_METHODS).join(', ');
    const allowHeaders = config.headers?.join(', ');
    const exposed = config.exposedHeaders?.join(', ');
    const maxAge = String(config.maxAge ?? DEFAULT_MAX_AGE_S);
    const credentials = config.credentials === true;

    const preflight = (origin: string, requested: string | undefined): LocalReply => {
      const headers: [string, string][] = [
        ['vary', 'Origin, Access-Control-Request-Method, Access-Control-Request-Headers'],
      ];
      if (allowed(origin)) {
        headers.push(
          ['access-control-allow-origin', anyOrigin ? '*' : origin],
          ['access-control-allow-methods', methods],
        );
        const h = allowHeaders ?? requested;
        if (h) headers.push(['access-control-allow-headers', h]);
        if (credentials) headers.push(['access-control-allow-credentials', 'true']);
        headers.push(['access-control-max-age', maxAge]);
      }
      return {
        status: 204,
        code: 'MG_CORS_PREFLIGHT',
        detail: 'CORS preflight',
        headers,
        body: { contentType: 'text/plain', text: '' },
        // An answer, not an error: no x-meshgate-code, and browsers may cache it for max-age.
        plain: true,
      };
    };

    const filter: Filter = {
      onRequestHeaders(ctx) {
        const origin = ctx.header('origin');
        if (
          ctx.method === 'OPTIONS' &&
          origin !== undefined &&
          ctx.header('access-control-request-method') !== undefined
        )
          return preflight(origin, ctx.header('access-control-request-headers'));
        return undefined;
      },
      onResponseHeaders(ctx, response) {
        const origin = ctx.header('origin');
        if (origin === undefined || response.header('access-control-allow-origin') !== undefined) return;
        const vary = response.header('vary');
        response.setHeader('vary', vary ? `${vary}, Origin` : 'Origin');
        if (!allowed(origin)) return;
        response.setHeader('access-control-allow-origin', anyOrigin ? '*' : origin);
        if (credentials) response.setHeader('access-control-allow-credentials', 'true');
        if (exposed) response.setHeader('access-control-expose-headers', exposed);
      },
    };
    return () => filter;
  },
});
