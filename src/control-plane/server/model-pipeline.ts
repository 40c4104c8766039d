/**
 * The control plane's config pipeline: its target is the model store. `prepare` freezes the validated
 * config into a model (it cannot fail: the mesh's rules ran as validation); `commit` writes it to the
 * store, which applies it as the model in force (on every control plane sharing the store), and that
 * records a change and pushes it to every proxy it affects.
 */

import type { RolloutOptions } from '../../api/mesh.ts';
import {
  type ConfigConverter,
  ConfigPipeline,
  type ConfigTarget,
  type ValidatedConfig,
} from '../../config/pipeline.ts';
import { ADMIN_API_SOURCE } from '../../config/sources/admin-api/admin-api.ts';
import type { PluginCatalog } from '../../core/plugin.ts';
import type { Logger } from '../../observability/logger.ts';
import { checkMeshRules, type MeshModel } from '../model/model.ts';
import { MemoryModelStore, type ModelStore } from '../model/store.ts';
import { RolloutController } from '../rollout/rollout.ts';
import type { ControlPlane } from './control-plane.ts';

export interface ModelReport {
  /** The change record's id (GET /changes/{id}); null if the model was already in force. */
  change: number | null;
  /** The model's version. */
  model: string;
}

export type ModelPipeline = ConfigPipeline<MeshModel, ModelReport>;

/** The model a validated config makes. */
export function modelOf({ loaded, texts }: ValidatedConfig): MeshModel {
  return Object.freeze({
    config: loaded.config,
    version: loaded.hash,
    source: loaded.source,
    texts: Object.freeze(texts.map((t) => Object.freeze({ ...t }))),
    loadedAt: new Date(),
  });
}

/** A change request's `intent` that rolls the model out to canary proxies first (`POST /rollouts`). */
export interface RolloutIntent {
  rollout: RolloutOptions;
}

function modelTarget(store: ModelStore, rollouts: RolloutController): ConfigTarget<MeshModel, ModelReport> {
  return {
    async prepare(config) {
      return modelOf(config);
    },
    async commit(model, { trigger, intent }) {
      const cause =
        trigger === ADMIN_API_SOURCE
          ? 'config applied through the admin API'
          : model.source === ADMIN_API_SOURCE
            ? `${trigger}, through the admin API`
            : `config reloaded from ${model.source} (${trigger})`;
      const rollout = (intent as RolloutIntent | undefined)?.rollout;
      if (rollout !== undefined) return { change: await rollouts.start(model, cause, rollout), model: model.version };
      // One model change at a time: a reload or PUT /config during a rollout is refused, not queued.
      rollouts.refuseWhileActive();
      return { change: await store.commit(model, cause), model: model.version };
    },
    async discard() {},
  };
}

/**
 * `catalog`: the plugins a model may name (the proxies' built-in ones). `store`: where models are
 * committed (default: memory, this control plane alone). `converters`: foreign formats the config files
 * may be written in (src/compat/).
 */
export function modelPipeline(
  cp: ControlPlane,
  log: Logger,
  catalog?: PluginCatalog,
  store: ModelStore = new MemoryModelStore(),
  converters?: readonly ConfigConverter[],
): ModelPipeline {
  const rollouts = new RolloutController({
    cp,
    store,
    log,
    clock: cp.clock,
    rolledBack: (previous) => started(previous, 'rollback'),
  });
  cp.rollouts = rollouts;
  const pipeline: ModelPipeline = new ConfigPipeline({
    target: modelTarget(store, rollouts),
    log,
    load: { catalog, extraChecks: checkMeshRules },
    converters,
    messages: {
      applied: 'model updated',
      rejected: 'config rejected; the model in force is kept',
      failed: 'config could not be applied; the model in force is kept',
    },
  });
  const started = (m: MeshModel, trigger: string) =>
    pipeline.started({ loaded: { config: m.config, source: m.source, hash: m.version }, texts: m.texts, trigger });
  // Models committed through another control plane are in force here too.
  store.follow((model, cause, id) => {
    const change = cp.setModel(model, cause, id);
    started(model, 'store');
    return change;
  });
  const m = cp.currentModel;
  pipeline.started({
    loaded: { config: m.config, source: m.source, hash: m.version },
    texts: m.texts,
    trigger: 'start',
  });
  return pipeline;
}
