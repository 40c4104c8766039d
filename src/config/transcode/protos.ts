/**
 * Loading a route's `.proto` files and compiling their HTTP mappings, once per config: at validation
 * (where a problem becomes a located config error) and again when the snapshot is compiled.
 *
 * Library choice: protobufjs alone. It parses `.proto` text at run time with imports and options, so
 * `(google.api.http)` annotations are readable, and its `ext/protojson` implements the proto3 JSON
 * mapping (int64 as strings, enums by name, Timestamp, Duration, FieldMask, wrappers, Struct/Value,
 * Any, bytes as base64, NaN/Infinity, json_name). @bufbuild/protobuf implements the same mapping but
 * needs descriptors, and protobufjs's descriptor export does not round-trip into its registry (type
 * names left relative, file dependencies missing, extensions placed in the wrong file, JSON names
 * lost) without a fix-up layer; its JSON → binary was ~1.6x faster and binary → JSON about equal on a
 * 10-field message (12 µs vs 19 µs, 10 µs vs 11 µs), which does not pay for a second library.
 *
 * protobufjs is CommonJS and loaded with `require` the first time a config has a `transcode` route
 * (validation is synchronous); a process whose config has none never loads it.
 */
import { readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, isAbsolute, join } from 'node:path';
import type { Enum, Field, Method, Namespace, ReflectionObject, Root, Service, Type } from 'protobufjs';
import type { HttpRuleConfig, TranscodeConfig } from '../../api/transcode.ts';
import { compareSpecificity, type PathTemplate, parseTemplate } from './template.ts';

type Protobuf = typeof import('protobufjs');
type ProtoJson = typeof import('protobufjs/ext/protojson.js');

export interface ProtoLibrary {
  readonly protobuf: Protobuf;
  readonly protojson: ProtoJson;
  /** Where the bundled google/api and google/protobuf `.proto` files are. */
  readonly bundledDir: string;
}

let library: ProtoLibrary | null = null;

/** protobufjs and its ProtoJSON extension, loaded on first use (a module cache, as `import()` keeps one). */
export function protoLibrary(): ProtoLibrary {
  if (library === null) {
    const require = createRequire(import.meta.url);
    library = {
      protobuf: require('protobufjs') as Protobuf,
      protojson: require('protobufjs/ext/protojson.js') as ProtoJson,
      bundledDir: dirname(require.resolve('protobufjs/package.json')),
    };
  }
  return library;
}

/** A problem found in the protos or the mappings, at a field of the route's `transcode` block. */
export interface ProtoProblem {
  readonly at: readonly (string | number)[];
  readonly message: string;
  readonly hint?: string;
}

/** A gRPC method as the request path needs it. */
export interface GrpcMethod {
  /** `package.Service/Method`. */
  readonly name: string;
  /** `/package.Service/Method`: the HTTP/2 path of the call. */
  readonly path: string;
  readonly requestType: Type;
  readonly responseType: Type;
  readonly serverStreaming: boolean;
}

/** One HTTP method and path template mapped to a gRPC method. */
export interface Binding {
  readonly httpMethod: string;
  readonly template: PathTemplate;
  readonly method: GrpcMethod;
  /** null: no body; '*': the whole message; else the top-level field the body fills. */
  readonly body: string | null;
  /** The fields each path variable sets, outermost first (same order as `template.variables`). */
  readonly variableFields: readonly (readonly Field[])[];
  /** `responseBody`: the response field sent alone, or null for the whole message. */
  readonly responseField: Field | null;
  /** Where it came from, for the admin view: `annotation` or `route`. */
  readonly source: 'annotation' | 'route';
}

export interface ProtoSet {
  readonly root: Root;
  /** Every binding, most specific first within each HTTP method. */
  readonly bindings: readonly Binding[];
  /** Methods of the exposed services that are not exposed, with why (client streaming). */
  readonly skipped: readonly string[];
}

export type ProtoResult = { ok: true; value: ProtoSet } | { ok: false; problems: ProtoProblem[] };

/**
 * Loads the protos (`protos` and `includeDirs` already absolute) and compiles the HTTP mappings.
 * Never throws: every problem is returned with where it is.
 */
export function loadProtoSet(spec: TranscodeConfig): ProtoResult {
  const lib = protoLibrary();
  const loaded = loadRoot(lib, spec.protos, spec.includeDirs ?? []);
  if ('problem' in loaded) return { ok: false, problems: [loaded.problem] };
  return compileBindings(lib, loaded.root, loaded.texts, spec);
}

