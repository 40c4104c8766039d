/**
 * Builds each route's filter chain once per snapshot (house rule 3): entries from the global, service
 * and route `plugins` lists are merged by plugin name (most specific wins, `enabled: false` removes),
 * sorted by phase and order, and compiled by their plugin into filter factories. A consumer's own
 * entries make a second chain for that consumer, used after authentication has identified it.
 */
import type { Config, ConsumerConfig, PluginEntryConfig, RouteConfig } from '../../api/config.ts';
import {
  type ConsumerDefinition,
  PHASE_BASE,
  PLUGIN_PHASES,
  type PluginCatalog,
  type PluginCounter,
  type PluginDefinition,
  type PluginDeps,
} from '../../core/plugin.ts';
import type { CompiledFilter } from '../compiled.ts';

type Scope = CompiledFilter['scope'];

interface ScopedEntry {
  entry: PluginEntryConfig;
  scope: Scope;
  definition: PluginDefinition;
}

export interface ChainCompiler {
  /** The chain for a route, and the per-consumer chains (null when no consumer has plugins). */
  compileRoute(
    route: RouteConfig,
    serviceNames: readonly string[],
  ): Promise<{
    filters: readonly CompiledFilter[];
    consumerChains: ReadonlyMap<string, readonly CompiledFilter[]> | null;
  }>;
}

export interface ChainDepsBase {
  now(): number;
  warn(message: string, fields?: Record<string, unknown>): void;
  shared<T>(key: string, create: () => T): T;
  /** PluginDeps.isolated: compiling a shadow config (state only in `shared`, counters go nowhere). */
  isolated?: string;
  /** PluginDeps.counter; a proxy passes its metrics' (without one, counts go nowhere). */
  counter?(name: string, help: string, labelNames: readonly string[]): PluginCounter;
}

const uncounted: PluginCounter = { inc() {} };

/** Rank of the authenticate phase: consumer chains take over for phases after it. */
const AUTHENTICATE_RANK = PLUGIN_PHASES.indexOf('authenticate');

