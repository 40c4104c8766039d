/**
 * The plugin catalog: the built-in plugins plus modules named by `path` in a config. Passed to the
 * config loader (to check plugin settings) and to the proxy (to compile filters); never global.
 */
import { stat } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';
import { PLUGIN_PHASES, type PluginCatalog, type PluginDefinition } from '../core/plugin.ts';

export class PluginRegistry implements PluginCatalog {
  private readonly byName = new Map<string, PluginDefinition>();
  private readonly byPath = new Map<string, PluginDefinition>();

  constructor(builtins: readonly PluginDefinition[]) {
    for (const definition of builtins) this.byName.set(definition.name, definition);
  }

  get(name: string): PluginDefinition | undefined {
    return this.byName.get(name);
  }

  names(): string[] {
    return [...this.byName.keys()];
  }

  loaded(absolutePath: string): PluginDefinition | undefined {
    return this.byPath.get(absolutePath);
  }

  /**
   * Imports the module (again when the file changed since, so editing a plugin and reloading the config
   * picks up the new code) and checks it looks like a plugin.
   */
  async load(absolutePath: string): Promise<PluginDefinition> {
    const { mtimeMs } = await stat(absolutePath);
    const url = `${pathToFileURL(absolutePath).href}?v=${Math.floor(mtimeMs)}`;
    const module = (await import(url)) as { default?: unknown };
    const definition = module.default as PluginDefinition | undefined;
    const problem = shapeProblem(definition);
    if (problem) throw new Error(`${absolutePath}: ${problem}`);
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
