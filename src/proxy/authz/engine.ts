/**
 * The authorization policy engine (docs/authorization.md): policies compiled once per snapshot into
 * frozen matchers, grouped per route by the services the route sends to, and evaluated by one filter
 * in the `authorize` phase. A route none of whose policies apply gets no filter: it pays nothing.
 *
 * Evaluation, as Istio's: any enforced DENY that matches refuses; else, for each service of the route
 * that has enforced ALLOW policies (mesh-wide ones count for every service), one of them must match;
 * else the request passes. Dry-run policies never change that outcome: each is evaluated as if it
 * were enforced, and what it would have done is recorded (`dry-run-deny`, `dry-run-allow`). AUDIT
 * policies only record that they matched.
 */
import type { BlockList } from 'node:net';
import type {
  AuthorizationPolicyConfig,
  AuthzAction,
  AuthzConditionConfig,
  AuthzDecision,
  AuthzOperationConfig,
  AuthzResult,
  AuthzSourceConfig,
} from '../../api/authorization.ts';
import {
  addressIn,
  compileAddresses,
  compileStringMatch,
  matchString,
  normalizePrincipal,
  parseWhenKey,
  type StringMatch,
  type WhenKey,
  workloadOf,
} from '../../core/authz-match.ts';
import type { StreamContext } from '../context.ts';

/** What one policy did for one request; the label values of `*_authz_decisions_total`. */
export type { AuthzDecision, AuthzResult };
export const AUTHZ_RESULTS: readonly AuthzResult[] = ['allow', 'deny', 'dry-run-allow', 'dry-run-deny', 'audit'];

/** Frozen and made once per policy and result: a request records references, never new objects. */

interface CompiledSource {
  readonly principals: StringMatch | null;
  readonly notPrincipals: StringMatch | null;
  readonly services: StringMatch | null;
  readonly notServices: StringMatch | null;
  readonly namespaces: StringMatch | null;
  readonly notNamespaces: StringMatch | null;
  readonly requestPrincipals: StringMatch | null;
  readonly notRequestPrincipals: StringMatch | null;
}

interface CompiledOperation {
  readonly methods: StringMatch | null;
  readonly notMethods: StringMatch | null;
  readonly paths: StringMatch | null;
  readonly notPaths: StringMatch | null;
  readonly hosts: StringMatch | null;
  readonly notHosts: StringMatch | null;
  readonly ports: StringMatch | null;
  readonly notPorts: StringMatch | null;
}

/** A `when` condition: string keys use StringMatch, IP keys a BlockList. */
interface CompiledCondition {
  readonly key: WhenKey;
  readonly values: StringMatch | BlockList | null;
  readonly notValues: StringMatch | BlockList | null;
}

interface CompiledRule {
  /** Empty: any caller. */
  readonly from: readonly CompiledSource[];
  readonly to: readonly CompiledOperation[];
  readonly when: readonly CompiledCondition[];
}

export interface CompiledPolicy {
  readonly name: string;
  /** Absent: mesh-wide. */
  readonly service: string | undefined;
  readonly action: AuthzAction;
  readonly dryRun: boolean;
  /** Empty: the policy matches nothing. */
  readonly rules: readonly CompiledRule[];
  readonly decisions: Readonly<Record<AuthzResult, AuthzDecision>>;
}

/** The policies that apply to one route, and how its ALLOW policies group by service. */
export interface RouteAuthz {
  readonly policies: readonly CompiledPolicy[];
  /** Per service with enforced ALLOW policies: their indices in `policies`; one must match. */
  readonly allowGroups: readonly (readonly number[])[];
  /** Per service with dry-run ALLOW policies: every ALLOW policy's index (enforced and dry-run). */
  readonly shadowGroups: readonly (readonly number[])[];
}

const optional = (values: readonly string[] | undefined, normalize?: (s: string) => string) =>
  values === undefined ? null : compileStringMatch(values, normalize);
const lower = (s: string) => s.toLowerCase();
const ports = (values: readonly (string | number)[] | undefined) =>
  values === undefined ? null : compileStringMatch(values.map((v) => String(Number(v))));

