/**
 * What the request-transformer and response-transformer share: their config (Kong's shape: `remove`,
 * `rename`, `replace`, `add`, `append`, each over `headers`, `querystring`, `json`), checked and compiled
 * once into a plan of operations, and the code that runs a plan on a request, a response head and a JSON
 * body. Operations run in Kong's order: remove, rename, replace, add, append.
 */
import { DEFAULT_BODY_BUFFER_BYTES } from '../../../core/defaults.ts';
import type { RequestContext, ResponseHead } from '../../../core/plugin.ts';
import { type CompiledTemplate, compileTemplate, TemplateError } from '../../../core/template.ts';
import { addField, appendField, type JsonPath, parseJsonPath, removeField, renameField, replaceField } from './json.ts';
import { formEncode, QueryParams } from './query.ts';

export const OPERATIONS = ['remove', 'rename', 'replace', 'add', 'append'] as const;
export type Operation = (typeof OPERATIONS)[number];
export type JsonType = 'string' | 'number' | 'boolean';

/** One operation's lists, e.g. `add: { headers: ["x-a:1"], json: ["a.b:2"], json_types: [number] }`. */
export interface OperationLists {
  headers?: string[];
  querystring?: string[];
  json?: string[];
  json_types?: JsonType[];
  uri?: string;
}

export type TransformConfig = { [op in Operation]?: OperationLists } & { maxBodyBytes?: number };

export interface Issue {
  path: (string | number)[];
  message: string;
  hint?: string;
}

export type Side = 'request' | 'response';

/** A value: a constant (slot -1) or the rendering of template number `slot`. */
export interface ValueRef {
  readonly slot: number;
  readonly constant: unknown;
}

export interface HeaderOp {
  readonly op: Operation;
  readonly name: string;
  /** rename: the new name. */
  readonly to: string;
  readonly value: ValueRef | null;
}

export interface QueryOp {
  readonly op: Operation;
  readonly name: string;
  readonly encodedName: string;
  readonly to: string;
  readonly encodedTo: string;
  readonly value: ValueRef | null;
}

export interface JsonOp {
  readonly op: Operation;
  readonly path: JsonPath;
  readonly to: JsonPath | null;
  readonly value: ValueRef | null;
}

const TEXT = 0;
const HEADER_TEXT = 1;
const JSON_VALUE = 2;

interface Slot {
  readonly template: CompiledTemplate;
  readonly kind: typeof TEXT | typeof HEADER_TEXT | typeof JSON_VALUE;
  readonly type: JsonType | undefined;
}

/** The templates one hook renders, in one pass, before any operation runs. */
export class Slots {
  private readonly slots: Slot[] = [];

  get size(): number {
    return this.slots.length;
  }

  add(slot: Slot): number {
    this.slots.push(slot);
    return this.slots.length - 1;
  }

  /** Each template's value for this request; undefined where a referenced value is absent or unusable. */
  render(ctx: RequestContext): unknown[] {
    const out = new Array<unknown>(this.slots.length);
    for (let i = 0; i < this.slots.length; i++) {
      const s = this.slots[i]!;
      if (s.kind === JSON_VALUE) {
        out[i] = s.type === undefined ? s.template.value(ctx) : cast(s.template.render(ctx), s.type);
        continue;
      }
      const text = s.template.render(ctx);
      // A value from a query parameter or a claim may hold bytes a header cannot carry.
      out[i] = s.kind === HEADER_TEXT && text !== undefined && !HEADER_VALUE.test(text) ? undefined : text;
    }
    return out;
  }
}

function cast(text: string | undefined, type: JsonType): unknown {
  if (text === undefined || type === 'string') return text;
  if (type === 'boolean') return text === 'true' ? true : text === 'false' ? false : undefined;
  const n = text.trim() === '' ? Number.NaN : Number(text);
  return Number.isFinite(n) ? n : undefined;
}

export interface TransformPlan {
  readonly headers: readonly HeaderOp[];
  readonly query: readonly QueryOp[];
  readonly json: readonly JsonOp[];
  /** request-transformer's `replace.uri`, or null. */
  readonly uri: CompiledTemplate | null;
  /** Templates of header and query values (rendered with the head). */
  readonly headSlots: Slots;
  /** Templates of JSON values (rendered with the head on requests, with the body on responses). */
  readonly jsonSlots: Slots;
  /** Bytes of JSON body read at most. */
  readonly maxBodyBytes: number;
}

/** RFC 9110 token: what a header name may be. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** What a header value may hold (no CR, LF, NUL or other controls; Node refuses them). */
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/**
 * Headers the transformers may not touch: framing and connection headers (the proxy owns them, RFC 9110
 * §7.6.1), and on requests Host (`rewrite.host` sets it) and Expect (answered by the proxy). Envoy's
 * header manipulation refuses the same.
 */
