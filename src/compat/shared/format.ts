/**
 * What every converter of a foreign config format shares: the format contract, the per-file
 * conversion record (its output, where each output value came from, what could not be converted),
 * and the located "unsupported" report.
 */
import type { ConfigIssue } from '../../api/issues.ts';
import type { Path, SourceDocument } from '../../config/document.ts';
import { formatPath } from '../../config/issues.ts';

/** A listener a converted file gets when the merged config names none. */
export interface DefaultListener {
  name: string;
  address: string;
  port: number;
}

export interface ForeignFormat {
  /** `istio`, `kong`: the `--from` value and the prefix of every origin. */
  readonly name: string;
  /**
   * A cheap look at the raw text: false means certainly not this format (a native file is never
   * parsed twice). True is only a hint; `detect` decides.
   */
  sniff(text: string): boolean;
  /** Decides by shape, on the parsed documents of one file. */
  detect(documents: readonly unknown[]): boolean;
  /** Converts one file into meshgate's shape, recording origins and unsupported parts in `out`. */
  convert(file: ForeignFile, out: Conversion): void;
  /** Where the source system listens by default (used when no file names a listener). */
  readonly defaultListener: DefaultListener;
}

/** One foreign file: its documents (one, or several `---`-separated) with positions, and their data. */
export interface ForeignFile {
  readonly path: string;
  readonly documents: readonly SourceDocument[];
  readonly values: readonly unknown[];
}

/** A place in a foreign file: a document and a field path inside it. */
export interface SourceRef {
  doc: number;
  path: Path;
}

/** The sections a converted file may contribute; lists add up with the other files' (load.ts merge rules). */
export interface ConvertedConfig {
  listeners: Record<string, unknown>[];
  services: Record<string, unknown>[];
  routes: Record<string, unknown>[];
  consumers: Record<string, unknown>[];
  authorizationPolicies: Record<string, unknown>[];
  plugins: Record<string, unknown>[];
  mesh?: Record<string, unknown>;
  /** The shared store of plugins with `store: redis` (Kong's `policy: redis`). */
  redis?: Record<string, unknown>;
}

export type ListSection = Exclude<keyof ConvertedConfig, 'mesh' | 'redis'>;

/**
 * Services a converter emits as policy for a service defined elsewhere (an Istio DestinationRule
 * names a host whose endpoints come from a ServiceEntry, a native file or the mesh registry): merged
 * into the service of the same name after all files are read (see merge.ts).
 */
export const overlays = new WeakSet<object>();

/**
 * Fields a converter set only to reproduce its source system's implicit defaults: another file's
 * explicit value for the same field wins without a conflict.
 */
export const implicitFields = new WeakMap<object, Set<string>>();

export function markImplicit(target: object, field: string): void {
  let set = implicitFields.get(target);
  if (!set) implicitFields.set(target, (set = new Set()));
  set.add(field);
}

/** The conversion of one file. */
export class Conversion {
  readonly format: ForeignFormat;
  readonly file: ForeignFile;
  readonly config: ConvertedConfig = {
    listeners: [],
    services: [],
    routes: [],
    consumers: [],
    authorizationPolicies: [],
    plugins: [],
  };
  /** Output path (formatted) → where in the source it came from. */
  readonly origins = new Map<string, SourceRef>();
  /** Parts of the source meshgate cannot express: refused, or with `--allow-unsupported` left out with a warning. */
  readonly unsupported: ConfigIssue[] = [];
  /** Source values that are wrong in the source format itself (always refused). */
  readonly invalid: ConfigIssue[] = [];

  constructor(format: ForeignFormat, file: ForeignFile) {
    this.format = format;
    this.file = file;
  }

  /** Adds an object to a section; its fields' positions default to `ref`. Returns its output path. */
  add(section: ListSection, value: Record<string, unknown>, ref: SourceRef): Path {
    const list = this.config[section];
    const path: Path = [section, list.length];
    list.push(value);
    this.origins.set(formatPath(path), ref);
    return path;
  }

  /** Points a finer output path at its own source (e.g. one destination of a route). */
  at(outPath: Path, ref: SourceRef): void {
    this.origins.set(formatPath(outPath), ref);
  }

  /** Reports a field (last element of `ref.path`) or value meshgate cannot express. */
  reportUnsupported(ref: SourceRef, message: string, hint?: string): void {
    this.unsupported.push(this.issue(ref, message, hint, 'unsupported'));
  }

  reportInvalid(ref: SourceRef, message: string, hint?: string): void {
    this.invalid.push(this.issue(ref, message, hint, 'invalid'));
  }

  /** The position of `ref`: of its key when it names a field of a map, so the report points at the field. */
  position(ref: SourceRef): { file: string; line: number; column: number } {
    const doc = this.file.documents[ref.doc]!;
    const last = ref.path.at(-1);
    return typeof last === 'string' ? doc.position(ref.path.slice(0, -1), last) : doc.position(ref.path);
  }

  /** `VirtualService/default/reviews spec.http[0].corsPolicy`: a source path users recognise. */
  describe(ref: SourceRef): string {
    const name = this.objectName(ref.doc);
    const path = formatPath(ref.path);
    return name ? `${name}${path ? ` ${path}` : ''}` : path;
  }

  /** `Kind/namespace/name` of a Kubernetes-style document, or '' (set by the format through `nameDocument`). */
  objectName(doc: number): string {
    return this.names.get(doc) ?? '';
  }

  nameDocument(doc: number, name: string): void {
    this.names.set(doc, name);
  }

  private readonly names = new Map<number, string>();

  private issue(ref: SourceRef, message: string, hint: string | undefined, code: string): ConfigIssue {
    return {
      ...this.position(ref),
      path: `${this.format.name}:${this.describe(ref)}`,
      message,
      ...(hint ? { hint } : {}),
      code,
    };
  }
}

/** Child of a ref. */
export function child(ref: SourceRef, ...parts: Path): SourceRef {
  return { doc: ref.doc, path: [...ref.path, ...parts] };
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The fields of a source map, with every field not in `known` reported unsupported: a converter names
 * each field it understands (or deliberately accepts), so nothing is dropped unnoticed.
 */
export function fieldsOf(
  out: Conversion,
  value: unknown,
  ref: SourceRef,
  known: readonly string[],
  what = 'field',
): Record<string, unknown> {
  if (!isRecord(value)) {
    if (value !== undefined && value !== null) out.reportInvalid(ref, `expected a map, got ${describeType(value)}`);
    return {};
  }
  for (const key of Object.keys(value))
    if (!known.includes(key)) out.reportUnsupported(child(ref, key), `${what} "${key}" is not supported`);
  return value;
}

/** A source list (absent → empty); anything else is reported invalid. */
export function listOf(out: Conversion, value: unknown, ref: SourceRef): unknown[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) {
    out.reportInvalid(ref, `expected a list, got ${describeType(value)}`);
    return [];
  }
  return value;
}

function describeType(value: unknown): string {
  return Array.isArray(value) ? 'a list' : typeof value;
}