/**
 * Proto sets compiled while a config was validated, by the `transcode` object they were compiled for:
 * the compile of that same config in this process takes its set instead of reading and compiling the
 * protos a second time. Held weakly: a config that is dropped takes its sets with it. A config sent to
 * workers arrives as a copy and compiles its own.
 */
const validatedSets = new WeakMap<object, ProtoSet>();

/** Keeps the set `spec` compiled to when its config was validated. */
export function rememberProtoSet(spec: object, set: ProtoSet): void {
  validatedSets.set(spec, set);
}

/** The set validation compiled for `spec` (once), else the protos loaded and compiled now. */
export function protoSetFor(spec: TranscodeConfig): ProtoResult {
  const remembered = validatedSets.get(spec);
  if (remembered === undefined) return loadProtoSet(spec);
  validatedSets.delete(spec);
  return { ok: true, value: remembered };
}

/** protobufjs names the file being parsed in a static of `parse` (set on the objects it creates, and in errors). */
function parserState(protobuf: Protobuf): { filename: string | null } {
  return protobuf.parse as unknown as { filename: string | null };
}

interface Position {
  line: number;
  column: number;
}

/** 1-based line and column of the first whole-word `token` in `text` at or after `fromLine`. */
function locate(text: string, token: string, fromLine = 1): Position | null {
  const lines = text.split('\n');
  const escaped = token.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const word = new RegExp(`(^|[^A-Za-z0-9_.])${escaped}(?![A-Za-z0-9_])`);
  for (let i = Math.max(0, fromLine - 1); i < lines.length; i++) {
    const m = word.exec(lines[i]!);
    if (m) return { line: i + 1, column: m.index + m[1]!.length + 1 };
  }
  return null;
}

const where = (file: string, p: Position | null) => (p === null ? file : `${file}:${p.line}:${p.column}`);

function loadRoot(
  lib: ProtoLibrary,
  files: readonly string[],
  includeDirs: readonly string[],
): { root: Root; texts: Map<string, string> } | { problem: ProtoProblem } {
  const { protobuf } = lib;
  const root = new protobuf.Root();
  const texts = new Map<string, string>();
  const bundledJson = new Set<string>();
  let problem: ProtoProblem | null = null;

  const fetch = (file: string, at: ProtoProblem['at'], importer: { file: string; name: string } | null) => {
    if (problem !== null || texts.has(file)) return;
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      const why = code === 'ENOENT' ? 'no such file' : (code ?? (e as Error).message);
      problem =
        importer === null
          ? { at, message: `cannot read ${file}: ${why}` }
          : {
              at,
              message: `${where(importer.file, importPosition(texts.get(importer.file)!, importer.name))}: import "${importer.name}": cannot read ${file}: ${why}`,
            };
      return;
    }
    texts.set(file, text);
    let parsed: ReturnType<Protobuf['parse']>;
    try {
      parserState(protobuf).filename = file;
      parsed = protobuf.parse(text, root, { keepCase: true, alternateCommentMode: true });
    } catch (e) {
      problem = { at, message: parseProblem(file, text, (e as Error).message) };
      return;
    } finally {
      parserState(protobuf).filename = null;
    }
    for (const name of [...(parsed.imports ?? []), ...(parsed.weakImports ?? [])]) {
      const bundled = protobuf.common.get(name);
      if (bundled !== null) {
        if (!bundledJson.has(name)) {
          bundledJson.add(name);
          root.addJSON(bundled.nested!);
        }
        continue;
      }
      const resolved = resolveImport(name, file, includeDirs, lib.bundledDir);
      if (resolved === null) {
        const looked = [...includeDirs, dirname(file), lib.bundledDir].join(', ');
        problem = {
          at,
          message: `${where(file, importPosition(text, name))}: import "${name}" not found`,
          hint: `looked in ${looked}; add its directory to transcode.includeDirs`,
        };
        return;
      }
      fetch(resolved, at, { file, name });
    }
  };

  files.forEach((file, j) => {
    fetch(file, ['protos', j], null);
  });
  if (problem !== null) return { problem };
  try {
    root.resolveAll();
  } catch (e) {
    return { problem: resolveProblem(root, texts, files, (e as Error).message) };
  }
  return { root, texts };
}

function importPosition(text: string, name: string): Position | null {
  return locate(text, `"${name}"`) ?? locate(text, `'${name}'`);
}

