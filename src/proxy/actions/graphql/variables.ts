/**
 * The `graphql` action's variables: values compiled once from the config (strings are templates, at
 * any depth), rendered per request, then coerced to the type the operation declares. With a schema the
 * whole input type is known (input object fields, enums, custom scalars) and graphql-js has the last
 * word (`coerceInputValue`); without one, the declared type's name and wrappers are: Int, Float,
 * Boolean, ID and String by name, lists, and JSON text for any other named type.
 *
 * Text arrives from paths, query strings and headers, so text is what gets converted: `"10"` for an
 * Int is 10, `"true"` for a Boolean is true, `"a,b"` or `["a","b"]` for a list is a list, `{"x":1}` for
 * an input object is an object. A value of the right JSON type (a `$(body…)` reference) passes as is.
 */
import type * as GraphQL from 'graphql';
import { GRAPHQL_BODY_ROOT, type GraphQLModule } from '../../../config/graphql.ts';
import type { RequestContext } from '../../../core/plugin.ts';
import { type CompiledTemplate, compileTemplate, type ExtraLookup } from '../../../core/template.ts';

/** A configured value, compiled: constants, templates, and objects or lists of them. */
type ValueNode =
  | { readonly kind: 'constant'; readonly value: unknown }
  | { readonly kind: 'template'; readonly template: CompiledTemplate }
  | { readonly kind: 'object'; readonly entries: readonly (readonly [string, ValueNode])[] }
  | { readonly kind: 'list'; readonly items: readonly ValueNode[] };

/** A request's value that cannot become the declared type; the message names where and why. */
export class CoercionError extends Error {}

type Coerce = (value: unknown, at: string) => unknown;

export interface CompiledVariable {
  readonly name: string;
  /** As configured, for messages (`$(query.limit)`). */
  readonly source: string;
  /** The declared type as written (`Int!`), for messages. */
  readonly typeText: string;
  /** Non-null without a default: a missing value is the client's error. */
  readonly required: boolean;
  readonly readsBody: boolean;
  readonly value: ValueNode;
  readonly coerce: Coerce;
}

function compileValue(value: unknown): ValueNode {
  if (typeof value === 'string') {
    const template = compileTemplate(value, [GRAPHQL_BODY_ROOT]);
    return template.constant !== null ? { kind: 'constant', value: template.constant } : { kind: 'template', template };
  }
  if (Array.isArray(value)) return { kind: 'list', items: value.map(compileValue) };
  if (value !== null && typeof value === 'object')
    return { kind: 'object', entries: Object.entries(value).map(([k, v]) => [k, compileValue(v)] as const) };
  return { kind: 'constant', value };
}

function readsBody(node: ValueNode): boolean {
  switch (node.kind) {
    case 'constant':
      return false;
    case 'template':
      return node.template.references.some((r) => r.root === GRAPHQL_BODY_ROOT);
    case 'object':
      return node.entries.some(([, v]) => readsBody(v));
    case 'list':
      return node.items.some(readsBody);
  }
}

/** The value for this request; undefined when a template's reference has no value (object fields are left out). */
export function renderValue(node: ValueNode, ctx: RequestContext, extra: ExtraLookup): unknown {
  switch (node.kind) {
    case 'constant':
      return node.value;
    case 'template':
      return node.template.value(ctx, extra);
    case 'object': {
      const out: Record<string, unknown> = {};
      for (const [key, child] of node.entries) {
        const v = renderValue(child, ctx, extra);
        if (v !== undefined) out[key] = v;
      }
      return out;
    }
    case 'list':
      return node.items.map((item) => renderValue(item, ctx, extra) ?? null);
  }
}

/** Compiles the configured variables against the operation's declarations (checked at config load). */
export function compileVariables(
  g: GraphQLModule,
  operation: GraphQL.OperationDefinitionNode,
  schema: GraphQL.GraphQLSchema | null,
  config: Readonly<Record<string, unknown>>,
): CompiledVariable[] {
  const declared = new Map((operation.variableDefinitions ?? []).map((d) => [d.variable.name.value, d] as const));
  const out: CompiledVariable[] = [];
  for (const [name, raw] of Object.entries(config)) {
    const definition = declared.get(name);
    if (definition === undefined) throw new Error(`the operation declares no variable $${name}`);
    const value = compileValue(raw);
    let coerce: Coerce;
    if (schema !== null) {
      const type = g.typeFromAST(schema, definition.type as GraphQL.NamedTypeNode) as GraphQL.GraphQLInputType;
      if (type === undefined) throw new Error(`the schema has no type ${g.print(definition.type)}`);
      coerce = schemaCoercion(g, type);
    } else coerce = astCoercion(g, definition.type);
    out.push(
      Object.freeze({
        name,
        source: typeof raw === 'string' ? raw : JSON.stringify(raw),
        typeText: g.print(definition.type),
        required: definition.type.kind === g.Kind.NON_NULL_TYPE && definition.defaultValue === undefined,
        readsBody: readsBody(value),
        value,
        coerce,
      }),
    );
  }
  return out;
}