const FRAMING = ['content-length', 'transfer-encoding', 'connection', 'keep-alive', 'proxy-connection', 'te'];
const PROTECTED: Readonly<Record<Side, ReadonlySet<string>>> = {
  request: new Set([...FRAMING, 'trailer', 'upgrade', 'http2-settings', 'host', 'expect']),
  response: new Set([...FRAMING, 'trailer', 'upgrade', 'http2-settings']),
};

const FIELDS: Readonly<Record<Side, readonly ('headers' | 'querystring' | 'json')[]>> = {
  request: ['headers', 'querystring', 'json'],
  response: ['headers', 'json'],
};

/** Checks a transformer's config and compiles it; the plan is only usable when there are no issues. */
export function planTransform(config: TransformConfig, side: Side): { plan: TransformPlan; issues: Issue[] } {
  const issues: Issue[] = [];
  const headers: HeaderOp[] = [];
  const query: QueryOp[] = [];
  const json: JsonOp[] = [];
  const headSlots = new Slots();
  const jsonSlots = new Slots();
  let uri: CompiledTemplate | null = null;

  for (const op of OPERATIONS) {
    const lists = config[op];
    if (lists === undefined) continue;
    for (const field of FIELDS[side]) {
      const entries = lists[field] ?? [];
      const types = field === 'json' ? (lists.json_types ?? []) : [];
      for (let index = 0; index < entries.length; index++) {
        const entry = entries[index]!;
        const at = [op, field, index];
        const fail = (message: string, hint?: string) => {
          issues.push({ path: at, message, ...(hint && { hint }) });
        };
        const parsed = splitEntry(entry, op);
        if (typeof parsed === 'string') {
          fail(parsed, entryHint(op, field));
          continue;
        }
        const { name, arg } = parsed;

        if (field === 'headers') {
          const lower = name.toLowerCase();
          const bad = headerNameProblem(lower, side);
          if (bad !== null) {
            fail(bad.message, bad.hint);
            continue;
          }
          let to = '';
          let value: ValueRef | null = null;
          if (op === 'rename') {
            to = arg!.toLowerCase();
            const badTo = headerNameProblem(to, side);
            if (badTo !== null) {
              fail(badTo.message, badTo.hint);
              continue;
            }
          } else if (op !== 'remove') {
            const v = templateValue(arg!, headSlots, HEADER_TEXT, undefined);
            if (typeof v === 'string') {
              fail(v, TEMPLATE_HINT);
              continue;
            }
            if (v.slot === -1 && !HEADER_VALUE.test(v.constant as string)) {
              fail('a header value may not hold control characters (CR, LF, NUL…)');
              continue;
            }
            value = v;
          }
          headers.push(Object.freeze({ op, name: lower, to, value }));
        } else if (field === 'querystring') {
          let value: ValueRef | null = null;
          if (op !== 'remove' && op !== 'rename') {
            const v = templateValue(arg!, headSlots, TEXT, undefined);
            if (typeof v === 'string') {
              fail(v, TEMPLATE_HINT);
              continue;
            }
            value = v;
          }
          const to = op === 'rename' ? arg! : '';
          query.push(Object.freeze({ op, name, encodedName: formEncode(name), to, encodedTo: formEncode(to), value }));
        } else {
          const path = parseJsonPath(name);
          if (typeof path === 'string') {
            fail(path, 'e.g. data.items.0.price');
            continue;
          }
          let to: JsonPath | null = null;
          let value: ValueRef | null = null;
          if (op === 'rename') {
            const target = parseJsonPath(arg!);
            if (typeof target === 'string') {
              fail(target, 'e.g. data.items.0.price');
              continue;
            }
            to = target;
          } else if (op !== 'remove') {
            const v = templateValue(arg!, jsonSlots, JSON_VALUE, types[index]);
            if (typeof v === 'string') {
              fail(v, types[index] === undefined ? TEMPLATE_HINT : undefined);
              continue;
            }
            value = v;
          }
          json.push(Object.freeze({ op, path, to, value }));
        }
      }
    }
    const types = lists.json_types ?? [];
    const jsonCount = lists.json?.length ?? 0;
    for (let i = jsonCount; i < types.length; i++)
      issues.push({
        path: [op, 'json_types', i],
        message: `json_types[${i}] has no json entry to apply to (${op}.json has ${jsonCount})`,
        hint: 'json_types[i] is the type of json[i]',
      });
  }

  const uriSource = side === 'request' ? config.replace?.uri : undefined;
  if (uriSource !== undefined) {
    try {
      uri = compileTemplate(uriSource);
      const problem = uriProblem(uriSource);
      if (problem !== null) {
        issues.push({ path: ['replace', 'uri'], message: problem, hint: 'e.g. /v2/things/$(params.id)' });
        uri = null;
      }
    } catch (e) {
      if (!(e instanceof TemplateError)) throw e;
      issues.push({ path: ['replace', 'uri'], message: e.message, hint: TEMPLATE_HINT });
    }
  }

  const plan: TransformPlan = Object.freeze({
    headers: Object.freeze(headers),
    query: Object.freeze(query),
    json: Object.freeze(json),
    uri,
    headSlots,
    jsonSlots,
    maxBodyBytes: config.maxBodyBytes ?? DEFAULT_BODY_BUFFER_BYTES,
  });
  return { plan, issues };
}

