/**
 * security.istio.io: PeerAuthentication → mutual TLS modes; AuthorizationPolicy → meshgate's
 * authorization policies (the same semantics, docs/authorization.md); RequestAuthentication has no
 * meshgate equivalent yet (see README.md).
 */
import { type Conversion, child, fieldsOf, listOf, overlays, type SourceRef } from '../shared/format.ts';
import { type IstioResource, objectName } from './common.ts';

/** Istio's default trust domain, which its principals (`cluster.local/ns/…/sa/…`) assume. */
const ISTIO_TRUST_DOMAIN = 'cluster.local';

/** `selector.matchLabels.app` → the service it names; any other selector is unsupported. */
function selectedService(out: Conversion, value: unknown, ref: SourceRef): string | null | undefined {
  if (value === undefined) return null;
  const s = fieldsOf(out, value, ref, ['matchLabels']);
  const labels = fieldsOf(out, s.matchLabels, child(ref, 'matchLabels'), ['app']);
  if (typeof labels.app === 'string') return labels.app;
  out.reportUnsupported(
    child(ref, 'matchLabels'),
    'a selector other than matchLabels.app (the service name) is not supported',
  );
  return undefined;
}

export function convertPeerAuthentication(r: IstioResource, spec: unknown): void {
  const { out, ref } = r;
  const s = fieldsOf(out, spec, ref, ['selector', 'mtls', 'portLevelMtls']);
  if (s.portLevelMtls !== undefined)
    out.reportUnsupported(child(ref, 'portLevelMtls'), 'mutual TLS per port is not supported');
  const mtls = fieldsOf(out, s.mtls, child(ref, 'mtls'), ['mode']);
  const mode = mtls.mode ?? 'UNSET';
  if (mode === 'UNSET') return;
  if (!['STRICT', 'PERMISSIVE', 'DISABLE'].includes(String(mode))) {
    out.reportInvalid(child(ref, 'mtls', 'mode'), `unknown mode ${String(mode)}`);
    return;
  }
  const service = selectedService(out, s.selector, child(ref, 'selector'));
  if (service === undefined) return;
  if (service === null) {
    if (out.config.mesh !== undefined) {
      out.reportInvalid(ref, 'a second PeerAuthentication without selector in one file');
      return;
    }
    out.config.mesh = { trustDomain: ISTIO_TRUST_DOMAIN, mtls: { mode } };
    out.at(['mesh'], child(ref, 'mtls'));
    return;
  }
  const overlay: Record<string, unknown> = { name: service, mtls: { mode }, origin: r.origin() };
  overlays.add(overlay);
  out.add('services', overlay, child(ref, 'mtls'));
}

const SOURCE_FIELDS = ['principals', 'notPrincipals', 'namespaces', 'notNamespaces'];
const SOURCE_UNSUPPORTED = [
  'requestPrincipals',
  'notRequestPrincipals',
  'ipBlocks',
  'notIpBlocks',
  'remoteIpBlocks',
  'notRemoteIpBlocks',
  'serviceAccounts',
  'notServiceAccounts',
];
const OPERATION_FIELDS = ['hosts', 'notHosts', 'ports', 'notPorts', 'methods', 'notMethods', 'paths', 'notPaths'];

export function convertAuthorizationPolicy(r: IstioResource, spec: unknown): void {
  const { out, ref } = r;
  const s = fieldsOf(out, spec, ref, ['selector', 'targetRef', 'targetRefs', 'action', 'provider', 'rules']);
  for (const key of ['targetRef', 'targetRefs', 'provider'] as const)
    if (s[key] !== undefined) out.reportUnsupported(child(ref, key), `${key} is not supported`);
  const action = s.action ?? 'ALLOW';
  if (!['ALLOW', 'DENY', 'AUDIT'].includes(String(action))) {
    out.reportUnsupported(child(ref, 'action'), `action ${String(action)} is not supported (ALLOW, DENY, AUDIT are)`);
    return;
  }
  const service = selectedService(out, s.selector, child(ref, 'selector'));
  if (service === undefined) return;
  const policy: Record<string, unknown> = { name: objectName(r), ...(service ? { service } : {}), action };
  const rules = listOf(out, s.rules, child(ref, 'rules')).map((rule, i) => {
    const at = child(ref, 'rules', i);
    const v = fieldsOf(out, rule, at, ['from', 'to', 'when']);
    const result: Record<string, unknown> = {};
    const from = listOf(out, v.from, child(at, 'from')).map((f, j) => {
      const fr = child(at, 'from', j);
      const source = fieldsOf(out, fieldsOf(out, f, fr, ['source']).source, child(fr, 'source'), [
        ...SOURCE_FIELDS,
        ...SOURCE_UNSUPPORTED,
      ]);
      for (const key of SOURCE_UNSUPPORTED)
        if (source[key] !== undefined)
          out.reportUnsupported(child(fr, 'source', key), `source.${key} is not supported`);
      return pick(source, SOURCE_FIELDS);
    });
    if (from.length > 0) result.from = from;
    const to = listOf(out, v.to, child(at, 'to')).map((t, j) => {
      const tr = child(at, 'to', j);
      return pick(
        fieldsOf(out, fieldsOf(out, t, tr, ['operation']).operation, child(tr, 'operation'), OPERATION_FIELDS),
        OPERATION_FIELDS,
      );
    });
    if (to.length > 0) result.to = to;
    const when = listOf(out, v.when, child(at, 'when')).map((w, j) =>
      pick(fieldsOf(out, w, child(at, 'when', j), ['key', 'values', 'notValues']), ['key', 'values', 'notValues']),
    );
    if (when.length > 0) result.when = when;
    return result;
  });
  if (s.rules !== undefined) policy.rules = rules;
  const path = out.add('authorizationPolicies', policy, ref);
  if (s.rules !== undefined)
    for (let i = 0; i < rules.length; i++) out.at([...path, 'rules', i], child(ref, 'rules', i));
}

function pick(source: Record<string, unknown>, keys: readonly string[]): Record<string, unknown> {
  const result: Record<string, unknown> = {};
  for (const key of keys) if (source[key] !== undefined) result[key] = source[key];
  return result;
}

export function convertRequestAuthentication(r: IstioResource, _spec: unknown): void {
  r.out.reportUnsupported(
    { doc: r.ref.doc, path: ['kind'] },
    'RequestAuthentication is not supported: it accepts requests without a token, and meshgate’s jwt plugin requires one',
    'configure consumers with jwksUrl credentials and the jwt plugin on the routes that need a token',
  );
}
