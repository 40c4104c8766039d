/**
 * Rebuilds a config from the one last received on the stream and a `delta` event
 * (docs/mesh-protocol.md#delta). The caller checks the result's hash against the event's version.
 */
import type { Config, ServiceConfig } from '../../api/config.ts';
import type { DeltaEvent } from '../../api/mesh.ts';

/** The config `delta` makes of `base`, or a reason it cannot be rebuilt. */
export function applyDelta(base: Config, delta: DeltaEvent): { config: Config } | { error: string } {
  const config: Record<string, unknown> = { ...base };
  for (const key of delta.unset ?? []) delete config[key];
  for (const [key, value] of Object.entries(delta.set ?? {})) config[key] = value;
  if (delta.services !== undefined && delta.services.length > 0) {
    const list = [...((config.services as ServiceConfig[] | undefined) ?? [])];
    const at = new Map(list.map((s, n) => [s.name, n]));
    for (const service of delta.services) {
      const n = at.get(service?.name);
      if (n === undefined) return { error: `the delta replaces service "${service?.name}", which the base has not` };
      list[n] = service;
    }
    config.services = list;
  }
  return { config: config as Config };
}
