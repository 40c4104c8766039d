/**
 * The `delta` event's body (docs/mesh-protocol.md#delta): what differs between the config last sent on
 * a stream and the next one. Generated configs share their unchanged parts by reference (mesh-context.ts),
 * so a registry change to one service shows here as one service object that is not the same.
 */
import type { Config, ServiceConfig } from '../../api/config.ts';
import type { DeltaEvent } from '../../api/mesh.ts';

export type ConfigDelta = Pick<DeltaEvent, 'services' | 'set' | 'unset'>;

/**
 * The delta from `base` to `next`, or null when sending `next` whole is as good: the services' names
 * or order changed, or more than half of the services did.
 */
export function configDelta(base: Config, next: Config): ConfigDelta | null {
  const set: Record<string, unknown> = {};
  const unset: string[] = [];
  for (const key of Object.keys(base) as (keyof Config)[]) if (!(key in next)) unset.push(key);
  let services: ServiceConfig[] = [];
  for (const key of Object.keys(next) as (keyof Config)[]) {
    if (next[key] === base[key]) continue;
    if (key !== 'services') {
      set[key] = next[key];
      continue;
    }
    const before = base.services ?? [];
    const after = next.services ?? [];
    if (before.length !== after.length || after.some((s, n) => s.name !== before[n]!.name)) return null;
    services = after.filter((s, n) => s !== before[n]);
    if (services.length * 2 > after.length) return null;
  }
  return {
    ...(services.length > 0 ? { services } : {}),
    ...(Object.keys(set).length > 0 ? { set: set as Partial<Config> } : {}),
    ...(unset.length > 0 ? { unset } : {}),
  };
}
