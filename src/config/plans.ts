/**
 * Checks of `plans` and `consumers[].plan` the schema cannot express: plan names are unique, a
 * consumer's plan exists (with a did-you-mean hint), a plan's rate-limit windows are not 0 and not
 * given twice, and `store: redis` has the top-level `redis` block.
 */
import type { Config } from '../api/config.ts';
import { parseDuration } from '../core/duration.ts';
import type { Locator, Path } from './document.ts';
import { type ConfigIssue, didYouMean, formatPath } from './issues.ts';

function objects(v: unknown): [Record<string, unknown>, number][] {
  if (!Array.isArray(v)) return [];
  return v.flatMap((item, i) =>
    typeof item === 'object' && item !== null && !Array.isArray(item) ? [[item as Record<string, unknown>, i]] : [],
  );
}

export function checkPlans(config: Config, at: Locator): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const report = (path: Path, message: string, hint?: string, code?: string) =>
    issues.push({ ...at.position(path), path: formatPath(path), message, hint, ...(code ? { code } : {}) });
  const plans = new Map<string, number>();
  for (const [plan, i] of objects(config.plans)) {
    const here: Path = ['plans', i];
    if (typeof plan.name === 'string') {
      const first = plans.get(plan.name);
      if (first !== undefined)
        report([...here, 'name'], `duplicate plan name "${plan.name}" (first at ${formatPath(['plans', first])})`);
      else plans.set(plan.name, i);
    }
    const windows = new Map<number, number>();
    for (const [limit, j] of objects(plan.rateLimits)) {
      const ms = typeof limit.window === 'string' ? parseDuration(limit.window) : undefined;
      if (ms === undefined) continue;
      if (ms === 0) report([...here, 'rateLimits', j, 'window'], 'a window cannot be 0', 'e.g. 1s or 1m');
      else if (windows.has(ms))
        report(
          [...here, 'rateLimits', j, 'window'],
          `this window is already limited (at ${formatPath([...here, 'rateLimits', windows.get(ms)!])})`,
          'give each window one limit',
        );
      else windows.set(ms, j);
    }
    if (plan.store === 'redis' && config.redis === undefined)
      report(
        [...here, 'store'],
        'store: redis needs the top-level redis block',
        'add redis: { url: redis://127.0.0.1:6379 }',
      );
  }
  const names = [...plans.keys()];
  for (const [consumer, i] of objects(config.consumers)) {
    if (typeof consumer.plan !== 'string' || plans.has(consumer.plan)) continue;
    report(
      ['consumers', i, 'plan'],
      `unknown plan "${consumer.plan}"`,
      didYouMean(consumer.plan, names) ?? (names.length ? `the plans: ${names.join(', ')}` : 'define it under plans'),
      'unknown-plan',
    );
  }
  return issues;
}
