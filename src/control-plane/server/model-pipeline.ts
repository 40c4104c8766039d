/**
 * The control plane's config pipeline: its target is the model store. `prepare` freezes the validated
 * config into a model (it cannot fail: the mesh's rules ran as validation); `commit` makes it the model
 * in force, which records a change and pushes it to every proxy it affects.
 */

import { ConfigPipeline, type ConfigTarget, type ValidatedConfig } from '../../config/pipeline.ts';
import { ADMIN_API_SOURCE } from '../../config/sources/admin-api/admin-api.ts';
import type { PluginCatalog } from '../../core/plugin.ts';
import type { Logger } from '../../observability/logger.ts';
import { checkMeshRules, type MeshModel } from '../model/model.ts';
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

function modelTarget(cp: ControlPlane): ConfigTarget<MeshModel, ModelReport> {
  return {
    async prepare(config) {
      return modelOf(config);
    },
    async commit(model, { trigger }) {
      const cause =
        trigger === ADMIN_API_SOURCE
          ? 'config applied through the admin API'
          : `config reloaded from ${model.source} (${trigger})`;
      return { change: cp.setModel(model, cause), model: model.version };
    },
    async discard() {},
  };
}

/** `catalog`: the plugins a model may name (the proxies' built-in ones). */
export function modelPipeline(cp: ControlPlane, log: Logger, catalog?: PluginCatalog): ModelPipeline {
  const pipeline = new ConfigPipeline({
    target: modelTarget(cp),
    log,
    load: { catalog, extraChecks: checkMeshRules },
    messages: {
      applied: 'model updated',
      rejected: 'config rejected; the model in force is kept',
      failed: 'config could not be applied; the model in force is kept',
    },
  });
  const m = cp.currentModel;
  pipeline.started({
    loaded: { config: m.config, source: m.source, hash: m.version },
    texts: m.texts,
    trigger: 'start',
  });
  return pipeline;
}
