/**
 * The one way a config enters meshgate: text → YAML document with positions → `${ENV}` substitution →
 * schema validation → reference checks. The result is a deep-frozen `Config` or every issue found.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { Config } from '../api/config.ts';
import type { PluginCatalog } from '../core/plugin.ts';
import { checkAuthorizationPolicies } from './authorization.ts';
import { type Locator, type Path, SourceDocument } from './document.ts';
import { checkFiles } from './files.ts';
import { checkGraphqlConfig, resolveGraphqlPaths } from './graphql.ts';
import { type ConfigIssue, formatPath } from './issues.ts';
import { checkApiVersions, checkMetering, resolveMeteringPath } from './metering.ts';
import { checkPlugins, preloadPluginModules, resolveConfigPaths } from './plugins.ts';
import { checkReferences } from './references.ts';
import { checkSchema } from './schema-check.ts';
import { checkTranscodeRoutes, resolveTranscodePaths } from './transcode/check.ts';

export interface LoadOptions {
  /** Plugins the config may name (built-in ones and modules loaded by `path`). */
  catalog?: PluginCatalog;
  /** Where relative paths in the config start. Default: the (first) config file's directory. */
  baseDir?: string;
  /** Rules of the caller's own on a config whose shape is valid (the mesh's naming rules). */
  extraChecks?: (config: Config, at: Locator) => ConfigIssue[];
}

export interface LoadedConfig {
  config: Config;
  /** Where it came from: a file path, `admin-api`, `control-plane`… */
  source: string;
  /** sha256 of the validated config: equal hashes mean equal configs. */
  hash: string;
}

export type LoadResult = { ok: true; value: LoadedConfig } | { ok: false; issues: ConfigIssue[] };

/** `env` null: the text is already final (no `${NAME}` substitution), as for configs sent by API. */
export function parseConfig(
  text: string,
  file: string,
  env: Record<string, string | undefined> | null,
  options: LoadOptions = {},
): LoadResult {
  return parseConfigTexts([{ file, text }], file, env, options);
}

/** One file of a config spread over several (a directory). */
export interface ConfigText {
  file: string;
  text: string;
}

/** Config files parsed and merged, before validation: what analysis tools read. */
export interface ConfigDocuments {
  /** The merged data; undefined when a file could not be parsed (see `issues`). */
  data: Record<string, unknown> | undefined;
  /** Points a path of the merged data into the file and line it came from. */
  locator: Locator;
  /** Syntax problems and unset `${NAME}`s. */
  issues: ConfigIssue[];
  /** True when some file could not be read as data at all (then only `issues` is meaningful). */
  fatal: boolean;
}

/** Top-level lists that several files add to; any other top-level field may be set by one file only. */
const MERGED_LISTS = ['listeners', 'services', 'routes', 'authorizationPolicies'] as const;

/**
 * Parses files (in the order given) and merges them: their `listeners`, `services`, `routes` and
 * `authorizationPolicies` are
 * concatenated; other top-level fields come from the one file that sets them.
 */
export function readConfigTexts(texts: ConfigText[], env: Record<string, string | undefined> | null): ConfigDocuments {
  return mergeDocuments(
    texts.map((t) => new SourceDocument(t.file, t.text)),
    env,
  );
}

/**
 * One file's worth of config as the merge reads it: a `SourceDocument`, or a foreign file converted
 * into meshgate's shape (src/compat/) whose positions point back into the foreign text.
 */
export interface ConfigDocument extends Locator {
  readonly file: string;
  syntaxIssues(): ConfigIssue[];
  substituteEnv(env: Record<string, string | undefined>): ConfigIssue[];
  toJS(): unknown;
}

