/**
 * `meshgate analyze`: mistakes and smells in a config or a running mesh, each with a stable code, a
 * location (file:line:col) and a fix. Errors make requests fail; warnings are almost certainly not
 * what was meant; notes are worth a look.
 *
 * It reads the same files the validator reads (a directory merges like the control plane's), runs the
 * validator, and then checks what the validator cannot judge: precedence (docs/routing.md), labels
 * against the instances that exist, and policies that defeat themselves. Smell checks read the raw
 * data defensively, so a config with errors still gets every finding in one pass.
 */
import type { Instance, ProxyStatusView } from '../../api/mesh.ts';
import type { Locator, Path } from '../../config/document.ts';
import { type ConfigIssue, closest, formatPath } from '../../config/issues.ts';
import { type ConfigText, parseConfigTexts, readConfigTexts } from '../../config/load.ts';
import { DEFAULT_REQUEST_TIMEOUT_MS } from '../../core/defaults.ts';
import { parseDuration } from '../../core/duration.ts';
import type { PluginCatalog } from '../../core/plugin.ts';
import { checkMeshRules } from '../model/model.ts';
import { authorizationSmells } from './authorization.ts';

export type Severity = 'error' | 'warning' | 'info';
export const SEVERITIES: readonly Severity[] = ['error', 'warning', 'info'];

/** Every code analyze reports. A code is API: add codes, never reuse or renumber one. */
export const ANALYZER_CODES = {
  MGA000: { severity: 'error', title: 'the config is not valid' },
  MGA001: { severity: 'error', title: 'a route sends traffic to an unknown service' },
  MGA002: { severity: 'error', title: 'a route names a subset its service does not define' },
  MGA003: { severity: 'error', title: 'a subset matches no instance' },
  MGA004: { severity: 'error', title: 'the weights of a route do not sum to 100' },
  MGA005: { severity: 'warning', title: 'a route is never matched: an earlier route takes all its requests' },
  MGA006: { severity: 'warning', title: 'a route is partly shadowed by a route declared before it' },
  MGA007: { severity: 'warning', title: 'retries without a per-try timeout' },
  MGA008: { severity: 'warning', title: 'the retries cannot fit in the request timeout' },
  MGA009: { severity: 'warning', title: 'outlier detection on a service with one instance' },
  MGA010: { severity: 'error', title: 'a route sends traffic to a service with no instances' },
  MGA011: { severity: 'warning', title: 'a route matches a host that looks like a misspelt service' },
  MGA012: { severity: 'warning', title: 'a service lists the same endpoint twice' },
  MGA013: { severity: 'warning', title: 'an instance receives no traffic: it matches none of the subsets routes use' },
  MGA014: { severity: 'error', title: 'a route names a listener that does not exist' },
  MGA015: { severity: 'warning', title: 'an authorization policy names a caller that matches no service' },
  MGA016: { severity: 'warning', title: 'an ALLOW authorization policy allows every request' },
  MGA017: { severity: 'warning', title: 'a DENY authorization policy matches nothing' },
  MGA018: { severity: 'warning', title: 'the mesh-wide mutual TLS mode is PERMISSIVE' },
  MGA019: { severity: 'warning', title: 'a proxy’s workload certificate is close to expiry' },
} as const satisfies Record<string, { severity: Severity; title: string }>;
export type AnalyzerCode = keyof typeof ANALYZER_CODES;

export interface Finding {
  code: AnalyzerCode;
  severity: Severity;
  message: string;
  /** What to change. */
  fix: string;
  file: string;
  /** 1-based; 0 when the finding has no one place. */
  line: number;
  column: number;
  path: string;
}

