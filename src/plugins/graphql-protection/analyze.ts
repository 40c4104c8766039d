/**
 * Measuring one GraphQL operation before it runs: how deep its fields nest, how many aliases it uses,
 * what it costs, and whether it introspects. Fragments count where they are spread; each fragment is
 * measured once (its numbers do not depend on where it is spread), so a document that spreads
 * fragments into each other many times is measured in time linear in its size, and a fragment that
 * spreads itself (a cycle, which GraphQL forbids) is refused rather than followed.
 *
 * Cost: a field costs its weight (`fieldCosts`, else `defaultFieldCost`; `__typename` 0) plus the
 * cost of its selection, multiplied by the value of its list argument (`first`, `last`, `limit`: an
 * integer literal, or a variable's integer value; at least 1; 1 when absent).
 */
import type * as GraphQL from 'graphql';
import type { GraphQLModule } from '../../config/graphql.ts';

export interface CompiledLimits {
  /** 0: no limit (the same for the two below). */
  readonly maxDepth: number;
  readonly maxAliases: number;
  readonly maxCost: number;
  readonly defaultFieldCost: number;
  /** `Type.field` or `field` → weight. */
  readonly fieldCosts: ReadonlyMap<string, number>;
  readonly listArguments: ReadonlySet<string>;
  readonly introspection: boolean;
  /** For the types of nested fields; null: only root types and type conditions are known. */
  readonly schema: GraphQL.GraphQLSchema | null;
}

export interface Measure {
  depth: number;
  aliases: number;
  cost: number;
  /** The first introspection field met (`__schema`, `__type`), or null. */
  introspection: string | null;
}

/** Why an operation is refused: a code of docs/errors.md and a sentence for the client. */
export interface Refusal {
  readonly code:
    | 'MG_GRAPHQL_INVALID'
    | 'MG_GRAPHQL_TOO_DEEP'
    | 'MG_GRAPHQL_TOO_MANY_ALIASES'
    | 'MG_GRAPHQL_TOO_COSTLY'
    | 'MG_GRAPHQL_INTROSPECTION';
  readonly detail: string;
}

class InvalidOperation extends Error {}

/** The operation a request runs: `operationName`, or the only one. */
export function selectOperation(
  g: GraphQLModule,
  document: GraphQL.DocumentNode,
  operationName: string | undefined,
): GraphQL.OperationDefinitionNode | string {
  const operations = document.definitions.filter(
    (d): d is GraphQL.OperationDefinitionNode => d.kind === g.Kind.OPERATION_DEFINITION,
  );
  if (operationName !== undefined) {
    const found = operations.find((o) => o.name?.value === operationName);
    return found ?? `the document has no operation named ${operationName}`;
  }
  if (operations.length === 1) return operations[0]!;
  return operations.length === 0
    ? 'the document has no operation'
    : `the document has ${operations.length} operations and the request names none (operationName)`;
}

/** Measures `operation` of `document`; throws nothing: an impossible document is a refusal. */
export function checkOperation(
  g: GraphQLModule,
  document: GraphQL.DocumentNode,
  operation: GraphQL.OperationDefinitionNode,
  variables: Readonly<Record<string, unknown>> | null,
  limits: CompiledLimits,
): Refusal | null {
  let m: Measure;
  try {
    m = measure(g, document, operation, variables, limits);
  } catch (e) {
    if (e instanceof InvalidOperation) return { code: 'MG_GRAPHQL_INVALID', detail: e.message };
    throw e;
  }
  if (m.introspection !== null && !limits.introspection)
    return { code: 'MG_GRAPHQL_INTROSPECTION', detail: `introspection (${m.introspection}) is disabled on this route` };
  if (limits.maxDepth > 0 && m.depth > limits.maxDepth)
    return {
      code: 'MG_GRAPHQL_TOO_DEEP',
      detail: `the query nests ${m.depth} fields deep; this route accepts ${limits.maxDepth} (maxDepth)`,
    };
  if (limits.maxAliases > 0 && m.aliases > limits.maxAliases)
    return {
      code: 'MG_GRAPHQL_TOO_MANY_ALIASES',
      detail: `the query has ${m.aliases} aliases; this route accepts ${limits.maxAliases} (maxAliases)`,
    };
  if (limits.maxCost > 0 && m.cost > limits.maxCost)
    return {
      code: 'MG_GRAPHQL_TOO_COSTLY',
      detail: `the query costs ${Number.isFinite(m.cost) ? m.cost : 'more than can be counted'}; this route accepts ${limits.maxCost} (maxCost)`,
    };
  return null;
}