/** `readConfigTexts` over documents already made: the same merge rules and located issues. */
export function mergeDocuments(
  docs: readonly ConfigDocument[],
  env: Record<string, string | undefined> | null,
): ConfigDocuments {
  const locator = new MergedLocator(docs);
  const syntax = docs.flatMap((d) => d.syntaxIssues());
  if (syntax.length > 0) return { data: undefined, locator, issues: syntax, fatal: true };
  const issues = env === null ? [] : docs.flatMap((d) => d.substituteEnv(env));
  const merged: Record<string, unknown> = {};
  let fatal = false;
  for (const [i, doc] of docs.entries()) {
    let data: unknown;
    try {
      data = doc.toJS() ?? {};
    } catch (e) {
      // yaml throws here rather than listing a document error, e.g. on an alias bomb.
      issues.push({ ...doc.position([]), path: '', message: (e as Error).message });
      fatal = true;
      continue;
    }
    if (docs.length === 1) return { data: data as Record<string, unknown>, locator: doc, issues, fatal };
    if (typeof data !== 'object' || data === null || Array.isArray(data)) {
      issues.push({
        ...doc.position([]),
        path: '',
        message: `expected a map of config sections, got ${Array.isArray(data) ? 'a list' : typeof data}`,
      });
      fatal = true;
      continue;
    }
    for (const [key, value] of Object.entries(data)) {
      if ((MERGED_LISTS as readonly string[]).includes(key) && Array.isArray(value)) {
        const list = (merged[key] ??= []) as unknown[];
        for (let j = 0; j < value.length; j++) locator.add(key, i, j);
        list.push(...value);
      } else if (Object.hasOwn(merged, key)) {
        const first = docs[locator.owner(key)!]!;
        issues.push({
          ...doc.position([], key),
          path: key,
          message: `${key} is already set in ${first.file}`,
          hint: 'set it in one file only',
        });
      } else {
        merged[key] = value;
        locator.own(key, i);
      }
    }
  }
  return { data: merged, locator, issues, fatal };
}

/** Validates several files as one config; issues point into the file each value came from. */
export function parseConfigTexts(
  texts: ConfigText[],
  source: string,
  env: Record<string, string | undefined> | null,
  options: LoadOptions = {},
): LoadResult {
  return validateParsed(parseTexts(texts, source, env, options), options);
}

/**
 * A config parsed (and, for several files, merged) but not yet validated: what the config pipeline's
 * `convert` stage receives and returns, and its `validate` stage checks.
 */
export interface ParsedConfig {
  /** The data; undefined when a file could not be parsed (see `issues`). */
  data: unknown;
  locator: Locator;
  /** Syntax problems and unset `${NAME}`s found while parsing. */
  issues: ConfigIssue[];
  /** True when some file could not be read as data at all (then only `issues` is meaningful). */
  fatal: boolean;
  /** The text(s) it was read from, in merge order; empty for a config given as an object. */
  texts: readonly ConfigText[];
  /** Where it came from: a file or directory path, `admin-api`, `control-plane …`. */
  source: string;
  /** Where relative paths in it start. */
  baseDir: string;
  /** True when `locator` points into text (issues sort by position), false for an object (by field order). */
  positions: boolean;
  /** The environment `${NAME}` was taken from (null: none, text final); for converters that re-read texts. */
  env?: Record<string, string | undefined> | null;
}

/** Parses config text(s): YAML with positions, `${NAME}` substitution (unless `env` is null), merge. */
export function parseTexts(
  texts: ConfigText[],
  source: string,
  env: Record<string, string | undefined> | null,
  options: Pick<LoadOptions, 'baseDir'> = {},
): ParsedConfig {
  const first = texts[0]?.file ?? source;
  const baseDir = options.baseDir ?? dirname(resolve(first));
  const { data, locator, issues, fatal } = readConfigTexts(texts, env);
  return { data, locator, issues, fatal: fatal || data === undefined, texts, source, baseDir, positions: true, env };
}

