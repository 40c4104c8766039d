/**
 * Setting, reading and clearing a proxy's shadow config across every process that proxies (a gateway's
 * workers, or the one process): the same steps whether the candidate came to the proxy's admin API
 * (`PUT /shadow`) or was generated for it by the control plane (a `shadow` event on its stream).
 */
import type { ShadowAnswer, ShadowEvent } from '../../api/mesh.ts';
import { mergeShadowReports, type ShadowReport } from '../../api/shadow.ts';
import type { LoadedConfig } from '../../config/load.ts';
import { checkConfig } from '../../config/pipeline.ts';
import { DEFAULT_SHADOW_EXAMPLES } from '../../core/defaults.ts';
import type { PluginCatalog } from '../../core/plugin.ts';
import type { DataPlane } from '../data-plane.ts';
import type { ShadowSet } from '../describe.ts';

export type ShadowSetResult =
  | { ok: true; processes: number }
  /** `waiting`: no process serves yet (no config in force); nothing was set. */
  | { ok: false; waiting: true }
  /** A process could not compile it; no process keeps it. */
  | { ok: false; waiting: false; error: string };

/**
 * Puts `loaded` (validated) beside the live config in every process, or in none: when some took it
 * (replacing what they had) and another refused, all are cleared; when none did, each keeps the
 * shadow config it had.
 */
export async function setShadowEverywhere(
  plane: DataPlane,
  id: string,
  loaded: LoadedConfig,
  samplePercent: number,
): Promise<ShadowSetResult> {
  const set: ShadowSet = { id, loaded, samplePercent, maxExamples: DEFAULT_SHADOW_EXAMPLES };
  const views = await plane.query(`shadow-set:${JSON.stringify(set)}`);
  if (views.length === 0) return { ok: false, waiting: true };
  const refused = views.find((v) => typeof v.error === 'string');
  if (refused === undefined) return { ok: true, processes: views.length };
  if (views.some((v) => typeof v.error !== 'string')) await plane.query('shadow-clear');
  return { ok: false, waiting: false, error: String(refused.error) };
}

function reportOf(views: Record<string, unknown>[]): ShadowReport | null {
  const reports = views.map((v) => v.report as ShadowReport | null).filter((r) => r != null);
  return mergeShadowReports(reports, DEFAULT_SHADOW_EXAMPLES);
}

/** The shadow's counts summed over the processes; null when none is set. */
export async function shadowReportEverywhere(plane: DataPlane): Promise<ShadowReport | null> {
  return reportOf(await plane.query('shadow-report'));
}

/** Removes the shadow config from every process; its last report, summed (null: none was set). */
export async function clearShadowEverywhere(plane: DataPlane): Promise<ShadowReport | null> {
  return reportOf(await plane.query('shadow-clear'));
}

/** Where the issues of a shadow config the control plane generated point. */
export const CONTROL_PLANE_SHADOW_SOURCE = 'control-plane shadow';

/**
 * A `shadow` event of the control plane, carried out on this proxy: the config it generated from
 * the candidate model is validated as a pushed config is, then set, read or cleared everywhere.
 */
export async function answerShadowEvent(
  plane: DataPlane,
  event: ShadowEvent,
  catalog: PluginCatalog | undefined,
): Promise<ShadowAnswer> {
  if (event.op === 'report') return { report: await shadowReportEverywhere(plane) };
  if (event.op === 'clear') return { report: await clearShadowEverywhere(plane) };
  const { id, config, samplePercent } = event.shadow!;
  if (!(samplePercent >= 0 && samplePercent <= 100)) return { error: `sample ${samplePercent} is not a percent` };
  const checked = await checkConfig(
    { kind: 'object', data: config, source: CONTROL_PLANE_SHADOW_SOURCE },
    CONTROL_PLANE_SHADOW_SOURCE,
    catalog ? { load: { catalog } } : {},
  );
  if (!checked.ok)
    return {
      error: `the config generated for this proxy is not valid: ${checked.issues
        .slice(0, 3)
        .map((i) => `${i.path || '/'}: ${i.message}`)
        .join('; ')}`,
    };
  const set = await setShadowEverywhere(plane, id, checked.value.loaded, samplePercent);
  if (set.ok) return { report: await shadowReportEverywhere(plane) };
  return { error: set.waiting ? 'this proxy has no config in force yet' : set.error };
}
