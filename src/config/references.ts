/**
 * Checks the schema cannot express: names are unique, references resolve, weights add up,
 * regular expressions compile, each route has exactly one action.
 */
import type { Config, RouteConfig, ValueMatchConfig } from '../api/config.ts';
import type { Locator, Path } from './document.ts';
import { type ConfigIssue, didYouMean, formatPath } from './issues.ts';

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
  });

  const services = new Map((config.services ?? []).map((s) => [s.name, s]));
  (config.services ?? []).forEach((service, i) => {
    service.endpoints.forEach((endpoint, j) => {
      if (!URL.canParse(endpoint.url))
        report(['services', i, 'endpoints', j, 'url'], `"${endpoint.url}" is not a URL`, 'e.g. http://127.0.0.1:8081');
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
    if (route.rewrite?.prefix !== undefined && !route.match?.path)
      report([...here, 'rewrite', 'prefix'], 'a prefix rewrite needs match.path', 'or use rewrite.regex');
  });
  return issues;
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
  const actions = ['service', 'destinations', 'directResponse'].filter(
    (k) => route[k as keyof RouteConfig] !== undefined,
  );
  if (actions.length === 0) report(here, 'a route needs an action', 'add service, destinations or directResponse');
  else if (actions.length > 1)
    report([...here, actions[1]!], `a route has one action, but this one has ${actions.join(' and ')}`);
}

function checkMatch(route: RouteConfig, here: Path, report: Report) {
  const match = route.match;
  if (!match) return;
  if (match.path !== undefined && match.pathRegex !== undefined)
    report([...here, 'match', 'pathRegex'], 'use either path or pathRegex, not both');
  if (typeof match.path === 'string') {
    const star = match.path.indexOf('*');
    if (star !== -1 && (star !== match.path.length - 1 || match.path[star - 1] !== '/'))
      report([...here, 'match', 'path'], '`*` may only end the path, after a `/`', 'e.g. /api/v1/*');
    for (const segment of match.path.split('/'))
      if (segment.startsWith(':') && !/^:[A-Za-z_][A-Za-z0-9_]*$/.test(segment))
        report([...here, 'match', 'path'], `"${segment}" is not a parameter name`, 'e.g. /users/:id');
  }
  if (match.pathRegex !== undefined) compiles(match.pathRegex, [...here, 'match', 'pathRegex'], report);
  for (const kind of ['headers', 'query'] as const) {
    for (const [name, condition] of Object.entries(match[kind] ?? {})) {
      const regex = regexOf(condition);
      if (regex !== undefined) compiles(regex, [...here, 'match', kind, name, 'regex'], report);
    }
  }
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