/** protobufjs: `illegal token 'x', ';' expected (file, line 6)`: the file's line and the token's column. */
function parseProblem(file: string, text: string, message: string): string {
  const m = /\((?:[^()]*, )?line (\d+)\)$/.exec(message);
  const reason = m ? message.slice(0, m.index).trim() : message;
  if (!m) return `${file}: ${reason}`;
  const line = Number(m[1]);
  const token = /^illegal \w+ '([^']*)'/.exec(reason)?.[1];
  const lineText = text.split('\n')[line - 1] ?? '';
  const col = token === undefined || token === '' ? -1 : lineText.indexOf(token);
  return `${file}:${line}:${col === -1 ? 1 : col + 1}: ${reason}`;
}

/** protobufjs: `no such Type or Enum 'Missing' in Type .pkg.Message`: placed at the name in its file. */
function resolveProblem(
  root: Root,
  texts: Map<string, string>,
  files: readonly string[],
  message: string,
): ProtoProblem {
  const m = /'([^']+)' in \w+ \.?(\S+)$/.exec(message);
  const owner = m ? root.lookup(m[2]!) : null;
  const file = owner?.filename ?? undefined;
  const index = file === undefined ? -1 : files.indexOf(file);
  const at = ['protos', index === -1 ? 0 : index];
  if (m && file !== undefined) {
    const text = texts.get(file) ?? '';
    const start = locate(text, owner!.name);
    return { at, message: `${where(file, locate(text, m[1]!, start?.line ?? 1))}: ${message}` };
  }
  return { at, message };
}

/** An import in the include directories (in order), beside the importing file, then the bundled files. */
function resolveImport(name: string, from: string, includeDirs: readonly string[], bundledDir: string): string | null {
  if (isAbsolute(name)) return exists(name) ? name : null;
  for (const dir of [...includeDirs, dirname(from), bundledDir]) {
    const candidate = join(dir, name);
    if (exists(candidate)) return candidate;
  }
  return null;
}

function exists(file: string): boolean {
  return statSync(file, { throwIfNoEntry: false })?.isFile() === true;
}

const HTTP_VERBS = ['get', 'put', 'post', 'delete', 'patch'] as const;

/** A rule as written in an annotation (snake case) or in the config (camel case). */
type AnyRule = HttpRuleConfig & {
  response_body?: string;
  additional_bindings?: AnyRule | AnyRule[];
};