const INT_MAX = 2 ** 31 - 1;

/** The built-in scalars from text (or a JSON value of a near type); other names keep the value. */
function scalar(name: string, value: unknown, at: string): unknown {
  switch (name) {
    case 'Int': {
      const n = typeof value === 'string' && /^[+-]?\d+$/.test(value.trim()) ? Number(value) : value;
      if (typeof n !== 'number' || !Number.isInteger(n) || Math.abs(n) > INT_MAX)
        throw new CoercionError(`${at}: ${describe(value)} is not an Int (a 32-bit integer)`);
      return n;
    }
    case 'Float': {
      const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
      if (typeof n !== 'number' || !Number.isFinite(n))
        throw new CoercionError(`${at}: ${describe(value)} is not a Float`);
      return n;
    }
    case 'Boolean':
      if (value === true || value === 'true') return true;
      if (value === false || value === 'false') return false;
      throw new CoercionError(`${at}: ${describe(value)} is not a Boolean (true or false)`);
    case 'String':
    case 'ID':
      if (typeof value === 'string') return value;
      if (typeof value === 'number' || typeof value === 'boolean') return String(value);
      throw new CoercionError(`${at}: ${describe(value)} is not a ${name}`);
    default:
      return value;
  }
}

function describe(value: unknown): string {
  return typeof value === 'string'
    ? JSON.stringify(value)
    : `the ${Array.isArray(value) ? 'list' : typeof value} ${JSON.stringify(value)}`;
}

/** Text for a list: a JSON array, or comma-separated items (`?ids=1,2,3`); any other single value is a list of one. */
function asList(value: unknown): unknown[] {
  if (Array.isArray(value)) return value;
  if (typeof value === 'string') {
    const text = value.trim();
    if (text.startsWith('[')) {
      const parsed = parseJson(text);
      if (Array.isArray(parsed)) return parsed;
    }
    return text === '' ? [] : text.split(',');
  }
  return [value];
}

/** Text for an input object or an unknown named type: JSON when it reads as an object or list. */
function fromJsonText(value: unknown): unknown {
  if (typeof value !== 'string') return value;
  const text = value.trim();
  if (!text.startsWith('{') && !text.startsWith('[')) return value;
  const parsed = parseJson(text);
  return parsed === undefined ? value : parsed;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Without a schema: by the declared type's wrappers and name. */
function astCoercion(g: GraphQLModule, type: GraphQL.TypeNode): Coerce {
  const coerce = (value: unknown, node: GraphQL.TypeNode, at: string): unknown => {
    if (node.kind === g.Kind.NON_NULL_TYPE) {
      if (value === null) throw new CoercionError(`${at}: null for the non-null type ${g.print(node)}`);
      return coerce(value, node.type, at);
    }
    if (value === null) return null;
    if (node.kind === g.Kind.LIST_TYPE) return asList(value).map((item, i) => coerce(item, node.type, `${at}[${i}]`));
    return scalar(node.name.value, fromJsonText(value), at);
  };
  return (value, at) => coerce(value, type, at);
}

/** With a schema: converted by its types, then checked by graphql-js's own input coercion. */
function schemaCoercion(g: GraphQLModule, type: GraphQL.GraphQLInputType): Coerce {
  const convert = (value: unknown, t: GraphQL.GraphQLInputType, at: string): unknown => {
    if (g.isNonNullType(t)) {
      if (value === null) throw new CoercionError(`${at}: null for the non-null type ${t}`);
      return convert(value, t.ofType, at);
    }
    if (value === null) return null;
    if (g.isListType(t)) return asList(value).map((item, i) => convert(item, t.ofType, `${at}[${i}]`));
    if (g.isInputObjectType(t)) {
      const object = fromJsonText(value);
      if (object === null || typeof object !== 'object' || Array.isArray(object))
        throw new CoercionError(`${at}: ${describe(value)} is not a ${t.name} object (JSON)`);
      const fields = t.getFields();
      const out: Record<string, unknown> = {};
      for (const [key, v] of Object.entries(object)) {
        const field = fields[key];
        out[key] = field === undefined ? v : convert(v, field.type, `${at}.${key}`);
      }
      return out;
    }
    return g.isEnumType(t) ? value : scalar(t.name, value, at);
  };
  return (value, at) => {
    const converted = convert(value, type, at);
    let problem: string | undefined;
    g.coerceInputValue(converted, type, (path, _invalid, error) => {
      problem ??= `${at}${path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${p}`)).join('')}: ${error.message}`;
    });
    if (problem !== undefined) throw new CoercionError(problem);
    return converted;
  };
}
