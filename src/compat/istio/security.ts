/**
 * security.istio.io: PeerAuthentication → mutual TLS modes; AuthorizationPolicy → meshgate's
 * authorization policies (the same semantics, docs/authorization.md); RequestAuthentication → the jwt
 * plugin with the rules' issuers, optional tokens and the token removed (see README.md).
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

const SOURCE_FIELDS = [
  'principals',
  'notPrincipals',
  'namespaces',
  'notNamespaces',
  'requestPrincipals',
  'notRequestPrincipals',
];
const SOURCE_UNSUPPORTED = [
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

/** One jwtRule as the jwt plugin's terms: the issuer, and the settings one plugin entry holds once. */
interface JwtRule {
  ref: SourceRef;
  issuer: Record<string, unknown>;
  /** Entry-wide settings with the source field each came from (compared across the rules of a workload). */
  settings: [key: string, value: unknown, ref: SourceRef][];
}

/** The RequestAuthentications of one file: mesh-wide rules and rules per selected service. */
interface RequestAuthState {
  mesh: JwtRule[];
  services: Map<string, JwtRule[]>;
  /** Where each workload's rules start: the plugin entry's position in reports. */
  refs: Map<string, SourceRef>;
  /** The RequestAuthentications that select each service, as origins. */
  origins: Map<string, string[]>;
}
const requestAuth = new WeakMap<Conversion, RequestAuthState>();

/**
 * Envoy's jwt_authn clock skew (`clock_skew_seconds`, 60), which Istio leaves at its default; a token
 * without `exp` never expires there.
 */
const ISTIO_JWT_CLOCK_SKEW = '60s';
/** Istio's JWKS fetch timeout when a rule gives none, which is also the jwt plugin's. */
const ISTIO_JWKS_TIMEOUT = '5s';
const HEADER_NAME = /^[A-Za-z0-9-]+$/;
const JWT_RULE_FIELDS = [
  'issuer',
  'audiences',
  'jwksUri',
  'jwks',
  'fromHeaders',
  'fromParams',
  'fromCookies',
  'forwardOriginalToken',
  'outputPayloadToHeader',
  'outputClaimToHeaders',
  'timeout',
  'spaceDelimitedClaims',
];

/** `targetRef`/`targetRefs` of kind Service → the services they name; other kinds are unsupported. */
function targetServices(out: Conversion, value: unknown, ref: SourceRef): string[] | undefined {
  const named = fieldsOf(out, value, ref, ['kind', 'group', 'name', 'namespace']);
  if (named.kind === 'Service' && (named.group ?? '') === '' && typeof named.name === 'string') return [named.name];
  out.reportUnsupported(
    ref,
    `a targetRef of kind ${String(named.kind)} is not supported (kind Service is: its service)`,
    'a RequestAuthentication without selector applies to every route here',
  );
  return undefined;
}

