/**
 * The plugin catalog: the built-in plugins plus modules named by `path` in a config. Passed to the
 * config loader (to check plugin settings) and to the proxy (to compile filters); never global.
 */
import { stat } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';
import { PLUGIN_PHASES, type PluginCatalog, type PluginDefinition } from '../core/plugin.ts';

/** A built-in plugin's module, imported on first use. */
export type PluginLoader = () => Promise<{ default: PluginDefinition<never> }>;

export class PluginRegistry implements PluginCatalog {
  private readonly byName = new Map<string, PluginDefinition>();
  private readonly byPath = new Map<string, PluginDefinition>();
  private readonly failures = new Map<string, string>();
  private readonly builtinNames: ReadonlySet<string>;
  /** Built-ins not imported yet, by name (a lazy catalog's: see plugins/lazy.ts). */
  private readonly pending = new Map<string, PluginLoader>();

  /** `builtins`: loaded definitions, or modules by name imported when a config first names them. */
  constructor(builtins: readonly PluginDefinition[] | ReadonlyMap<string, PluginLoader>) {
    if (Array.isArray(builtins)) for (const definition of builtins) this.byName.set(definition.name, definition);
    else for (const [name, loader] of builtins as ReadonlyMap<string, PluginLoader>) this.pending.set(name, loader);
    this.builtinNames = new Set([...this.byName.keys(), ...this.pending.keys()]);
  }

  get(name: string): PluginDefinition | undefined {
    return this.byName.get(name);
  }

  names(): string[] {
    return [...new Set([...this.builtinNames, ...this.byName.keys()])];
  }

  async preload(names: readonly string[]): Promise<void> {
    await Promise.all(
      [...new Set(names)].map(async (name) => {
        const loader = this.pending.get(name);
        if (loader === undefined) return;
        const definition = (await loader()).default as PluginDefinition;
        this.byName.set(name, definition);
        this.pending.delete(name);
      }),
    );
  }

  loaded(absolutePath: string): PluginDefinition | undefined {
    return this.byPath.get(absolutePath);
  }

  /**
   * Imports the module (again when the file changed since, so editing a plugin and reloading the config
   * picks up the new code) and checks it looks like a plugin.
   */
  async load(absolutePath: string): Promise<PluginDefinition> {
    this.failures.delete(absolutePath);
    try {
      return await this.importPlugin(absolutePath);
    } catch (e) {
      this.failures.set(absolutePath, (e as Error).message.replace(`${absolutePath}: `, ''));
      throw e;
    }
  }

  loadError(absolutePath: string): string | undefined {
    return this.failures.get(absolutePath);
  }

  private async importPlugin(absolutePath: string): Promise<PluginDefinition> {
    const { mtimeMs } = await stat(absolutePath);
    const url = `${pathToFileURL(absolutePath).href}?v=${Math.floor(mtimeMs)}`;
    const module = (await import(url)) as { default?: unknown };
    const definition = module.default as PluginDefinition | undefined;
    const problem = shapeProblem(definition);
    if (problem) throw new Error(`${absolutePath}: ${problem}`);
    // A module named like a built-in would replace it for every route that names it (say, jwt).
    if (this.builtinNames.has(definition!.name))
      throw new Error(
        `${absolutePath}: the plugin is named "${definition!.name}", as a built-in one: give it a name of its own`,
      );
    this.byPath.set(absolutePath, definition!);
    this.byName.set(definition!.name, definition!);
    return definition!;
  }
}

function shapeProblem(d: PluginDefinition | undefined): string | undefined {
  if (!d || typeof d !== 'object') return 'the default export is not a plugin (use definePlugin)';
  if (typeof d.name !== 'string' || d.name === '') return 'the plugin has no name';
  if (!PLUGIN_PHASES.includes(d.phase)) return `phase must be one of ${PLUGIN_PHASES.join(', ')}`;
  if (typeof d.compile !== 'function') return 'the plugin has no compile function';
  if (!d.configSchema || typeof d.configSchema !== 'object') return 'the plugin has no configSchema';
  return undefined;
}
