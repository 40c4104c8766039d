/**
 * A proxy's config pipeline: its target is the data plane, two-phase across every process that proxies
 * (prepare everywhere, commit everywhere or discard everywhere).
 */
import { ConfigPipeline, type ConfigTarget, type PipelineOptions } from '../config/pipeline.ts';
import type { PluginCatalog } from '../core/plugin.ts';
import type { Logger } from '../observability/logger.ts';
import type { ApplyReport, DataPlane, PreparedConfig } from './data-plane.ts';

export interface PlaneReport extends ApplyReport {
  /** Bound ports by listener name, after the change. */
  listeners: Record<string, number>;
}

export type PlanePipeline = ConfigPipeline<PreparedConfig, PlaneReport>;

export function dataPlaneTarget(plane: DataPlane): ConfigTarget<PreparedConfig, PlaneReport> {
  return {
    prepare: ({ loaded }) => plane.prepare(loaded),
    async commit(prepared) {
      return { ...(await plane.commit(prepared)), listeners: plane.ports() };
    },
    discard: (prepared) => plane.discard(prepared),
  };
}

/** Log messages of a gateway on a config file. */
export const GATEWAY_MESSAGES = {
  applied: 'config applied',
  rejected: 'config rejected; the running config is kept',
  failed: 'config could not be applied; the running config is kept',
};

/** Log messages of a proxy fed by a control plane. */
export const MESH_MESSAGES = {
  applied: 'config from the control plane applied',
  rejected: 'config from the control plane rejected; the config in force stays',
  failed: 'config from the control plane could not be applied',
};

export function dataPlanePipeline(
  plane: DataPlane,
  log: Logger,
  options: { catalog?: PluginCatalog } & Pick<
    PipelineOptions<PreparedConfig, PlaneReport>,
    'messages' | 'describeError' | 'converters'
  >,
): PlanePipeline {
  return new ConfigPipeline({
    target: dataPlaneTarget(plane),
    log,
    load: { catalog: options.catalog },
    messages: options.messages,
    describeError: options.describeError,
    converters: options.converters,
  });
}