export interface AnalyzeInput {
  texts: ConfigText[];
  /**
   * The registry's instances, when analyzing a running mesh. Absent (a file alone): checks that need
   * instances judge only services with static endpoints.
   */
  instances?: readonly Instance[];
  /**
   * The proxies a running control plane knows, with the certificate it last issued to each, when
   * analyzing a running mesh; `now` (ms since the epoch) judges their expiry.
   */
  proxies?: readonly ProxyStatusView[];
  now?: number;
  env?: Record<string, string | undefined> | null;
  /** The plugins the model may name (without it, any plugin entry is reported as unknown). */
  catalog?: PluginCatalog;
  /**
   * The texts are a mesh model (a control plane's, or a model directory), so the mesh's naming rules
   * apply too; a gateway's own file may use names a mesh would refuse.
   */
  mesh?: boolean;
}

const VALIDATOR_CODES: Record<string, AnalyzerCode> = {
  'unknown-service': 'MGA001',
  'unknown-subset': 'MGA002',
  weights: 'MGA004',
  'unknown-listener': 'MGA014',
};

const VALIDATOR_FIXES: Partial<Record<AnalyzerCode, string>> = {
  MGA001: 'name a service under services (or register instances of it)',
  MGA002: 'define the subset under the service’s subsets, or name an existing one',
  MGA004: 'make the weights add up to 100',
  MGA014: 'name a listener under listeners, or drop the route’s listeners to serve it on all',
};

export function analyze(input: AnalyzeInput): Finding[] {
  const env = input.env === undefined ? process.env : input.env;
  const read = readConfigTexts(input.texts, env);
  const findings: Finding[] = [];
  const fromIssue = (issue: ConfigIssue): Finding => {
    const code = (issue.code && VALIDATOR_CODES[issue.code]) || 'MGA000';
    return {
      code,
      severity: ANALYZER_CODES[code].severity,
      message: issue.message,
      fix: issue.hint ?? VALIDATOR_FIXES[code] ?? 'see the message; `meshgate validate` checks the same',
      file: issue.file,
      line: issue.line,
      column: issue.column,
      path: issue.path,
    };
  };
  if (read.fatal || read.data === undefined) return sortFindings(read.issues.map(fromIssue));
  const validated = parseConfigTexts(input.texts, 'analyze', env, {
    catalog: input.catalog,
    ...(input.mesh ? { extraChecks: checkMeshRules } : {}),
  });
  if (!validated.ok) findings.push(...validated.issues.map(fromIssue));
  findings.push(...smells(read.data, read.locator, input.instances));
  findings.push(...meshSecurity(read.data, read.locator, input.proxies ?? [], input.now ?? Date.now()));
  return sortFindings(findings);
}

function sortFindings(findings: Finding[]): Finding[] {
  return findings.sort(
    (a, b) => a.file.localeCompare(b.file) || a.line - b.line || a.column - b.column || a.code.localeCompare(b.code),
  );
}

// ── reading raw data defensively ──

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const objects = (v: unknown): [Obj, number][] =>
  Array.isArray(v) ? v.flatMap((x, i) => (isObj(x) ? [[x, i] as [Obj, number]] : [])) : [];
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const labelsOf = (v: unknown): Record<string, string> =>
  isObj(v) ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, String(x)])) : {};

interface Member {
  /** Where it is written (a static endpoint), or the registry id. */
  name: string;
  labels: Record<string, string>;
}

interface Destination {
  route: string;
  service: string;
  subset: string | undefined;
  weight: number;
  path: Path;
}