/** A config given as an object (admin API, control plane): no text, so no positions. */
export function parseObject(data: unknown, source: string, options: Pick<LoadOptions, 'baseDir'> = {}): ParsedConfig {
  // A JSON copy: what a file would hold (no undefined, no class instances), and the schema check may
  // coerce it in place without touching the caller's object. Issues name the source and the field path.
  // (Proxies validate every config pushed to them this way, so it skips the YAML parser: ~10x faster
  // than reading the same config as text.)
  const copy: unknown = JSON.parse(JSON.stringify(data ?? {}));
  const nowhere: Locator = { position: () => ({ file: source, line: 0, column: 0 }) };
  return {
    data: copy,
    locator: nowhere,
    issues: [],
    fatal: false,
    texts: [],
    source,
    baseDir: options.baseDir ?? process.cwd(),
    positions: false,
  };
}

/**
 * The only validator: schema, references, plugins and their configs, the files a config names, and
 * the caller's extra rules. The result is a deep-frozen `Config` with its hash, or every issue found,
 * in the order they are written (by position for text, by field order for an object).
 */
export function validateParsed(
  parsed: ParsedConfig,
  options: Pick<LoadOptions, 'catalog' | 'extraChecks'> = {},
): LoadResult {
  const { data, locator, issues: read, fatal, texts, source, baseDir, positions } = parsed;
  // Syntax errors keep the parser's order: its first is the cause, later ones often follow from it.
  if (data === undefined) return { ok: false, issues: read };
  if (fatal) return { ok: false, issues: sortIssues(read, texts) };
  // Run even when the schema failed, so one pass reports every mistake; the checker skips what it cannot read.
  const shape = checkSchema(data, locator);
  const found = [
    ...shape,
    ...checkReferences(data as Config, locator),
    ...checkAuthorizationPolicies(data as Config, locator),
    ...checkPlugins(data as Config, locator, options.catalog, baseDir),
    ...checkFiles(data as Config, resolve(baseDir, '_'), locator),
    ...checkGraphqlConfig(data as Config, locator, baseDir),
    ...checkApiVersions(data as Config, locator),
    ...checkMetering(data as Config, locator, baseDir),
    ...checkTranscodeRoutes(data as Config, locator, baseDir),
    ...(shape.length === 0 && options.extraChecks ? options.extraChecks(data as Config, locator) : []),
  ];
  // A value emptied by an unset variable fails later checks too; the unset variable is the one mistake.
  const emptied = new Set(read.map((i) => i.path));
  const issues = [...read, ...found.filter((i) => !emptied.has(i.path))];
  if (issues.length > 0) {
    if (positions)
      return {
        ok: false,
        issues: sortIssues(
          issues.map((i) => (locator.localPath ? { ...i, path: locator.localPath(i.path) } : i)),
          texts,
        ),
      };
    // In the order the fields are written, as for a file.
    const order = new Map<string, number>();
    const walk = (value: unknown, path: Path) => {
      order.set(formatPath(path), order.size);
      if (value && typeof value === 'object')
        for (const [k, v] of Object.entries(value)) walk(v, [...path, Array.isArray(value) ? Number(k) : k]);
    };
    walk(data, []);
    return { ok: false, issues: issues.sort((a, b) => (order.get(a.path) ?? 0) - (order.get(b.path) ?? 0)) };
  }
  resolveConfigPaths(data as Config, baseDir);
  resolveGraphqlPaths(data as Config, baseDir);
  resolveMeteringPath(data as Config, baseDir);
  resolveTranscodePaths(data as Config, baseDir);
  const config = deepFreeze(data as Config);
  return { ok: true, value: { config, source, hash: hashConfig(config) } };
}

/** Maps `routes[7]` of the merged config to `routes[2]` of the file that wrote it. */
class MergedLocator implements Locator {
  private readonly docs: readonly ConfigDocument[];
  private readonly items = new Map<string, [doc: number, index: number][]>();
  private readonly owners = new Map<string, number>();

  constructor(docs: readonly ConfigDocument[]) {
    this.docs = docs;
  }

  add(list: string, doc: number, index: number) {
    let entries = this.items.get(list);
    if (!entries) this.items.set(list, (entries = []));
    entries.push([doc, index]);
  }