function compileBindings(
  lib: ProtoLibrary,
  root: Root,
  texts: Map<string, string>,
  spec: TranscodeConfig,
): ProtoResult {
  const { protobuf } = lib;
  const problems: ProtoProblem[] = [];
  const bindings: Binding[] = [];
  const skipped: string[] = [];
  const listed = new Set(spec.protos);

  const services: Service[] = [];
  if (spec.services !== undefined) {
    spec.services.forEach((name, i) => {
      const found = root.lookup(name);
      if (found instanceof protobuf.Service) services.push(found);
      else
        problems.push({
          at: ['services', i],
          message: `no gRPC service "${name}" in the protos`,
          hint: hintOf(allServices(protobuf, root).map((s) => fullName(s))),
        });
    });
  } else
    for (const s of allServices(protobuf, root)) if (s.filename != null && listed.has(s.filename)) services.push(s);

  // The route's own mappings replace a method's annotations.
  const fromRoute = new Map<Method, { rule: HttpRuleConfig; index: number }>();
  (spec.methods ?? []).forEach((entry, k) => {
    const [serviceName, methodName] = entry.method.split('/') as [string, string];
    const service = root.lookup(serviceName);
    if (!(service instanceof protobuf.Service)) {
      problems.push({
        at: ['methods', k, 'method'],
        message: `no gRPC service "${serviceName}" in the protos`,
        hint: hintOf(allServices(protobuf, root).map((s) => fullName(s))),
      });
      return;
    }
    const method = service.methods[methodName];
    if (method === undefined) {
      problems.push({
        at: ['methods', k, 'method'],
        message: `service ${serviceName} has no method "${methodName}"`,
        hint: hintOf(Object.keys(service.methods)),
      });
      return;
    }
    if (method.requestStream) {
      problems.push({
        at: ['methods', k, 'method'],
        message: `${entry.method} is client-streaming; only unary and server-streaming methods can be transcoded`,
      });
      return;
    }
    fromRoute.set(method, { rule: entry.http, index: k });
  });

  const add = (method: Method, rule: AnyRule, at: ProtoProblem['at'], origin: string, source: Binding['source']) => {
    const grpc = grpcMethodOf(method);
    const extra = rule.additionalBindings ?? rule.additional_bindings;
    const all: AnyRule[] = [rule, ...(extra === undefined ? [] : Array.isArray(extra) ? extra : [extra])];
    all.forEach((r, i) => {
      const label = i === 0 ? origin : `${origin}, additional binding ${i}`;
      if (i > 0 && (r.additionalBindings ?? r.additional_bindings) !== undefined) {
        problems.push({ at, message: `${label}: additional bindings cannot nest` });
        return;
      }
      const compiled = compileBinding(protobuf, grpc, r, source);
      if (typeof compiled === 'string') problems.push({ at, message: `${label}: ${compiled}` });
      else bindings.push(compiled);
    });
  };

  for (const service of services) {
    for (const method of Object.values(service.methods)) {
      if (fromRoute.has(method)) continue;
      const rule = annotationOf(method);
      if (rule === undefined) continue;
      const file = method.filename ?? service.filename ?? '';
      const origin = `${where(file, locate(texts.get(file) ?? '', method.name))}: ${fullName(service)}/${method.name}`;
      if (method.requestStream) {
        skipped.push(`${fullName(service)}/${method.name}: client-streaming`);
        continue;
      }
      const index = spec.protos.indexOf(file);
      add(method, rule, ['protos', index === -1 ? 0 : index], origin, 'annotation');
    }
  }
  for (const [method, { rule, index }] of fromRoute)
    add(method, rule as AnyRule, ['methods', index, 'http'], `methods[${index}] ${grpcMethodOf(method).name}`, 'route');

  const seen = new Map<string, Binding>();
  for (const b of bindings) {
    const key = `${b.httpMethod} ${canonical(b.template)}`;
    const other = seen.get(key);
    if (other !== undefined && other.method.name !== b.method.name)
      problems.push({
        at: b.source === 'route' ? ['methods'] : ['protos'],
        message: `${b.httpMethod} ${b.template.source} is mapped to both ${other.method.name} and ${b.method.name}`,
      });
    else seen.set(key, b);
  }
  if (problems.length === 0 && bindings.length === 0)
    problems.push({
      at: ['protos'],
      message: 'no method of these protos has an HTTP mapping',
      hint: 'annotate methods with option (google.api.http), or map them in transcode.methods',
    });
  if (problems.length > 0) return { ok: false, problems };
  bindings.sort((a, b) => compareSpecificity(a.template, b.template));
  return { ok: true, value: { root, bindings, skipped } };
}

/** `/v1/{a}/x` and `/v1/{b=*}/x` take the same requests. */
function canonical(t: PathTemplate): string {
  return (
    t.segments.map((s) => (s.kind === 0 ? s.text : s.kind === 1 ? '*' : '**')).join('/') + (t.verb ? `:${t.verb}` : '')
  );
}

function hintOf(names: string[]): string | undefined {
  return names.length === 0 ? undefined : `it has: ${names.slice(0, 12).join(', ')}${names.length > 12 ? ', …' : ''}`;
}

function fullName(o: ReflectionObject): string {
  return o.fullName.startsWith('.') ? o.fullName.slice(1) : o.fullName;
}

function allServices(protobuf: Protobuf, ns: Namespace): Service[] {
  const out: Service[] = [];
  for (const o of ns.nestedArray) {
    if (o instanceof protobuf.Service) out.push(o);
    if (o instanceof protobuf.Namespace) out.push(...allServices(protobuf, o));
  }
  return out;
}

function annotationOf(method: Method): AnyRule | undefined {
  for (const option of method.parsedOptions ?? [])
    if (option !== null && typeof option === 'object' && '(google.api.http)' in option)
      return option['(google.api.http)'] as AnyRule;
  return undefined;
}

function grpcMethodOf(method: Method): GrpcMethod {
  const service = fullName(method.parent!);
  return {
    name: `${service}/${method.name}`,
    path: `/${service}/${method.name}`,
    requestType: method.resolvedRequestType!,
    responseType: method.resolvedResponseType!,
    serverStreaming: method.responseStream === true,
  };
}