function smells(data: Obj, at: Locator, instances: readonly Instance[] | undefined): Finding[] {
  const findings: Finding[] = [];
  const report = (code: AnalyzerCode, path: Path, message: string, fix: string, severity?: Severity) =>
    findings.push({
      code,
      severity: severity ?? ANALYZER_CODES[code].severity,
      message,
      fix,
      ...at.position(path),
      path: at.localPath ? at.localPath(formatPath(path)) : formatPath(path),
    });

  const services = new Map<string, { config: Obj; index: number }>();
  for (const [s, i] of objects(data.services)) {
    const name = str(s.name);
    if (name !== undefined && !services.has(name)) services.set(name, { config: s, index: i });
  }
  const registered = new Map<string, Instance[]>();
  for (const inst of instances ?? [])
    if (inst.health === 'healthy') registered.set(inst.service, [...(registered.get(inst.service) ?? []), inst]);
  const known = new Set([...services.keys(), ...registered.keys()]);

  /** Who can receive traffic for a service; undefined when that cannot be known (no registry). */
  const membersOf = (name: string): Member[] | undefined => {
    const entry = services.get(name);
    const members: Member[] = objects(entry?.config.endpoints).map(([e]) => ({
      name: str(e.url) ?? '?',
      labels: labelsOf(e.labels),
    }));
    for (const inst of registered.get(name) ?? []) members.push({ name: inst.id, labels: { ...inst.labels } });
    if (members.length === 0 && instances === undefined) return undefined;
    return members;
  };

  const destinations: Destination[] = [];
  const routes = objects(data.routes);
  for (const [r, i] of routes) {
    const name = str(r.name) ?? `routes[${i}]`;
    if (typeof r.service === 'string')
      destinations.push({
        route: name,
        service: r.service,
        subset: undefined,
        weight: 100,
        path: ['routes', i, 'service'],
      });
    const list = objects(r.destinations);
    for (const [d, j] of list) {
      const service = str(d.service);
      if (service === undefined) continue;
      const weight = typeof d.weight === 'number' ? d.weight : list.length === 1 ? 100 : 0;
      destinations.push({
        route: name,
        service,
        subset: str(d.subset),
        weight,
        path: ['routes', i, 'destinations', j],
      });
    }
  }

  // MGA003, MGA013: subsets against the instances that exist.
  for (const [name, { config, index }] of services) {
    const members = membersOf(name);
    if (members === undefined || !isObj(config.subsets)) continue;
    for (const [subset, selectorRaw] of Object.entries(config.subsets)) {
      const selector = labelsOf(selectorRaw);
      if (members.some((m) => matches(m.labels, selector))) continue;
      const routed = destinations.some((d) => d.service === name && d.subset === subset && d.weight > 0);
      const have = [...new Set(members.map((m) => describeLabels(m.labels)))].join('; ') || 'none';
      report(
        'MGA003',
        ['services', index, 'subsets', subset],
        `subset "${subset}" of "${name}" (${describeLabels(selector)}) matches none of its ${members.length} instance${members.length === 1 ? '' : 's'}` +
          (routed ? ', and a route sends traffic to it: those requests fail with 503' : ''),
        `label an instance ${describeLabels(selector)} or change the selector (instances have: ${have})`,
        routed ? 'error' : 'warning',
      );
    }
    const used = destinations.filter((d) => d.service === name);
    if (used.length > 0 && used.every((d) => d.subset !== undefined) && instances !== undefined) {
      const selectors = [...new Set(used.map((d) => d.subset!))].map((s) => labelsOf((config.subsets as Obj)[s]));
      for (const m of members.filter((m) => !selectors.some((sel) => matches(m.labels, sel))))
        report(
          'MGA013',
          ['services', index, 'name'],
          `instance ${m.name} of "${name}" (${describeLabels(m.labels)}) matches none of the subsets routes use (${[...new Set(used.map((d) => d.subset))].join(', ')})`,
          'label it like one of those subsets, or route some traffic to the whole service',
        );
    }
  }

  // MGA010: destinations with nobody to receive them.
  for (const d of destinations) {
    if (!known.has(d.service) || d.weight === 0) continue;
    const members = membersOf(d.service);
    if (members === undefined) {
      report(
        'MGA010',
        [...d.path],
        `"${d.service}" has no static endpoints: route "${d.route}" works only once instances register through the mesh`,
        'run instances with `meshgate sidecar`, or add endpoints',
        'info',
      );
    } else if (members.length === 0) {
      report(
        'MGA010',
        [...d.path],
        `"${d.service}" has no healthy instance: every request on route "${d.route}" gets 503`,
        'start an instance of the service (or fix its readiness check), or add endpoints',
      );
    }
  }

  // MGA007–MGA009, MGA012: policies that defeat themselves.
  for (const [name, { config, index }] of services) {
    const here: Path = ['services', index];
    const retries = config.retries;
    if (isObj(retries)) {
      const attempts = typeof retries.attempts === 'number' ? retries.attempts : 1;
      const perTry = str(retries.perTryTimeout);
      const requestMs =
        parseDuration(str((config.timeouts as Obj | undefined)?.request) ?? '') ?? DEFAULT_REQUEST_TIMEOUT_MS;
      if (attempts > 0 && perTry === undefined)
        report(
          'MGA007',
          [...here, 'retries'],
          `"${name}" retries ${attempts} time${attempts === 1 ? '' : 's'} without retries.perTryTimeout: one slow try can use the whole request timeout, leaving no time to retry`,
          `set retries.perTryTimeout, e.g. ${suggestPerTry(requestMs, attempts)}`,
        );
      const perTryMs = perTry === undefined ? undefined : parseDuration(perTry);
      if (perTryMs !== undefined && perTryMs > 0 && requestMs > 0 && perTryMs * (attempts + 1) > requestMs)
        report(
          'MGA008',
          [...here, 'retries', 'perTryTimeout'],
          `"${name}": ${attempts + 1} tries of ${perTry} need ${perTryMs * (attempts + 1)} ms, more than the request timeout of ${requestMs} ms`,
          `lower perTryTimeout to ${suggestPerTry(requestMs, attempts)} or fewer attempts, or raise timeouts.request`,
        );
    }
    if (isObj(config.outlierDetection)) {
      const members = membersOf(name);
      if (members !== undefined && members.length === 1)
        report(
          'MGA009',
          [...here, 'outlierDetection'],
          `"${name}" has outlier detection on but one instance: ejecting it leaves nothing to send to`,
          'run at least two instances, or remove outlierDetection',
        );
    }
    const seen = new Map<string, number>();
    for (const [e, j] of objects(config.endpoints)) {
      const url = str(e.url);
      if (url === undefined) continue;
      const first = seen.get(url);
      if (first !== undefined)
        report(
          'MGA012',
          [...here, 'endpoints', j, 'url'],
          `"${name}" lists ${url} twice (also endpoints[${first}]): it gets twice the traffic`,
          'remove the duplicate, or use weight to give an endpoint more traffic',
        );
      else seen.set(url, j);
    }
  }

  // MGA011: mesh hosts that almost name a service.
  for (const [r, i] of routes) {
    const hosts = isObj(r.match) && Array.isArray(r.match.hosts) ? r.match.hosts : [];
    hosts.forEach((h, j) => {
      if (typeof h !== 'string' || h.includes('.') || h.includes('*') || known.has(h.toLowerCase())) return;
      const guess = closest(h, known);
      if (guess)
        report(
          'MGA011',
          ['routes', i, 'match', 'hosts', j],
          `host "${h}" is not a service in the mesh, so no request for "${guess}" reaches this route`,
          `write "${guess}"`,
        );
    });
  }

  // MGA015–MGA017: authorization policies that name no one, open everything, or deny nothing.
  authorizationSmells(data.authorizationPolicies, known, report);

  shadowing(routes, report, (i) => {
    const p = at.position(['routes', i]);
    return p.line > 0 ? `${p.file}:${p.line}` : `routes[${i}]`;
  });
  return findings;
}

