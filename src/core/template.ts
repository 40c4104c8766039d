/**
 * Value templates: `$(params.id)`, `$(query.page)`, `$(headers.x-user)`, `$(consumer.name)`,
 * `$(claims.sub)` inside a config string, compiled once per config and rendered per request. The
 * transformers, the aggregate action and the GraphQL action fill their values with them, so every one
 * of them reads the same references the same way.
 *
 * A reference is `$(root.name)` or `$(root.a.b.0)` (dot path, array elements by index). `params` are
 * the route's `:name` path segments, `query` and `headers` the request's (headers by lower-case name),
 * `consumer` has `name`, `id` and `groups`, `claims` are the verified JWT's. A caller may allow more
 * roots (the aggregate action's earlier results) and resolve them itself. `$$` is a literal `$`.
 *
 * Written here rather than taken from a template library: the syntax is Kong's, the lookups are the
 * proxy's own request accessors, and rendering must not allocate beyond the resulting string.
 */
import type { RequestContext } from './plugin.ts';
import { queryValue } from './request-values.ts';

/** The roots every template may use. */
export const REQUEST_TEMPLATE_ROOTS = ['params', 'query', 'headers', 'consumer', 'claims'] as const;

export interface TemplateReference {
  readonly root: string;
  /** The dot path under the root, at least one element (`$(params.id)` → ['id']). */
  readonly path: readonly string[];
  /** As written, for messages: `params.id`. */
  readonly text: string;
}

/** Resolves a root the caller added (see `compileTemplate`'s `roots`); undefined: no value. */
export type ExtraLookup = (root: string, path: readonly string[]) => unknown;

export interface CompiledTemplate {
  readonly source: string;
  readonly references: readonly TemplateReference[];
  /** The text when the template has no reference (nothing to render per request), else null. */
  readonly constant: string | null;
  /**
   * The template with each reference replaced by its value (`encode` applied to each value, e.g.
   * `encodeURIComponent` inside a path); undefined when a referenced value is absent.
   */
  render(ctx: RequestContext, extra?: ExtraLookup, encode?: (value: string) => string): string | undefined;
  /**
   * As `render`, but a template that is exactly one reference yields the value itself, keeping its JSON
   * type (a number, an object): for variables and JSON fields.
   */
  value(ctx: RequestContext, extra?: ExtraLookup): unknown;
}

export class TemplateError extends Error {
  /** Offset in the template where the problem is. */
  readonly offset: number;
  constructor(message: string, offset: number) {
    super(message);
    this.offset = offset;
  }
}

const NAME = /^[A-Za-z0-9_-]+$/;

/**
 * Compiles a template; throws TemplateError (with a message a config error can show) for an unclosed
 * `$(`, an unknown root or an empty path. `roots` lists the roots allowed beyond the request's.
 */
export function compileTemplate(source: string, roots: readonly string[] = []): CompiledTemplate {
  const literals: string[] = [];
  const references: TemplateReference[] = [];
  let literal = '';
  let i = 0;
  while (i < source.length) {
    const c = source[i]!;
    if (c === '$' && source[i + 1] === '$') {
      literal += '$';
      i += 2;
      continue;
    }
    if (c !== '$' || source[i + 1] !== '(') {
      literal += c;
      i++;
      continue;
    }
    const close = source.indexOf(')', i + 2);
    if (close === -1) throw new TemplateError(`unclosed "$(" at offset ${i}`, i);
    const text = source.slice(i + 2, close).trim();
    const parts = text.split('.');
    const root = parts[0]!;
    if (!(REQUEST_TEMPLATE_ROOTS as readonly string[]).includes(root) && !roots.includes(root)) {
      const known = [...REQUEST_TEMPLATE_ROOTS, ...roots].join(', ');
      throw new TemplateError(`unknown template root "${root}" in "$(${text})"; known roots: ${known}`, i);
    }
    const path = parts.slice(1);
    if (path.length === 0 || path.some((p) => !NAME.test(p)))
      throw new TemplateError(`"$(${text})" needs a name after "${root}." (letters, digits, "_" or "-")`, i);
    literals.push(literal);
    literal = '';
    references.push(Object.freeze({ root, path: Object.freeze(path), text }));
    i = close + 1;
  }
  literals.push(literal);
  return new Template(source, Object.freeze(literals), Object.freeze(references));
}

class Template implements CompiledTemplate {
  readonly source: string;
  readonly references: readonly TemplateReference[];
  readonly constant: string | null;
  private readonly literals: readonly string[];
  /** Exactly one reference and no text around it. */
  private readonly single: boolean;

  constructor(source: string, literals: readonly string[], references: readonly TemplateReference[]) {
    this.source = source;
    this.literals = literals;
    this.references = references;
    this.constant = references.length === 0 ? literals[0]! : null;
    this.single = references.length === 1 && literals[0] === '' && literals[1] === '';
  }

  render(ctx: RequestContext, extra?: ExtraLookup, encode?: (value: string) => string): string | undefined {
    if (this.constant !== null) return this.constant;
    let out = this.literals[0]!;
    for (let i = 0; i < this.references.length; i++) {
      const value = lookup(ctx, this.references[i]!, extra);
      if (value === undefined || value === null) return undefined;
      const text = typeof value === 'object' ? JSON.stringify(value) : String(value);
      out += (encode === undefined ? text : encode(text)) + this.literals[i + 1]!;
    }
    return out;
  }

  value(ctx: RequestContext, extra?: ExtraLookup): unknown {
    if (!this.single) return this.render(ctx, extra);
    const value = lookup(ctx, this.references[0]!, extra);
    return value === null ? undefined : value;
  }
}

function lookup(ctx: RequestContext, ref: TemplateReference, extra: ExtraLookup | undefined): unknown {
  const path = ref.path;
  const name = path[0]!;
  switch (ref.root) {
    case 'params':
      return path.length === 1 ? ctx.pathParam(name) : undefined;
    case 'query':
      return path.length === 1 ? queryValue(ctx.query, name) : undefined;
    case 'headers':
      return path.length === 1 ? ctx.header(name.toLowerCase()) : undefined;
    case 'consumer': {
      const consumer = ctx.consumer;
      if (consumer === null) return undefined;
      return walk(consumer, path);
    }
    case 'claims':
      return ctx.claims == null ? undefined : walk(ctx.claims, path);
    default:
      return extra?.(ref.root, path);
  }
}

/** The value at a dot path in JSON-like data (array elements by index); undefined when absent. */
export function walk(data: unknown, path: readonly string[], from = 0): unknown {
  let node = data;
  for (let i = from; i < path.length; i++) {
    if (node === null || typeof node !== 'object') return undefined;
    const key = path[i]!;
    if (Array.isArray(node)) {
      const index = Number(key);
      node = Number.isInteger(index) && index >= 0 ? node[index] : undefined;
    } else {
      node = Object.hasOwn(node, key) ? (node as Record<string, unknown>)[key] : undefined;
    }
  }
  return node;
}
