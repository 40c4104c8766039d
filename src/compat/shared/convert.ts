/**
 * The one converter the config pipeline runs (`PipelineOptions.converters`): it finds the foreign
 * files among a config's texts by shape, converts each with its format, and merges them with the
 * native files by load.ts's own rules. Issues about converted values point into the foreign file.
 *
 *   texts ─► per file: sniff → parse (all documents, positions, ${NAME}) → detect → convert
 *         ─► merge (load.ts) ─► service overlays (policy joined to the service it names)
 *         ─► default listener (when no file names one) ─► unsupported: refused, or warnings
 */
import type { ConfigIssue } from '../../api/issues.ts';
import { type Locator, type Path, SourceDocument } from '../../config/document.ts';
import { formatPath } from '../../config/issues.ts';
import { type ConfigDocument, mergeDocuments, type ParsedConfig } from '../../config/load.ts';
import {
  Conversion,
  type ConvertedConfig,
  type DefaultListener,
  type ForeignFile,
  type ForeignFormat,
  implicitFields,
  isRecord,
  overlays,
} from './format.ts';

export interface CompatOptions {
  /** Load what can be converted and report the rest through `warn` instead of refusing the config. */
  allowUnsupported?: boolean;
  /** Receives each unsupported part when `allowUnsupported` is set. */
  warn?: (issue: ConfigIssue) => void;
  /** Where a config made of converted files listens when no file names a listener (`--listen`). */
  listen?: { address: string; port: number };
  /** Add a listener when none is named (default true; the control plane's model has none of its own). */
  defaultListener?: boolean;
  /** Treat every file as this format (`--from`); a file without its shape is an issue. */
  from?: string;
}

/** What the conversion of a config's texts found, besides the parsed config (for `meshgate convert`). */
export interface CompatResult {
  parsed: ParsedConfig;
  conversions: Conversion[];
}

/**
 * Converts the foreign files among `parsed.texts`; returns `parsed` itself when there are none.
 */
export function convertTexts(
  parsed: ParsedConfig,
  formats: readonly ForeignFormat[],
  options: CompatOptions = {},
): CompatResult {
  const { texts } = parsed;
  const forced = options.from === undefined ? undefined : formats.find((f) => f.name === options.from);
  if (texts.length === 0 || (!forced && !texts.some((t) => formats.some((f) => f.sniff(t.text)))))
    return { parsed, conversions: [] };
  const env = parsed.env ?? null;
  const docs: ConfigDocument[] = [];
  const conversions: Conversion[] = [];
  const unsupported: ConfigIssue[] = [];
  const invalid: ConfigIssue[] = [];
  for (const text of texts) {
    const candidates = forced ? [forced] : formats.filter((f) => f.sniff(text.text));
    if (candidates.length === 0) {
      docs.push(new SourceDocument(text.file, text.text));
      continue;
    }
    const documents = SourceDocument.all(text.file, text.text);
    const syntax = documents.flatMap((d) => d.syntaxIssues());
    if (syntax.length > 0) {
      docs.push(new ConvertedDocument(text.file, { syntax }));
      continue;
    }
    const envIssues = env === null ? [] : documents.flatMap((d) => d.substituteEnv(env));
    let values: unknown[];
    try {
      values = documents.map((d) => d.toJS());
    } catch (e) {
      docs.push(
        new ConvertedDocument(text.file, {
          syntax: [{ file: text.file, line: 0, column: 0, path: '', message: (e as Error).message }],
        }),
      );
      continue;
    }
    const format = candidates.find((f) => f.detect(values));
    if (!format) {
      if (forced)
        invalid.push({
          file: text.file,
          line: 0,
          column: 0,
          path: '',
          message: `not ${forced.name} config: ${forced.name}'s resources were not found in this file`,
        });
      // A native file that mentions a foreign format's keys (or a multi-document file, which meshgate refuses).
      docs.push(new SourceDocument(text.file, text.text));
      continue;
    }
    const file: ForeignFile = { path: text.file, documents, values };
    const out = new Conversion(format, file);
    format.convert(file, out);
    conversions.push(out);
    unsupported.push(...out.unsupported);
    invalid.push(...out.invalid);
    docs.push(new ConvertedDocument(text.file, { conversion: out, env: envIssues }));
  }
  if (conversions.length === 0 && invalid.length === 0 && !docs.some((d) => d instanceof ConvertedDocument))
    return { parsed, conversions };
  const merged = mergeDocuments(docs, env);
  let data = merged.data;
  let locator: Locator = merged.locator;
  const issues = [...merged.issues, ...invalid];
  if (data !== undefined && !merged.fatal) {
    const joined = joinOverlays(data, locator);
    data = joined.data;
    locator = joined.locator;
    issues.push(...joined.issues);
    const first = conversions[0];
    if (first && options.defaultListener !== false && !hasListeners(data)) {
      const listener = defaultListener(first.format.defaultListener, options.listen);
      data.listeners = [{ ...listener, origin: `${first.format.name}: default listener (no file names one)` }];
      locator = withDefaultListener(locator, first.file.path);
    }
  }
  if (options.allowUnsupported) for (const issue of unsupported) options.warn?.(issue);
  else
    issues.push(
      ...unsupported.map((i) => ({
        ...i,
        hint: `${i.hint ? `${i.hint}; or` : 'leave it out, or'} load the rest with --allow-unsupported`,
      })),
    );
  return {
    parsed: {
      ...parsed,
      data,
      locator,
      issues,
      fatal: merged.fatal || data === undefined,
    },
    conversions,
  };
}

