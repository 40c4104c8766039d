/**
 * Checks the schema cannot express: names are unique, references resolve, weights add up,
 * regular expressions compile, each route has exactly one action.
 */
import type {
  Config,
  HashOnConfig,
  ListenerConfig,
  RouteConfig,
  ServiceConfig,
  ValueMatchConfig,
} from '../api/config.ts';
import { LB_POLICIES } from '../api/values.ts';
import { parseDuration } from '../core/duration.ts';
import { leanEngineBlocker } from '../core/listener-engine.ts';
import { spiffeIdProblem } from '../core/spiffe.ts';
import { mergeSubsetPolicy } from '../core/subset-policy.ts';
import { checkAggregate } from './aggregate.ts';
import type { Locator, Path } from './document.ts';
import { type ConfigIssue, didYouMean, formatPath } from './issues.ts';
import { checkPlans } from './plans.ts';

export function checkReferences(config: Config, at: Locator): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  if (!isObject(config)) return issues;
  config = {
    ...config,
    listeners: arrayOfObjects(config.listeners),
    services: arrayOfObjects(config.services).map((s) => ({ ...s, endpoints: arrayOfObjects(s.endpoints) })),
    routes: arrayOfObjects(config.routes),
  };
  const report: Report = (path, message, hint, code) =>
    issues.push({ ...at.position(path), path: formatPath(path), message, hint, ...(code ? { code } : {}) });

  unique(config.listeners ?? [], 'listener', ['listeners'], report);
  unique(config.services ?? [], 'service', ['services'], report);
  unique(config.routes ?? [], 'route', ['routes'], report);

  // Two sockets on one port collide when their addresses are equal or either is a wildcard.
  const bound: { address: string; port: number; path: Path }[] = [];
  const wildcard = (a: string) => a === '0.0.0.0' || a === '::';
  const clash = (address: string, port: number, path: Path) => {
    if (port === 0) return;
    const other = bound.find(
      (b) => b.port === port && (b.address === address || wildcard(b.address) || wildcard(address)),
    );
    if (other)
      report(path, `port ${port} on ${address} is already taken by ${formatPath(other.path)}`, 'give each a port');
    else bound.push({ address, port, path: path.slice(0, -1) });
  };
  if (isObject(config.admin)) clash(config.admin.address ?? '127.0.0.1', config.admin.port, ['admin', 'port']);
  (config.listeners ?? []).forEach((l, i) => {
    clash(l.address ?? '0.0.0.0', l.port, ['listeners', i, 'port']);
    checkListener(l, ['listeners', i], report);
  });

  const services = new Map((config.services ?? []).map((s) => [s.name, s]));
  (config.services ?? []).forEach((service, i) => {
    (service.endpoints ?? []).forEach((endpoint, j) => {
      if (!URL.canParse(endpoint.url))
        report(['services', i, 'endpoints', j, 'url'], `"${endpoint.url}" is not a URL`, 'e.g. http://127.0.0.1:8081');
    });
    checkResilience(service, ['services', i], report);
    if (service.engine === 'lean') {
      const https = (service.endpoints ?? []).findIndex((e) => typeof e.url === 'string' && e.url.startsWith('https:'));
      if (service.protocol === 'http2' || service.protocol === 'auto')
        report(
          ['services', i, 'engine'],
          `engine lean speaks plain HTTP/1.1 only; this service sets protocol ${service.protocol}`,
          `remove engine (undici speaks ${service.protocol}), or set protocol http1`,
        );
      else if (https >= 0)
        report(
          ['services', i, 'engine'],
          `engine lean speaks plain HTTP/1.1 only; endpoint ${https} of this service is https://`,
          'remove engine (undici speaks TLS), or use http:// endpoints',
        );
    }
    checkSubsetPolicies(service, ['services', i], report);
    if (Array.isArray(service.dependsOn))
      service.dependsOn.forEach((name, j) => {
        if (typeof name === 'string' && !services.has(name))
          report(
            ['services', i, 'dependsOn', j],
            `unknown service "${name}"`,
            didYouMean(name, services.keys()) ?? 'declare it under services; a name alone will do',
            'unknown-service',
          );
      });
    service.mtls?.identities?.forEach((id, j) => {
      const problem = typeof id === 'string' ? spiffeIdProblem(id) : undefined;
      if (problem !== undefined)
        report(
          ['services', i, 'mtls', 'identities', j],
          `"${id}" is not a SPIFFE ID: ${problem}`,
          'e.g. spiffe://cluster.local/ns/default/sa/photo-service',
        );
    });
  });

  const listenerNames = (config.listeners ?? []).map((l) => l.name);
  (config.routes ?? []).forEach((route, i) => {
    const here: Path = ['routes', i];
    if (Array.isArray(route.listeners))
      route.listeners.forEach((name, j) => {
        if (typeof name === 'string' && !listenerNames.includes(name))
          report(
            [...here, 'listeners', j],
            `unknown listener "${name}"`,
            didYouMean(name, listenerNames) ??
              (listenerNames.length ? `its listeners: ${listenerNames.join(', ')}` : 'define it under listeners'),
            'unknown-listener',
          );
      });
    checkAction(route, here, report);
    checkAggregate(route, here, services, report);
    checkMatch(route, here, report);
    if (route.destinations !== undefined && !Array.isArray(route.destinations)) return;
    const destinations = route.destinations ?? (route.service ? [{ service: route.service, weight: 100 }] : []);
    destinations.forEach((d, j) => {
      if (!isObject(d) || typeof d.service !== 'string') return;
      const dPath: Path = route.destinations ? [...here, 'destinations', j] : here;
      const service = services.get(d.service);
      if (!service) {
        report(
          [...dPath, 'service'],
          `unknown service "${d.service}"`,
          didYouMean(d.service, services.keys()),
          'unknown-service',
        );
        return;
      }
      if (d.subset !== undefined && !Object.hasOwn(service.subsets ?? {}, d.subset)) {
        const names = Object.keys(service.subsets ?? {});
        report(
          [...dPath, 'subset'],
          `service "${d.service}" has no subset "${d.subset}"`,
          didYouMean(d.subset, names) ??
            (names.length ? `its subsets: ${names.join(', ')}` : 'define it under subsets'),
          'unknown-subset',
        );
      }
    });
    // A destination or weight the schema rejected would only add a misleading sum (or throw, for null).
    const weighable = route.destinations?.every(
      (d) => isObject(d) && (d.weight === undefined || typeof d.weight === 'number'),
    );
    if (route.destinations && weighable) {
      const missing = route.destinations.filter((d) => d.weight === undefined).length;
      const sum = route.destinations.reduce((s, d) => s + (d.weight ?? 0), 0);
      if (route.destinations.length === 1 && missing === 1) {
        // One destination without a weight takes everything.
      } else if (missing > 0) {
        report(
          [...here, 'destinations'],
          'every destination needs a weight when there are several',
          undefined,
          'weights',
        );
      } else if (sum !== 100) {
        report([...here, 'destinations'], `weights sum to ${sum}, not 100`, 'make them add up to 100', 'weights');
      }
    }
    if (route.rewrite?.regex) compiles(route.rewrite.regex.pattern, [...here, 'rewrite', 'regex', 'pattern'], report);
    checkRouteTraffic(route, here, services, report);
    if (route.rewrite?.prefix !== undefined && !route.match?.path && !route.match?.grpc)
      report([...here, 'rewrite', 'prefix'], 'a prefix rewrite needs match.path', 'or use rewrite.regex');
  });
  issues.push(...checkPlans(config, at));
  return issues;
}