const TEMPLATE_HINT = 'templates: $(params.x), $(query.x), $(headers.x), $(consumer.name), $(claims.x); $$ for a $';

/** Kong's `name:value` (split at the first colon); `remove` takes a bare name. */
function splitEntry(entry: string, op: Operation): { name: string; arg: string | undefined } | string {
  const colon = entry.indexOf(':');
  if (op === 'remove') {
    if (colon !== -1) return `"${entry}": remove takes a name, without ":"`;
    return { name: entry, arg: undefined };
  }
  if (colon <= 0 || colon === entry.length - 1)
    return op === 'rename' ? `"${entry}" is not "old:new"` : `"${entry}" is not "name:value" (a name and a value)`;
  return { name: entry.slice(0, colon), arg: entry.slice(colon + 1) };
}

function entryHint(op: Operation, field: string): string {
  if (op === 'remove') return field === 'json' ? 'e.g. data.secret' : 'e.g. x-internal';
  if (op === 'rename') return field === 'json' ? 'e.g. price_cents:priceCents' : 'e.g. x-old:x-new';
  return field === 'json' ? 'e.g. meta.source:gateway' : 'e.g. x-source:gateway';
}

function headerNameProblem(name: string, side: Side): { message: string; hint?: string } | null {
  if (!TOKEN.test(name)) return { message: `"${name}" is not a valid header name` };
  if (!PROTECTED[side].has(name)) return null;
  if (name === 'host')
    return { message: 'the transformers may not change Host', hint: "set it with the route's rewrite.host" };
  return {
    message: `the transformers may not change ${name}: the proxy owns the message's framing and connection`,
    hint: 'the proxy sets Content-Length and Transfer-Encoding itself when a body is rewritten',
  };
}

/** A value's template, compiled into `slots` unless it is a constant; a string is the reason it fails. */
function templateValue(
  source: string,
  slots: Slots,
  kind: Slot['kind'],
  type: JsonType | undefined,
): ValueRef | string {
  let template: CompiledTemplate;
  try {
    template = compileTemplate(source);
  } catch (e) {
    if (e instanceof TemplateError) return e.message;
    throw e;
  }
  if (template.constant === null)
    return Object.freeze({ slot: slots.add({ template, kind, type }), constant: undefined });
  if (kind !== JSON_VALUE || type === undefined) return Object.freeze({ slot: -1, constant: template.constant });
  const constant = cast(template.constant, type);
  if (constant === undefined)
    return type === 'number'
      ? `"${template.constant}" is not a number (json_types says number)`
      : `"${template.constant}" is not true or false (json_types says boolean)`;
  return Object.freeze({ slot: -1, constant });
}

