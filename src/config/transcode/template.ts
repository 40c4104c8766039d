/**
 * HTTP path templates of `google.api.http` rules, compiled once per config into segment arrays and
 * matched against a request's path segments without building a regular expression per request.
 *
 * Grammar (google/api/http.proto):
 *   Template = "/" Segments [ Verb ] ;   Segments = Segment { "/" Segment } ;
 *   Segment  = "*" | "**" | LITERAL | Variable ;   Variable = "{" FieldPath [ "=" Segments ] "}" ;
 *   FieldPath = IDENT { "." IDENT } ;   Verb = ":" LITERAL ;
 * `{x}` is `{x=*}`. `**` matches the rest of the path (zero or more segments) and must come last.
 */

/** A literal segment: the request's segment equals `text` (compared before decoding, as sent). */
export const SEG_LITERAL = 0;
/** `*`: exactly one non-empty segment. */
export const SEG_ONE = 1;
/** `**`: every remaining segment (zero or more). */
export const SEG_REST = 2;

export interface TemplateSegment {
  readonly kind: typeof SEG_LITERAL | typeof SEG_ONE | typeof SEG_REST;
  readonly text: string;
}

/** A `{field.path=…}` variable: the segments [start, end) it captures (end -1: through the last). */
export interface TemplateVariable {
  readonly fieldPath: readonly string[];
  readonly start: number;
  readonly end: number;
}

export interface PathTemplate {
  /** As written, for messages and the admin view. */
  readonly source: string;
  readonly segments: readonly TemplateSegment[];
  readonly variables: readonly TemplateVariable[];
  /** The custom verb after the last `:`, or null. */
  readonly verb: string | null;
}

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Parses a template; a string result is the reason it is malformed. */
export function parseTemplate(source: string): PathTemplate | string {
  if (!source.startsWith('/')) return 'a path template starts with "/"';
  let body = source.slice(1);
  let verb: string | null = null;
  // The verb is after the last ':' that is outside braces.
  let depth = 0;
  let colon = -1;
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    if (c === '{') depth++;
    else if (c === '}') depth--;
    else if (c === ':' && depth === 0) colon = i;
  }
  if (colon !== -1) {
    verb = body.slice(colon + 1);
    body = body.slice(0, colon);
    if (verb === '' || verb.includes('/')) return `"${source}": the verb after ":" must be one literal`;
  }
  const segments: TemplateSegment[] = [];
  const variables: TemplateVariable[] = [];
  let i = 0;
  const fail = (why: string) => `"${source}": ${why}`;
  while (body !== '' && i <= body.length) {
    if (body[i] === '{') {
      const close = body.indexOf('}', i);
      if (close === -1) return fail('a "{" is not closed');
      const inner = body.slice(i + 1, close);
      if (inner.includes('{')) return fail('variables cannot nest');
      const eq = inner.indexOf('=');
      const path = eq === -1 ? inner : inner.slice(0, eq);
      const fieldPath = path.split('.');
      if (!fieldPath.every((p) => IDENT.test(p))) return fail(`"${path}" is not a field path`);
      if (variables.some((v) => v.fieldPath.join('.') === path)) return fail(`"${path}" is bound twice`);
      const start = segments.length;
      const inside = eq === -1 ? ['*'] : inner.slice(eq + 1).split('/');
      for (const s of inside) {
        const seg = segmentOf(s);
        if (typeof seg === 'string') return fail(seg);
        segments.push(seg);
      }
      const rest = segments[segments.length - 1]!.kind === SEG_REST;
      variables.push({ fieldPath, start, end: rest ? -1 : segments.length });
      i = close + 1;
      if (i < body.length && body[i] !== '/') return fail('a variable must be a whole segment');
      i++;
      continue;
    }
    let end = body.indexOf('/', i);
    if (end === -1) end = body.length;
    const text = body.slice(i, end);
    if (text.includes('}')) return fail('a "}" without "{"');
    const seg = segmentOf(text);
    if (typeof seg === 'string') return fail(seg);
    segments.push(seg);
    i = end + 1;
  }
  const restAt = segments.findIndex((s) => s.kind === SEG_REST);
  if (restAt !== -1 && restAt !== segments.length - 1) return fail('"**" must be the last segment');
  return { source, segments, variables, verb };
}

function segmentOf(text: string): TemplateSegment | string {
  if (text === '') return 'empty segment';
  if (text === '*') return { kind: SEG_ONE, text };
  if (text === '**') return { kind: SEG_REST, text };
  if (text.includes('*')) return `"${text}": "*" must be a whole segment`;
  return { kind: SEG_LITERAL, text };
}

/**
 * Matches `parts` (the request path split at '/', without the leading empty part) against a template.
 * Returns the raw (still percent-encoded) values of its variables in order, or null.
 */
export function matchTemplate(t: PathTemplate, parts: readonly string[]): string[] | null {
  const last = parts.length - 1;
  let lastPart = parts[last];
  if (t.verb !== null) {
    if (lastPart === undefined || !lastPart.endsWith(t.verb) || lastPart[lastPart.length - t.verb.length - 1] !== ':')
      return null;
    lastPart = lastPart.slice(0, lastPart.length - t.verb.length - 1);
  }
  const segs = t.segments;
  const n = segs.length;
  const rest = n > 0 && segs[n - 1]!.kind === SEG_REST;
  if (rest ? parts.length < n - 1 : parts.length !== n) return null;
  for (let i = 0; i < n; i++) {
    const s = segs[i]!;
    if (s.kind === SEG_REST) break;
    const p = i === last ? lastPart! : parts[i]!;
    if (s.kind === SEG_LITERAL ? p !== s.text : p === '') return null;
  }
  const vars = t.variables;
  const values: string[] = new Array(vars.length);
  for (let v = 0; v < vars.length; v++) {
    const { start, end } = vars[v]!;
    if (end === start + 1) values[v] = start === last ? lastPart! : parts[start]!;
    else {
      const stop = end === -1 ? parts.length : end;
      let value = '';
      for (let i = start; i < stop; i++) value += (i === start ? '' : '/') + (i === last ? lastPart! : parts[i]!);
      values[v] = value;
    }
  }
  return values;
}

/**
 * Decodes a captured value: a one-segment variable fully; a multi-segment one keeps `%2F` encoded so
 * the slashes the client escaped stay distinguishable from separators (http.proto, "reserved
 * expansion"). Null when the escape is malformed.
 */
export function decodeCapture(raw: string, multiSegment: boolean): string | null {
  if (!raw.includes('%')) return raw;
  try {
    return decodeURIComponent(multiSegment ? raw.replace(/%2[fF]/g, '%252F') : raw);
  } catch {
    return null;
  }
}

/**
 * Orders templates so the most specific is tried first: position by position a literal before `*`
 * before `**`, then a verb before none, then the longer one. So `/v1/items:search` wins over
 * `/v1/{name}` and `/v1/items/{id}` over `/v1/{name=**}`.
 */
export function compareSpecificity(a: PathTemplate, b: PathTemplate): number {
  const n = Math.min(a.segments.length, b.segments.length);
  for (let i = 0; i < n; i++) {
    const d = a.segments[i]!.kind - b.segments[i]!.kind;
    if (d !== 0) return d;
  }
  if ((a.verb === null) !== (b.verb === null)) return a.verb === null ? 1 : -1;
  return b.segments.length - a.segments.length;
}