function convertJwtRule(out: Conversion, value: unknown, ref: SourceRef): JwtRule | undefined {
  const v = fieldsOf(out, value, ref, JWT_RULE_FIELDS);
  if (typeof v.issuer !== 'string' || v.issuer === '') {
    out.reportInvalid(child(ref, 'issuer'), 'a jwtRule needs an issuer');
    return undefined;
  }
  const issuer: Record<string, unknown> = { issuer: v.issuer };
  if (typeof v.jwksUri === 'string') issuer.jwksUrl = v.jwksUri;
  else if (typeof v.jwks === 'string') issuer.jwks = v.jwks;
  else {
    out.reportUnsupported(
      ref,
      `issuer ${v.issuer}: finding its keys by OpenID discovery (no jwksUri or jwks) is not supported`,
      'give the JWKS address as jwksUri',
    );
    return undefined;
  }
  if (typeof v.jwksUri === 'string' && v.jwks !== undefined)
    out.reportUnsupported(child(ref, 'jwks'), 'jwks beside jwksUri: the keys are taken from jwksUri');
  const audiences: string[] = [];
  for (const [i, a] of listOf(out, v.audiences, child(ref, 'audiences')).entries())
    if (typeof a === 'string' && a !== '') audiences.push(a);
    else out.reportInvalid(child(ref, 'audiences', i), `expected an audience, got ${JSON.stringify(a)}`);
  if (audiences.length > 0) issuer.audiences = audiences;
  if (v.timeout !== undefined && v.timeout !== ISTIO_JWKS_TIMEOUT)
    out.reportUnsupported(
      child(ref, 'timeout'),
      `a JWKS fetch timeout other than ${ISTIO_JWKS_TIMEOUT} is not supported (meshgate's is ${ISTIO_JWKS_TIMEOUT})`,
    );
  if (v.spaceDelimitedClaims !== undefined)
    out.reportUnsupported(child(ref, 'spaceDelimitedClaims'), 'spaceDelimitedClaims is not supported');

  const settings: JwtRule['settings'] = [];
  // Istio's token places: its headers, then its query parameters, then its cookies; none given:
  // `Authorization: Bearer …` and `access_token`.
  const tokenFrom: Record<string, string>[] = [];
  let placesRef = ref;
  for (const [i, h] of listOf(out, v.fromHeaders, child(ref, 'fromHeaders')).entries()) {
    const at = child(ref, 'fromHeaders', i);
    placesRef = child(ref, 'fromHeaders');
    const header = fieldsOf(out, h, at, ['name', 'prefix']);
    if (typeof header.name !== 'string' || !HEADER_NAME.test(header.name)) {
      out.reportInvalid(child(at, 'name'), `expected a header name, got ${JSON.stringify(header.name)}`);
      continue;
    }
    const name = header.name.toLowerCase();
    const prefix = typeof header.prefix === 'string' && header.prefix !== '' ? header.prefix : undefined;
    if (name === 'authorization' && prefix === undefined) {
      out.reportUnsupported(
        at,
        'the whole Authorization header as the token (no prefix) is not supported',
        'give prefix: "Bearer "',
      );
      continue;
    }
    tokenFrom.push(
      name === 'authorization' && prefix?.toLowerCase() === 'bearer '
        ? { header: name }
        : { header: name, ...(prefix === undefined ? {} : { prefix }) },
    );
  }
  for (const [i, q] of listOf(out, v.fromParams, child(ref, 'fromParams')).entries()) {
    placesRef = child(ref, 'fromParams');
    if (typeof q === 'string' && q !== '') tokenFrom.push({ query: q });
    else out.reportInvalid(child(ref, 'fromParams', i), `expected a parameter name, got ${JSON.stringify(q)}`);
  }
  for (const [i, c] of listOf(out, v.fromCookies, child(ref, 'fromCookies')).entries()) {
    placesRef = child(ref, 'fromCookies');
    if (typeof c === 'string' && c !== '') tokenFrom.push({ cookie: c });
    else out.reportInvalid(child(ref, 'fromCookies', i), `expected a cookie name, got ${JSON.stringify(c)}`);
  }
  if (v.fromHeaders === undefined && v.fromParams === undefined && v.fromCookies === undefined)
    tokenFrom.push({ header: 'authorization' }, { query: 'access_token' });
  settings.push(['tokenFrom', tokenFrom, placesRef]);

  if (v.forwardOriginalToken !== undefined && typeof v.forwardOriginalToken !== 'boolean')
    out.reportInvalid(child(ref, 'forwardOriginalToken'), 'expected true or false');
  settings.push([
    'forwardToken',
    v.forwardOriginalToken === true,
    v.forwardOriginalToken === undefined ? ref : child(ref, 'forwardOriginalToken'),
  ]);

  if (v.outputPayloadToHeader !== undefined) {
    if (typeof v.outputPayloadToHeader === 'string' && HEADER_NAME.test(v.outputPayloadToHeader))
      settings.push(['payloadToHeader', v.outputPayloadToHeader.toLowerCase(), child(ref, 'outputPayloadToHeader')]);
    else out.reportInvalid(child(ref, 'outputPayloadToHeader'), 'expected a header name');
  } else settings.push(['payloadToHeader', undefined, ref]);

  const claims: Record<string, string> = {};
  for (const [i, c] of listOf(out, v.outputClaimToHeaders, child(ref, 'outputClaimToHeaders')).entries()) {
    const at = child(ref, 'outputClaimToHeaders', i);
    const m = fieldsOf(out, c, at, ['header', 'claim']);
    if (typeof m.header !== 'string' || !HEADER_NAME.test(m.header)) {
      out.reportInvalid(child(at, 'header'), `expected a header name, got ${JSON.stringify(m.header)}`);
      continue;
    }
    if (typeof m.claim !== 'string' || m.claim === '') {
      out.reportInvalid(child(at, 'claim'), 'expected a claim name');
      continue;
    }
    if (m.claim.includes('.')) {
      out.reportUnsupported(child(at, 'claim'), `nested claim "${m.claim}" is not supported (top-level claims are)`);
      continue;
    }
    if (claims[m.claim] !== undefined) {
      out.reportUnsupported(at, `a second header for claim "${m.claim}" is not supported (one header per claim)`);
      continue;
    }
    claims[m.claim] = m.header.toLowerCase();
  }
  settings.push([
    'claimsToHeaders',
    Object.keys(claims).length > 0 ? claims : undefined,
    v.outputClaimToHeaders === undefined ? ref : child(ref, 'outputClaimToHeaders'),
  ]);
  return { ref, issuer, settings };
}

/**
 * RequestAuthentication → the jwt plugin in Istio's terms: only the rules' issuers are trusted, with
 * their keys; a request without a token passes (requiring one is an AuthorizationPolicy's
 * `requestPrincipals`); a present token must be valid (else 401); it is removed before forwarding
 * unless `forwardOriginalToken`. Every RequestAuthentication that applies to a workload adds its
 * rules to one plugin entry (see finishRequestAuthentication).
 */