function checkListener(l: ListenerConfig, here: Path, report: Report) {
  if (l.redirectToHttps === true && l.tls !== undefined)
    report(
      [...here, 'redirectToHttps'],
      'a TLS listener would redirect to itself',
      'set redirectToHttps on the plain listener instead',
    );
  const headers = l.limits?.headersTimeout;
  const whole = l.limits?.requestTimeout;
  if (headers !== undefined && whole !== undefined) {
    const h = parseDuration(headers);
    const w = parseDuration(whole);
    if (h !== undefined && w !== undefined && h > 0 && w > 0 && h > w)
      report(
        [...here, 'limits', 'headersTimeout'],
        `headersTimeout (${headers}) is longer than requestTimeout (${whole}), which includes it`,
        'make headersTimeout the shorter one',
      );
  }
  if (l.mtls !== undefined && l.mtls.mode !== 'DISABLE' && l.tls !== undefined)
    report(
      [...here, 'mtls'],
      'a listener serves either its own certificates (tls) or the workload identity (mtls), not both',
      'remove tls, or set mtls.mode to DISABLE',
    );
  if (l.engine === 'lean') {
    const other = leanEngineBlocker(l);
    if (other !== null)
      report(
        [...here, 'engine'],
        `engine lean serves plain HTTP/1.1 only; this listener sets ${other}`,
        `remove engine (node serves ${other}), or remove ${other}`,
      );
  }
  if (l.tls?.requireClientCert !== undefined && l.tls.clientCa === undefined)
    report(
      [...here, 'tls', 'requireClientCert'],
      'client certificates are verified against tls.clientCa',
      'add clientCa',
    );
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The checker also runs on configs that failed the schema; it reads only what has the right shape. */
function arrayOfObjects<T>(v: readonly T[] | undefined): T[] {
  return Array.isArray(v) ? v.filter((item): item is T => isObject(item)) : [];
}

type Report = (path: Path, message: string, hint?: string, code?: string) => void;

function unique(items: readonly { name: string }[], what: string, at: Path, report: Report) {
  const first = new Map<string, number>();
  items.forEach((item, i) => {
    const earlier = first.get(item.name);
    if (earlier !== undefined)
      report([...at, i, 'name'], `duplicate ${what} name "${item.name}" (first at ${formatPath([...at, earlier])})`);
    else first.set(item.name, i);
  });
}

function checkAction(route: RouteConfig, here: Path, report: Report) {
  const actions = ['service', 'destinations', 'directResponse', 'redirect', 'aggregate', 'graphql', 'transcode'].filter(
    (k) => route[k as keyof RouteConfig] !== undefined,
  );
  if (actions.length === 0)
    report(
      here,
      'a route needs an action',
      'add service, destinations, directResponse, redirect, aggregate, graphql or transcode',
    );
  else if (actions.length > 1)
    report([...here, actions[1]!], `a route has one action, but this one has ${actions.join(' and ')}`);
  const redirect = route.redirect;
  if (redirect?.path !== undefined && redirect.prefix !== undefined)
    report([...here, 'redirect', 'prefix'], 'use either redirect.path or redirect.prefix, not both');
  if (redirect?.prefix !== undefined && !route.match?.path && !route.match?.grpc)
    report([...here, 'redirect', 'prefix'], 'a prefix redirect needs match.path', 'or give the whole redirect.path');
}

function checkMatch(route: RouteConfig, here: Path, report: Report) {
  const match = route.match;
  if (!match) return;
  if (match.path !== undefined && match.pathRegex !== undefined)
    report([...here, 'match', 'pathRegex'], 'use either path or pathRegex, not both');
  if (match.grpc !== undefined && (match.path !== undefined || match.pathRegex !== undefined))
    report([...here, 'match', 'grpc'], 'match.grpc sets the path (/service/method); drop path and pathRegex');
  if (typeof match.path === 'string') {
    const star = match.path.indexOf('*');
    if (star !== -1 && (star !== match.path.length - 1 || match.path[star - 1] !== '/'))
      report([...here, 'match', 'path'], '`*` may only end the path, after a `/`', 'e.g. /api/v1/*');
    for (const segment of match.path.split('/'))
      if (segment.startsWith(':') && !/^:[A-Za-z_][A-Za-z0-9_]*$/.test(segment))
        report([...here, 'match', 'path'], `"${segment}" is not a parameter name`, 'e.g. /users/:id');
  }
  if (match.pathRegex !== undefined) compiles(match.pathRegex, [...here, 'match', 'pathRegex'], report);
  for (const kind of ['headers', 'query', 'cookies'] as const) {
    for (const [name, condition] of Object.entries(match[kind] ?? {})) {
      const regex = regexOf(condition);
      if (regex !== undefined) compiles(regex, [...here, 'match', kind, name, 'regex'], report);
    }
  }
}

/** Service settings whose parts must agree with each other. */
/**
 * Each key of `subsetPolicies` names a declared subset, and each subset's effective policies (its fields
 * over the service's) pass the same checks as a service's, reported at the subset's field.
 */
function checkSubsetPolicies(service: ServiceConfig, here: Path, report: Report) {
  if (!isObject(service.subsetPolicies)) return;
  const names = Object.keys(isObject(service.subsets) ? service.subsets : {});
  for (const [subset, policy] of Object.entries(service.subsetPolicies)) {
    const at: Path = [...here, 'subsetPolicies', subset];
    if (!names.includes(subset)) {
      report(
        at,
        `service "${service.name}" has no subset "${subset}"`,
        didYouMean(subset, names) ?? (names.length ? `its subsets: ${names.join(', ')}` : 'define it under subsets'),
        'unknown-subset',
      );
      continue;
    }
    if (!isObject(policy)) continue;
    // Only the fields the subset sets: the service's own are reported at the service.
    const merged = mergeSubsetPolicy(service, policy);
    const own: ServiceConfig = { name: service.name };
    if (isObject(policy.loadBalancer)) own.loadBalancer = merged.loadBalancer;
    if (isObject(policy.outlierDetection)) own.outlierDetection = merged.outlierDetection;
    checkResilience(own, at, report);
  }
}

function checkResilience(service: ServiceConfig, here: Path, report: Report) {
  const lb = isObject(service.loadBalancer) ? service.loadBalancer : undefined;
  // A policy the schema rejected would only add misleading follow-up errors.
  if (lb && (lb.policy === undefined || LB_POLICIES.includes(lb.policy))) {
    const hashing = lb.policy === 'ring-hash' || lb.policy === 'maglev';
    if (hashing && lb.hashOn === undefined)
      report([...here, 'loadBalancer'], `${lb.policy} needs hashOn`, 'e.g. hashOn: { header: x-user-id }');
    if (!hashing && lb.hashOn !== undefined)
      report(
        [...here, 'loadBalancer', 'hashOn'],
        `hashOn is only read by ring-hash and maglev, not ${lb.policy ?? 'round-robin'}`,
        'set policy: ring-hash (or maglev), or remove hashOn',
      );
    if (lb.ringPointsPerWeight !== undefined && lb.policy !== 'ring-hash')
      report([...here, 'loadBalancer', 'ringPointsPerWeight'], 'ringPointsPerWeight is only read by ring-hash');
    if (isObject(lb.hashOn)) checkHashOn(lb.hashOn, [...here, 'loadBalancer', 'hashOn'], report);
  }
  const hc = isObject(service.healthCheck) ? service.healthCheck : undefined;
  if (hc) {
    const interval = duration(hc.interval);
    const timeout = duration(hc.timeout);
    if (hc.interval !== undefined && interval === 0)
      report([...here, 'healthCheck', 'interval'], 'the interval cannot be 0', 'e.g. 5s');
    else if (timeout !== undefined && interval !== undefined && timeout > interval)
      report(
        [...here, 'healthCheck', 'timeout'],
        `the timeout (${hc.timeout}) is longer than the interval (${hc.interval})`,
      );
    (Array.isArray(hc.expectedStatuses) ? hc.expectedStatuses : []).forEach((entry, j) => {
      if (typeof entry !== 'string') return;
      const [from, to] = entry.split('-').map(Number) as [number, number];
      if (from > to)
        report([...here, 'healthCheck', 'expectedStatuses', j], `the range ${entry} is empty`, `write ${to}-${from}`);
    });
  }
  const od = isObject(service.outlierDetection) ? service.outlierDetection : undefined;
  if (od) {
    if (od.baseEjectionTime !== undefined && duration(od.baseEjectionTime) === 0)
      report([...here, 'outlierDetection', 'baseEjectionTime'], 'the base ejection time cannot be 0', 'e.g. 30s');
    const base = duration(od.baseEjectionTime);
    const max = duration(od.maxEjectionTime);
    if (base !== undefined && max !== undefined && max < base)
      report(
        [...here, 'outlierDetection', 'maxEjectionTime'],
        `the longest ejection (${od.maxEjectionTime}) is shorter than the base ejection time (${od.baseEjectionTime})`,
      );
    if (od.consecutiveErrors === 0 && (od.consecutiveGatewayErrors ?? 0) === 0)
      report(
        [...here, 'outlierDetection'],
        'both triggers are 0: nothing would ever be ejected',
        'remove outlierDetection',
      );
  }
  const ac = isObject(service.adaptiveConcurrency) ? service.adaptiveConcurrency : undefined;
  if (ac) {
    if (ac.sampleInterval !== undefined && duration(ac.sampleInterval) === 0)
      report([...here, 'adaptiveConcurrency', 'sampleInterval'], 'the sample interval cannot be 0', 'e.g. 100ms');
    if (
      typeof ac.minConcurrency === 'number' &&
      typeof ac.maxConcurrency === 'number' &&
      ac.maxConcurrency < ac.minConcurrency
    )
      report(
        [...here, 'adaptiveConcurrency', 'maxConcurrency'],
        `maxConcurrency (${ac.maxConcurrency}) is below minConcurrency (${ac.minConcurrency})`,
      );
  }
  if (isObject(service.retries)) {
    checkRetries(service.retries, [...here, 'retries'], report);
    const budget = isObject(service.retries.budget) ? service.retries.budget : undefined;
    if (budget?.window !== undefined && duration(budget.window) === 0)
      report([...here, 'retries', 'budget', 'window'], 'the window cannot be 0', 'e.g. 10s');
  }
}

function checkRetries(retries: NonNullable<RouteConfig['retries']>, here: Path, report: Report) {
  const on = Array.isArray(retries.on) ? retries.on : [];
  const wantsCodes = on.includes('retriable-status-codes');
  if (wantsCodes && retries.statusCodes === undefined)
    report([...here, 'on'], 'retriable-status-codes needs statusCodes', 'e.g. statusCodes: [409]');
  if (!wantsCodes && retries.statusCodes !== undefined && retries.on !== undefined)
    report([...here, 'statusCodes'], 'statusCodes are only read with retriable-status-codes in on');
  const backoff = isObject(retries.backoff) ? retries.backoff : undefined;
  const base = duration(backoff?.base);
  const max = duration(backoff?.max);
  if (base !== undefined && max !== undefined && max < base)
    report([...here, 'backoff', 'max'], `the cap (${backoff?.max}) is below the base (${backoff?.base})`);
}

function checkHashOn(hashOn: HashOnConfig, here: Path, report: Report) {
  if (hashOn.clientIp === false)
    report([...here, 'clientIp'], 'clientIp: false selects nothing', 'write clientIp: true');
}

/** Route fields for forwarding: splits, retries, mirrors, faults. */
function checkRouteTraffic(
  route: RouteConfig,
  here: Path,
  services: ReadonlyMap<string, ServiceConfig>,
  report: Report,
) {
  const local =
    route.directResponse !== undefined ? 'directResponse' : route.redirect !== undefined ? 'redirect' : null;
  if (isObject(route.graphql)) return checkGraphqlRoute(route, here, services, report);
  if (local !== null) {
    for (const field of ['retries', 'sticky', 'mirror', 'fault'] as const)
      if (route[field] !== undefined)
        report([...here, field], `${field} applies to forwarding routes; this one answers with ${local}`);
    return;
  }
  if (isObject(route.retries)) checkRetries(route.retries, [...here, 'retries'], report);
  if (isObject(route.sticky)) {
    checkHashOn(route.sticky, [...here, 'sticky'], report);
    if (!Array.isArray(route.destinations) || route.destinations.length < 2)
      report([...here, 'sticky'], 'sticky keeps a client on one side of a split, and this route has one destination');
  }
  const mirror = isObject(route.mirror) ? route.mirror : undefined;
  if (mirror && typeof mirror.service === 'string') {
    const service = services.get(mirror.service);
    if (!service)
      report(
        [...here, 'mirror', 'service'],
        `unknown service "${mirror.service}"`,
        didYouMean(mirror.service, services.keys()),
      );
    else if (mirror.subset !== undefined && !Object.hasOwn(service.subsets ?? {}, mirror.subset)) {
      const names = Object.keys(service.subsets ?? {});
      report(
        [...here, 'mirror', 'subset'],
        `service "${mirror.service}" has no subset "${mirror.subset}"`,
        didYouMean(mirror.subset, names) ??
          (names.length ? `its subsets: ${names.join(', ')}` : 'define it under subsets'),
      );
    }
  }
  const fault = isObject(route.fault) ? route.fault : undefined;
  if (fault && fault.delay === undefined && fault.abort === undefined)
    report([...here, 'fault'], 'a fault needs delay or abort', 'e.g. abort: { status: 503, percent: 10 }');
}

function duration(text: unknown): number | undefined {
  return typeof text === 'string' ? parseDuration(text) : undefined;
}

function regexOf(condition: ValueMatchConfig): string | undefined {
  return typeof condition === 'object' ? condition.regex : undefined;
}

function compiles(pattern: string, path: Path, report: Report) {
  try {
    new RegExp(pattern);
  } catch (e) {
    // V8's message already starts with "Invalid regular expression: ".
    report(path, `invalid regular expression: ${(e as Error).message.replace(/^Invalid regular expression: /, '')}`);
  }
}

/** A `graphql` action: its service and subset exist; forwarding-only fields do not apply. */
function checkGraphqlRoute(
  route: RouteConfig,
  here: Path,
  services: ReadonlyMap<string, ServiceConfig>,
  report: Report,
) {
  const action = route.graphql!;
  for (const field of ['retries', 'sticky', 'mirror', 'fault', 'rewrite'] as const)
    if (route[field] !== undefined)
      report([...here, field], `${field} applies to forwarding routes; this one answers with graphql`);
  if (typeof action.service !== 'string') return;
  const service = services.get(action.service);
  if (!service)
    report(
      [...here, 'graphql', 'service'],
      `unknown service "${action.service}"`,
      didYouMean(action.service, services.keys()),
      'unknown-service',
    );
  else if (action.subset !== undefined && !Object.hasOwn(service.subsets ?? {}, action.subset))
    report(
      [...here, 'graphql', 'subset'],
      `service "${action.service}" has no subset "${action.subset}"`,
      didYouMean(action.subset, Object.keys(service.subsets ?? {})),
      'unknown-subset',
    );
}
