/**
 * GraphQL documents in a config: the `graphql` route action's query (parsed, its operation chosen,
 * validated against the schema file when one is given) and the files of the `graphql-protection`
 * plugin (its schema and persisted-query list). Checked at config load so a broken document is a config
 * error at its field, with the GraphQL error's own line and column inside the document; the data plane
 * compiles the same documents again with `prepareOperation` (a worker may not share this process).
 *
 * graphql-js is loaded on first use only: a config without GraphQL never loads it.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { isAbsolute, resolve } from 'node:path';
import type * as GraphQL from 'graphql';
import type { Config } from '../api/config.ts';
import { compileTemplate, TemplateError } from '../core/template.ts';
import type { Locator, Path } from './document.ts';
import { type ConfigIssue, didYouMean, formatPath } from './issues.ts';
import { pluginLists } from './plugins.ts';

export type GraphQLModule = typeof GraphQL;

let graphql: GraphQLModule | undefined;

/**
 * graphql-js, required when a config first needs it. Synchronous on purpose: config validation is
 * synchronous, and the package ships a CommonJS build.
 */
export function graphqlModule(): GraphQLModule {
  graphql ??= createRequire(import.meta.url)('graphql') as GraphQLModule;
  return graphql;
}

/** The template root, beyond the request's, that a `graphql` action's variables may use. */
export const GRAPHQL_BODY_ROOT = 'body';

/** The plugin whose files this module checks and resolves. */
export const GRAPHQL_PROTECTION_PLUGIN = 'graphql-protection';

export interface PreparedOperation {
  readonly document: GraphQL.DocumentNode;
  readonly operation: GraphQL.OperationDefinitionNode;
  /** The name sent as `operationName`: the configured one, or the single operation's own name. */
  readonly operationName: string | undefined;
  /** Built from the schema file; null when none was given. */
  readonly schema: GraphQL.GraphQLSchema | null;
}

/** A problem with a `graphql` action's document, at one of its fields. */
export interface OperationProblem {
  readonly field: 'query' | 'operationName' | 'schema';
  readonly message: string;
  readonly hint?: string;
}

/** `line 3, column 7 of the query` for a GraphQL error's first location. */
function where(error: GraphQL.GraphQLError, what: string): string {
  const at = error.locations?.[0];
  return at === undefined ? `in the ${what}` : `at line ${at.line}, column ${at.column} of the ${what}`;
}

/** Builds a schema from SDL text; a problem when it does not parse or is not a valid schema. */
export function buildSchemaText(sdl: string): { schema: GraphQL.GraphQLSchema } | { problem: string } {
  const g = graphqlModule();
  try {
    const schema = g.buildSchema(sdl);
    const invalid = g.validateSchema(schema);
    if (invalid.length > 0) return { problem: `invalid schema: ${invalid[0]!.message}` };
    return { schema };
  } catch (e) {
    const error = e as GraphQL.GraphQLError;
    return { problem: `the schema does not parse ${where(error, 'schema')}: ${error.message}` };
  }
}

/**
 * Parses the document, picks the operation (`operationName`, or the only one) and validates the whole
 * document against the schema when one is given. Subscriptions are refused: they need a stream, not
 * one answer.
 */
export function prepareOperation(
  query: string,
  operationName: string | undefined,
  schemaSdl: string | null,
): { ok: true; value: PreparedOperation } | { ok: false; problems: OperationProblem[] } {
  const g = graphqlModule();
  let document: GraphQL.DocumentNode;
  try {
    document = g.parse(query);
  } catch (e) {
    const error = e as GraphQL.GraphQLError;
    return {
      ok: false,
      problems: [{ field: 'query', message: `GraphQL syntax error ${where(error, 'query')}: ${error.message}` }],
    };
  }
  const operations = document.definitions.filter(
    (d): d is GraphQL.OperationDefinitionNode => d.kind === g.Kind.OPERATION_DEFINITION,
  );
  const names = operations.flatMap((o) => (o.name ? [o.name.value] : []));
  let operation: GraphQL.OperationDefinitionNode | undefined;
  if (operationName !== undefined) {
    operation = operations.find((o) => o.name?.value === operationName);
    if (operation === undefined)
      return {
        ok: false,
        problems: [
          {
            field: 'operationName',
            message: `the query has no operation named ${operationName}`,
            hint: didYouMean(operationName, names) ?? `its operations: ${names.join(', ') || 'none named'}`,
          },
        ],
      };
  } else if (operations.length === 1) operation = operations[0];
  else
    return {
      ok: false,
      problems: [
        operations.length === 0
          ? { field: 'query', message: 'the query has no operation (only fragments)' }
          : {
              field: 'operationName',
              message: `the query has ${operations.length} operations: say which one to run`,
              hint: `operationName: one of ${names.join(', ')}`,
            },
      ],
    };
  if (operation!.operation === 'subscription')
    return {
      ok: false,
      problems: [{ field: 'query', message: 'a subscription cannot be answered as one REST response' }],
    };
  let schema: GraphQL.GraphQLSchema | null = null;
  if (schemaSdl !== null) {
    const built = buildSchemaText(schemaSdl);
    if ('problem' in built) return { ok: false, problems: [{ field: 'schema', message: built.problem }] };
    schema = built.schema;
    const errors = g.validate(schema, document);
    if (errors.length > 0)
      return {
        ok: false,
        problems: errors.map((error) => ({
          field: 'query',
          message: `invalid against the schema ${where(error, 'query')}: ${error.message}`,
        })),
      };
  }
  return {
    ok: true,
    value: { document, operation: operation!, operationName: operationName ?? operation!.name?.value, schema },
  };
}