export function convertRequestAuthentication(r: IstioResource, spec: unknown): void {
  const { out, ref } = r;
  const s = fieldsOf(out, spec, ref, ['selector', 'targetRef', 'targetRefs', 'jwtRules']);
  let services: string[] | null = null;
  if (s.selector !== undefined) {
    const service = selectedService(out, s.selector, child(ref, 'selector'));
    if (service === undefined) return;
    if (service !== null) services = [service];
  }
  if (s.targetRef !== undefined) {
    const named = targetServices(out, s.targetRef, child(ref, 'targetRef'));
    if (named === undefined) return;
    services = [...(services ?? []), ...named];
  }
  for (const [i, t] of listOf(out, s.targetRefs, child(ref, 'targetRefs')).entries()) {
    const named = targetServices(out, t, child(ref, 'targetRefs', i));
    if (named === undefined) return;
    services = [...(services ?? []), ...named];
  }
  const rules: JwtRule[] = [];
  for (const [i, rule] of listOf(out, s.jwtRules, child(ref, 'jwtRules')).entries()) {
    const converted = convertJwtRule(out, rule, child(ref, 'jwtRules', i));
    if (converted !== undefined) rules.push(converted);
  }
  if (rules.length === 0) return;
  let state = requestAuth.get(out);
  if (state === undefined)
    requestAuth.set(out, (state = { mesh: [], services: new Map(), refs: new Map(), origins: new Map() }));
  const at = child(ref, 'jwtRules');
  if (services === null) {
    state.mesh.push(...rules);
    if (!state.refs.has('')) state.refs.set('', at);
    return;
  }
  for (const service of new Set(services)) {
    const list = state.services.get(service) ?? [];
    list.push(...rules);
    state.services.set(service, list);
    if (!state.refs.has(service)) state.refs.set(service, at);
    state.origins.set(service, [...(state.origins.get(service) ?? []), r.origin()]);
  }
}

/** One jwt plugin entry for the rules that apply to one workload; settings must agree across them. */
function jwtEntry(
  out: Conversion,
  rules: readonly JwtRule[],
  report: (ref: SourceRef, message: string, hint?: string) => void,
): Record<string, unknown> {
  const config: Record<string, unknown> = { optional: true, requireExpiration: false, clockSkew: ISTIO_JWT_CLOCK_SKEW };
  const issuers: Record<string, unknown>[] = [];
  const seen = new Map<string, JwtRule>();
  const first = rules[0]!;
  for (const rule of rules) {
    const name = rule.issuer.issuer as string;
    const earlier = seen.get(name);
    if (earlier === undefined) {
      seen.set(name, rule);
      issuers.push(rule.issuer);
    } else if (JSON.stringify(earlier.issuer) !== JSON.stringify(rule.issuer)) {
      // The same issuer with the same keys from two resources (mesh-wide and the workload's) is one.
      report(
        child(rule.ref, 'issuer'),
        `a second rule for issuer ${name} with other keys or audiences on the same workload is not supported (first at ${out.describe(earlier.ref)})`,
      );
      continue;
    }
    if (rule === first) continue;
    for (let i = 0; i < rule.settings.length; i++) {
      const [key, value, at] = rule.settings[i]!;
      const [, firstValue, firstAt] = first.settings[i]!;
      if (JSON.stringify(value) !== JSON.stringify(firstValue))
        report(
          at,
          `${key}: this rule differs from the rule at ${out.describe(firstAt)}, and meshgate's jwt plugin has one per workload`,
          'give every rule that applies to a workload the same token places, forwarding and output headers',
        );
    }
  }
  for (const [key, value] of first.settings) if (value !== undefined) config[key] = value;
  if (config.forwardToken === true) delete config.forwardToken;
  config.issuers = issuers;
  return { name: 'jwt', config };
}

/**
 * After every resource of a file: mesh-wide rules become a global jwt plugin; a selected service's
 * rules, with the mesh-wide ones (Istio applies both), become that service's jwt plugin, which
 * replaces the global entry on its routes.
 */
export function finishRequestAuthentication(out: Conversion): void {
  const state = requestAuth.get(out);
  if (state === undefined) return;
  // The mesh-wide rules are checked again with each service's: one report per place and problem.
  const reported = new Set<string>();
  const report = (ref: SourceRef, message: string, hint?: string) => {
    const key = `${out.describe(ref)}\n${message}`;
    if (reported.has(key)) return;
    reported.add(key);
    out.reportUnsupported(ref, message, hint);
  };
  if (state.mesh.length > 0) out.add('plugins', jwtEntry(out, state.mesh, report), state.refs.get('')!);
  for (const [service, rules] of state.services) {
    const overlay: Record<string, unknown> = {
      name: service,
      plugins: [jwtEntry(out, [...state.mesh, ...rules], report)],
      origin: state.origins.get(service)!.join(' + '),
    };
    overlays.add(overlay);
    out.add('services', overlay, state.refs.get(service)!);
  }
}
