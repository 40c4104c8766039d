/**
 * The mesh model: the validated config the control plane holds (the gateway's schema: listeners,
 * services, routes), its version, and the text it came from (so tools can point into it).
 * A model replaces the previous one whole.
 */
import type { Config } from '../../api/config.ts';
import { SERVICE_NAME } from '../../api/mesh.ts';
import type { Locator } from '../../config/document.ts';
import { type ConfigIssue, formatPath } from '../../config/issues.ts';
import { type ConfigText, type LoadOptions, type LoadResult, parseConfigTexts } from '../../config/load.ts';

export interface MeshModel {
  readonly config: Config;
  /** Hash of `config`; equal versions are equal models. */
  readonly version: string;
  /** A file, a directory, or `admin-api`. */
  readonly source: string;
  /** The text(s) the model was read from, in merge order. */
  readonly texts: readonly ConfigText[];
  readonly loadedAt: Date;
}

/** Names the control plane generates for sidecars; a model may not use them. */
export const INBOUND = 'inbound';
export const OUTBOUND = 'outbound';
export const inboundServiceName = (service: string) => `${INBOUND}.${service}`;
export const outboundRouteName = (service: string) => `${OUTBOUND}.${service}`;

export type ModelResult = { ok: true; model: MeshModel } | { ok: false; issues: ConfigIssue[] };

/**
 * Validates config text(s) as a mesh model: the config validator (the same errors as `meshgate
 * validate`), then the mesh's own rules. `options.catalog` is the plugins the model's `plugins` lists
 * may name (the control plane passes the built-in ones); without it a model may name none.
 */
export function parseModel(
  texts: ConfigText[],
  source: string,
  env: Record<string, string | undefined> | null,
  options: LoadOptions = {},
): ModelResult {
  const result: LoadResult = parseConfigTexts(texts, source, env, { ...options, extraChecks: checkMeshRules });
  if (!result.ok) return result;
  return {
    ok: true,
    model: Object.freeze({
      config: result.value.config,
      version: result.value.hash,
      source,
      texts: Object.freeze(texts.map((t) => Object.freeze({ ...t }))),
      loadedAt: new Date(),
    }),
  };
}

export function emptyModel(): MeshModel {
  const result = parseModel([], 'empty', null);
  if (!result.ok) throw new Error('the empty model is valid');
  return result.model;
}

/**
 * What the mesh needs beyond a valid config: service names usable as host names (sidecars route
 * `http://photo-service/…` by them), and no names the generator reserves.
 */
export function checkMeshRules(config: Config, at: Locator): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const report = (path: (string | number)[], message: string, hint?: string) =>
    issues.push({ ...at.position(path), path: formatPath(path), message, ...(hint ? { hint } : {}) });
  (config.services ?? []).forEach((s, i) => {
    if (s.name.startsWith(`${INBOUND}.`))
      report(['services', i, 'name'], `service names starting with "${INBOUND}." are reserved for sidecars`);
    else if (!SERVICE_NAME.test(s.name))
      report(
        ['services', i, 'name'],
        `"${s.name}" cannot be a host name, and apps reach mesh services by host name`,
        'use letters, digits, "-" and "." (no "_"), e.g. photo-service',
      );
  });
  (config.routes ?? []).forEach((r, i) => {
    if (r.name === INBOUND || r.name.startsWith(`${OUTBOUND}.`))
      report(['routes', i, 'name'], `route names "${INBOUND}" and "${OUTBOUND}.*" are reserved for sidecars`);
  });
  (config.listeners ?? []).forEach((l, i) => {
    if (l.name === INBOUND || l.name === OUTBOUND)
      report(['listeners', i, 'name'], `listener names "${INBOUND}" and "${OUTBOUND}" are reserved for sidecars`);
  });
  return issues;
}
