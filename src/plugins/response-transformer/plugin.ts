/**
 * response-transformer: changes the upstream's response on its way to the client, Kong's plugin of the
 * same name and shape: `remove`, `rename`, `replace`, `add`, `append` (in that order) over headers and
 * the fields of a JSON body. Values may be templates, rendered against the request.
 *
 * Only a JSON body (application/json or +json, not compressed) is read, whole, up to `maxBodyBytes`;
 * whether a response takes that path is decided from its head (`wantsResponseBody`), so other bodies
 * stream through untouched, and a config without json operations never touches a body.
 */
import { definePlugin, type Filter } from '../../core/plugin.ts';
import {
  applyJson,
  applyResponseHeaders,
  isIdentityEncoded,
  isJsonMediaType,
  planTransform,
  renderHead,
  renderJson,
} from '../shared/transform/plan.ts';
import { type ResponseTransformerConfig, responseTransformerSchema } from './schema.ts';

export default definePlugin<ResponseTransformerConfig>({
  name: 'response-transformer',
  phase: 'transform',
  order: 200,
  description: 'Remove, rename, replace, add or append response headers and JSON body fields.',
  configSchema: responseTransformerSchema,
  check(config) {
    return planTransform(config, 'response').issues;
  },
  compile(config) {
    const { plan, issues } = planTransform(config, 'response');
    if (issues.length > 0) throw new Error(`response-transformer: ${issues[0]!.message}`);
    const headers: Filter =
      plan.headers.length === 0
        ? {}
        : { onResponseHeaders: (ctx, response) => applyResponseHeaders(plan, response, renderHead(plan, ctx)) };
    if (plan.json.length === 0) return () => headers;
    const filter: Filter = {
      ...headers,
      responseBodyLimit: plan.maxBodyBytes,
      wantsResponseBody: (_ctx, response) =>
        isJsonMediaType(response.header('content-type')) && isIdentityEncoded(response.header('content-encoding')),
      rewriteResponseBody: (ctx, body) => applyJson(plan, body, renderJson(plan, ctx)),
    };
    return () => filter;
  },
});
