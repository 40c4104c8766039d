/**
 * The one way a config enters meshgate: text → YAML document with positions → `${ENV}` substitution →
 * schema validation → reference checks. The result is a deep-frozen `Config` or every issue found.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { Config } from '../api/config.ts';
import type { PluginCatalog } from '../core/plugin.ts';
import { SourceDocument } from './document.ts';
import { checkFiles } from './files.ts';
import type { ConfigIssue } from './issues.ts';
import { checkPlugins, preloadPluginModules, resolveConfigPaths } from './plugins.ts';
import { checkReferences } from './references.ts';
import { checkSchema } from './schema-check.ts';

export interface LoadOptions {
  /** Plugins the config may name (built-in ones and modules loaded by `path`). */
  catalog?: PluginCatalog;
  /** Where relative paths in the config start. Default: the config file's directory (or the cwd). */
  baseDir?: string;
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
  const baseDir = options.baseDir ?? dirname(resolve(file));
  const source = new SourceDocument(file, text);
  const syntax = source.syntaxIssues();
  if (syntax.length > 0) return { ok: false, issues: syntax };
  const missingEnv = env === null ? [] : source.substituteEnv(env);
  let data: unknown;
  try {
    data = source.toJS() ?? {};
  } catch (e) {
    // yaml throws here rather than listing a document error, e.g. on an alias bomb.
    return { ok: false, issues: [{ ...source.position([]), path: '', message: (e as Error).message }] };
  }
  // Run even when the schema failed, so one pass reports every mistake; the checker skips what it cannot read.
  const found = [
    ...checkSchema(data, source),
    ...checkReferences(data as Config, source),
    ...checkPlugins(data as Config, source, options.catalog, baseDir),
    ...checkFiles(data as Config, file, source),
  ];
  // A value emptied by an unset variable fails later checks too; the unset variable is the one mistake.
  const emptied = new Set(missingEnv.map((i) => i.path));
  const issues = [...missingEnv, ...found.filter((i) => !emptied.has(i.path))];
  if (issues.length > 0) return { ok: false, issues: sortIssues(issues) };
  resolveConfigPaths(data as Config, baseDir);
  const config = deepFreeze(data as Config);
  return { ok: true, value: { config, source: file, hash: hashConfig(config) } };
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
        const baseDir = options.baseDir ?? dirname(resolve(file));
        await preloadPluginModules((draft.toJS() ?? {}) as Config, options.catalog, baseDir);
      } catch {
        // The synchronous pass reports whatever is wrong with the document.
      }
    }
  }
  return parseConfig(text, file, env, options);
}

/** `validateConfigObject`, after loading plugin modules named by `path` (relative to the cwd or `baseDir`). */
export async function loadConfigObject(data: unknown, source: string, options: LoadOptions = {}): Promise<LoadResult> {
  const result = await loadConfigText(JSON.stringify(data ?? {}, null, 1), source, null, {
    baseDir: process.cwd(),
    ...options,
  });
  return result.ok ? result : { ok: false, issues: result.issues.map((i) => ({ ...i, line: 0, column: 0 })) };
}

/** Validates a config given as an object (admin API, control plane): same checks, no positions. */
export function validateConfigObject(data: unknown, source: string, options: LoadOptions = {}): LoadResult {
  const result = parseConfig(JSON.stringify(data ?? {}, null, 1), source, null, { baseDir: process.cwd(), ...options });
  // Positions would point into the JSON text made above, which the caller never saw.
  return result.ok ? result : { ok: false, issues: result.issues.map((i) => ({ ...i, line: 0, column: 0 })) };
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

function sortIssues(issues: ConfigIssue[]): ConfigIssue[] {
  return issues.sort((a, b) => a.line - b.line || a.column - b.column);
}

export function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