function compileSource(s: AuthzSourceConfig): CompiledSource {
  return Object.freeze({
    principals: optional(s.principals?.map(normalizePrincipal)),
    notPrincipals: optional(s.notPrincipals?.map(normalizePrincipal)),
    services: optional(s.services),
    notServices: optional(s.notServices),
    namespaces: optional(s.namespaces),
    notNamespaces: optional(s.notNamespaces),
    requestPrincipals: optional(s.requestPrincipals),
    notRequestPrincipals: optional(s.notRequestPrincipals),
  });
}

function compileOperation(o: AuthzOperationConfig): CompiledOperation {
  return Object.freeze({
    methods: optional(o.methods),
    notMethods: optional(o.notMethods),
    paths: optional(o.paths),
    notPaths: optional(o.notPaths),
    hosts: optional(o.hosts, lower),
    notHosts: optional(o.notHosts, lower),
    ports: ports(o.ports),
    notPorts: ports(o.notPorts),
  });
}

function compileCondition(c: AuthzConditionConfig): CompiledCondition {
  const key = parseWhenKey(c.key);
  // The validator has refused a bad key; a config reaching here without it is a programming error.
  if ('problem' in key) throw new Error(`authorization policy: ${key.problem}`);
  const compile = (values: readonly string[] | undefined) => {
    if (values === undefined) return null;
    if (key.kind === 'source.ip' || key.kind === 'remote.ip') return compileAddresses(values).list;
    if (key.kind === 'source.principal') return compileStringMatch(values.map(normalizePrincipal));
    if (key.kind === 'destination.port') return compileStringMatch(values.map((v) => String(Number(v))));
    return compileStringMatch(values);
  };
  return Object.freeze({ key, values: compile(c.values), notValues: compile(c.notValues) });
}

export function compilePolicy(p: AuthorizationPolicyConfig): CompiledPolicy {
  const action = p.action ?? 'ALLOW';
  const decision = (result: AuthzResult) => Object.freeze({ policy: p.name, action, result });
  return Object.freeze({
    name: p.name,
    service: p.service,
    action,
    dryRun: p.dryRun === true,
    rules: Object.freeze(
      (p.rules ?? []).map((r) =>
        Object.freeze({
          from: Object.freeze((r.from ?? []).map(compileSource)),
          to: Object.freeze((r.to ?? []).map(compileOperation)),
          when: Object.freeze((r.when ?? []).map(compileCondition)),
        }),
      ),
    ),
    decisions: Object.freeze({
      allow: decision('allow'),
      deny: decision('deny'),
      'dry-run-allow': decision('dry-run-allow'),
      'dry-run-deny': decision('dry-run-deny'),
      audit: decision('audit'),
    }),
  });
}

/**
 * The policies of a route sending to `services` (none for a local answer): mesh-wide ones and each
 * service's, in config order; null when none apply.
 */
export function routeAuthz(policies: readonly CompiledPolicy[], services: readonly string[]): RouteAuthz | null {
  const names = new Set(services);
  const applying = policies.filter((p) => p.service === undefined || names.has(p.service));
  if (applying.length === 0) return null;
  const allowGroups: number[][] = [];
  const shadowGroups: number[][] = [];
  // A route with no service still answers for the mesh-wide policies.
  const groups = names.size === 0 ? [undefined] : [...names];
  for (const service of groups) {
    const allows: number[] = [];
    applying.forEach((p, i) => {
      if (p.action === 'ALLOW' && (p.service === undefined || p.service === service)) allows.push(i);
    });
    const enforced = allows.filter((i) => !applying[i]!.dryRun);
    if (enforced.length > 0) allowGroups.push(enforced);
    if (enforced.length < allows.length) shadowGroups.push(allows);
  }
  return Object.freeze({
    policies: Object.freeze(applying),
    allowGroups: Object.freeze(allowGroups.map((g) => Object.freeze(g))),
    shadowGroups: Object.freeze(shadowGroups.map((g) => Object.freeze(g))),
  });
}

