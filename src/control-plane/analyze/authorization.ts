/**
 * `analyze` findings about authorization policies (docs/authorization.md): callers named that the mesh
 * does not know, an ALLOW that opens a service to everyone, a DENY that can never deny. Reads the raw
 * data defensively, like the rest of analyze.
 */
import type { Path } from '../../config/document.ts';
import { closest } from '../../config/issues.ts';
import { compileStringMatch, matchString, normalizePrincipal, patternProblem } from '../../core/authz-match.ts';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const objects = (v: unknown): [Obj, number][] =>
  Array.isArray(v) ? v.flatMap((x, i) => (isObj(x) ? [[x, i] as [Obj, number]] : [])) : [];
const strings = (v: unknown): [string, number][] =>
  Array.isArray(v) ? v.flatMap((x, i) => (typeof x === 'string' ? [[x, i] as [string, number]] : [])) : [];

export type AuthzReport = (code: 'MGA015' | 'MGA016' | 'MGA017', path: Path, message: string, fix: string) => void;

/**
 * Whether a principal pattern can match the workload ID of some known service (its `sa` segment), or
 * undefined when the pattern names no service at all (any caller, or a trust domain).
 */
function principalNamesKnown(
  pattern: string,
  known: ReadonlySet<string>,
): { service: string; ok: boolean } | undefined {
  if (pattern === '*' || patternProblem(pattern) !== undefined) return undefined;
  const full = normalizePrincipal(pattern);
  const at = full.lastIndexOf('/sa/');
  if (at === -1) {
    if (!full.startsWith('*')) return full.endsWith('*') ? undefined : { service: full, ok: false };
    const suffix = full.slice(1);
    return { service: suffix, ok: [...known].some((s) => `/sa/${s}`.endsWith(suffix)) };
  }
  const rest = full.slice(at + 4);
  if (rest.endsWith('*')) {
    const prefix = rest.slice(0, -1);
    return { service: rest, ok: [...known].some((s) => s.startsWith(prefix)) };
  }
  return { service: rest, ok: known.has(rest) };
}

export function authorizationSmells(policies: unknown, known: ReadonlySet<string>, report: AuthzReport): void {
  for (const [policy, i] of objects(policies)) {
    const here: Path = ['authorizationPolicies', i];
    const name = typeof policy.name === 'string' ? policy.name : `authorizationPolicies[${i}]`;
    const action = policy.action ?? 'ALLOW';
    const rules = Array.isArray(policy.rules) ? policy.rules : [];
    const target = typeof policy.service === 'string' ? `"${policy.service}"` : 'every service';
    if (action === 'DENY' && rules.length === 0)
      report(
        'MGA017',
        policy.rules === undefined ? [...here, 'name'] : [...here, 'rules'],
        `DENY policy "${name}" has no rules: it matches nothing and never denies a request`,
        'add a rule (`rules: [{}]` denies every request), or remove the policy',
      );
    for (const [rule, r] of objects(rules)) {
      const empty = (key: string) => rule[key] === undefined || (Array.isArray(rule[key]) && rule[key].length === 0);
      if (action === 'ALLOW' && empty('from') && empty('to') && empty('when'))
        report(
          'MGA016',
          [...here, 'rules', r],
          `ALLOW policy "${name}" has a rule that matches every request: it allows everything to ${target}, and every other ALLOW policy there has no effect`,
          'give the rule from, to or when; or remove the policy if the service is meant to be open',
        );
      for (const [source, f] of objects(rule.from)) {
        const p: Path = [...here, 'rules', r, 'from', f];
        for (const key of ['principals', 'notPrincipals'])
          for (const [value, k] of strings(source[key])) {
            const named = principalNamesKnown(value, known);
            if (named === undefined || named.ok) continue;
            const guess = closest(named.service.replace(/\*$/, ''), known);
            report(
              'MGA015',
              [...p, key, k],
              `principal "${value}" matches no service of the mesh (no service "${named.service}")`,
              guess ? `did you mean the service "${guess}"?` : 'name the workload ID of a service the mesh runs',
            );
          }
        for (const key of ['services', 'notServices'])
          for (const [value, k] of strings(source[key])) {
            if (patternProblem(value) !== undefined) continue;
            const m = compileStringMatch([value]);
            if ([...known].some((s) => matchString(m, s))) continue;
            const guess = closest(value.replace(/^\*|\*$/g, ''), known);
            report(
              'MGA015',
              [...p, key, k],
              `"${value}" matches no service of the mesh`,
              guess ? `did you mean "${guess}"?` : 'name a service the mesh runs',
            );
          }
      }
    }
  }
}
