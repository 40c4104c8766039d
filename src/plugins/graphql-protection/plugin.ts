/**
 * graphql-protection: checks GraphQL requests on routes that forward them as they are, before anything
 * reaches the upstream: depth, aliases, cost, introspection, and an allow-list of persisted queries
 * (Apollo's `extensions.persistedQuery.sha256Hash`; a hash-only request gets its query from the list,
 * inserted into what goes upstream). GET reads `query`, `operationName`, `variables` and `extensions`
 * from the query string; POST reads the JSON body (a batch, a JSON list, is checked entry by entry) or
 * an `application/graphql` body, buffered up to `maxBodyBytes`. Other methods pass. A refusal is a 400
 * problem+json whose code names the limit.
 *
 * graphql-js is loaded when a config first uses the plugin.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type * as GraphQL from 'graphql';
import { buildSchemaText, checkPersistedQueries, graphqlModule, readPersistedQueryList } from '../../config/graphql.ts';
import {
  DEFAULT_GRAPHQL_MAX_ALIASES,
  DEFAULT_GRAPHQL_MAX_COST,
  DEFAULT_GRAPHQL_MAX_DEPTH,
  DEFAULT_GRAPHQL_PROTECTION_BODY_BYTES,
} from '../../core/defaults.ts';
import { definePlugin, type Filter, type LocalReply, type RequestContext } from '../../core/plugin.ts';
import { queryValue } from '../../core/request-values.ts';
import { type CompiledLimits, checkOperation, type Refusal, selectOperation } from './analyze.ts';
import { type GraphqlProtectionConfig, graphqlProtectionSchema } from './schema.ts';

/** What one GraphQL request says, from a query string or a JSON body. */
interface GraphqlParams {
  query?: unknown;
  operationName?: unknown;
  variables?: unknown;
  extensions?: unknown;
}

type NotPersisted = { readonly code: 'MG_GRAPHQL_NOT_PERSISTED'; readonly detail: string };

/** A refusal, or the query the list supplied for a hash-only request (null: nothing to insert). */
type Verdict = { refusal: Refusal | NotPersisted } | { inserted: string | null };

const invalid = (detail: string): Verdict => ({ refusal: { code: 'MG_GRAPHQL_INVALID', detail } });

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

