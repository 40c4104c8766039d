/**
 * request-size-limit: refuses bodies over a size with 413 — at once when Content-Length says so, and
 * while streaming a chunked body (counted as it goes upstream, never buffered).
 */
import { definePlugin, type Filter } from '../../core/plugin.ts';
import { type RequestSizeLimitConfig, requestSizeLimitSchema } from './schema.ts';

export default definePlugin<RequestSizeLimitConfig>({
  name: 'request-size-limit',
  phase: 'request',
  order: 200,
  description: 'Refuse request bodies larger than a limit (413), chunked ones included.',
  configSchema: requestSizeLimitSchema,
  compile(config) {
    const max = config.maxBytes;
    const filter: Filter = {
      onRequestHeaders(ctx) {
        if (ctx.contentLength > max)
          return {
            status: 413,
            code: 'MG_BODY_TOO_LARGE',
            detail: `the request body (${ctx.contentLength} bytes) is larger than the ${max} bytes this route accepts`,
            closeConnection: true,
          };
        if (ctx.hasBody && ctx.contentLength === -1) ctx.limitRequestBody(max);
        return undefined;
      },
    };
    return () => filter;
  },
});
