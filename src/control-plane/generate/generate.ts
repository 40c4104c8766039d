/**
 * Per-proxy config: a pure function of (model, registry view, proxy identity) → Config, in the very
 * schema a gateway file uses, so the proxy validates and applies it like any other config.
 *
 * Output is deterministic (services by name, instances by id): equal inputs give equal bytes and so
 * equal versions, which is how the control plane knows a proxy needs nothing new. Golden files in
 * test/golden/ pin the output. The control plane generates incrementally through a MeshContext
 * (mesh-context.ts), which this function builds and throws away: both give the same configs.
 */
import type { Config } from '../../api/config.ts';
import type { Instance, ProxyIdentity } from '../../api/mesh.ts';
import { type GeneratedConfig, MeshContext } from './mesh-context.ts';

export type { GeneratedConfig };

export function generateProxyConfig(
  model: Config,
  instances: readonly Instance[],
  proxy: ProxyIdentity,
): GeneratedConfig {
  const { config, version } = new MeshContext(model, instances).generate(proxy);
  return { config, version };
}
