/**
 * `GET /usage?from=&to=&consumer=&api=&format=json|csv`: the usage rows of the store the proxy meters
 * to, the same numbers `meshgate usage export` prints. Every process that proxies writes its pending
 * counts first, so the answer includes every request that had ended when it was asked.
 */
import type { DataPlane } from '../proxy/data-plane.ts';
import { parseInstant, toCsv, toRecords } from '../stores/usage/report.ts';
import type { UsageQuery, UsageRow } from '../stores/usage/store.ts';
import type { AdminServer } from './server.ts';

export function addUsageEndpoint(admin: AdminServer, plane: DataPlane): void {
  admin.route('GET /usage', async (_req, url) => {
    const p = url.searchParams;
    const format = p.get('format') ?? 'json';
    if (format !== 'json' && format !== 'csv') return { status: 400, body: { error: 'format is json or csv' } };
    const query: { -readonly [K in keyof UsageQuery]: UsageQuery[K] } = {};
    for (const name of ['from', 'to'] as const) {
      const value = p.get(name);
      if (value === null) continue;
      const ms = parseInstant(value);
      if (ms === undefined)
        return { status: 400, body: { error: `${name} "${value}" is not a date (2026-12-01, 2026-12-01T10:00:00Z)` } };
      query[name] = ms;
    }
    const consumer = p.get('consumer');
    if (consumer !== null) query.consumer = consumer;
    const api = p.get('api');
    if (api !== null) query.api = api;
    let views: Record<string, unknown>[];
    try {
      const flushed = await plane.query('usage-flush');
      if (flushed.length === 0) return { status: 503, body: { status: 'waiting for config' } };
      if (!flushed.some((v) => v.metered === true))
        return { status: 404, body: { error: 'this proxy does not meter usage: its config has no metering block' } };
      // Every worker reads the same store; one answer is enough.
      views = await plane.query(`usage:${JSON.stringify(query)}`);
    } catch (e) {
      return { status: 503, body: { error: `the usage store cannot be read: ${(e as Error).message}` } };
    }
    const rows = (views.find((v) => v.metered === true)?.rows ?? []) as UsageRow[];
    if (format === 'csv') return { status: 200, body: toCsv(rows), contentType: 'text/csv; charset=utf-8' };
    return { status: 200, body: { rows: toRecords(rows) } };
  });
}
