/**
 * The public API of the `meshgate` package, for code that extends it (plugins) or embeds it.
 * `meshgate/plugin` is the plugin contract alone; `meshgate/testing` the test helpers.
 */

export type { Config } from './api/config.ts';
export { type LoadedConfig, type LoadResult, loadConfigFile, loadConfigObject } from './config/load.ts';
export * from './core/plugin.ts';
export { builtinPlugins, createPluginCatalog } from './plugins/index.ts';
export { type ProxyOptions, ProxyServer } from './proxy/proxy.ts';