function hasListeners(data: Record<string, unknown>): boolean {
  return Array.isArray(data.listeners) && data.listeners.length > 0;
}

function defaultListener(fallback: DefaultListener, listen: CompatOptions['listen']): Record<string, unknown> {
  return {
    name: fallback.name,
    port: listen?.port ?? fallback.port,
    address: listen?.address ?? fallback.address,
  };
}

/** A foreign file as the merge reads it: the conversion's output, positioned in the foreign text. */
class ConvertedDocument implements ConfigDocument {
  readonly file: string;
  private readonly conversion: Conversion | undefined;
  private readonly syntax: ConfigIssue[];
  private readonly env: ConfigIssue[];

  constructor(file: string, parts: { conversion?: Conversion; syntax?: ConfigIssue[]; env?: ConfigIssue[] }) {
    this.file = file;
    this.conversion = parts.conversion;
    this.syntax = parts.syntax ?? [];
    this.env = parts.env ?? [];
  }

  syntaxIssues(): ConfigIssue[] {
    return this.syntax;
  }

  /** `${NAME}` was substituted in the foreign text before converting; these are its issues. */
  substituteEnv(): ConfigIssue[] {
    return this.env;
  }

  toJS(): unknown {
    const c = this.conversion?.config;
    if (!c) return {};
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(c) as (keyof ConvertedConfig)[]) {
      const value = c[key];
      if (Array.isArray(value) ? value.length > 0 : value !== undefined) out[key] = value;
    }
    return out;
  }

  /** The source position of the nearest output path that has one recorded. */
  position(path: Path, key?: string): { file: string; line: number; column: number } {
    const c = this.conversion;
    if (!c) return { file: this.file, line: 0, column: 0 };
    const full = key === undefined ? path : [...path, key];
    for (let n = full.length; n > 0; n--) {
      const ref = c.origins.get(formatPath(full.slice(0, n)));
      if (ref) return c.position(ref);
    }
    return { file: this.file, line: 1, column: 1 };
  }

  /** `routes[2].retries` → `istio:VirtualService/default/reviews http[0] (routes[2].retries)`. */
  localPath(path: string): string {
    const c = this.conversion;
    if (!c) return path;
    // The most precise source recorded: the longest prefix of the path that has one.
    for (let end = path.length; end > 0; end--) {
      if (end < path.length && path[end] !== '.' && path[end] !== '[') continue;
      const origin = c.origins.get(path.slice(0, end));
      if (origin) return `${c.format.name}:${c.describe(origin)} (${path})`;
    }
    return path;
  }
}

/**
 * Joins each overlay service (policy for a service defined elsewhere) into the one service of its
 * name: the other file's fields stay, the overlay adds its own; a field both set is a conflict,
 * unless one side set it only to reproduce an implicit default. An overlay with no service of its
 * name becomes that service (its endpoints then come from the mesh registry).
 */