/** `(path, message, hint)` → an issue located in the config. */
type Report = (path: Path, message: string, hint?: string) => void;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Reads a file a config names, relative to `baseDir`; reports and returns undefined when it cannot. */
function readConfigFile(file: string, baseDir: string, path: Path, report: Report): string | undefined {
  const absolute = isAbsolute(file) ? file : resolve(baseDir, file);
  try {
    return readFileSync(absolute, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    report(path, `cannot read ${absolute}: ${code === 'ENOENT' ? 'no such file' : (code ?? (e as Error).message)}`);
    return undefined;
  }
}

/**
 * Every `graphql` route action (its document, operation, schema and variables) and every
 * `graphql-protection` plugin entry's files. Loads graphql-js only when the config has either.
 */
export function checkGraphqlConfig(config: Config, at: Locator, baseDir: string): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  if (!isObject(config)) return issues;
  const report: Report = (path, message, hint) =>
    issues.push({ ...at.position(path), path: formatPath(path), message, ...(hint ? { hint } : {}) });
  (Array.isArray(config.routes) ? config.routes : []).forEach((route, i) => {
    const action = isObject(route) ? (route as { graphql?: unknown }).graphql : undefined;
    if (isObject(action) && typeof action.query === 'string')
      checkAction(action, ['routes', i, 'graphql'], baseDir, report);
  });
  for (const { at: listAt, entries } of pluginLists(config))
    entries.forEach((entry, j) => {
      if (entry.name === GRAPHQL_PROTECTION_PLUGIN && isObject(entry.config))
        checkProtectionFiles(entry.config, [...listAt, j, 'config'], baseDir, report);
    });
  return issues;
}

function checkAction(action: Record<string, unknown>, here: Path, baseDir: string, report: Report): void {
  let sdl: string | null = null;
  if (typeof action.schema === 'string') {
    const text = readConfigFile(action.schema, baseDir, [...here, 'schema'], report);
    if (text === undefined) return;
    sdl = text;
  }
  const prepared = prepareOperation(
    action.query as string,
    typeof action.operationName === 'string' ? action.operationName : undefined,
    sdl,
  );
  if (!prepared.ok) {
    for (const p of prepared.problems) report([...here, p.field], p.message, p.hint);
    return;
  }
  const declared = new Map(
    (prepared.value.operation.variableDefinitions ?? []).map((d) => [d.variable.name.value, d] as const),
  );
  const variables = isObject(action.variables) ? action.variables : {};
  for (const [name, value] of Object.entries(variables)) {
    const path: Path = [...here, 'variables', name];
    if (!declared.has(name)) {
      report(
        path,
        `the operation declares no variable $${name}`,
        didYouMean(name, declared.keys()) ??
          (declared.size > 0 ? `it declares ${[...declared.keys()].map((n) => `$${n}`).join(', ')}` : undefined),
      );
      continue;
    }
    const problem = templateProblem(value);
    if (problem !== undefined) report(path, problem);
  }
  const kind = graphqlModule().Kind.NON_NULL_TYPE;
  for (const [name, d] of declared)
    if (d.type.kind === kind && d.defaultValue === undefined && !Object.hasOwn(variables, name))
      report(
        [...here, 'variables'],
        `the operation needs $${name} (${graphqlModule().print(d.type)}) and variables gives it no value`,
        `e.g. ${name}: "$(params.${name})"`,
      );
}

