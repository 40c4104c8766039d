/**
 * request-transformer: changes the request on its way upstream, Kong's plugin of the same name and
 * shape: `remove`, `rename`, `replace`, `add`, `append` (in that order) over headers, query parameters
 * and the fields of a JSON body, and `replace.uri` for the upstream path. Values may be templates,
 * rendered against the request as it reached the plugin, before any of its operations.
 *
 * Only a JSON body (application/json or +json, not compressed) is read, whole, up to `maxBodyBytes`;
 * whether a request takes that path is decided per request from its head, so other bodies, and every
 * body of a config without json operations, stream through untouched.
 */
import { definePlugin, type Filter, type RequestContext } from '../../core/plugin.ts';
import {
  applyJson,
  applyQuery,
  applyRequestHeaders,
  applyUri,
  isIdentityEncoded,
  isJsonMediaType,
  planTransform,
  renderHead,
  renderJson,
  type TransformPlan,
} from '../shared/transform/plan.ts';
import { type RequestTransformerConfig, requestTransformerSchema } from './schema.ts';

/** The head operations, in Kong's order: uri, headers, query. */
function transformHead(plan: TransformPlan, ctx: RequestContext): void {
  const values = renderHead(plan, ctx);
  if (plan.uri !== null) applyUri(plan, ctx);
  if (plan.headers.length > 0) applyRequestHeaders(plan, ctx, values);
  if (plan.query.length > 0) applyQuery(plan, ctx, values);
}

/** The filter of one request with a JSON body: it keeps that request's rendered JSON values. */
class JsonBodyFilter implements Filter {
  readonly requestBodyLimit: number;
  private readonly plan: TransformPlan;
  private values: readonly unknown[] = [];

  constructor(plan: TransformPlan) {
    this.plan = plan;
    this.requestBodyLimit = plan.maxBodyBytes;
  }

  onRequestHeaders(ctx: RequestContext): undefined {
    // Rendered now, so a template reads the request as it reached the plugin, not as the head ops left it.
    this.values = renderJson(this.plan, ctx);
    transformHead(this.plan, ctx);
    return undefined;
  }

  onRequestBody(_ctx: RequestContext, body: Buffer): string | undefined {
    return applyJson(this.plan, body, this.values);
  }
}

export default definePlugin<RequestTransformerConfig>({
  name: 'request-transformer',
  phase: 'transform',
  order: 100,
  description:
    'Remove, rename, replace, add or append request headers, query parameters and JSON body fields; replace the upstream path.',
  configSchema: requestTransformerSchema,
  check(config) {
    return planTransform(config, 'request').issues;
  },
  compile(config) {
    const { plan, issues } = planTransform(config, 'request');
    if (issues.length > 0) throw new Error(`request-transformer: ${issues[0]!.message}`);
    const hasHeadOps = plan.uri !== null || plan.headers.length > 0 || plan.query.length > 0;
    const head: Filter = hasHeadOps
      ? {
          onRequestHeaders(ctx) {
            transformHead(plan, ctx);
            return undefined;
          },
        }
      : {};
    if (plan.json.length === 0) return () => head;
    return (ctx) =>
      ctx.hasBody && isJsonMediaType(ctx.header('content-type')) && isIdentityEncoded(ctx.header('content-encoding'))
        ? new JsonBodyFilter(plan)
        : head;
  },
});
