/**
 * Mutual TLS between proxies: the modes (Istio's names) and how a service's effective mode and the
 * SPIFFE IDs its endpoints must present follow from a config. Shared by the control plane (which
 * writes them into each proxy's config) and the proxy (which applies them), so it does no I/O.
 */
import type { Config, ServiceConfig } from '../api/config.ts';
import { DEFAULT_MESH_MTLS_MODE, DEFAULT_MESH_NAMESPACE } from './defaults.ts';
import { spiffeIdOf } from './spiffe.ts';

/**
 * `STRICT`: only mutual TLS. `PERMISSIVE`: a server takes mutual TLS and plaintext on one port (told
 * apart by the first byte), a client uses mutual TLS. `DISABLE`: plaintext.
 */
export const MTLS_MODES = ['STRICT', 'PERMISSIVE', 'DISABLE'] as const;
export type MtlsMode = (typeof MTLS_MODES)[number];

/**
 * How this proxy calls a service: its own `mtls.mode`, else the mesh-wide `mesh.mtls.mode`, else
 * `PERMISSIVE` when the config has a `mesh` section, else `DISABLE` (a config without a mesh is
 * plaintext, as it always was).
 */
export function serviceMtlsMode(config: Pick<Config, 'mesh'>, service: Pick<ServiceConfig, 'mtls'>): MtlsMode {
  return (
    service.mtls?.mode ??
    config.mesh?.mtls?.mode ??
    (config.mesh === undefined ? 'DISABLE' : (DEFAULT_MESH_MTLS_MODE as MtlsMode))
  );
}

/**
 * The SPIFFE IDs a service's endpoints may present: its `mtls.identities`, else the mesh's identity
 * for it, `spiffe://<trustDomain>/ns/<namespace>/sa/<service>` (the trust domain from `mesh`, else
 * `fallbackTrustDomain`, the proxy's own). Empty when neither names a trust domain.
 */
export function serviceIdentities(
  config: Pick<Config, 'mesh'>,
  service: Pick<ServiceConfig, 'name' | 'mtls'>,
  fallbackTrustDomain?: string,
): string[] {
  if (service.mtls?.identities !== undefined) return [...service.mtls.identities];
  const trustDomain = config.mesh?.trustDomain ?? fallbackTrustDomain;
  if (trustDomain === undefined) return [];
  return [spiffeIdOf(trustDomain, config.mesh?.namespace ?? DEFAULT_MESH_NAMESPACE, service.name)];
}