/** The first template in a variable's value (strings, at any depth) that does not compile. */
function templateProblem(value: unknown): string | undefined {
  if (typeof value === 'string') {
    try {
      compileTemplate(value, [GRAPHQL_BODY_ROOT]);
    } catch (e) {
      if (e instanceof TemplateError) return e.message;
      throw e;
    }
    return undefined;
  }
  if (value !== null && typeof value === 'object')
    for (const item of Object.values(value)) {
      const problem = templateProblem(item);
      if (problem !== undefined) return problem;
    }
  return undefined;
}

function checkProtectionFiles(config: Record<string, unknown>, here: Path, baseDir: string, report: Report): void {
  if (typeof config.schema === 'string') {
    const sdl = readConfigFile(config.schema, baseDir, [...here, 'schema'], report);
    if (sdl !== undefined) {
      const built = buildSchemaText(sdl);
      if ('problem' in built) report([...here, 'schema'], built.problem);
    }
  }
  const persisted = isObject(config.persistedQueries) ? config.persistedQueries : undefined;
  if (persisted !== undefined && typeof persisted.file === 'string') {
    const path: Path = [...here, 'persistedQueries', 'file'];
    const text = readConfigFile(persisted.file, baseDir, path, report);
    if (text === undefined) return;
    const read = readPersistedQueryList(text);
    if ('problem' in read) report(path, read.problem, 'a JSON map of sha256 hash → query, or an Apollo manifest');
  }
}

/**
 * A persisted-query list from its file: a JSON object of sha256 (hex) → query text, or an Apollo
 * persisted query manifest (`{ format: "apollo-persisted-query-manifest", operations: [{ id, body }] }`).
 * Every hash must be the sha256 of its query and every query must parse.
 */
export function readPersistedQueryList(text: string): { queries: Map<string, string> } | { problem: string } {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    return { problem: `not JSON: ${(e as Error).message}` };
  }
  const entries: [string, unknown][] = [];
  if (isObject(data) && data.format === 'apollo-persisted-query-manifest') {
    if (!Array.isArray(data.operations)) return { problem: 'the manifest has no operations list' };
    for (const op of data.operations) entries.push([isObject(op) ? String(op.id) : '', isObject(op) ? op.body : op]);
  } else if (isObject(data)) entries.push(...Object.entries(data));
  else return { problem: 'expected a JSON object' };
  return checkPersistedQueries(entries);
}

/** Checks hash → query pairs (from a file or the plugin's inline map). */
export function checkPersistedQueries(
  entries: Iterable<[string, unknown]>,
): { queries: Map<string, string> } | { problem: string } {
  const queries = new Map<string, string>();
  const g = graphqlModule();
  for (const [hash, query] of entries) {
    if (typeof query !== 'string') return { problem: `the entry ${hash} is not a query string` };
    const actual = createHash('sha256').update(query).digest('hex');
    if (actual !== hash.toLowerCase()) return { problem: `${hash} is not the sha256 of its query (that is ${actual})` };
    try {
      g.parse(query);
    } catch (e) {
      const error = e as GraphQL.GraphQLError;
      return { problem: `the query of ${hash} does not parse ${where(error, 'query')}: ${error.message}` };
    }
    queries.set(actual, query);
  }
  return { queries };
}

/**
 * Makes the files GraphQL settings name absolute (the action's `schema`, the plugin's `schema` and
 * `persistedQueries.file`), so the config means the same wherever it is applied. Runs on the plain
 * object before it is frozen.
 */
export function resolveGraphqlPaths(config: Config, baseDir: string): void {
  const absolute = (file: string) => (isAbsolute(file) ? file : resolve(baseDir, file));
  for (const route of config.routes ?? []) {
    const action = (route as { graphql?: { schema?: string } }).graphql;
    if (action?.schema !== undefined) action.schema = absolute(action.schema);
  }
  for (const { entries } of pluginLists(config))
    for (const entry of entries) {
      if (entry.name !== GRAPHQL_PROTECTION_PLUGIN || !isObject(entry.config)) continue;
      const c = entry.config as { schema?: string; persistedQueries?: { file?: string } };
      if (typeof c.schema === 'string') c.schema = absolute(c.schema);
      if (typeof c.persistedQueries?.file === 'string') c.persistedQueries.file = absolute(c.persistedQueries.file);
    }
}