/** One HttpRule (without its additional bindings) against its method's types; a string is why not. */
function compileBinding(
  protobuf: Protobuf,
  method: GrpcMethod,
  rule: AnyRule,
  source: Binding['source'],
): Binding | string {
  const patterns: [string, string][] = [];
  for (const verb of HTTP_VERBS) if (typeof rule[verb] === 'string') patterns.push([verb.toUpperCase(), rule[verb]!]);
  if (rule.custom !== undefined) patterns.push([String(rule.custom.kind).toUpperCase(), rule.custom.path]);
  if (patterns.length !== 1)
    return patterns.length === 0
      ? 'a mapping needs one of get, put, post, delete, patch, custom'
      : `a mapping has one HTTP method, this one has ${patterns.map((p) => p[0]).join(' and ')}`;
  const [httpMethod, path] = patterns[0]!;
  const template = parseTemplate(path);
  if (typeof template === 'string') return template;
  const requestType = method.requestType;
  const variableFields: Field[][] = [];
  for (const v of template.variables) {
    const chain = fieldChain(protobuf, requestType, v.fieldPath);
    if (typeof chain === 'string') return `path variable {${v.fieldPath.join('.')}}: ${chain}`;
    const leaf = chain[chain.length - 1]!;
    if (leaf.repeated || leaf.map)
      return `path variable {${v.fieldPath.join('.')}}: a repeated or map field cannot be bound`;
    if (textKindOf(protobuf, leaf) === null)
      return `path variable {${v.fieldPath.join('.')}}: message field ${leaf.name} cannot be set from text`;
    variableFields.push(chain);
  }
  const body = rule.body === undefined || rule.body === '' ? null : rule.body;
  if (body !== null && body !== '*') {
    if (requestType.fields[body] === undefined)
      return `body "${body}": ${requestType.name} has no field "${body}"${suggest(Object.keys(requestType.fields))}`;
    if (template.variables.some((v) => v.fieldPath[0] === body)) return `body "${body}" is also bound by the path`;
  }
  const responseBody = rule.responseBody ?? rule.response_body;
  let responseField: Field | null = null;
  if (responseBody !== undefined && responseBody !== '') {
    responseField = method.responseType.fields[responseBody] ?? null;
    if (responseField === null)
      return `responseBody "${responseBody}": ${method.responseType.name} has no field "${responseBody}"`;
  }
  return { httpMethod, template, method, body, variableFields, responseField, source };
}

function suggest(names: string[]): string {
  return names.length === 0 ? '' : ` (its fields: ${names.slice(0, 12).join(', ')})`;
}

/**
 * The fields a dotted path walks through, by proto field name (JSON names too, for query parameters):
 * every field but the last a singular message.
 */
export function fieldChain(protobuf: Protobuf, type: Type, path: readonly string[]): Field[] | string {
  const chain: Field[] = [];
  let current: Type = type;
  for (let i = 0; i < path.length; i++) {
    const name = path[i]!;
    const field = current.fields[name] ?? Object.values(current.fields).find((f) => f.jsonName === name);
    if (field === undefined) return `${current.name} has no field "${name}"`;
    chain.push(field);
    if (i < path.length - 1) {
      if (!(field.resolvedType instanceof protobuf.Type) || field.repeated || field.map)
        return `${current.name}.${field.name} is not a singular message field`;
      current = field.resolvedType;
    }
  }
  return chain;
}

/** How a path or query value becomes a field's JSON value. */
export const TEXT_AS_STRING = 0;
export const TEXT_AS_BOOL = 1;
export const TEXT_AS_ENUM = 2;
export type TextKind = typeof TEXT_AS_STRING | typeof TEXT_AS_BOOL | typeof TEXT_AS_ENUM;

/** Well-known types whose JSON form is one string (or a bool, for BoolValue): settable from a path or query. */
const TEXT_MESSAGES = new Set([
  '.google.protobuf.Timestamp',
  '.google.protobuf.Duration',
  '.google.protobuf.FieldMask',
  '.google.protobuf.StringValue',
  '.google.protobuf.BytesValue',
  '.google.protobuf.Int64Value',
  '.google.protobuf.UInt64Value',
  '.google.protobuf.Int32Value',
  '.google.protobuf.UInt32Value',
  '.google.protobuf.FloatValue',
  '.google.protobuf.DoubleValue',
]);

/** null: a message field that text cannot set. */
export function textKindOf(protobuf: Protobuf, field: Field): TextKind | null {
  const t = field.resolvedType;
  if (t instanceof protobuf.Enum) return TEXT_AS_ENUM;
  if (t instanceof protobuf.Type) {
    if (t.fullName === '.google.protobuf.BoolValue') return TEXT_AS_BOOL;
    return TEXT_MESSAGES.has(t.fullName) ? TEXT_AS_STRING : null;
  }
  return field.type === 'bool' ? TEXT_AS_BOOL : TEXT_AS_STRING;
}

export type { Enum, Field, Type };