export function measure(
  g: GraphQLModule,
  document: GraphQL.DocumentNode,
  operation: GraphQL.OperationDefinitionNode,
  variables: Readonly<Record<string, unknown>> | null,
  limits: CompiledLimits,
): Measure {
  const fragments = new Map<string, GraphQL.FragmentDefinitionNode>();
  for (const d of document.definitions) if (d.kind === g.Kind.FRAGMENT_DEFINITION) fragments.set(d.name.value, d);
  const measured = new Map<string, Measure>();
  const inProgress = new Set<string>();
  const schema = limits.schema;

  const typeOfField = (parent: string | null, field: string): string | null => {
    if (schema === null || parent === null) return null;
    const type = schema.getType(parent);
    if (type === undefined || !(g.isObjectType(type) || g.isInterfaceType(type))) return null;
    const def = type.getFields()[field];
    return def === undefined ? null : g.getNamedType(def.type).name;
  };

  const weight = (parent: string | null, field: string): number => {
    if (parent !== null) {
      const typed = limits.fieldCosts.get(`${parent}.${field}`);
      if (typed !== undefined) return typed;
    }
    return limits.fieldCosts.get(field) ?? limits.defaultFieldCost;
  };

  const multiplier = (field: GraphQL.FieldNode): number => {
    for (const arg of field.arguments ?? []) {
      if (!limits.listArguments.has(arg.name.value)) continue;
      let n: unknown;
      if (arg.value.kind === g.Kind.INT) n = Number(arg.value.value);
      else if (arg.value.kind === g.Kind.VARIABLE) n = variables?.[arg.value.name.value];
      if (typeof n === 'number' && Number.isInteger(n)) return Math.max(1, n);
    }
    return 1;
  };

  const fragment = (name: string): Measure => {
    const done = measured.get(name);
    if (done !== undefined) return done;
    const definition = fragments.get(name);
    if (definition === undefined) throw new InvalidOperation(`unknown fragment ${name}`);
    if (inProgress.has(name)) throw new InvalidOperation(`fragment ${name} spreads itself`);
    inProgress.add(name);
    const m = selections(definition.selectionSet, definition.typeCondition.name.value);
    inProgress.delete(name);
    measured.set(name, m);
    return m;
  };

  /** The selection's own numbers: depth below it, aliases, cost. */
  function selections(set: GraphQL.SelectionSetNode, parent: string | null): Measure {
    const m: Measure = { depth: 0, aliases: 0, cost: 0, introspection: null };
    const add = (child: Measure, depth: number) => {
      if (depth > m.depth) m.depth = depth;
      m.aliases += child.aliases;
      m.cost += child.cost;
      m.introspection ??= child.introspection;
    };
    for (const s of set.selections) {
      if (s.kind === g.Kind.FIELD) {
        const name = s.name.value;
        if (s.alias !== undefined) m.aliases++;
        if (name === '__typename') continue;
        if (name === '__schema' || name === '__type') m.introspection ??= name;
        if (s.selectionSet === undefined) {
          m.cost += weight(parent, name);
          if (m.depth < 1) m.depth = 1;
          continue;
        }
        const child = selections(s.selectionSet, typeOfField(parent, name));
        m.cost += weight(parent, name) + multiplier(s) * child.cost;
        if (1 + child.depth > m.depth) m.depth = 1 + child.depth;
        m.aliases += child.aliases;
        m.introspection ??= child.introspection;
      } else if (s.kind === g.Kind.INLINE_FRAGMENT) {
        const child = selections(s.selectionSet, s.typeCondition?.name.value ?? parent);
        add(child, child.depth);
      } else {
        const child = fragment(s.name.value);
        add(child, child.depth);
      }
    }
    return m;
  }

  const root =
    schema?.getRootType(operation.operation)?.name ??
    (operation.operation === 'query' ? 'Query' : operation.operation === 'mutation' ? 'Mutation' : 'Subscription');
  return selections(operation.selectionSet, root);
}
