/**
 * Usage rows as the commands and the admin API give them out: CSV and JSON with the hour as an ISO
 * 8601 instant, a parser for the `--from`/`--to` instants, and the summaries of `meshgate usage
 * report` (per API version, and per consumer and version: who still calls a version before its sunset).
 */
import type { RouteConfig } from '../../api/config.ts';
import type { UsageRow } from './store.ts';

/** The columns of CSV output, in order; JSON objects have the same fields (`statusClass` for `status_class`). */
export const CSV_COLUMNS = [
  'hour',
  'consumer',
  'route',
  'api',
  'version',
  'status_class',
  'requests',
  'bytes',
] as const;

export interface UsageRecord {
  hour: string;
  consumer: string;
  route: string;
  api: string;
  version: string;
  statusClass: string;
  requests: number;
  bytes: number;
}

/** `2026-12-06T13:00:00Z` */
export function isoHour(ms: number): string {
  return new Date(ms).toISOString().replace('.000Z', 'Z');
}

export function toRecords(rows: readonly UsageRow[]): UsageRecord[] {
  return rows.map((r) => ({
    hour: isoHour(r.hour),
    consumer: r.consumer,
    route: r.route,
    api: r.api,
    version: r.version,
    statusClass: r.statusClass,
    requests: r.requests,
    bytes: r.bytes,
  }));
}

function csvField(value: string | number): string {
  const s = String(value);
  return /[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

/** RFC 4180: a header line, CRLF-free (`\n`) lines, fields quoted when they hold `,`, `"` or a line break. */
export function toCsv(rows: readonly UsageRow[]): string {
  const lines = [CSV_COLUMNS.join(',')];
  for (const r of toRecords(rows))
    lines.push(
      [r.hour, r.consumer, r.route, r.api, r.version, r.statusClass, r.requests, r.bytes].map(csvField).join(','),
    );
  return `${lines.join('\n')}\n`;
}

/**
 * An instant for `--from`/`--to` or `from=`/`to=`: a date (`2026-12-01`, midnight UTC), a date-time
 * (`2026-12-01T10:00:00Z`, `2026-12-01T10:00`: UTC), or milliseconds since the epoch. undefined: not one.
 */
export function parseInstant(value: string): number | undefined {
  if (/^\d+$/.test(value)) return Number(value);
  if (/^\d{4}-\d{2}-\d{2}$/.test(value)) value += 'T00:00:00Z';
  else if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/.test(value)) value += 'Z';
  if (!/^\d{4}-\d{2}-\d{2}T/.test(value)) return undefined;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? undefined : ms;
}

export interface VersionSummary {
  api: string;
  version: string;
  requests: number;
  bytes: number;
  consumers: number;
  /** The last hour with a request, ISO. */
  lastSeen: string;
  /** From the config's routes of this version, when set. */
  deprecation: string | null;
  sunset: string | null;
}

export interface ConsumerSummary {
  consumer: string;
  api: string;
  version: string;
  requests: number;
  /** Requests per status class, `2xx` → n. */
  byClass: Record<string, number>;
  bytes: number;
  firstSeen: string;
  lastSeen: string;
}

export interface UsageSummary {
  versions: VersionSummary[];
  consumers: ConsumerSummary[];
}

/** Totals per API version and per consumer and version; routes' `version` blocks give the dates. */
export function summarize(rows: readonly UsageRow[], routes: readonly RouteConfig[] = []): UsageSummary {
  const versions = new Map<string, VersionSummary & { who: Set<string>; last: number }>();
  const consumers = new Map<string, ConsumerSummary & { first: number; last: number }>();
  const dates = new Map<string, { deprecation: string | null; sunset: string | null }>();
  for (const r of routes)
    if (r.version !== undefined)
      dates.set(`${r.version.api}\u0000${r.version.name}`, {
        deprecation: r.version.deprecation ?? null,
        sunset: r.version.sunset ?? null,
      });
  for (const row of rows) {
    const vk = `${row.api}\u0000${row.version}`;
    let v = versions.get(vk);
    if (v === undefined) {
      v = {
        api: row.api,
        version: row.version,
        requests: 0,
        bytes: 0,
        consumers: 0,
        lastSeen: '',
        deprecation: dates.get(vk)?.deprecation ?? null,
        sunset: dates.get(vk)?.sunset ?? null,
        who: new Set(),
        last: row.hour,
      };
      versions.set(vk, v);
    }
    v.requests += row.requests;
    v.bytes += row.bytes;
    v.who.add(row.consumer);
    v.last = Math.max(v.last, row.hour);
    const ck = `${row.consumer}\u0000${vk}`;
    let c = consumers.get(ck);
    if (c === undefined) {
      c = {
        consumer: row.consumer,
        api: row.api,
        version: row.version,
        requests: 0,
        byClass: {},
        bytes: 0,
        firstSeen: '',
        lastSeen: '',
        first: row.hour,
        last: row.hour,
      };
      consumers.set(ck, c);
    }
    c.requests += row.requests;
    c.byClass[row.statusClass] = (c.byClass[row.statusClass] ?? 0) + row.requests;
    c.bytes += row.bytes;
    c.first = Math.min(c.first, row.hour);
    c.last = Math.max(c.last, row.hour);
  }
  const byName = (a: { api: string; version: string }, b: { api: string; version: string }) =>
    a.api.localeCompare(b.api) || a.version.localeCompare(b.version);
  return {
    versions: [...versions.values()]
      .map(({ who, last, ...v }) => ({ ...v, consumers: who.size, lastSeen: isoHour(last) }))
      .sort(byName),
    consumers: [...consumers.values()]
      .map(({ first, last, ...c }) => ({ ...c, firstSeen: isoHour(first), lastSeen: isoHour(last) }))
      .sort((a, b) => byName(a, b) || b.requests - a.requests || a.consumer.localeCompare(b.consumer)),
  };
}