/** What a request is matched on, read from the context at most once each (a certificate, a parse). */
class Attributes {
  readonly ctx: StreamContext;
  private principalRead = false;
  private principalValue: string | undefined;
  private workloadRead = false;
  private workloadValue: { namespace: string; service: string } | undefined;

  constructor(ctx: StreamContext) {
    this.ctx = ctx;
  }

  get principal(): string | undefined {
    if (!this.principalRead) {
      this.principalValue = this.ctx.peerPrincipal ?? undefined;
      this.principalRead = true;
    }
    return this.principalValue;
  }

  get workload(): { namespace: string; service: string } | undefined {
    if (!this.workloadRead) {
      const p = this.principal;
      this.workloadValue = p === undefined ? undefined : workloadOf(p);
      this.workloadRead = true;
    }
    return this.workloadValue;
  }

  /** `iss/sub` of the verified token (Istio's request principal); undefined without both claims. */
  get requestPrincipal(): string | undefined {
    const claims = this.ctx.claims;
    if (claims == null) return undefined;
    const { iss, sub } = claims;
    return typeof iss === 'string' && typeof sub === 'string' ? `${iss}/${sub}` : undefined;
  }

  get port(): string | undefined {
    const port = this.ctx.req.socket?.localPort;
    return port === undefined ? undefined : String(port);
  }

  /** The values of a `when` key: undefined when absent, an array for list claims. */
  valuesOf(key: WhenKey): string | readonly string[] | undefined {
    switch (key.kind) {
      case 'header':
        return this.ctx.header(key.name);
      case 'claim':
        return claimValues(this.ctx.claims ?? null, key.path);
      case 'source.principal':
        return this.principal;
      case 'source.namespace':
        return this.workload?.namespace;
      case 'source.service':
        return this.workload?.service;
      case 'source.ip':
        return this.ctx.req.socket?.remoteAddress;
      case 'remote.ip':
        return this.ctx.clientAddress;
      case 'destination.port':
        return this.port;
      case 'request.auth.principal':
        return this.requestPrincipal;
      case 'request.auth.audiences':
        return claimValues(this.ctx.claims ?? null, ['aud']);
      case 'request.auth.presenter':
        return claimValues(this.ctx.claims ?? null, ['azp']);
    }
  }
}

