/**
 * request-id: names the header that carries each request's id (Kong's correlation-id). The proxy
 * always has an id (`x-request-id`); this plugin moves it to another header, distrusts client ids,
 * or keeps it off responses.
 */
import { randomUUID } from 'node:crypto';
import { definePlugin, type Filter } from '../../core/plugin.ts';
import { type RequestIdConfig, requestIdSchema } from './schema.ts';

const MAX_INCOMING_LENGTH = 200;

export default definePlugin<RequestIdConfig>({
  name: 'request-id',
  phase: 'request',
  order: 0,
  description: 'Choose the request-id header, trust or replace client ids, echo the id back.',
  configSchema: requestIdSchema,
  compile(config) {
    const header = (config.header ?? 'x-request-id').toLowerCase();
    const echo = config.echo !== false;
    const trust = config.trustIncoming !== false;
    const filter: Filter = {
      onRequestHeaders(ctx) {
        const incoming = header === 'x-request-id' ? undefined : ctx.header(header);
        if (!trust) ctx.requestId = randomUUID();
        else if (incoming !== undefined && incoming.length > 0 && incoming.length <= MAX_INCOMING_LENGTH)
          ctx.requestId = incoming;
        ctx.setHeader('x-request-id', ctx.requestId);
        if (header !== 'x-request-id') ctx.setHeader(header, ctx.requestId);
        return undefined;
      },
      onResponseHeaders(ctx, response) {
        if (!echo) {
          response.removeHeader('x-request-id');
          return;
        }
        response.setHeader('x-request-id', ctx.requestId);
        if (header !== 'x-request-id') response.setHeader(header, ctx.requestId);
      },
    };
    return () => filter;
  },
});
