/**
 * Checks of an aggregate route that the schema cannot express: call names unique, services and subsets
 * that exist, `dependsOn` naming calls of the route without a cycle, path templates that compile and
 * read only the results of calls they depend on, headers that may be passed on, and no forwarding-only
 * fields. Runs on configs that failed the schema too, so it reads only what has the right shape.
 */
import type { AggregateCallConfig, RouteConfig, ServiceConfig } from '../api/config.ts';
import { compileTemplate, TemplateError } from '../core/template.ts';
import type { Path } from './document.ts';
import { didYouMean } from './issues.ts';

type Report = (path: Path, message: string, hint?: string, code?: string) => void;

/** The template root of earlier calls' answers: `$(results.<call>.<field>…)`. */
export const RESULTS_ROOT = 'results';

/** Answer member the proxy writes itself. */
const RESERVED_NAMES = new Set(['errors']);

/** Headers a call sets itself, or that describe the client's connection or body rather than the request. */
const UNPASSABLE_HEADERS = new Set([
  'host',
  'content-length',
  'transfer-encoding',
  'connection',
  'keep-alive',
  'proxy-connection',
  'upgrade',
  'te',
  'trailer',
  'expect',
]);

const FORWARDING_ONLY = ['rewrite', 'retries', 'timeouts', 'sticky', 'mirror', 'fault'] as const;

export function checkAggregate(
  route: RouteConfig,
  here: Path,
  services: ReadonlyMap<string, ServiceConfig>,
  report: Report,
): void {
  const aggregate = route.aggregate;
  if (!isObject(aggregate)) return;
  for (const field of FORWARDING_ONLY)
    if (route[field] !== undefined)
      report(
        [...here, field],
        `${field} applies to forwarding routes; this one answers with aggregate`,
        field === 'timeouts' || field === 'retries'
          ? "set each call's timeout; calls retry by their service's retries policy"
          : undefined,
      );
  if (!Array.isArray(aggregate.calls)) return;
  const at: Path = [...here, 'aggregate', 'calls'];
  const calls = aggregate.calls.map((c) => (isObject(c) ? (c as AggregateCallConfig) : null));
  const index = new Map<string, number>();
  calls.forEach((call, i) => {
    if (call === null || typeof call.name !== 'string') return;
    if (RESERVED_NAMES.has(call.name))
      report([...at, i, 'name'], `"${call.name}" is the member the proxy lists failed calls under`, 'rename the call');
    const first = index.get(call.name);
    if (first !== undefined)
      report([...at, i, 'name'], `duplicate call name "${call.name}" (first at calls[${first}])`);
    else index.set(call.name, i);
  });
  const names = [...index.keys()];

  // Direct dependencies as indexes, for the cycle check and the results check.
  const deps: number[][] = calls.map(() => []);
  calls.forEach((call, i) => {
    if (call === null) return;
    const where: Path = [...at, i];
    if (typeof call.service === 'string') checkService(call, where, services, report);
    if (Array.isArray(call.dependsOn))
      call.dependsOn.forEach((name, j) => {
        if (typeof name !== 'string') return;
        const target = index.get(name);
        if (target === undefined)
          report(
            [...where, 'dependsOn', j],
            `unknown call "${name}"`,
            didYouMean(name, names) ?? `the calls of this route: ${names.join(', ')}`,
            'unknown-call',
          );
        else if (target === i) report([...where, 'dependsOn', j], `call "${name}" depends on itself`);
        else deps[i]!.push(target);
      });
    if (Array.isArray(call.headers))
      call.headers.forEach((name, j) => {
        if (typeof name === 'string' && UNPASSABLE_HEADERS.has(name.toLowerCase()))
          report([...where, 'headers', j], `${name} cannot be passed on: each call sets its own`);
      });
  });

  const cycle = findCycle(deps);
  if (cycle !== null) {
    const first = cycle[0]!;
    const loop = [...cycle, first].map((i) => calls[i]!.name).join(' → ');
    report(
      [...at, first, 'dependsOn'],
      `dependsOn makes a cycle: ${loop}`,
      'a call can only wait for calls that do not wait for it',
    );
    return; // the results check below walks dependencies, which must be acyclic
  }

  calls.forEach((call, i) => {
    if (call === null || typeof call.path !== 'string') return;
    const where: Path = [...at, i, 'path'];
    let references: ReturnType<typeof compileTemplate>['references'];
    try {
      references = compileTemplate(call.path, [RESULTS_ROOT]).references;
    } catch (e) {
      if (!(e instanceof TemplateError)) throw e;
      report(where, e.message, 'e.g. /properties/$(params.id) or /valuations/$(results.property.postcode)');
      return;
    }
    const before = ancestors(i, deps);
    for (const ref of references) {
      if (ref.root !== RESULTS_ROOT) continue;
      const name = ref.path[0]!;
      const target = index.get(name);
      if (target === undefined)
        report(where, `"$(${ref.text})" names no call of this route`, didYouMean(name, names), 'unknown-call');
      else if (!before.has(target))
        report(
          where,
          `"$(${ref.text})" reads the answer of "${name}", which this call does not depend on`,
          `add ${name} to dependsOn`,
        );
    }
  });
}

function checkService(
  call: { service: string; subset?: string | undefined },
  where: Path,
  services: ReadonlyMap<string, ServiceConfig>,
  report: Report,
): void {
  const service = services.get(call.service);
  if (!service) {
    report(
      [...where, 'service'],
      `unknown service "${call.service}"`,
      didYouMean(call.service, services.keys()),
      'unknown-service',
    );
    return;
  }
  if (call.subset !== undefined && !Object.hasOwn(service.subsets ?? {}, call.subset)) {
    const subsets = Object.keys(service.subsets ?? {});
    report(
      [...where, 'subset'],
      `service "${call.service}" has no subset "${call.subset}"`,
      didYouMean(call.subset, subsets) ??
        (subsets.length ? `its subsets: ${subsets.join(', ')}` : 'define it under subsets'),
      'unknown-subset',
    );
  }
}

/** A cycle in the dependency graph as call indexes in order, or null. */
function findCycle(deps: readonly number[][]): number[] | null {
  const state = new Uint8Array(deps.length); // 0 unvisited, 1 on the stack, 2 done
  const stack: number[] = [];
  const visit = (i: number): number[] | null => {
    state[i] = 1;
    stack.push(i);
    for (const d of deps[i]!) {
      if (state[d] === 1) return stack.slice(stack.indexOf(d));
      if (state[d] === 0) {
        const found = visit(d);
        if (found !== null) return found;
      }
    }
    stack.pop();
    state[i] = 2;
    return null;
  };
  for (let i = 0; i < deps.length; i++) {
    if (state[i] !== 0) continue;
    const found = visit(i);
    if (found !== null) return found;
  }
  return null;
}

/** Every call `i` waits for, directly or through others (the graph is acyclic). */
function ancestors(i: number, deps: readonly number[][]): Set<number> {
  const seen = new Set<number>();
  const todo = [...deps[i]!];
  while (todo.length > 0) {
    const d = todo.pop()!;
    if (seen.has(d)) continue;
    seen.add(d);
    todo.push(...deps[d]!);
  }
  return seen;
}

function isObject(v: unknown): v is object {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