/** A claim's value as strings (numbers and booleans as JSON writes them); a list claim as its elements. */
function claimValues(
  claims: Readonly<Record<string, unknown>> | null,
  path: readonly string[],
): string | readonly string[] | undefined {
  let value: unknown = claims;
  for (const part of path) {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (Array.isArray(value))
    return value.flatMap((v) =>
      typeof v === 'string' ? [v] : typeof v === 'number' || typeof v === 'boolean' ? [String(v)] : [],
    );
  return undefined;
}

/** `null`: the field is not set (matches); otherwise whether the present value matches. */
const field = (m: StringMatch | null, value: string | undefined) => m === null || matchString(m, value);
/** A negated field: holds when the value is absent or matches none of the patterns. */
const notField = (m: StringMatch | null, value: string | undefined) => m === null || !matchString(m, value);

function sourceMatches(s: CompiledSource, a: Attributes): boolean {
  if (s.principals !== null || s.notPrincipals !== null) {
    const p = a.principal;
    // As in Istio (Envoy's not_id): a caller without an identity is none of the notPrincipals.
    if (!field(s.principals, p) || !notField(s.notPrincipals, p)) return false;
  }
  if (s.services !== null || s.notServices !== null) {
    const w = a.workload;
    if (!field(s.services, w?.service) || !notField(s.notServices, w?.service)) return false;
  }
  if (s.namespaces !== null || s.notNamespaces !== null) {
    const w = a.workload;
    if (!field(s.namespaces, w?.namespace) || !notField(s.notNamespaces, w?.namespace)) return false;
  }
  if (s.requestPrincipals !== null || s.notRequestPrincipals !== null) {
    const p = a.requestPrincipal;
    if (!field(s.requestPrincipals, p) || !notField(s.notRequestPrincipals, p)) return false;
  }
  return true;
}

function operationMatches(o: CompiledOperation, a: Attributes): boolean {
  const ctx = a.ctx;
  if (!field(o.methods, ctx.method) || !notField(o.notMethods, ctx.method)) return false;
  if (!field(o.paths, ctx.path) || !notField(o.notPaths, ctx.path)) return false;
  if (!field(o.hosts, ctx.host) || !notField(o.notHosts, ctx.host)) return false;
  if (o.ports !== null || o.notPorts !== null) {
    const port = a.port;
    if (!field(o.ports, port) || !notField(o.notPorts, port)) return false;
  }
  return true;
}

function anyIn(m: StringMatch | BlockList, values: string | readonly string[] | undefined): boolean {
  if (values === undefined) return false;
  const one = (v: string) => ('any' in m ? matchString(m, v) : addressIn(m, v));
  if (typeof values === 'string') return one(values);
  for (const v of values) if (one(v)) return true;
  return false;
}

function conditionHolds(c: CompiledCondition, a: Attributes): boolean {
  const values = a.valuesOf(c.key);
  if (c.values !== null && !anyIn(c.values, values)) return false;
  if (c.notValues !== null && anyIn(c.notValues, values)) return false;
  return true;
}

function ruleMatches(r: CompiledRule, a: Attributes): boolean {
  if (r.from.length > 0 && !r.from.some((s) => sourceMatches(s, a))) return false;
  if (r.to.length > 0 && !r.to.some((o) => operationMatches(o, a))) return false;
  for (const c of r.when) if (!conditionHolds(c, a)) return false;
  return true;
}

function policyMatches(p: CompiledPolicy, a: Attributes): boolean {
  for (const r of p.rules) if (ruleMatches(r, a)) return true;
  return false;
}

export interface AuthzOutcome {
  /** True when an enforced policy refuses the request. */
  readonly denied: boolean;
  /** What each policy that had a say did, in policy order; empty when none did. */
  readonly decisions: readonly AuthzDecision[];
}

/** Evaluates every policy of the route for one request. */
export function evaluate(authz: RouteAuthz, ctx: StreamContext): AuthzOutcome {
  const { policies } = authz;
  const a = new Attributes(ctx);
  const matched = policies.map((p) => policyMatches(p, a));
  // Indexed by policy: what it records (each policy at most once).
  const recorded: (AuthzDecision | undefined)[] = new Array(policies.length);
  let denied = false;
  for (let i = 0; i < policies.length; i++) {
    const p = policies[i]!;
    if (p.action === 'DENY' && !p.dryRun && matched[i]) {
      recorded[i] = p.decisions.deny;
      denied = true;
      break;
    }
  }
  if (!denied)
    for (const group of authz.allowGroups) {
      const hit = group.find((i) => matched[i]);
      if (hit !== undefined) recorded[hit] ??= policies[hit]!.decisions.allow;
      else {
        denied = true;
        // No ALLOW policy of this service matched: each of them refused the request.
        for (const i of group) recorded[i] = policies[i]!.decisions.deny;
      }
    }
  for (let i = 0; i < policies.length; i++) {
    const p = policies[i]!;
    if (p.action === 'AUDIT' && matched[i]) recorded[i] = p.decisions.audit;
    else if (p.dryRun && p.action === 'DENY' && matched[i]) recorded[i] = p.decisions['dry-run-deny'];
    else if (p.dryRun && p.action === 'ALLOW' && matched[i]) recorded[i] = p.decisions['dry-run-allow'];
  }
  // A dry-run ALLOW would refuse what no ALLOW policy of the service (enforced or dry-run) matches.
  for (const group of authz.shadowGroups) {
    if (group.some((i) => matched[i])) continue;
    for (const i of group) if (policies[i]!.dryRun) recorded[i] = policies[i]!.decisions['dry-run-deny'];
  }
  const decisions: AuthzDecision[] = [];
  for (const d of recorded) if (d !== undefined) decisions.push(d);
  return { denied, decisions };
}