export default definePlugin<GraphqlProtectionConfig>({
  name: 'graphql-protection',
  phase: 'limit',
  order: 900,
  description:
    'Refuse GraphQL queries too deep, with too many aliases, too costly, introspecting, or not on a persisted-query list.',
  configSchema: graphqlProtectionSchema,
  check(config) {
    const inline = config.persistedQueries?.queries;
    if (inline === undefined) return [];
    const read = checkPersistedQueries(Object.entries(inline));
    return 'problem' in read ? [{ path: ['persistedQueries', 'queries'], message: read.problem }] : [];
  },
  compile(config, deps) {
    const g = graphqlModule();
    let schema: GraphQL.GraphQLSchema | null = null;
    if (config.schema !== undefined) {
      const built = buildSchemaText(readFileSync(config.schema, 'utf8'));
      if ('problem' in built) throw new Error(`graphql-protection: ${config.schema}: ${built.problem}`);
      schema = built.schema;
    }
    const limits: CompiledLimits = Object.freeze({
      maxDepth: config.maxDepth ?? DEFAULT_GRAPHQL_MAX_DEPTH,
      maxAliases: config.maxAliases ?? DEFAULT_GRAPHQL_MAX_ALIASES,
      maxCost: config.maxCost ?? DEFAULT_GRAPHQL_MAX_COST,
      defaultFieldCost: config.defaultFieldCost ?? 1,
      fieldCosts: new Map(Object.entries(config.fieldCosts ?? {})),
      listArguments: new Set(config.listArguments ?? ['first', 'last', 'limit']),
      introspection: config.introspection ?? false,
      schema,
    });
    const persisted = loadPersisted(config);
    const only = config.persistedQueries?.only === true;
    /** Persisted queries parsed once, by hash. */
    const parsed = new Map<string, GraphQL.DocumentNode>();
    for (const [hash, query] of persisted) parsed.set(hash, g.parse(query));
    const refused = deps.counter(
      'graphql_refused_total',
      'GraphQL requests refused by graphql-protection, by route and the code of the limit',
      ['route', 'reason'],
    );
    const maxBodyBytes = config.maxBodyBytes ?? DEFAULT_GRAPHQL_PROTECTION_BODY_BYTES;

    const inspect = (params: GraphqlParams): Verdict => {
      const extensions = params.extensions;
      if (extensions !== undefined && extensions !== null && !isObject(extensions))
        return invalid('extensions must be a JSON object');
      const pq = isObject(extensions) ? extensions.persistedQuery : undefined;
      const hash = isObject(pq) && typeof pq.sha256Hash === 'string' ? pq.sha256Hash.toLowerCase() : undefined;
      let query = params.query;
      let inserted: string | null = null;
      let document: GraphQL.DocumentNode | undefined;
      if (query === undefined || query === null || query === '') {
        if (hash === undefined) return invalid('the request has no query (and no persisted query hash)');
        const known = persisted.get(hash);
        if (known === undefined)
          return {
            refusal: {
              code: 'MG_GRAPHQL_NOT_PERSISTED',
              detail: `no query with hash ${hash} is on this route's persisted-query list`,
            },
          };
        query = inserted = known;
        document = parsed.get(hash);
      } else {
        if (typeof query !== 'string') return invalid('query must be a string');
        if (hash !== undefined || only || persisted.size > 0) {
          const actual = sha256(query);
          if (hash !== undefined && actual !== hash)
            return invalid('extensions.persistedQuery.sha256Hash is not the sha256 of the query');
          document = parsed.get(actual);
          if (only && document === undefined)
            return {
              refusal: {
                code: 'MG_GRAPHQL_NOT_PERSISTED',
                detail: 'this route accepts only queries on its persisted-query list, and this one is not',
              },
            };
        }
      }
      if (document === undefined) {
        try {
          document = g.parse(query as string);
        } catch (e) {
          return invalid(`the query does not parse: ${(e as Error).message}`);
        }
      }
      const name = params.operationName;
      if (name !== undefined && name !== null && typeof name !== 'string')
        return invalid('operationName must be a string');
      const variables = params.variables;
      if (variables !== undefined && variables !== null && !isObject(variables))
        return invalid('variables must be a JSON object');
      const operation = selectOperation(g, document, name ?? undefined);
      if (typeof operation === 'string') return invalid(operation);
      const refusal = checkOperation(g, document, operation, (variables as Record<string, unknown>) ?? null, limits);
      return refusal === null ? { inserted } : { refusal };
    };

    const refuse = (ctx: RequestContext, refusal: Refusal | NotPersisted): LocalReply => {
      refused.inc({ route: ctx.routeName, reason: refusal.code });
      return { status: 400, code: refusal.code, detail: refusal.detail };
    };

    const filter: Filter = {
      requestBodyLimit: maxBodyBytes,
      onRequestHeaders(ctx) {
        if (ctx.method === 'POST') {
          if (!ctx.hasBody) return refuse(ctx, { code: 'MG_GRAPHQL_INVALID', detail: 'a GraphQL POST needs a body' });
          return undefined;
        }
        if (ctx.method !== 'GET') return undefined;
        const params: GraphqlParams = {};
        for (const key of ['query', 'operationName'] as const) {
          const value = queryValue(ctx.query, key);
          if (value !== undefined) params[key] = value;
        }
        for (const key of ['variables', 'extensions'] as const) {
          const text = queryValue(ctx.query, key);
          if (text === undefined || text === '') continue;
          try {
            params[key] = JSON.parse(text);
          } catch {
            return refuse(ctx, { code: 'MG_GRAPHQL_INVALID', detail: `the ${key} parameter is not JSON` });
          }
        }
        const verdict = inspect(params);
        if ('refusal' in verdict) return refuse(ctx, verdict.refusal);
        if (verdict.inserted !== null) ctx.query = `${ctx.query}&query=${encodeURIComponent(verdict.inserted)}`;
        return undefined;
      },
      onRequestBody(ctx, body) {
        if (ctx.method !== 'POST') return undefined;
        if ((ctx.header('content-type') ?? '').startsWith('application/graphql')) {
          const verdict = inspect({ query: body.toString('utf8') });
          return 'refusal' in verdict ? refuse(ctx, verdict.refusal) : undefined;
        }
        let data: unknown;
        try {
          data = JSON.parse(body.toString('utf8'));
        } catch {
          return refuse(ctx, { code: 'MG_GRAPHQL_INVALID', detail: 'the body is not JSON' });
        }
        const batch = Array.isArray(data) ? data : [data];
        let changed = false;
        for (const entry of batch) {
          if (!isObject(entry))
            return refuse(ctx, { code: 'MG_GRAPHQL_INVALID', detail: 'a GraphQL request is a JSON object' });
          const verdict = inspect(entry);
          if ('refusal' in verdict) return refuse(ctx, verdict.refusal);
          if (verdict.inserted !== null) {
            entry.query = verdict.inserted;
            changed = true;
          }
        }
        return changed ? JSON.stringify(data) : undefined;
      },
    };
    return () => filter;
  },
});

/** The allow-list: the file's entries, then the inline ones (both checked at config load). */
function loadPersisted(config: GraphqlProtectionConfig): Map<string, string> {
  const out = new Map<string, string>();
  const pq = config.persistedQueries;
  if (pq?.file !== undefined) {
    const read = readPersistedQueryList(readFileSync(pq.file, 'utf8'));
    if ('problem' in read) throw new Error(`graphql-protection: ${pq.file}: ${read.problem}`);
    for (const [hash, query] of read.queries) out.set(hash, query);
  }
  if (pq?.queries !== undefined) {
    const read = checkPersistedQueries(Object.entries(pq.queries));
    if ('problem' in read) throw new Error(`graphql-protection: persistedQueries.queries: ${read.problem}`);
    for (const [hash, query] of read.queries) out.set(hash, query);
  }
  return out;
}