/** The uri's text must be a path: a leading `/`, no query or fragment, printable ASCII. */
function uriProblem(source: string): string | null {
  if (!source.startsWith('/')) return `"${source}" must start with "/"`;
  if (/[?#]/.test(source)) return `"${source}" may not hold "?" or "#" (the query is kept; use querystring operations)`;
  if (!/^[!-~]+$/.test(source))
    return `"${source}" may hold printable ASCII only (no spaces or controls; percent-encode the rest)`;
  return null;
}

// --- Running a plan -----------------------------------------------------------------------------------

function resolve(ref: ValueRef, values: readonly unknown[]): unknown {
  return ref.slot === -1 ? ref.constant : values[ref.slot];
}

const EMPTY: readonly unknown[] = [];

/** Renders a plan's head templates (none: no allocation). */
export function renderHead(plan: TransformPlan, ctx: RequestContext): readonly unknown[] {
  return plan.headSlots.size === 0 ? EMPTY : plan.headSlots.render(ctx);
}

export function renderJson(plan: TransformPlan, ctx: RequestContext): readonly unknown[] {
  return plan.jsonSlots.size === 0 ? EMPTY : plan.jsonSlots.render(ctx);
}

/**
 * `replace.uri`, rendered with each value percent-encoded as one path segment; a template whose value
 * is absent leaves the path as it was.
 */
export function applyUri(plan: TransformPlan, ctx: RequestContext): void {
  const uri = plan.uri!;
  const path = uri.constant ?? uri.render(ctx, undefined, encodeURIComponent);
  if (path !== undefined) ctx.setUpstreamPath(path);
}

/** Request header operations; append joins the new value to the list (RFC 9110 §5.3), Cookie with `; `. */
export function applyRequestHeaders(plan: TransformPlan, ctx: RequestContext, values: readonly unknown[]): void {
  for (const h of plan.headers) {
    if (h.op === 'remove') {
      ctx.removeHeader(h.name);
      continue;
    }
    const current = ctx.header(h.name);
    if (h.op === 'rename') {
      if (current === undefined || h.name === h.to) continue;
      ctx.removeHeader(h.name);
      ctx.setHeader(h.to, current);
      continue;
    }
    const value = resolve(h.value!, values) as string | undefined;
    if (value === undefined) continue;
    if (h.op === 'replace') {
      if (current !== undefined) ctx.setHeader(h.name, value);
    } else if (h.op === 'add') {
      if (current === undefined) ctx.setHeader(h.name, value);
    } else if (current === undefined) ctx.setHeader(h.name, value);
    else ctx.setHeader(h.name, `${current}${h.name === 'cookie' ? '; ' : ', '}${value}`);
  }
}

/** Response header operations; append adds another line (a second Set-Cookie stays a line of its own). */
export function applyResponseHeaders(plan: TransformPlan, head: ResponseHead, values: readonly unknown[]): void {
  for (const h of plan.headers) {
    if (h.op === 'remove') {
      head.removeHeader(h.name);
      continue;
    }
    if (h.op === 'rename') {
      if (h.name === h.to) continue;
      const lines = linesOf(head, h.name);
      if (lines === null) continue;
      head.removeHeader(h.name);
      head.removeHeader(h.to);
      for (const line of lines) head.appendHeader(h.to, line);
      continue;
    }
    const value = resolve(h.value!, values) as string | undefined;
    if (value === undefined) continue;
    const present = head.header(h.name) !== undefined;
    if (h.op === 'replace') {
      if (present) head.setHeader(h.name, value);
    } else if (h.op === 'add') {
      if (!present) head.setHeader(h.name, value);
    } else head.appendHeader(h.name, value);
  }
}

/** Every line of a response header, or null when it has none. */
function linesOf(head: ResponseHead, name: string): string[] | null {
  let lines: string[] | null = null;
  for (const [n, v] of head.entries()) {
    if (n !== name) continue;
    lines ??= [];
    if (Array.isArray(v)) lines.push(...v);
    else lines.push(v);
  }
  return lines;
}

/** Query operations on `ctx.query`; it is only rewritten when an operation changed something. */
export function applyQuery(plan: TransformPlan, ctx: RequestContext, values: readonly unknown[]): void {
  const params = new QueryParams(ctx.query);
  for (const q of plan.query) {
    switch (q.op) {
      case 'remove':
        params.remove(q.name);
        break;
      case 'rename':
        params.rename(q.name, q.to, q.encodedTo);
        break;
      default: {
        const value = resolve(q.value!, values) as string | undefined;
        if (value === undefined) break;
        if (q.op === 'replace') params.replace(q.name, q.encodedName, value);
        else if (q.op === 'append' || !params.has(q.name)) params.append(q.name, q.encodedName, value);
      }
    }
  }
  if (params.changed) ctx.query = params.toString();
}

/**
 * JSON operations on a whole body: the new body, or undefined to send it as it came (it is not JSON,
 * not an object or list, or no operation changed anything).
 */
export function applyJson(plan: TransformPlan, body: Buffer, values: readonly unknown[]): string | undefined {
  let root: unknown;
  try {
    root = JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
  if (root === null || typeof root !== 'object') return undefined;
  let changed = false;
  for (const j of plan.json) {
    switch (j.op) {
      case 'remove':
        changed = removeField(root, j.path) || changed;
        break;
      case 'rename':
        changed = renameField(root, j.path, j.to!) || changed;
        break;
      default: {
        const value = resolve(j.value!, values);
        if (value === undefined) break;
        if (j.op === 'replace') changed = replaceField(root, j.path, value) || changed;
        else if (j.op === 'add') changed = addField(root, j.path, value) || changed;
        else changed = appendField(root, j.path, value) || changed;
      }
    }
  }
  return changed ? JSON.stringify(root) : undefined;
}

/** `application/json` or any `…+json` media type (parameters ignored). */
export function isJsonMediaType(contentType: string | undefined): boolean {
  if (contentType === undefined) return false;
  const semi = contentType.indexOf(';');
  const type = (semi === -1 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
  return type === 'application/json' || (type.endsWith('+json') && type.indexOf('/') > 0);
}

/** True for a body sent as it is (no Content-Encoding, or identity): one the transformers can read. */
export function isIdentityEncoded(contentEncoding: string | undefined): boolean {
  return (
    contentEncoding === undefined ||
    contentEncoding.trim() === '' ||
    contentEncoding.trim().toLowerCase() === 'identity'
  );
}