export function createChainCompiler(
  config: Config,
  catalog: PluginCatalog | undefined,
  base: ChainDepsBase,
): ChainCompiler {
  const consumers = new Map<string, ConsumerDefinition>(
    (config.consumers ?? []).map((c) => [c.name, consumerDefinition(c)]),
  );
  const perSnapshot = new Map<string, unknown>();
  const deps: PluginDeps = {
    now: base.now,
    warn: base.warn,
    shared: base.shared,
    consumers,
    redis: config.redis,
    ...(base.isolated === undefined ? {} : { isolated: base.isolated }),
    counter: base.counter ?? (() => uncounted),
    perSnapshot<T>(key: string, create: () => T): T {
      if (!perSnapshot.has(key)) perSnapshot.set(key, create());
      return perSnapshot.get(key) as T;
    },
  };
  // One compiled filter per config entry: a global plugin is compiled once, not once per route.
  const compiled = new Map<PluginEntryConfig, Promise<CompiledFilter>>();
  const resolve = (entry: PluginEntryConfig): PluginDefinition => {
    const definition = entry.path !== undefined ? catalog?.loaded(entry.path) : catalog?.get(entry.name ?? '');
    if (!definition) throw new Error(`plugin ${entry.name ?? entry.path} is not available`);
    return definition;
  };
  // Modules named by path (and a lazy catalog's built-ins) were loaded where the config was validated;
  // a worker process loads them here.
  const entries = [
    config.plugins,
    ...(config.services ?? []).map((s) => s.plugins),
    ...(config.routes ?? []).map((r) => r.plugins),
    ...(config.consumers ?? []).map((c) => c.plugins),
  ].flatMap((list) => list ?? []);
  const unloadedNames = entries
    .filter((e) => e.path === undefined && e.name !== undefined && catalog?.get(e.name) === undefined)
    .map((e) => e.name!);
  const loading = Promise.all([
    ...entries
      .filter((e) => e.path !== undefined && catalog?.loaded(e.path) === undefined)
      .map((e) => catalog!.load(e.path!)),
    ...(unloadedNames.length > 0 && catalog?.preload ? [catalog.preload(unloadedNames)] : []),
  ]);
  const compileEntry = (s: ScopedEntry): Promise<CompiledFilter> => {
    let promise = compiled.get(s.entry);
    if (!promise) {
      const phase = s.entry.phase ?? s.definition.phase;
      promise = Promise.resolve(s.definition.compile((s.entry.config ?? {}) as Record<string, unknown>, deps)).then(
        (factory) => ({
          name: s.definition.name,
          phase,
          phaseRank: PLUGIN_PHASES.indexOf(phase),
          order: PHASE_BASE[phase] + (s.entry.order ?? s.definition.order),
          scope: s.scope,
          factory,
        }),
      );
      compiled.set(s.entry, promise);
    }
    return promise;
  };
  const scoped = (entries: readonly PluginEntryConfig[] | undefined, scope: Scope): ScopedEntry[] =>
    (entries ?? []).map((entry) => ({ entry, scope, definition: resolve(entry) }));
  const merge = (...layers: ScopedEntry[][]): ScopedEntry[] => {
    const byName = new Map<string, ScopedEntry>();
    for (const layer of layers) for (const s of layer) byName.set(s.definition.name, s);
    return [...byName.values()].filter((s) => s.entry.enabled !== false);
  };
  const build = async (entries: ScopedEntry[]): Promise<CompiledFilter[]> => {
    const filters = await Promise.all(entries.map(compileEntry));
    return filters.sort((a, b) => a.order - b.order);
  };
  const services = new Map((config.services ?? []).map((s) => [s.name, s]));
  let globalEntries: ScopedEntry[] | undefined;
  let consumerEntries: { name: string; entries: ScopedEntry[] }[] = [];
  const ready = loading.then(() => {
    globalEntries = scoped(config.plugins, 'global');
    consumerEntries = (config.consumers ?? [])
      .filter((c) => (c.plugins ?? []).length > 0)
      .map((c) => ({ name: c.name, entries: scoped(c.plugins, 'consumer') }));
  });

  return {
    async compileRoute(route, serviceNames) {
      await ready;
      // Service plugins apply when every destination is that one service (the usual one-service route).
      const only = new Set(serviceNames).size === 1 ? services.get(serviceNames[0]!) : undefined;
      const base = merge(globalEntries!, scoped(only?.plugins, 'service'), scoped(route.plugins, 'route'));
      const filters = await build(base);
      if (consumerEntries.length === 0) return { filters, consumerChains: null };
      const chains = new Map<string, readonly CompiledFilter[]>();
      for (const { name, entries } of consumerEntries) {
        const afterAuth = (s: ScopedEntry) =>
          PLUGIN_PHASES.indexOf(s.entry.phase ?? s.definition.phase) > AUTHENTICATE_RANK;
        chains.set(name, await build(merge(base.filter(afterAuth), entries.filter(afterAuth))));
      }
      return { filters, consumerChains: chains };
    },
  };
}

function consumerDefinition(c: ConsumerConfig): ConsumerDefinition {
  return Object.freeze({
    name: c.name,
    id: c.id ?? c.name,
    groups: Object.freeze([...(c.groups ?? [])]),
    credentials: (c.credentials ?? []) as unknown as readonly Record<string, unknown>[],
  });
}

/** A route's plugin chain and the chains that take over once a consumer with plugins of its own is known. */
export interface RouteChains {
  filters: readonly CompiledFilter[];
  consumerChains: ReadonlyMap<string, readonly CompiledFilter[]> | null;
}

/**
 * The route's chains with a built-in filter (authorization policies, plans) in its place in each, the
 * consumer chains too: they take over after authentication and must not skip it.
 */
export function withFilter<C extends RouteChains>(chain: C, filter: CompiledFilter): C {
  return {
    ...chain,
    filters: insertFilter(chain.filters, filter),
    consumerChains:
      chain.consumerChains === null
        ? null
        : new Map([...chain.consumerChains].map(([name, filters]) => [name, insertFilter(filters, filter)])),
  };
}

/** `chain` with the filter in its place (by order; before plugins of the same order). */
function insertFilter(chain: readonly CompiledFilter[], filter: CompiledFilter): readonly CompiledFilter[] {
  const at = chain.findIndex((f) => f.order >= filter.order);
  return at === -1 ? [...chain, filter] : [...chain.slice(0, at), filter, ...chain.slice(at)];
}