function joinOverlays(
  data: Record<string, unknown>,
  locator: Locator,
): { data: Record<string, unknown>; locator: Locator; issues: ConfigIssue[] } {
  const services = data.services;
  if (!Array.isArray(services) || !services.some((s) => isRecord(s) && overlays.has(s)))
    return { data, locator, issues: [] };
  const issues: ConfigIssue[] = [];
  const byName = new Map<string, number>();
  const keep: number[] = [];
  /** Final index → field → original index the field came from (for positions). */
  const fieldOwners: Map<string, number>[] = [];
  const order = services.map((_, i) => i);
  // Bases first, so an overlay listed before the service it names still joins it.
  order.sort(
    (a, b) => Number(overlays.has(services[a] as object)) - Number(overlays.has(services[b] as object)) || a - b,
  );
  const finalOf = new Map<number, number>();
  for (const i of order) {
    const service = services[i];
    const name = isRecord(service) ? service.name : undefined;
    const baseAt = typeof name === 'string' ? byName.get(name) : undefined;
    if (!isRecord(service) || !overlays.has(service) || baseAt === undefined) {
      if (typeof name === 'string' && !byName.has(name)) byName.set(name, i);
      keep.push(i);
      continue;
    }
    const base = services[baseAt] as Record<string, unknown>;
    const baseImplicit = implicitFields.get(base);
    const overlayImplicit = implicitFields.get(service);
    for (const [field, value] of Object.entries(service)) {
      if (field === 'name') continue;
      if (field === 'origin') {
        base.origin = base.origin === undefined ? value : `${base.origin} + ${value}`;
        continue;
      }
      if (base[field] === undefined || baseImplicit?.has(field)) {
        base[field] = value;
        baseImplicit?.delete(field);
        (fieldOwners[baseAt] ??= new Map()).set(field, i);
      } else if (!overlayImplicit?.has(field)) {
        const at = locator.position(['services', i, field]);
        const other = locator.position(['services', baseAt, field]);
        issues.push({
          ...at,
          path: locator.localPath?.(`services[${i}].${field}`) ?? `services[${i}].${field}`,
          message: `${field} of service "${name}" is also set at ${other.file}:${other.line}:${other.column}`,
          hint: 'set it in one place',
        });
      }
    }
  }
  keep.sort((a, b) => a - b);
  for (const [final, original] of keep.entries()) finalOf.set(final, original);
  data.services = keep.map((i) => services[i]);
  const inner = locator;
  const map = (path: Path): Path => {
    if (path[0] !== 'services' || typeof path[1] !== 'number') return path;
    const original = finalOf.get(path[1]) ?? path[1];
    const field = path[2];
    const owner = typeof field === 'string' ? fieldOwners[original]?.get(field) : undefined;
    return ['services', owner ?? original, ...path.slice(2)];
  };
  const mapped: Locator = {
    position: (path, key) => {
      if (key !== undefined && path.length === 2) {
        const full = map([...path, key]);
        return inner.position(full.slice(0, -1), key);
      }
      return inner.position(map(path), key);
    },
    localPath: (path) => {
      const m = /^services\[(\d+)\](?:\.(\w+))?(.*)$/.exec(path);
      if (!m) return inner.localPath?.(path) ?? path;
      const mappedPath = map(['services', Number(m[1]), ...(m[2] ? [m[2]] : [])]);
      const text = `services[${mappedPath[1]}]${m[2] ? `.${m[2]}` : ''}${m[3]}`;
      return inner.localPath?.(text) ?? text;
    },
  };
  return { data, locator: mapped, issues };
}

/** The added listener has no text of its own: its issues point at the first converted file. */
function withDefaultListener(inner: Locator, file: string): Locator {
  return {
    position: (path, key) =>
      path[0] === 'listeners' || (path.length === 0 && key === 'listeners')
        ? { file, line: 1, column: 1 }
        : inner.position(path, key),
    ...(inner.localPath ? { localPath: (p: string) => inner.localPath!(p) } : {}),
  };
}