function matches(labels: Record<string, string>, selector: Record<string, string>): boolean {
  for (const k in selector) if (labels[k] !== selector[k]) return false;
  return true;
}

function describeLabels(labels: Record<string, string>): string {
  const entries = Object.entries(labels);
  return entries.length ? entries.map(([k, v]) => `${k}=${v}`).join(',') : 'no labels';
}

function suggestPerTry(requestMs: number, attempts: number): string {
  const ms = Math.max(50, Math.floor(requestMs / (attempts + 1) / 50) * 50);
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

// ── shadowing (docs/routing.md: host group → path tier → more conditions → declaration order) ──

type Condition = { exact: string } | { prefix: string } | { regex: string } | { present: boolean };

interface RouteShape {
  index: number;
  name: string;
  listeners: string[] | null;
  hosts: string[] | null;
  /** Routes compete only within one path pattern (params renamed alike). */
  pattern: string;
  methods: Set<string> | null;
  headers: Map<string, Condition>;
  query: Map<string, Condition>;
  weight: number;
}

function condition(v: unknown): Condition | undefined {
  if (typeof v === 'string') return { exact: v };
  if (!isObj(v)) return undefined;
  if (typeof v.exact === 'string') return { exact: v.exact };
  if (typeof v.prefix === 'string') return { prefix: v.prefix };
  if (typeof v.regex === 'string') return { regex: v.regex };
  if (typeof v.present === 'boolean') return { present: v.present };
  return undefined;
}

function shape(r: Obj, index: number): RouteShape | undefined {
  const m = r.match === undefined ? {} : r.match;
  if (!isObj(m)) return undefined;
  const conditions = (v: unknown, lower: boolean) => {
    const map = new Map<string, Condition>();
    if (v === undefined) return map;
    if (!isObj(v)) return undefined;
    for (const [k, c] of Object.entries(v)) {
      const parsed = condition(c);
      if (!parsed) return undefined;
      map.set(lower ? k.toLowerCase() : k, parsed);
    }
    return map;
  };
  const headers = conditions(m.headers, true);
  const query = conditions(m.query, false);
  if (!headers || !query) return undefined;
  const path = str(m.path);
  const regex = str(m.pathRegex);
  const pattern =
    regex !== undefined
      ? `regex:${regex}`
      : path === undefined || path === '/*'
        ? 'any'
        : path.replace(/\/:[^/]+/g, '/:');
  const methods = Array.isArray(m.methods) ? new Set(m.methods.map(String)) : null;
  const strings = (v: unknown) => (Array.isArray(v) ? v.map((x) => String(x).toLowerCase()) : null);
  return {
    index,
    name: str(r.name) ?? `routes[${index}]`,
    listeners: Array.isArray(r.listeners) ? r.listeners.map(String) : null,
    hosts: strings(m.hosts),
    pattern,
    methods,
    headers,
    query,
    weight: (methods ? 1 : 0) + headers.size + query.size,
  };
}

/** True when every value `b` accepts, `a` accepts too. */
function implies(b: Condition, a: Condition): boolean {
  if ('present' in a) return a.present ? !('present' in b) || b.present : 'present' in b && !b.present;
  if ('exact' in a) return 'exact' in b && b.exact === a.exact;
  if ('prefix' in a)
    return ('exact' in b && b.exact.startsWith(a.prefix)) || ('prefix' in b && b.prefix.startsWith(a.prefix));
  if ('regex' in b) return b.regex === a.regex;
  if ('exact' in b) {
    try {
      return new RegExp(`^(?:${a.regex})$`).test(b.exact);
    } catch {
      return false;
    }
  }
  return false;
}

const covers = (a: Map<string, Condition>, b: Map<string, Condition>) =>
  [...a].every(([name, c]) => {
    const other = b.get(name);
    return other !== undefined && implies(other, c);
  });

/** The methods of `b` that `a` also takes: all of them, some, or none. */
function methodOverlap(a: RouteShape, b: RouteShape): 'all' | string[] | 'none' {
  if (a.methods === null) return 'all';
  if (b.methods === null) return [...a.methods];
  const common = [...b.methods].filter((m) => a.methods!.has(m));
  if (common.length === b.methods.size) return 'all';
  return common.length ? common : 'none';
}

function sameTables(a: RouteShape, b: RouteShape): boolean {
  const listeners =
    b.listeners === null
      ? a.listeners === null
      : a.listeners === null || b.listeners.every((l) => a.listeners!.includes(l));
  const hosts = b.hosts === null ? a.hosts === null : a.hosts !== null && b.hosts.every((h) => a.hosts!.includes(h));
  return listeners && hosts;
}

function shadowing(
  routes: [Obj, number][],
  report: (code: AnalyzerCode, path: Path, message: string, fix: string) => void,
  placeOf: (index: number) => string,
): void {
  const shapes = routes.flatMap(([r, i]) => {
    const s = shape(r, i);
    return s ? [s] : [];
  });
  for (const b of shapes) {
    for (const a of shapes) {
      if (a === b || a.pattern !== b.pattern || !sameTables(a, b)) continue;
      const first = a.weight > b.weight || (a.weight === b.weight && a.index < b.index);
      if (!first || !covers(a.headers, b.headers) || !covers(a.query, b.query)) continue;
      const overlap = methodOverlap(a, b);
      const where: Path = ['routes', b.index, ...(routes.find(([, i]) => i === b.index)![0].match ? ['match'] : [])];
      if (overlap === 'all') {
        report(
          'MGA005',
          where,
          `route "${b.name}" is never matched: "${a.name}" (${placeOf(a.index)}) comes first and matches every request it would`,
          `declare "${b.name}" before "${a.name}", or give "${a.name}" a condition "${b.name}" lacks`,
        );
        break;
      }
      // A more specific route winning is the precedence working; only declaration order surprises.
      if (overlap !== 'none' && a.weight === b.weight) {
        report(
          'MGA006',
          where,
          `route "${b.name}" never sees ${overlap.join(', ')} requests: "${a.name}" (${placeOf(a.index)}), declared earlier with as many conditions, takes them`,
          `declare "${b.name}" before "${a.name}" if it should win`,
        );
        break;
      }
    }
  }
}

/**
 * A certificate with less than this share of its lifetime left is close to expiry: proxies renew at
 * half their lifetime, so one still in use this late has failed to renew for a while.
 */
const CERTIFICATE_EXPIRY_WARNING_SHARE = 0.25;

/** MGA018–MGA019: a mesh left PERMISSIVE, and proxies whose certificates are about to lapse. */
function meshSecurity(data: Obj, at: Locator, proxies: readonly ProxyStatusView[], now: number): Finding[] {
  const findings: Finding[] = [];
  const mesh = isObj(data.mesh) ? data.mesh : undefined;
  const mtls = mesh !== undefined && isObj(mesh.mtls) ? mesh.mtls : undefined;
  if (mesh !== undefined && (mtls?.mode ?? 'PERMISSIVE') === 'PERMISSIVE') {
    const path: Path = mtls?.mode === undefined ? ['mesh'] : ['mesh', 'mtls', 'mode'];
    findings.push({
      code: 'MGA018',
      severity: ANALYZER_CODES.MGA018.severity,
      message:
        'mesh.mtls.mode is PERMISSIVE (the default): every sidecar still accepts plaintext, so any process that reaches a port can call the service',
      fix: 'set mesh.mtls.mode: STRICT once every service runs a sidecar (services[].mtls.mode: PERMISSIVE keeps one that cannot yet)',
      ...at.position(path),
      path: at.localPath ? at.localPath(formatPath(path)) : formatPath(path),
    });
  }
  for (const proxy of proxies) {
    const cert = proxy.certificate;
    if (!cert) continue;
    const notBefore = Date.parse(cert.notBefore);
    const notAfter = Date.parse(cert.notAfter);
    const left = notAfter - now;
    if (left > (notAfter - notBefore) * CERTIFICATE_EXPIRY_WARNING_SHARE) continue;
    findings.push({
      code: 'MGA019',
      severity: ANALYZER_CODES.MGA019.severity,
      message:
        left <= 0
          ? `proxy ${proxy.id}: its certificate (${cert.spiffeId}, serial ${cert.serial}) expired at ${cert.notAfter}`
          : `proxy ${proxy.id}: its certificate (${cert.spiffeId}, serial ${cert.serial}) expires at ${cert.notAfter}, and it renews at half its lifetime`,
      fix: `see why it does not renew: \`meshgate proxy-config secrets ${proxy.id}\` and the proxy's log (certificate renewal failed)`,
      file: `proxy ${proxy.id}`,
      line: 0,
      column: 0,
      path: '',
    });
  }
  return findings;
}
