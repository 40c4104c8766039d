/**
 * Plugin entries and consumers: every `plugins` list (global, service, route, consumer) names a known
 * plugin or loads one by `path`, and its `config` passes that plugin's own schema — checked here, with
 * located errors, like the rest of the config. Consumers' credentials are checked for ambiguity.
 */
import { isAbsolute, resolve } from 'node:path';
import type { Config } from '../api/config.ts';
import { isInlinePem } from '../core/jwt-keys.ts';
import type { PluginCatalog } from '../core/plugin.ts';
import type { Locator, Path } from './document.ts';
import { type ConfigIssue, didYouMean, formatPath } from './issues.ts';
import { checkAgainst, loadPluginValidators } from './schema-check.ts';

type Entry = { name?: unknown; path?: unknown; config?: unknown; enabled?: unknown };

/** Every plugin list in the config with its location. */
export function pluginLists(config: Config): { at: Path; entries: Entry[] }[] {
  const lists: { at: Path; entries: Entry[] }[] = [];
  const add = (at: Path, entries: unknown) => {
    if (Array.isArray(entries)) lists.push({ at, entries: entries.filter((e) => e && typeof e === 'object') });
  };
  if (!config || typeof config !== 'object') return lists;
  add(['plugins'], config.plugins);
  for (const kind of ['services', 'routes', 'consumers'] as const) {
    const items = config[kind];
    if (!Array.isArray(items)) continue;
    for (let i = 0; i < items.length; i++) add([kind, i, 'plugins'], (items[i] as { plugins?: unknown })?.plugins);
  }
  return lists;
}

/** Absolute path of a plugin module named in a config that lives in `baseDir`. */
export function pluginModulePath(path: string, baseDir: string): string {
  return isAbsolute(path) ? path : resolve(baseDir, path);
}

/**
 * Loads every module named by `path`, and the built-ins named by `name` that a lazy catalog has not
 * loaded yet (so the synchronous checks can find them). Load errors come later, located.
 */
export async function preloadPluginModules(config: Config, catalog: PluginCatalog, baseDir: string): Promise<void> {
  const entries = pluginLists(config).flatMap(({ entries }) => entries);
  const paths = entries
    .filter((e) => typeof e.path === 'string')
    .map((e) => pluginModulePath(e.path as string, baseDir));
  const names = entries.filter((e) => typeof e.name === 'string').map((e) => e.name as string);
  await Promise.all([
    ...paths.map((p) => catalog.load(p).catch(() => undefined)),
    ...(catalog.preload && names.length > 0 ? [catalog.preload(names).catch(() => undefined)] : []),
    // Built-ins' settings are then checked without Ajv's compiler (schema-check.ts).
    ...(names.length > 0 ? [loadPluginValidators().catch(() => undefined)] : []),
  ]);
}

export function checkPlugins(
  config: Config,
  source: Locator,
  catalog: PluginCatalog | undefined,
  baseDir: string,
): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const report = (path: Path, message: string, hint?: string) =>
    issues.push({ ...source.position(path), path: formatPath(path), message, hint });
  for (const { at, entries } of pluginLists(config)) {
    const seen = new Map<string, number>();
    entries.forEach((entry, j) => {
      const here: Path = [...at, j];
      const hasName = typeof entry.name === 'string';
      const hasPath = typeof entry.path === 'string';
      if (hasName === hasPath) {
        report(here, hasName ? 'give either name or path, not both' : 'a plugin entry needs a name or a path');
        return;
      }
      let definition = undefined as ReturnType<PluginCatalog['get']>;
      if (hasName) {
        definition = catalog?.get(entry.name as string);
        if (!definition) {
          report(
            [...here, 'name'],
            `unknown plugin "${entry.name}"`,
            didYouMean(entry.name as string, catalog?.names() ?? []),
          );
          return;
        }
      } else {
        const file = pluginModulePath(entry.path as string, baseDir);
        definition = catalog?.loaded(file);
        if (!definition) {
          const why = catalog?.loadError?.(file);
          report(
            [...here, 'path'],
            `cannot load a plugin from ${file}${why ? `: ${why}` : ''}`,
            'the module must exist and default-export definePlugin({...})',
          );
          return;
        }
      }
      const first = seen.get(definition.name);
      if (first !== undefined)
        report(here, `plugin "${definition.name}" is listed twice here (first at ${formatPath([...at, first])})`);
      else seen.set(definition.name, j);
      // A disabling entry (`enabled: false`) needs no settings: it only turns an inherited plugin off.
      if ((entry as { enabled?: unknown }).enabled === false && entry.config === undefined) return;
      const schemaIssues = checkAgainst(definition.configSchema, entry.config ?? {}, source, [...here, 'config']);
      issues.push(...schemaIssues);
      if (schemaIssues.length === 0 && definition.check) {
        for (const problem of definition.check((entry.config ?? {}) as Record<string, unknown>))
          report([...here, 'config', ...problem.path], problem.message, problem.hint);
      }
      // A plugin offering shared stores finds Redis in the top-level block (docs/operations.md).
      if ((entry.config as { store?: unknown } | undefined)?.store === 'redis' && config.redis === undefined)
        report(
          [...here, 'config', 'store'],
          'store: redis needs the top-level redis block',
          'add redis: { url: redis://127.0.0.1:6379 }',
        );
    });
  }
  checkConsumers(config, report);
  return issues;
}

