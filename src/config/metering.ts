/**
 * Checks of API versions (`routes[].version`) and usage metering (`metering`) that a schema cannot
 * express: a date-time names a real instant, a sunset is not before its deprecation, `store: redis`
 * has a `redis` block, the SQLite file's directory exists. And where the SQLite file is: resolved
 * once, at load, against the config file's directory.
 */
import { existsSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Config } from '../api/config.ts';
import { DEFAULT_METERING_PATH } from '../core/defaults.ts';
import type { Locator, Path } from './document.ts';
import { type ConfigIssue, formatPath } from './issues.ts';

const RFC3339_SHAPE = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|([+-])(\d{2}):(\d{2}))$/;

/**
 * Milliseconds since the epoch of an RFC 3339 date-time, or undefined when it names no instant
 * (`2026-02-30T…`, hour 25). The schema has checked its shape.
 */
export function rfc3339Ms(value: string): number | undefined {
  const m = RFC3339_SHAPE.exec(value);
  if (m === null) return undefined;
  const [, y, mo, d, h, mi, s, , , sign, oh, om] = m;
  const day = new Date(Date.UTC(Number(y), Number(mo) - 1, Number(d)));
  if (day.getUTCMonth() !== Number(mo) - 1 || day.getUTCDate() !== Number(d)) return undefined;
  // 60 is a leap second (RFC 3339 §5.6), counted as the next second's start.
  if (Number(h) > 23 || Number(mi) > 59 || Number(s) > 60 || Number(oh ?? 0) > 23 || Number(om ?? 0) > 59)
    return undefined;
  const leap = Number(s) === 60;
  const iso = `${y}-${mo}-${d}T${h}:${mi}:${leap ? '59' : s}${(m[7] ?? '').slice(0, 4)}${sign === undefined ? 'Z' : `${sign}${oh}:${om}`}`;
  const ms = Date.parse(iso);
  return Number.isNaN(ms) ? undefined : ms + (leap ? 1000 : 0);
}

export function checkApiVersions(config: Config, at: Locator): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const report = (path: Path, message: string, hint?: string) =>
    issues.push({ ...at.position(path), path: formatPath(path), message, hint });
  if (!Array.isArray(config?.routes)) return issues;
  config.routes.forEach((route, i) => {
    const v = route?.version;
    if (v === null || typeof v !== 'object') return;
    const instant = (field: 'deprecation' | 'sunset'): number | undefined => {
      const value = v[field];
      if (typeof value !== 'string') return undefined;
      const ms = rfc3339Ms(value);
      // A value of the wrong shape is the schema's to report; this one has the shape but names no instant.
      if (ms === undefined && RFC3339_SHAPE.test(value))
        report(
          ['routes', i, 'version', field],
          `"${value}" is not a date-time that exists`,
          'e.g. 2026-06-30T23:59:59Z',
        );
      return ms;
    };
    const deprecation = instant('deprecation');
    const sunset = instant('sunset');
    if (deprecation !== undefined && sunset !== undefined && sunset < deprecation)
      report(
        ['routes', i, 'version', 'sunset'],
        `the sunset (${v.sunset}) is before the deprecation (${v.deprecation})`,
        'a version is deprecated first and sunset later (RFC 9745 §4)',
      );
  });
  return issues;
}

export function checkMetering(config: Config, at: Locator, baseDir: string): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const m = config?.metering;
  if (m === null || typeof m !== 'object' || m.enabled === false) return issues;
  if (m.store === 'redis' && config.redis === undefined)
    issues.push({
      ...at.position(['metering', 'store']),
      path: 'metering.store',
      message: 'store: redis needs the top-level redis block',
      hint: 'add redis: { url: redis://127.0.0.1:6379 }',
    });
  if (m.store !== 'redis' && (m.path === undefined || typeof m.path === 'string')) {
    const dir = dirname(resolve(baseDir, m.path ?? DEFAULT_METERING_PATH));
    if (!existsSync(dir) || !statSync(dir).isDirectory())
      issues.push({
        ...at.position(m.path === undefined ? ['metering'] : ['metering', 'path']),
        path: m.path === undefined ? 'metering' : 'metering.path',
        message: `the directory of the usage database does not exist: ${dir}`,
        hint: 'create it, or set metering.path to a file in an existing directory',
      });
  }
  return issues;
}

/**
 * Writes the SQLite file's absolute path into a metering block (default: beside the config file), as
 * the loader does for every path a config names: workers and reloads then need no base directory.
 */
export function resolveMeteringPath(config: Config, baseDir: string): void {
  const m = config.metering as { path?: string; store?: string } | undefined;
  if (m === undefined || m.store === 'redis') return;
  m.path = resolve(baseDir, m.path ?? DEFAULT_METERING_PATH);
}
