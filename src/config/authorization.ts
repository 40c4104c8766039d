/**
 * Checks of `authorizationPolicies` the schema cannot express: unique names, services that exist,
 * principals that can match a SPIFFE ID, `*` only at one end of a value, `when` keys that exist with
 * values of their kind. Reads the data defensively: it also runs on configs the schema refused.
 */
import type { Config } from '../api/config.ts';
import { compileAddresses, parseWhenKey, patternProblem, principalProblem } from '../core/authz-match.ts';
import type { Locator, Path } from './document.ts';
import { type ConfigIssue, didYouMean, formatPath } from './issues.ts';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const objects = (v: unknown): [Obj, number][] =>
  Array.isArray(v) ? v.flatMap((x, i) => (isObj(x) ? [[x, i] as [Obj, number]] : [])) : [];
const strings = (v: unknown): [string, number][] =>
  Array.isArray(v) ? v.flatMap((x, i) => (typeof x === 'string' ? [[x, i] as [string, number]] : [])) : [];

export function checkAuthorizationPolicies(config: Config, at: Locator): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  if (!isObj(config) || !Array.isArray(config.authorizationPolicies)) return issues;
  const report = (path: Path, message: string, hint?: string, code?: string) =>
    issues.push({ ...at.position(path), path: formatPath(path), message, hint, ...(code ? { code } : {}) });
  const services = objects(config.services).flatMap(([s]) => (typeof s.name === 'string' ? [s.name] : []));
  const first = new Map<string, number>();
  for (const [policy, i] of objects(config.authorizationPolicies)) {
    const here: Path = ['authorizationPolicies', i];
    if (typeof policy.name === 'string') {
      const earlier = first.get(policy.name);
      if (earlier !== undefined)
        report(
          [...here, 'name'],
          `duplicate authorization policy name "${policy.name}" (first at authorizationPolicies[${earlier}])`,
        );
      else first.set(policy.name, i);
    }
    if (typeof policy.service === 'string' && !services.includes(policy.service))
      report(
        [...here, 'service'],
        `unknown service "${policy.service}"`,
        didYouMean(policy.service, services) ??
          'name a service under services, or drop `service` for a mesh-wide policy',
        'unknown-policy-service',
      );
    for (const [rule, r] of objects(policy.rules)) {
      const rulePath: Path = [...here, 'rules', r];
      for (const [source, f] of objects(rule.from)) {
        const p: Path = [...rulePath, 'from', f];
        for (const key of ['principals', 'notPrincipals'])
          for (const [value, k] of strings(source[key])) {
            const problem = principalProblem(value);
            if (problem !== undefined)
              report([...p, key, k], problem, 'e.g. spiffe://cluster.local/ns/default/sa/photo-service');
          }
        for (const key of [
          'services',
          'notServices',
          'namespaces',
          'notNamespaces',
          'requestPrincipals',
          'notRequestPrincipals',
        ])
          patterns(source[key], [...p, key]);
      }
      for (const [operation, o] of objects(rule.to)) {
        const p: Path = [...rulePath, 'to', o];
        for (const key of ['methods', 'notMethods', 'paths', 'notPaths', 'hosts', 'notHosts'])
          patterns(operation[key], [...p, key]);
        for (const [path, k] of strings(operation.paths))
          if (!path.startsWith('/') && !path.startsWith('*'))
            report([...p, 'paths', k], `"${path}" can never match: request paths start with /`, `write "/${path}"`);
      }
      for (const [condition, c] of objects(rule.when)) checkCondition(condition, [...rulePath, 'when', c]);
    }
  }
  return issues;

  function patterns(values: unknown, path: Path) {
    for (const [value, k] of strings(values)) {
      const problem = patternProblem(value);
      if (problem !== undefined) report([...path, k], problem);
    }
  }

  function checkCondition(condition: Obj, here: Path) {
    if (typeof condition.key !== 'string') return;
    const key = parseWhenKey(condition.key);
    if ('problem' in key) {
      report([...here, 'key'], key.problem, key.hint);
      return;
    }
    if (condition.values === undefined && condition.notValues === undefined)
      report(here, 'a condition needs values or notValues', 'e.g. values: ["admin"]');
    for (const field of ['values', 'notValues']) {
      const list = strings(condition[field]);
      if (key.kind === 'source.ip' || key.kind === 'remote.ip') {
        for (const [value, k] of list) {
          const { problems } = compileAddresses([value]);
          if (problems.length > 0) report([...here, field, k], problems[0]!, 'e.g. 10.0.0.0/8 or 2001:db8::/32');
        }
      } else if (key.kind === 'destination.port') {
        for (const [value, k] of list)
          if (!/^[0-9]{1,5}$/.test(value) || Number(value) < 1 || Number(value) > 65535)
            report([...here, field, k], `"${value}" is not a port (1-65535)`);
      } else if (key.kind === 'source.principal') {
        for (const [value, k] of list) {
          const problem = principalProblem(value);
          if (problem !== undefined) report([...here, field, k], problem);
        }
      } else patterns(condition[field], [...here, field]);
    }
  }
}