type Report = (path: Path, message: string, hint?: string) => void;

function checkConsumers(config: Config, report: Report): void {
  const consumers = Array.isArray(config?.consumers) ? config.consumers : [];
  const keys = new Map<string, string>();
  const issuers = new Map<string, string>();
  const names = new Map<string, number>();
  consumers.forEach((consumer, i) => {
    if (!consumer || typeof consumer !== 'object') return;
    const earlier = names.get(consumer.name);
    if (earlier !== undefined)
      report(['consumers', i, 'name'], `duplicate consumer name "${consumer.name}" (first at consumers[${earlier}])`);
    else names.set(consumer.name, i);
    (Array.isArray(consumer.credentials) ? consumer.credentials : []).forEach((c, j) => {
      const at: Path = ['consumers', i, 'credentials', j];
      if (!c || typeof c !== 'object') return;
      if (c.type === 'api-key' && typeof c.key === 'string') {
        const owner = keys.get(c.key);
        if (owner !== undefined)
          report([...at, 'key'], `this API key is also ${owner}'s: a key must identify one consumer`);
        else keys.set(c.key, consumer.name);
      }
      if (c.type === 'jwt') {
        const sources = (['secret', 'publicKey', 'jwksUrl'] as const).filter((k) => c[k] !== undefined);
        if (sources.length !== 1)
          report(
            at,
            `a jwt credential needs exactly one of secret, publicKey, jwksUrl (has ${sources.length || 'none'})`,
          );
        if (c.algorithm?.startsWith('HS') && c.secret === undefined)
          report([...at, 'algorithm'], `${c.algorithm} is an HMAC algorithm: it needs a secret`);
        if (c.algorithm && !c.algorithm.startsWith('HS') && c.secret !== undefined)
          report([...at, 'algorithm'], `${c.algorithm} needs a public key, not a secret`, 'use publicKey or jwksUrl');
        const owner = issuers.get(c.issuer);
        if (owner !== undefined)
          report([...at, 'issuer'], `issuer "${c.issuer}" is also ${owner}'s: a token must find one consumer`);
        else issuers.set(c.issuer, consumer.name);
      }
    });
  });
}

/**
 * Makes file paths in the config absolute (plugin modules, key files), so the config means the same
 * wherever it is applied (workers, other processes). Runs on the plain object before it is frozen.
 */
export function resolveConfigPaths(config: Config, baseDir: string): void {
  for (const { entries } of pluginLists(config))
    for (const entry of entries) if (typeof entry.path === 'string') entry.path = pluginModulePath(entry.path, baseDir);
  for (const consumer of config.consumers ?? [])
    for (const c of consumer.credentials ?? [])
      if (c.type === 'jwt' && c.publicKey !== undefined && !isInlinePem(c.publicKey))
        (c as { publicKey: string }).publicKey = pluginModulePath(c.publicKey, baseDir);
}