  own(key: string, doc: number) {
    this.owners.set(key, doc);
  }

  owner(key: string): number | undefined {
    return this.owners.get(key);
  }

  localPath(path: string): string {
    const m = /^(\w+)\[(\d+)\](.*)$/.exec(path);
    const entry = m && this.items.get(m[1]!)?.[Number(m[2])];
    if (!entry) return path;
    const local = `${m![1]}[${entry[1]}]${m![3]}`;
    // A converted file names the foreign object the value came from.
    return this.docs[entry[0]]!.localPath?.(local) ?? local;
  }

  position(path: Path, key?: string) {
    const full = key === undefined ? path : [...path, key];
    const [section, index] = full;
    if (typeof section === 'string' && typeof index === 'number') {
      const entry = this.items.get(section)?.[index];
      if (entry) {
        const rest = full.slice(2);
        const local: Path = [section, entry[1], ...rest];
        return key === undefined
          ? this.docs[entry[0]]!.position(local)
          : this.docs[entry[0]]!.position(local.slice(0, -1), key);
      }
    }
    if (typeof section === 'string') {
      const owner = this.owners.get(section) ?? this.items.get(section)?.[0]?.[0];
      if (owner !== undefined) return this.docs[owner]!.position(path, key);
    }
    // A problem of the whole merged config (e.g. a missing section) has no one place.
    const first = this.docs[0];
    return first ? { file: first.file, line: 0, column: 0 } : { file: '', line: 0, column: 0 };
  }
}

export async function loadConfigFile(
  file: string,
  env: Record<string, string | undefined> = process.env,
  options: LoadOptions = {},
): Promise<LoadResult> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    const reason = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : (e as Error).message;
    return { ok: false, issues: [{ file, line: 0, column: 0, path: '', message: reason }] };
  }
  return loadConfigText(text, file, env, options);
}

/** `parseConfig`, after loading the plugin modules the text names by `path` (an import is asynchronous). */
export async function loadConfigText(
  text: string,
  file: string,
  env: Record<string, string | undefined> | null,
  options: LoadOptions = {},
): Promise<LoadResult> {
  if (options.catalog && text.includes('path')) {
    const draft = new SourceDocument(file, text);
    if (draft.syntaxIssues().length === 0) {
      try {
        await preloadPluginModules(
          (draft.toJS() ?? {}) as Config,
          options.catalog,
          options.baseDir ?? dirname(resolve(file)),
        );
      } catch {
        // The synchronous pass reports whatever is wrong with the document.
      }
    }
  }
  return parseConfig(text, file, env, options);
}

/** `validateConfigObject`, after loading plugin modules named by `path` (relative to the cwd or `baseDir`). */
export async function loadConfigObject(data: unknown, source: string, options: LoadOptions = {}): Promise<LoadResult> {
  if (options.catalog && data && typeof data === 'object')
    await preloadPluginModules(data as Config, options.catalog, options.baseDir ?? process.cwd()).catch(() => {});
  return validateConfigObject(data, source, options);
}

/** Validates a config given as an object (admin API, control plane): same checks, no positions. */
export function validateConfigObject(data: unknown, source: string, options: LoadOptions = {}): LoadResult {
  return validateParsed(parseObject(data, source, options), options);
}

/** Stable across key order and the editor-only `$schema`, so a reformatted file is not a change. */
export function hashConfig(config: Config): string {
  const { $schema: _editorOnly, ...rest } = config;
  return createHash('sha256').update(canonicalJson(rest)).digest('hex').slice(0, 16);
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object')
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  return JSON.stringify(value) ?? 'null';
}

function sortIssues(issues: ConfigIssue[], texts: readonly ConfigText[] = []): ConfigIssue[] {
  const fileOrder = (file: string) => texts.findIndex((t) => t.file === file);
  return issues.sort((a, b) => fileOrder(a.file) - fileOrder(b.file) || a.line - b.line || a.column - b.column);
}

export function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
